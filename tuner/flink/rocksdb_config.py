"""RocksDBConfig: what one RocksDB instance is opened with, after Flink applied its options.

Field names follow RocksDB's own OPTIONS file (DBOptions / CFOptions /
TableOptions/BlockBasedTable), so the engine, the OPTIONS-file emitter and the report never spell
option names differently. Every column family gets the same options, as Flink's
RocksDBResourceContainer.getColumnOptions does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

CompactionStyle = Literal["level", "universal", "fifo"]
# RocksDB's names for compression types, as the OPTIONS file spells them.
Compression = Literal[
    "kNoCompression", "kSnappyCompression", "kLZ4Compression", "kLZ4HCCompression", "kZSTD"
]


@dataclass(frozen=True)
class RocksDBConfig:
    """Resolved RocksDB options (sizes in bytes)."""

    # DBOptions
    max_background_jobs: int = 2
    max_open_files: int = -1
    use_fsync: bool = False
    stats_dump_period_sec: int = 0
    avoid_flush_during_shutdown: bool = True
    # Flink's managed/fixed memory: one LRU cache shared by all column families, with the
    # write buffer manager's memtables charged to it. None when memory is unmanaged.
    shared_cache_bytes: int | None = None
    write_buffer_manager_bytes: int | None = None
    high_prio_pool_ratio: float | None = None  # rocksdict cannot set it: recorded, not applied
    # CFOptions
    compaction_style: CompactionStyle = "level"
    level_compaction_dynamic_level_bytes: bool = False
    target_file_size_base: int = 64 << 20
    max_bytes_for_level_base: int = 256 << 20
    write_buffer_size: int = 64 << 20
    max_write_buffer_number: int = 2
    min_write_buffer_number_to_merge: int = 1
    compression_per_level: tuple[Compression, ...] = ("kSnappyCompression",)
    # 0: RocksDB derives it from write_buffer_size by its own version's rule; the replay sets
    # the rule of the FRocksDB it stands for (tuner.flink.memory.arena_block_size).
    arena_block_size: int = 0
    # RocksDB's defaults (advanced_options.h), untouched by Flink; a scaled replay scales the
    # byte limits with the data (tuner.scale). The L0 triggers price the stall risk.
    level0_slowdown_writes_trigger: int = 20
    level0_stop_writes_trigger: int = 36
    soft_pending_compaction_bytes_limit: int = 64 << 30
    hard_pending_compaction_bytes_limit: int = 256 << 30
    # TableOptions/BlockBasedTable
    block_size: int = 4 << 10
    metadata_block_size: int = 4 << 10
    block_cache_size: int = 8 << 20  # per column family; ignored when shared_cache_bytes is set
    bloom_bits_per_key: float | None = None  # None: no filter
    bloom_block_based: bool = False
    cache_index_and_filter_blocks: bool = False
    cache_index_and_filter_blocks_with_high_priority: bool = False
    pin_l0_filter_and_index_blocks_in_cache: bool = False
    partitioned_index_filters: bool = False  # kTwoLevelIndexSearch + partition_filters
    pin_top_level_index_and_filter: bool = False
    # The Java BlockBasedTableConfig's own defaults (FRocksDB 8.10 and 6.20 alike: format 5, no
    # filter memory optimisation), not RocksDB 9.8's C++ defaults (6, true).
    format_version: int = 5
    optimize_filters_for_memory: bool = False
    checksum: Literal["kCRC32c", "kXXH3"] = "kXXH3"

    @property
    def shared_memory(self) -> bool:
        """Whether the instance runs under Flink's shared (managed or fixed) memory."""
        return self.shared_cache_bytes is not None

    def as_dict(self) -> dict[str, object]:
        """Plain dict (for trial records and OPTIONS files)."""
        return asdict(self)
