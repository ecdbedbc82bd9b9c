"""Flink's RocksDB options: the keys the tuner touches, Flink's predefined option sets, and how
Flink turns option values into the options a RocksDB instance is opened with.

Option values are typed Python values: sizes in bytes (int), booleans, ints, floats, enum constant
names (str) and tuples of enum names for list options. Keys are spelled once, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Final

from tuner.flink import memory as mem
from tuner.flink.memory import Memory
from tuner.flink.rocksdb_config import CompactionStyle, Compression, RocksDBConfig
from tuner.units import KIB, MIB

FlinkValue = int | float | bool | str | tuple[str, ...]
FlinkSettings = Mapping[str, FlinkValue]

_P = "state.backend.rocksdb."
THREAD_NUM: Final = _P + "thread.num"
MAX_OPEN_FILES: Final = _P + "files.open"
COMPACTION_STYLE: Final = _P + "compaction.style"
USE_DYNAMIC_LEVEL_SIZE: Final = _P + "compaction.level.use-dynamic-size"
COMPRESSION_PER_LEVEL: Final = _P + "compression.per.level"
TARGET_FILE_SIZE_BASE: Final = _P + "compaction.level.target-file-size-base"
MAX_SIZE_LEVEL_BASE: Final = _P + "compaction.level.max-size-level-base"
WRITE_BUFFER_SIZE: Final = _P + "writebuffer.size"
MAX_WRITE_BUFFER_NUMBER: Final = _P + "writebuffer.count"
MIN_WRITE_BUFFER_NUMBER_TO_MERGE: Final = _P + "writebuffer.number-to-merge"
BLOCK_SIZE: Final = _P + "block.blocksize"
METADATA_BLOCK_SIZE: Final = _P + "block.metadata-blocksize"
BLOCK_CACHE_SIZE: Final = _P + "block.cache-size"
USE_BLOOM_FILTER: Final = _P + "use-bloom-filter"
BLOOM_FILTER_BITS_PER_KEY: Final = _P + "bloom-filter.bits-per-key"
BLOOM_FILTER_BLOCK_BASED_MODE: Final = _P + "bloom-filter.block-based-mode"
PREDEFINED_OPTIONS: Final = _P + "predefined-options"
MEMORY_MANAGED: Final = _P + "memory.managed"
MEMORY_FIXED_PER_SLOT: Final = _P + "memory.fixed-per-slot"
MEMORY_FIXED_PER_TM: Final = _P + "memory.fixed-per-tm"
WRITE_BUFFER_RATIO: Final = _P + "memory.write-buffer-ratio"
HIGH_PRIO_POOL_RATIO: Final = _P + "memory.high-prio-pool-ratio"
PARTITIONED_INDEX_FILTERS: Final = _P + "memory.partitioned-index-filters"
TIMER_SERVICE_FACTORY: Final = _P + "timer-service.factory"
TIMER_SERVICE_CACHE_SIZE: Final = _P + "timer-service.cache-size"
# How a restore runs (RocksDBOptions / RocksDBConfigurableOptions): threads that copy the
# checkpoint's files in, and, after a change of parallelism, which handle becomes the base DB,
# whether whole files outside the new key groups are dropped, and whether the others are
# ingested instead of inserted.
CHECKPOINT_TRANSFER_THREADS: Final = _P + "checkpoint.transfer.thread.num"
RESTORE_OVERLAP_FRACTION: Final = _P + "restore-overlap-fraction-threshold"
DELETE_FILES_IN_RANGE: Final = _P + "rescaling.use-delete-files-in-range"
INGEST_DB_RESTORE: Final = _P + "use-ingest-db-restore-mode"
# Of these, what no state call reads: Flink passes them to the restore operation and to the
# checkpoint's file transfer only (RocksDBKeyedStateBackendBuilder), so a configuration that
# changes nothing else does the same state-call work as the reference.
RESTORE_ONLY: Final = frozenset(
    {
        CHECKPOINT_TRANSFER_THREADS,
        RESTORE_OVERLAP_FRACTION,
        DELETE_FILES_IN_RANGE,
        INGEST_DB_RESTORE,
    }
)


# Defaults of the options above, as RocksDBConfigurableOptions.java / RocksDBOptions.java declare
# them (Flink 2.3 and 1.20 agree; tests/flink/test_options.py checks them against the catalogs).
DEFAULTS: Final[Mapping[str, FlinkValue]] = MappingProxyType(
    {
        THREAD_NUM: 2,
        MAX_OPEN_FILES: -1,
        COMPACTION_STYLE: "LEVEL",
        USE_DYNAMIC_LEVEL_SIZE: False,
        COMPRESSION_PER_LEVEL: ("SNAPPY_COMPRESSION",),
        TARGET_FILE_SIZE_BASE: 64 * MIB,
        MAX_SIZE_LEVEL_BASE: 256 * MIB,
        WRITE_BUFFER_SIZE: 64 * MIB,
        MAX_WRITE_BUFFER_NUMBER: 2,
        MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 1,
        BLOCK_SIZE: 4 * KIB,
        METADATA_BLOCK_SIZE: 4 * KIB,
        BLOCK_CACHE_SIZE: 8 * MIB,
        USE_BLOOM_FILTER: False,
        BLOOM_FILTER_BITS_PER_KEY: 10.0,
        BLOOM_FILTER_BLOCK_BASED_MODE: False,
        PREDEFINED_OPTIONS: "DEFAULT",
        MEMORY_MANAGED: True,
        WRITE_BUFFER_RATIO: 0.5,
        HIGH_PRIO_POOL_RATIO: 0.1,
        PARTITIONED_INDEX_FILTERS: False,
        TIMER_SERVICE_FACTORY: "ROCKSDB",
        TIMER_SERVICE_CACHE_SIZE: 128,
        CHECKPOINT_TRANSFER_THREADS: 4,
        RESTORE_OVERLAP_FRACTION: 0.0,
        DELETE_FILES_IN_RANGE: False,
        INGEST_DB_RESTORE: False,
    }
)

# Flink's predefined option sets, exactly as PredefinedOptions.java defines them. A value set in
# the configuration wins over the predefined one, which wins over the default
# (RocksDBResourceContainer.internalGetOption).
PREDEFINED: Final[Mapping[str, Mapping[str, FlinkValue]]] = MappingProxyType(
    {
        "DEFAULT": {},
        "SPINNING_DISK_OPTIMIZED": {
            COMPACTION_STYLE: "LEVEL",
            USE_DYNAMIC_LEVEL_SIZE: True,
            THREAD_NUM: 4,
            MAX_OPEN_FILES: -1,
        },
        "SPINNING_DISK_OPTIMIZED_HIGH_MEM": {
            BLOCK_CACHE_SIZE: 256 * MIB,
            BLOCK_SIZE: 128 * KIB,
            USE_DYNAMIC_LEVEL_SIZE: True,
            THREAD_NUM: 4,
            MAX_SIZE_LEVEL_BASE: 1024 * MIB,
            MAX_OPEN_FILES: -1,
            MAX_WRITE_BUFFER_NUMBER: 4,
            MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 3,
            TARGET_FILE_SIZE_BASE: 256 * MIB,
            WRITE_BUFFER_SIZE: 64 * MIB,
            USE_BLOOM_FILTER: True,
        },
        "FLASH_SSD_OPTIMIZED": {
            THREAD_NUM: 4,
            MAX_OPEN_FILES: -1,
        },
    }
)

# Flink's CompressionType enum names -> RocksDB's names in an OPTIONS file.
_COMPRESSION: Final[Mapping[str, Compression]] = MappingProxyType(
    {
        "NO_COMPRESSION": "kNoCompression",
        "SNAPPY_COMPRESSION": "kSnappyCompression",
        "LZ4_COMPRESSION": "kLZ4Compression",
        "LZ4HC_COMPRESSION": "kLZ4HCCompression",
        "ZSTD_COMPRESSION": "kZSTD",
    }
)
_COMPACTION: Final[Mapping[str, CompactionStyle]] = MappingProxyType(
    {"LEVEL": "level", "UNIVERSAL": "universal", "FIFO": "fifo"}
)


def effective(settings: FlinkSettings) -> dict[str, FlinkValue]:
    """Every option's value: configured > predefined set > default (internalGetOption)."""
    preset_name = str(settings.get(PREDEFINED_OPTIONS, DEFAULTS[PREDEFINED_OPTIONS]))
    if preset_name not in PREDEFINED:
        raise ValueError(f"unknown predefined option set {preset_name!r}")
    values = dict(DEFAULTS)
    values.update(PREDEFINED[preset_name])
    values.update(settings)
    return values


def changed_keys(settings: FlinkSettings, reference: FlinkSettings) -> set[str]:
    """The keys whose value ``settings`` changes against ``reference``, both resolved over
    Flink's defaults and predefined sets (:func:`effective`); a list and a tuple of the same
    names are the same value."""

    def plain(value: object) -> object:
        return list(value) if isinstance(value, tuple) else value

    base = effective(reference)
    return {k for k, v in effective(settings).items() if plain(v) != plain(base.get(k))}


def memory_settings(memory: Memory) -> dict[str, FlinkValue]:
    """The options a workload's memory section stands for (the budget's own keys)."""
    out: dict[str, FlinkValue] = {
        MEMORY_MANAGED: memory.mode == "managed",
        WRITE_BUFFER_RATIO: memory.write_buffer_ratio,
        HIGH_PRIO_POOL_RATIO: memory.high_prio_pool_ratio,
    }
    if memory.mode == "fixed-per-slot" and memory.fixed_per_slot is not None:
        out[MEMORY_FIXED_PER_SLOT] = memory.fixed_per_slot
    if memory.mode == "fixed-per-tm" and memory.fixed_per_tm is not None:
        out[MEMORY_FIXED_PER_TM] = memory.fixed_per_tm
    return out


def one_slot_memory_settings(memory: Memory) -> dict[str, FlinkValue]:
    """:func:`memory_settings` for a Flink run with one slot per TaskManager (validation, the
    flink-backend engine): ``fixed-per-tm`` becomes the slot's share.

    Flink shares fixed-per-tm memory (one cache, one write-buffer manager) across every slot of
    the TaskManager; the replay measures one slot with its share (the budget), as when all
    slots are busy. A one-slot run given the whole TaskManager's memory would measure
    ``slots_per_tm`` times the memory the search was made for.
    """
    out = memory_settings(memory)
    if MEMORY_FIXED_PER_TM in out:
        out[MEMORY_FIXED_PER_TM] = memory.budget
    return out


def _int(values: Mapping[str, FlinkValue], key: str) -> int:
    v = values[key]
    assert isinstance(v, int | float) and not isinstance(v, bool), (key, v)
    return int(v)


def _float(values: Mapping[str, FlinkValue], key: str) -> float:
    v = values[key]
    assert isinstance(v, int | float) and not isinstance(v, bool), (key, v)
    return float(v)


def memory_plan(settings: FlinkSettings, memory: Memory, column_families: int) -> mem.MemoryPlan:
    """Flink's memory accounting for these settings under the workload's budget."""
    values = effective({**memory_settings(memory), **settings})
    if memory.mode == "unmanaged":
        return mem.plan_unmanaged(
            memory.budget,
            column_families,
            _int(values, BLOCK_CACHE_SIZE),
            _int(values, WRITE_BUFFER_SIZE),
            _int(values, MAX_WRITE_BUFFER_NUMBER),
        )
    return mem.plan_shared(memory.budget, _float(values, WRITE_BUFFER_RATIO))


def flink_major(flink_version: str) -> int:
    """The major of a workload's ``flink_version`` ("1.20" -> 1, "2.x"/"2.3" -> 2)."""
    return int(flink_version.split(".")[0])


def resolve(settings: FlinkSettings, memory: Memory, flink_version: str = "2.x") -> RocksDBConfig:
    """The RocksDB options Flink opens an instance with, for these settings and this memory.

    Follows RocksDBResourceContainer.getDbOptions/getColumnOptions: base options, then the
    configurable options on top of the predefined set, then (shared memory) the shared cache and
    write buffer manager with index and filter blocks in the cache. ``flink_version`` picks what
    its FRocksDB does by itself: the arena block RocksDB derives from the write buffer, and the
    block-based table's format defaults of its Java BlockBasedTableConfig.
    """
    values = effective({**memory_settings(memory), **settings})
    major = flink_major(flink_version)
    compression = values[COMPRESSION_PER_LEVEL]
    assert isinstance(compression, tuple)
    bloom = bool(values[USE_BLOOM_FILTER])
    bloom_bits: float | None = _float(values, BLOOM_FILTER_BITS_PER_KEY) if bloom else None
    bloom_block_based = bool(values[BLOOM_FILTER_BLOCK_BASED_MODE]) if bloom else False
    config = RocksDBConfig(
        max_background_jobs=_int(values, THREAD_NUM),
        max_open_files=_int(values, MAX_OPEN_FILES),
        compaction_style=_COMPACTION[str(values[COMPACTION_STYLE])],
        level_compaction_dynamic_level_bytes=bool(values[USE_DYNAMIC_LEVEL_SIZE]),
        target_file_size_base=_int(values, TARGET_FILE_SIZE_BASE),
        max_bytes_for_level_base=_int(values, MAX_SIZE_LEVEL_BASE),
        write_buffer_size=_int(values, WRITE_BUFFER_SIZE),
        max_write_buffer_number=_int(values, MAX_WRITE_BUFFER_NUMBER),
        min_write_buffer_number_to_merge=_int(values, MIN_WRITE_BUFFER_NUMBER_TO_MERGE),
        compression_per_level=tuple(_COMPRESSION[c] for c in compression),
        block_size=_int(values, BLOCK_SIZE),
        metadata_block_size=_int(values, METADATA_BLOCK_SIZE),
        block_cache_size=_int(values, BLOCK_CACHE_SIZE),
        bloom_bits_per_key=bloom_bits,
        bloom_block_based=bloom_block_based,
        arena_block_size=mem.arena_block_size(_int(values, WRITE_BUFFER_SIZE), major),
        # java/.../BlockBasedTableConfig.java constructor: FRocksDB 8.10 checksum kXXH3,
        # FRocksDB 6.20 kCRC32c; both format_version 5, optimize_filters_for_memory false.
        checksum="kXXH3" if major >= 2 else "kCRC32c",
    )
    if memory.mode == "unmanaged":
        return config
    plan = mem.plan_shared(memory.budget, _float(values, WRITE_BUFFER_RATIO))
    partitioned = bool(values[PARTITIONED_INDEX_FILTERS])
    return replace(
        config,
        shared_cache_bytes=plan.cache_bytes,
        write_buffer_manager_bytes=plan.write_buffer_manager_bytes,
        high_prio_pool_ratio=_float(values, HIGH_PRIO_POOL_RATIO),
        cache_index_and_filter_blocks=True,
        cache_index_and_filter_blocks_with_high_priority=True,
        pin_l0_filter_and_index_blocks_in_cache=True,
        partitioned_index_filters=partitioned,
        pin_top_level_index_and_filter=partitioned,
        # Partitioned filters need a full filter: Flink replaces any configured filter with
        # BloomFilter(10, false) (RocksDBResourceContainer.overwriteFilterIfExist).
        bloom_bits_per_key=10.0 if partitioned and bloom else bloom_bits,
        bloom_block_based=False if partitioned else bloom_block_based,
    )


def least_budget(
    settings: FlinkSettings,
    memory: Memory,
    column_families: int,
    flink_version: str = "2.x",
    ceiling: int = 1 << 40,
) -> int | None:
    """The smallest budget per slot (whole MiB) at which these settings pass
    :func:`invalid_reason`, or None when none up to ``ceiling`` does. Validity grows with the
    budget (a larger budget gives the cache and the write buffer manager more), so the search
    doubles, then bisects."""

    def ok(budget: int) -> bool:
        return (
            invalid_reason(
                settings, mem.with_budget(memory, budget), column_families, flink_version
            )
            is None
        )

    high = max(MIB, memory.budget)
    while not ok(high):
        high *= 2
        if high > ceiling:
            return None
    low = 0  # not ok (a budget of 0 never is)
    while high - low > MIB:
        middle = (low + high) // 2 // MIB * MIB
        if middle <= low:
            break
        if ok(middle):
            high = middle
        else:
            low = middle
    return high


def known_hang(settings: Mapping[str, FlinkValue]) -> str | None:
    """Why a measurement of these settings may hang for a reason of RocksDB's own, or None.

    With writebuffer.number-to-merge above 1 and several column families, a flush that waits
    for its memtables (the replay's before each checkpoint, Flink's own inside RocksDB's
    checkpoint) can wait for ever when a flush of the write buffer manager races it: the
    memtable it waits for is left out of the flush that ran (facebook/rocksdb#12094, #13280,
    open). Seen here: a quickstart configuration merging 2 memtables hung in 4 of 88 replays, each
    stopped in that wait, and its twin merging 1 in none of 45 (docs: measurement design)."""
    merge = effective(settings)[MIN_WRITE_BUFFER_NUMBER_TO_MERGE]
    if not isinstance(merge, int) or merge <= 1:
        return None
    return (
        f"with writebuffer.number-to-merge {merge}, RocksDB's wait for a flush can hang for "
        "ever (facebook/rocksdb#12094): a checkpoint of the job could too"
    )


def invalid_reason(
    settings: FlinkSettings, memory: Memory, column_families: int, flink_version: str = "2.x"
) -> str | None:
    """Why Flink with these settings would break the budget or misbehave; None when fine.

    A candidate with a reason is never run.
    """
    values = effective({**memory_settings(memory), **settings})
    if _int(values, MIN_WRITE_BUFFER_NUMBER_TO_MERGE) >= _int(values, MAX_WRITE_BUFFER_NUMBER):
        return "writebuffer.number-to-merge must be below writebuffer.count"
    plan = memory_plan(settings, memory, column_families)
    if not plan.fits:
        return (
            f"modelled memory {plan.modelled_peak} B exceeds the budget {plan.budget} B "
            f"({column_families} column families)"
        )
    major = flink_major(flink_version)
    wbm = plan.write_buffer_manager_bytes
    if wbm is not None and memory.mode == "fixed-per-tm" and memory.fixed_per_tm is not None:
        # One write buffer manager for the whole TaskManager (RocksDBMemoryControllerUtils
        # .allocateRocksDBSharedResources over fixed-per-tm): its mutable limit is the TM's.
        wbm = mem.write_buffer_manager_capacity(
            memory.fixed_per_tm, _float(values, WRITE_BUFFER_RATIO)
        )
    if wbm is not None and not mem.arena_block_fits(_int(values, WRITE_BUFFER_SIZE), wbm, major):
        rule = "min(1 MiB, writebuffer.size/8)" if major >= 2 else "writebuffer.size/8"
        return (
            f"the arena block ({rule}) exceeds 7/8 of the write buffer manager's capacity: "
            "RocksDB would flush on every write"
        )
    return None
