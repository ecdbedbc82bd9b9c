"""Render a RocksDB OPTIONS file (the INI file RocksDB writes next to every database) for a
:class:`RocksDBConfig`, in RocksDB's own spelling, so the chosen settings can be inspected with
RocksDB's tools or loaded by any RocksDB (``Options.load_latest`` / ``LoadLatestOptions``).

Only what the config decides is written; everything else keeps RocksDB's defaults when loaded.
Objects that an OPTIONS file cannot carry (Flink's shared LRU cache and the WriteBufferManager
charged to it) are stated in comments.
"""

from __future__ import annotations

from tuner.flink.rocksdb_config import RocksDBConfig

# Flink 2.x runs FRocksDB 8.10.0 (the RocksDB LOG of a Flink 2.3 job reports it).
ROCKSDB_VERSION = "8.10.0"
OPTIONS_FILE_VERSION = "1.1"

_COMPACTION_STYLE = {
    "level": "kCompactionStyleLevel",
    "universal": "kCompactionStyleUniversal",
    "fifo": "kCompactionStyleFIFO",
}


def _b(value: bool) -> str:
    return "true" if value else "false"


def _num(value: float) -> str:
    return f"{value:g}"


def db_options(config: RocksDBConfig) -> dict[str, str]:
    """``[DBOptions]`` entries decided by the config."""
    return {
        "create_if_missing": "true",
        "create_missing_column_families": "true",
        "max_background_jobs": str(config.max_background_jobs),
        "max_open_files": str(config.max_open_files),
        "use_fsync": _b(config.use_fsync),
        "stats_dump_period_sec": str(config.stats_dump_period_sec),
        "avoid_flush_during_shutdown": _b(config.avoid_flush_during_shutdown),
    }


def cf_options(config: RocksDBConfig) -> dict[str, str]:
    """``[CFOptions "..."]`` entries decided by the config (the same for every family)."""
    out = {
        "compaction_style": _COMPACTION_STYLE[config.compaction_style],
        "level_compaction_dynamic_level_bytes": _b(config.level_compaction_dynamic_level_bytes),
        "target_file_size_base": str(config.target_file_size_base),
        "max_bytes_for_level_base": str(config.max_bytes_for_level_base),
        "write_buffer_size": str(config.write_buffer_size),
        "max_write_buffer_number": str(config.max_write_buffer_number),
        "min_write_buffer_number_to_merge": str(config.min_write_buffer_number_to_merge),
    }
    if config.compression_per_level:
        out["compression_per_level"] = ":".join(config.compression_per_level)
    return out


def table_options(config: RocksDBConfig) -> dict[str, str]:
    """``[TableOptions/BlockBasedTable "..."]`` entries decided by the config."""
    out = {
        "block_size": str(config.block_size),
        "metadata_block_size": str(config.metadata_block_size),
        "cache_index_and_filter_blocks": _b(config.cache_index_and_filter_blocks),
        "cache_index_and_filter_blocks_with_high_priority": _b(
            config.cache_index_and_filter_blocks_with_high_priority
        ),
        "pin_l0_filter_and_index_blocks_in_cache": _b(
            config.pin_l0_filter_and_index_blocks_in_cache
        ),
        "pin_top_level_index_and_filter": _b(config.pin_top_level_index_and_filter),
        "index_type": (
            "kTwoLevelIndexSearch" if config.partitioned_index_filters else "kBinarySearch"
        ),
        "partition_filters": _b(config.partitioned_index_filters),
        "filter_policy": (
            f"bloomfilter:{_num(config.bloom_bits_per_key)}:{_b(config.bloom_block_based)}"
            if config.bloom_bits_per_key is not None
            else "nullptr"
        ),
    }
    return out


def _section(title: str, entries: dict[str, str]) -> list[str]:
    return [title, *(f"  {k}={v}" for k, v in entries.items()), ""]


def render_options_file(config: RocksDBConfig, column_families: list[str]) -> str:
    """A RocksDB OPTIONS file setting ``config`` on ``default`` and every listed column family."""
    names = ["default", *(n for n in column_families if n != "default")]
    if len(set(names)) != len(names):
        raise ValueError(f"column family names must be unique, got {column_families}")
    for n in names:
        if '"' in n or "\n" in n:
            raise ValueError(f"column family name {n!r} cannot be written in an OPTIONS file")
    lines = [
        "# RocksDB OPTIONS file written by tuner: the settings a Flink RocksDB instance runs with.",
        "# Settings not listed keep RocksDB's defaults.",
    ]
    if config.shared_memory:
        lines += [
            "# Flink's managed/fixed memory: every column family shares ONE LRU block cache of "
            f"{config.shared_cache_bytes} bytes,",
            "# and a WriteBufferManager of "
            f"{config.write_buffer_manager_bytes} bytes is charged to it. An OPTIONS file cannot "
            "carry shared objects:",
            "# pass the cache when loading (Options.load_latest(..., cache=...)).",
        ]
        if config.high_prio_pool_ratio is not None:
            lines.append(f"# That cache's high_pri_pool_ratio: {config.high_prio_pool_ratio}.")
    else:
        lines.append(
            f"# Every column family has its own LRU block cache of {config.block_cache_size} bytes "
            "(pass it when loading: an OPTIONS file does not persist block_cache)."
        )
    lines.append("")
    lines += _section(
        "[Version]",
        {"rocksdb_version": ROCKSDB_VERSION, "options_file_version": OPTIONS_FILE_VERSION},
    )
    lines += _section("[DBOptions]", db_options(config))
    cf = cf_options(config)
    table = table_options(config)
    for n in names:
        lines += _section(f'[CFOptions "{n}"]', cf)
        lines += _section(f'[TableOptions/BlockBasedTable "{n}"]', table)
    return "\n".join(lines)
