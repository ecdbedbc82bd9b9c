"""Blocks larger than a block-cache shard at the job's size: the rule a scaled model needs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuner.flink import options as fo
from tuner.flink.cache_shards import (
    MIN_SHARD_BYTES,
    oversized_blocks,
    production_blocks,
    shard_bytes,
)
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.units import KIB, MIB


def test_shards_follow_rocksdbs_default_shard_bits() -> None:
    # GetDefaultCacheShardBits: capacity / 512 KiB shards, as a power of two, 64 at most.
    assert shard_bytes(56 * MIB) == 56 * MIB // 64
    assert shard_bytes(5 * MIB + 600 * KIB) == (5 * MIB + 600 * KIB) // 8
    assert shard_bytes(300 * KIB) == 300 * KIB  # one shard
    assert shard_bytes(4 << 30) == (4 << 30) // 64


@given(st.integers(1, 1 << 40))
def test_a_shard_is_at_least_512_kib_unless_the_cache_is_smaller(capacity: int) -> None:
    shard = shard_bytes(capacity)
    assert shard >= min(capacity, MIN_SHARD_BYTES)
    assert shard >= capacity // 64


# The Nexmark q4 model (a 1/10 recording of a job with 64 mb of managed memory), its largest
# column family's table properties as measured under the run's recommendation (32 kb blocks, a
# bloom filter of 16 bits per key) and its cache (56.5 MiB at the job's size: 904 KiB shards).
Q4 = {
    "largest_cf_sst_bytes": 757_930,
    "largest_cf_entries": 80_549,
    "largest_cf_raw_bytes": 5_718_979,
    "largest_cf_data_bytes": 593_283,
    "largest_cf_data_blocks": 59,
    "largest_cf_index_bytes": 3_970,
}
MODEL = RocksDBConfig(shared_cache_bytes=5_786 * KIB, write_buffer_manager_bytes=2 * MIB)
REC = {
    fo.USE_BLOOM_FILTER: True,
    fo.BLOOM_FILTER_BITS_PER_KEY: 16.0,
    fo.BLOCK_SIZE: 32 * KIB,
}


def test_q4s_whole_filter_block_at_the_jobs_size_is_refused() -> None:
    """Real q4: 97-116 s under this recommendation, 22-26 s under Flink's default, 21.9 s with
    partitioned index and filters (docs/measurements/2026-12-02-nexmark.md)."""
    blocks = production_blocks(Q4, REC, 0.1)
    # 7.6 MiB of the column family in one file; 2 bytes of filter per entry of 7.4 bytes.
    assert 1.9 * MIB < blocks["filter"] < 2.1 * MIB and blocks["index"] < 200 * KIB
    why = oversized_blocks(Q4, REC, MODEL, 0.1)
    assert why is not None and "filter block would be about 2.0 MiB, 2.2x" in why
    assert "partitioned-index-filters: true avoids it" in why
    # Partitioned filters, no filter, or the job itself at full size: nothing to refuse.
    partitioned = {**REC, fo.PARTITIONED_INDEX_FILTERS: True}
    assert oversized_blocks(Q4, partitioned, MODEL, 0.1) is None
    assert oversized_blocks(Q4, {fo.BLOCK_SIZE: 32 * KIB}, MODEL, 0.1) is None
    assert oversized_blocks(Q4, REC, MODEL, 1.0) is None


def test_a_block_near_a_shard_is_left_to_the_measurement() -> None:
    ten_bits = {**REC, fo.BLOOM_FILTER_BITS_PER_KEY: 10.0}  # 1.25 MiB: 1.4x a shard
    assert oversized_blocks(Q4, ten_bits, MODEL, 0.1) is None
    assert oversized_blocks(Q4, REC, MODEL, 0.1) is not None


def test_universal_compaction_makes_a_file_of_a_whole_sorted_run() -> None:
    big = {**Q4, "largest_cf_sst_bytes": 20 * MIB}  # 200 MiB at the job's size
    level = production_blocks(big, REC, 0.1)["filter"]  # a 64 MiB file
    universal = production_blocks(big, {**REC, fo.COMPACTION_STYLE: "UNIVERSAL"}, 0.1)
    assert universal["filter"] == pytest.approx(level * 200 / 64)
