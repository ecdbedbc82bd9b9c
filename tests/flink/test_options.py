"""Flink option values -> RocksDB options, as RocksDBResourceContainer applies them."""

from __future__ import annotations

import pytest

from tuner.flink import memory as mem
from tuner.flink import options as fo
from tuner.units import MIB
from tuner.workload import Memory


def test_memory_formulas_match_flink() -> None:
    # RocksDBMemoryControllerUtilsTest's own example: 1 GiB total, ratio 0.5.
    total = 1024 * MIB
    assert mem.cache_capacity(total, 0.5) == int(2.5 * total / 3)
    assert mem.write_buffer_manager_capacity(total, 0.5) == int(total / 3)
    assert mem.default_arena_block_size(64 * MIB) == 8 * MIB
    assert mem.default_arena_block_size(1000) == 4096


def test_default_settings_under_managed_memory_share_one_cache() -> None:
    cfg = fo.resolve({}, Memory(managed_per_slot=300 * MIB))
    assert cfg.shared_cache_bytes == mem.cache_capacity(300 * MIB, 0.5)
    assert cfg.write_buffer_manager_bytes == mem.write_buffer_manager_capacity(300 * MIB, 0.5)
    assert cfg.cache_index_and_filter_blocks
    assert cfg.pin_l0_filter_and_index_blocks_in_cache
    assert cfg.write_buffer_size == 64 * MIB
    assert cfg.max_write_buffer_number == 2
    assert cfg.compression_per_level == ("kSnappyCompression",)
    assert cfg.bloom_bits_per_key is None
    assert cfg.max_background_jobs == 2


def test_predefined_high_mem_unmanaged() -> None:
    cfg = fo.resolve(
        {fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM"}, Memory(mode="unmanaged")
    )
    assert cfg.shared_cache_bytes is None
    assert cfg.block_cache_size == 256 * MIB
    assert cfg.block_size == 128 * 1024
    assert cfg.min_write_buffer_number_to_merge == 3
    assert cfg.max_write_buffer_number == 4
    assert cfg.bloom_bits_per_key == 10.0
    assert cfg.level_compaction_dynamic_level_bytes


def test_configured_value_beats_predefined_value() -> None:
    cfg = fo.resolve({fo.PREDEFINED_OPTIONS: "FLASH_SSD_OPTIMIZED", fo.THREAD_NUM: 1}, Memory())
    assert cfg.max_background_jobs == 1


def test_partitioned_filters_replace_the_filter_as_flink_does() -> None:
    cfg = fo.resolve(
        {
            fo.PARTITIONED_INDEX_FILTERS: True,
            fo.USE_BLOOM_FILTER: True,
            fo.BLOOM_FILTER_BITS_PER_KEY: 5.0,
            fo.BLOOM_FILTER_BLOCK_BASED_MODE: True,
        },
        Memory(),
    )
    assert cfg.partitioned_index_filters and cfg.pin_top_level_index_and_filter
    assert cfg.bloom_bits_per_key == 10.0 and not cfg.bloom_block_based


def test_write_buffer_ratio_moves_memory_between_cache_and_memtables() -> None:
    small = fo.resolve({fo.WRITE_BUFFER_RATIO: 0.2}, Memory())
    large = fo.resolve({fo.WRITE_BUFFER_RATIO: 0.8}, Memory())
    assert small.write_buffer_manager_bytes is not None
    assert large.write_buffer_manager_bytes is not None
    assert small.write_buffer_manager_bytes < large.write_buffer_manager_bytes


def test_unmanaged_over_budget_is_invalid() -> None:
    reason = fo.invalid_reason(
        {fo.BLOCK_CACHE_SIZE: 512 * MIB}, Memory(mode="unmanaged", managed_per_slot=256 * MIB), 2
    )
    assert reason is not None and "exceeds the budget" in reason


def test_arena_block_larger_than_mutable_limit_is_invalid() -> None:
    # 16 MiB budget at ratio 0.1: write buffer manager ~1 MiB, a 128 MiB buffer's arena is 16 MiB.
    reason = fo.invalid_reason(
        {fo.WRITE_BUFFER_SIZE: 128 * MIB, fo.WRITE_BUFFER_RATIO: 0.1},
        Memory(managed_per_slot=16 * MIB),
        2,
    )
    assert reason is not None and "arena" in reason


def test_merge_count_must_stay_below_buffer_count() -> None:
    reason = fo.invalid_reason(
        {fo.MAX_WRITE_BUFFER_NUMBER: 2, fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 2}, Memory(), 1
    )
    assert reason is not None


def test_unknown_predefined_set_is_rejected() -> None:
    with pytest.raises(ValueError):
        fo.effective({fo.PREDEFINED_OPTIONS: "FAST"})


def test_minimum_budget_grows_with_column_families() -> None:
    assert mem.minimum_budget(4, 0.5) > mem.minimum_budget(2, 0.5)
    plan = mem.plan_shared(mem.minimum_budget(3, 0.5), 0.5)
    assert plan.write_buffer_manager_bytes is not None
    assert plan.write_buffer_manager_bytes >= 3 * mem.MIN_WRITE_BUFFER_SIZE


def test_a_one_slot_flink_run_gets_the_slots_share_of_fixed_per_tm_memory() -> None:
    tm = Memory(mode="fixed-per-tm", fixed_per_tm=256 * MIB, slots_per_tm=4)
    assert fo.memory_settings(tm)[fo.MEMORY_FIXED_PER_TM] == 256 * MIB  # what the user emits
    assert fo.one_slot_memory_settings(tm)[fo.MEMORY_FIXED_PER_TM] == 64 * MIB == tm.budget
    for other in (Memory(), Memory(mode="fixed-per-slot", fixed_per_slot=64 * MIB)):
        assert fo.one_slot_memory_settings(other) == fo.memory_settings(other)
