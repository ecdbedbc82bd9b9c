"""Filter and index blocks too big for a block-cache shard at the job's size: what a scaled
model cannot show.

RocksDB splits an LRU cache into ``2^bits`` shards of at least 512 KiB each, 64 at the most
(``GetDefaultCacheShardBits``, cache/sharded_cache.cc); Flink's shared cache takes that default
(``RocksDBMemoryControllerUtils.createCache``: ``num_shard_bits`` -1). An entry larger than its
shard is freed as soon as its reader lets go of it (``LRUCacheShard::Release`` frees an entry
while the shard is over capacity), so an SST's whole filter or index block (Flink's default:
not partitioned) that is larger than a shard is read from the file again on every lookup that
needs it. A model of ``f`` of the job has files ``f`` as large (target-file-size-base is
scaled, :mod:`tuner.scale`), so its blocks are ``f`` as large, while a shard is 512 KiB to
1 MiB in both: the model keeps cached the blocks the job cannot.

Measured on Nexmark q4 (1M events, 64 mb of managed memory, a 1/10 recording): the run
recommended a bloom filter of 16 bits per key without partitioned filters, +64 % on the model,
confirmed on Flink's own backend; the real query ran 4.4x slower than under Flink's default
(97-116 s against 22-26 s). The same settings without the bloom filter ran 23.4 s, with
partitioned index and filters 21.9 s (``docs/measurements/2026-12-02-nexmark.md``).
"""

from __future__ import annotations

from collections.abc import Mapping

from tuner.flink import options as fo
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.units import KIB, MIB

__all__ = [
    "MARGIN",
    "MAX_SHARD_BITS",
    "MIN_SHARD_BYTES",
    "oversized_blocks",
    "production_blocks",
    "shard_bytes",
]

MIN_SHARD_BYTES = 512 * KIB
MAX_SHARD_BITS = 6
# How much larger than a shard an estimated block must be to be refused: the estimate carries
# the model's per-entry and per-block figures to files ten to a hundred times larger, so a
# block near the shard's size is left to the measurement. On the q4 model: the refused filter
# block 2.2x a shard, HIGH_MEM's 1.3x, Flink's default's index block 1.07x.
MARGIN = 1.5


def shard_bytes(capacity: int) -> int:
    """The capacity of one shard of an LRU cache of ``capacity`` bytes, as RocksDB shards it."""
    shards = capacity // MIN_SHARD_BYTES
    bits = min(MAX_SHARD_BITS, shards.bit_length() - 1) if shards > 0 else 0
    return capacity >> bits


def production_blocks(
    metrics: Mapping[str, float], settings: fo.FlinkSettings, factor: float
) -> dict[str, float]:
    """The whole index and filter block of the largest SST file the job would have at full
    size, in bytes, from the model's table properties (per entry and per data block, which do
    not change with the size: the model's files are small, so overheads per file are not used).

    A file holds ``file / (stored bytes per entry)`` entries; its filter block is
    ``bits-per-key / 8`` bytes per entry (a full filter); its index block one entry per data
    block, a data block holding ``block-size`` bytes as written, stored at the model's
    compression ratio."""
    entries = metrics.get("largest_cf_entries", 0.0)
    stored = metrics.get("largest_cf_data_bytes", 0.0)
    raw = metrics.get("largest_cf_raw_bytes", 0.0)
    blocks = metrics.get("largest_cf_data_blocks", 0.0)
    if min(entries, stored, raw, blocks) <= 0:
        return {}
    values = fo.effective(settings)
    column_family = metrics.get("largest_cf_sst_bytes", 0.0) / factor
    target = float(values[fo.TARGET_FILE_SIZE_BASE])  # type: ignore[arg-type]
    # Universal compaction writes a sorted run as one file: up to the whole column family.
    universal = values[fo.COMPACTION_STYLE] != "LEVEL"
    largest_file = column_family if universal else min(target, column_family)
    block_stored = float(values[fo.BLOCK_SIZE]) * stored / raw  # type: ignore[arg-type]
    out = {"index": largest_file / block_stored * metrics["largest_cf_index_bytes"] / blocks}
    if values[fo.USE_BLOOM_FILTER] is True:
        bits = float(values[fo.BLOOM_FILTER_BITS_PER_KEY])  # type: ignore[arg-type]
        out["filter"] = largest_file / (stored / entries) * bits / 8
    return out


def oversized_blocks(
    metrics: Mapping[str, float],
    settings: fo.FlinkSettings,
    model: RocksDBConfig,
    factor: float,
) -> str | None:
    """Why ``settings`` would make SST filter or index blocks larger than a cache shard at the
    job's size, or None. ``metrics`` are the model's measurement (its table properties:
    :meth:`tuner.engine.base.Engine.table_blocks`), ``model`` the RocksDB options it ran with,
    ``factor`` the model's scale."""
    if factor >= 1:
        return None  # at full size the measurement itself shows what the cache does
    if fo.effective(settings)[fo.PARTITIONED_INDEX_FILTERS] is True:
        return None  # partitions of metadata-block-size each
    cache = model.shared_cache_bytes if model.shared_memory else model.block_cache_size
    blocks = production_blocks(metrics, settings, factor)
    if not cache or not blocks:
        return None
    shard = shard_bytes(round(cache / factor))
    kind, size = max(blocks.items(), key=lambda kv: kv[1])
    if size <= MARGIN * shard:
        return None
    return (
        f"at the job's size an SST's {kind} block would be about {size / MIB:.1f} MiB, "
        f"{size / shard:.1f}x a block-cache shard ({shard / KIB:,.0f} KiB of a "
        f"{cache / factor / MIB:,.0f} MiB cache): RocksDB cannot keep it cached and reads it "
        f"whole on every lookup, which the {factor:g} model (blocks {factor:g} as large) does "
        "not show; "
        "state.backend.rocksdb.memory.partitioned-index-filters: true avoids it"
    )
