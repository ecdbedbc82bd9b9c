"""The real engine: RocksDB through rocksdict, opened as Flink's RocksDB state backend opens it.

One column family per state (timer services included, each its own), the WAL off, and every
column family given the options of a :class:`RocksDBConfig` the way
RocksDBResourceContainer.getDbOptions / getColumnOptions apply them: under Flink's managed or fixed
memory one LRU cache shared by every column family's block-based table, with a WriteBufferManager
charged to it; otherwise a block cache of ``block_cache_size`` per column family.

rocksdict traps handled here (shared/reference/rocksdict.md): every column family, ``default``
included, is passed its options at open (a reopen would otherwise take the saved OPTIONS file's);
statistics cannot be reset, so counters are cumulative and callers take deltas.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import psutil
import rocksdict as rd

from tuner.flink.keys import KeyLayout, key_group_prefix_bytes, operator_key_groups
from tuner.flink.rocksdb_config import Compression, RocksDBConfig
from tuner.flink.state_ops import ColumnOps, Entry, WriteOp
from tuner.rescale import grown_by, shrunk_by
from tuner.trace.ops import StateInfo, StreamHeader

from .base import Engine, RestoreStats

log = logging.getLogger(__name__)

# Counter name: uncompressed bytes of snappy-compressed data blocks read into the cache.
SNAPPY_DATA_BYTES = "tuner.snappy.data.bytes.insert"
# RocksDB 9.8's defaults for what rocksdict has no setter for.
_ROCKSDB_DEFAULT_HIGH_PRI_POOL_RATIO = 0.5
_ROCKSDB_DEFAULT_INDEX_FILTER_HIGH_PRIORITY = True


def _compression(name: Compression) -> Any:
    table = {
        "kNoCompression": rd.DBCompressionType.none,
        "kSnappyCompression": rd.DBCompressionType.snappy,
        "kLZ4Compression": rd.DBCompressionType.lz4,
        "kLZ4HCCompression": rd.DBCompressionType.lz4hc,
        "kZSTD": rd.DBCompressionType.zstd,
    }
    if name not in table:
        raise ValueError(f"compression must be one of {sorted(table)}, but got {name!r}")
    return table[name]()


def _compaction_style(style: str) -> Any:
    table = {
        "level": rd.DBCompactionStyle.level,
        "universal": rd.DBCompactionStyle.universal,
        "fifo": rd.DBCompactionStyle.fifo,
    }
    if style not in table:
        raise ValueError(f"compaction style must be one of {sorted(table)}, but got {style!r}")
    return table[style]()


def unsupported_settings(config: RocksDBConfig) -> list[str]:
    """Settings of ``config`` this engine cannot apply, each with what runs instead.

    Empty when every setting is applied as configured.
    """
    out: list[str] = []
    if config.high_prio_pool_ratio is not None and config.shared_memory:
        out.append(
            f"block cache high_pri_pool_ratio={config.high_prio_pool_ratio}: rocksdict's Cache has "
            f"no setter; the shared cache runs with RocksDB's default "
            f"{_ROCKSDB_DEFAULT_HIGH_PRI_POOL_RATIO}"
        )
    if (
        config.cache_index_and_filter_blocks
        and config.cache_index_and_filter_blocks_with_high_priority
        != _ROCKSDB_DEFAULT_INDEX_FILTER_HIGH_PRIORITY
    ):
        out.append(
            "TableOptions/BlockBasedTable.cache_index_and_filter_blocks_with_high_priority="
            f"{str(config.cache_index_and_filter_blocks_with_high_priority).lower()}: "
            "rocksdict has no setter; RocksDB's default (true) applies"
        )
    if config.bloom_bits_per_key is not None and not config.optimize_filters_for_memory:
        out.append(
            "TableOptions/BlockBasedTable.optimize_filters_for_memory=false: rocksdict has no "
            "setter; RocksDB 9.8's default (true) sizes bloom filters to allocator slots "
            "(only tables with a filter are affected)"
        )
    if config.avoid_flush_during_shutdown:
        out.append(
            "DBOptions.avoid_flush_during_shutdown=true: rocksdict has no setter; it only changes "
            "what happens at close, which no measurement covers"
        )
    return out


_CHECKSUM = {"kCRC32c": "crc32c", "kXXH3": "xxh3"}


def _table_options(config: RocksDBConfig, cache: Any) -> Any:
    t = rd.BlockBasedOptions()
    # Flink's Java BlockBasedTableConfig writes format 5 with its version's checksum; RocksDB
    # 9.8 would default to format 6 (tuner.flink.options.resolve says which).
    t.set_format_version(config.format_version)
    t.set_checksum_type(getattr(rd.ChecksumType, _CHECKSUM[config.checksum])())
    t.set_block_size(config.block_size)
    t.set_metadata_block_size(config.metadata_block_size)
    t.set_block_cache(cache)
    if config.bloom_bits_per_key is not None:
        # RocksDBResourceContainer: new BloomFilter(bitsPerKey, blockBasedMode). RocksDB >= 7
        # (FRocksDB 8.10 and rocksdict's 9.8 alike) builds a full filter either way.
        # The stub says int; RocksDB takes a double and rocksdict passes a float through.
        t.set_bloom_filter(config.bloom_bits_per_key, config.bloom_block_based)  # type: ignore[arg-type]
    if config.partitioned_index_filters:
        t.set_index_type(rd.BlockBasedIndexType.two_level_index_search())
        t.set_partition_filters(True)
    t.set_pin_top_level_index_and_filter(config.pin_top_level_index_and_filter)
    t.set_cache_index_and_filter_blocks(config.cache_index_and_filter_blocks)
    t.set_pin_l0_filter_and_index_blocks_in_cache(config.pin_l0_filter_and_index_blocks_in_cache)
    return t


def _apply_cf_options(opts: Any, config: RocksDBConfig, table: Any) -> None:
    opts.set_compaction_style(_compaction_style(config.compaction_style))
    opts.set_level_compaction_dynamic_level_bytes(config.level_compaction_dynamic_level_bytes)
    opts.set_target_file_size_base(config.target_file_size_base)
    opts.set_max_bytes_for_level_base(config.max_bytes_for_level_base)
    opts.set_write_buffer_size(config.write_buffer_size)
    if config.arena_block_size > 0:
        # Set explicitly: RocksDB 9.8 derives min(1 MiB, size/8) like FRocksDB 8.10, but
        # FRocksDB 6.20 (Flink 1.20) derives size/8 (db/column_family.cc SanitizeOptions).
        opts.set_arena_block_size(config.arena_block_size)
    opts.set_max_write_buffer_number(config.max_write_buffer_number)
    opts.set_min_write_buffer_number_to_merge(config.min_write_buffer_number_to_merge)
    opts.set_soft_pending_compaction_bytes_limit(config.soft_pending_compaction_bytes_limit)
    opts.set_hard_pending_compaction_bytes_limit(config.hard_pending_compaction_bytes_limit)
    if config.compression_per_level:
        opts.set_compression_per_level([_compression(c) for c in config.compression_per_level])
    opts.set_block_based_table_factory(table)


_TICKER = re.compile(r"^(\S+) COUNT : (\d+)$")
_HISTOGRAM = re.compile(
    r"^(\S+) P50 : (\S+) P95 : (\S+) P99 : (\S+) P100 : (\S+) COUNT : (\d+) SUM : (\d+)$"
)


def parse_statistics(text: str) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """RocksDB's statistics dump as (tickers, histograms): ``{"rocksdb.bytes.written": 1.0}``,
    ``{"rocksdb.db.get.micros": {"p50": ..., "p95": ..., "p99": ..., "p100": ..., "count": ...,
    "sum": ...}}``."""
    tickers: dict[str, float] = {}
    hists: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        line = line.strip()
        m = _TICKER.match(line)
        if m:
            tickers[m.group(1)] = float(m.group(2))
            continue
        m = _HISTOGRAM.match(line)
        if m:
            vals = [float(x) for x in m.groups()[1:]]
            hists[m.group(1)] = dict(
                zip(("p50", "p95", "p99", "p100", "count", "sum"), vals, strict=True)
            )
    return tickers, hists


class TaskManagerMemory:
    """One TaskManager's RocksDB memory under ``fixed-per-tm``: one LRU cache and one write
    buffer manager charged to it, used by the RocksDB instance of every slot (Flink allocates
    them once per TaskManager, as a SharedResources entry). The replay measures one slot with
    its share instead; tools/shared_tm_memory.py measures what the sharing changes."""

    def __init__(self, cache_bytes: int, write_buffer_manager_bytes: int) -> None:
        self.cache = rd.Cache(cache_bytes)
        self.write_buffer_manager = rd.WriteBufferManager.new_write_buffer_manager_with_cache(
            write_buffer_manager_bytes, False, self.cache
        )


class RocksdictEngine(Engine):
    """RocksDB 9.8 via rocksdict, configured as Flink configures its RocksDB instances."""

    name = "rocksdict"

    def __init__(
        self, *, direct_reads: bool = False, tm_memory: TaskManagerMemory | None = None
    ) -> None:
        """``direct_reads``: read SST files past the page cache (O_DIRECT), so a block-cache
        miss is paid on this machine's disk instead of in memory (tools/disk_pricing/run.py).
        ``tm_memory``: a TaskManager's shared cache and write buffer manager, used instead of
        the instance's own when the config shares memory (several slots in one process)."""
        super().__init__()
        self.direct_reads = direct_reads
        self.tm_memory = tm_memory
        self._db: Any = None
        self._db_opts: Any = None
        self._cfs: dict[str, Any] = {}
        self._caches: list[Any] = []
        self._shared_cache: Any = None
        self._wbm: Any = None
        self._stored: StreamHeader | None = None  # the states with a column family
        self._last_checkpoint_ssts: set[str] = set()
        self._snappy_share = 0.0
        # A scale-in's old subtasks' checkpoints: ((checkpoint, ways), their directories).
        self._split_parts: tuple[tuple[Path, int], list[Path]] | None = None

    def _open_columns(
        self, config: RocksDBConfig, header: StreamHeader, path: Path
    ) -> dict[str, ColumnOps]:
        path.mkdir(parents=True, exist_ok=True)
        codecs = config.compression_per_level
        self._snappy_share = 1.0 if codecs and codecs[-1] == "kSnappyCompression" else 0.0
        if config.shared_memory:
            if config.shared_cache_bytes is None or config.write_buffer_manager_bytes is None:
                raise ValueError(
                    "shared memory needs both shared_cache_bytes and write_buffer_manager_bytes, "
                    f"but got ({config.shared_cache_bytes=}, {config.write_buffer_manager_bytes=})"
                )
            # RocksDBMemoryControllerUtils.allocateRocksDBSharedResources: one LRUCache and a
            # WriteBufferManager(capacity, cache) with allowStall false.
            tm = self.tm_memory or TaskManagerMemory(
                config.shared_cache_bytes, config.write_buffer_manager_bytes
            )
            self._shared_cache = tm.cache
            self._wbm = tm.write_buffer_manager
        db_opts, families = self._options(config, header)
        names = [s.name for s in header.states]
        self._db = rd.Rdict(str(path), db_opts, column_families=families)
        self._db_opts = db_opts
        wo = _no_wal()
        self._db.set_write_options(wo)
        columns: dict[str, ColumnOps] = {}
        for n in names:
            cf = self._db.get_column_family(n)
            cf.set_write_options(wo)
            self._cfs[n] = cf
            columns[n] = self._column_ops(cf, self._db.get_column_family_handle(n))
        self._last_checkpoint_ssts = set()
        self._stored = header
        return columns

    def _options(self, config: RocksDBConfig, header: StreamHeader) -> tuple[Any, dict[str, Any]]:
        """The DB options and one column family's options per state, as Flink builds them,
        on the engine's caches (the shared cache and write buffer manager when memory is
        shared)."""
        db_opts = rd.Options(raw_mode=True)
        db_opts.create_if_missing(True)
        db_opts.create_missing_column_families(True)
        db_opts.enable_statistics()
        # RocksDBResourceContainer.createBaseCommonDBOptions + setDBOptionsFromConfigurableOptions.
        db_opts.set_use_fsync(config.use_fsync)
        db_opts.set_stats_dump_period_sec(config.stats_dump_period_sec)
        db_opts.set_max_background_jobs(config.max_background_jobs)
        db_opts.set_max_open_files(config.max_open_files)
        db_opts.set_use_direct_reads(self.direct_reads)
        if self._wbm is not None:
            db_opts.set_write_buffer_manager(self._wbm)

        def cf_options(info: StateInfo | None = None) -> Any:
            if self._shared_cache is not None:
                cache = self._shared_cache
            else:
                cache = rd.Cache(config.block_cache_size)
                self._caches.append(cache)
            opts = rd.Options(raw_mode=True)
            _apply_cf_options(opts, config, _table_options(config, cache))
            if info is not None and info.kind == "list" and config.bloom_bits_per_key is not None:
                # Flink reads a list with a point get on `key|ns`, which its bloom filter answers
                # file by file. The replay stores each element under `key|ns|seq` and reads the
                # list with a prefix scan (tuner.flink.state_ops.ListAppendModel); a prefix
                # extractor of exactly `key|ns` lets that scan consult the filter for the same
                # key, instead of reading a block of every file it passes.
                layout = KeyLayout.for_state(info, header.max_parallelism, header.compressibility)
                opts.set_prefix_extractor(
                    rd.SliceTransform.create_fixed_prefix(layout.entry_prefix_bytes)
                )
            return opts

        # The default column family holds nothing but still gets its own options, as in Flink
        # (and passing it avoids rocksdict's reopen trap).
        _apply_cf_options(db_opts, config, _table_options(config, self._cache_for_default(config)))
        families = {"default": cf_options(), **{s.name: cf_options(s) for s in header.states}}
        return db_opts, families

    def restore_from(
        self, checkpoint: Path, into: Path, rescale: float = 1.0
    ) -> RestoreStats | None:
        """Flink's restore of an incremental checkpoint (RocksDBIncrementalRestoreOperation):
        the checkpoint's files are copied into a new instance directory (from local checkpoint
        storage: a copy) and RocksDB opens them with the same options, on the same caches (the
        slot's). Timed; closed again.

        ``rescale`` (tuner.rescale) n > 1: the rescaling restore of subtask 0 of n, whose key
        groups lie inside this instance's: Flink copies and opens the whole checkpoint as its
        base and clips it to the new range with a range deletion per column family
        (clipDBWithKeyGroupRange). Its option to drop whole files first
        (rescaling.use-delete-files-in-range) has no counterpart in rocksdict: not modelled.

        ``rescale`` 1/n: the restore of the one subtask left after a scale-in, from n old
        subtasks' checkpoints (:meth:`_split`, untimed): Flink's default merge
        (mergeStateHandlesWithCopyFromTemporaryInstance): the first opened as the base, each
        other copied and opened as a temporary instance whose every entry is written into the
        base in write batches. use-ingest-db-restore-mode (export and import of whole files)
        has no counterpart in rocksdict: not modelled."""
        assert self._stored is not None, "restore_from before open"
        parts = self._split(checkpoint, into.parent, shrunk_by(rescale))
        t0 = time.perf_counter()
        try:
            shutil.copytree(parts[0], into)
            options = self._options(self.config, self._stored)
            db_opts, families = options
            db = rd.Rdict(str(into), db_opts, column_families=families)
            db.set_write_options(_no_wal())
            if grown_by(rescale) > 1:
                _, last = operator_key_groups(self._stored.max_parallelism, grown_by(rescale), 0)
                for name in families:
                    self._clip(db.get_column_family(name), None, last + 1)
            for i, part in enumerate(parts[1:], 1):
                temporary = into.parent / f"{into.name}-tmp{i}"
                shutil.copytree(part, temporary)
                try:
                    _copy_entries(temporary, db, options)
                finally:
                    shutil.rmtree(temporary, ignore_errors=True)
            db.close()
        except Exception as exc:
            log.warning("restore from %s failed: %s", checkpoint, exc)
            return None
        seconds = time.perf_counter() - t0
        files = [e for part in parts for e in os.scandir(part) if e.is_file()]
        ssts = sum(1 for e in files if e.name.endswith(".sst"))
        return RestoreStats(seconds, sum(e.stat().st_size for e in files), ssts)

    def _clip(self, cf: Any, first: int | None, last_excl: int | None) -> None:
        """Delete the key groups below ``first`` and from ``last_excl`` on (None: no bound)."""
        assert self._stored is not None
        width = key_group_prefix_bytes(self._stored.max_parallelism)
        if first is not None and first > 0:
            cf.delete_range(b"", first.to_bytes(width, "big"))
        if last_excl is not None:
            cf.delete_range(last_excl.to_bytes(width, "big"), b"\xff" * (width + 1))

    def _split(self, checkpoint: Path, beside: Path, ways: int) -> list[Path]:
        """``checkpoint`` as ``ways`` old subtasks would have checkpointed it before a scale-in:
        each copy clipped to one's key groups and compacted, so that its files hold only those
        (as a subtask's do once it has run a while). Made once per checkpoint; [checkpoint]
        itself for 1."""
        assert self._stored is not None
        if ways <= 1:
            return [checkpoint]
        if self._split_parts is not None and self._split_parts[0] == (checkpoint, ways):
            return self._split_parts[1]
        max_parallelism = self._stored.max_parallelism
        parts = []
        for i in range(ways):
            first, last = operator_key_groups(max_parallelism, ways, i)
            part = beside / f"scale-in-{checkpoint.name}-{ways}" / f"subtask-{i}"
            shutil.rmtree(part, ignore_errors=True)
            shutil.copytree(checkpoint, part)
            db_opts, families = self._options(self.config, self._stored)
            db = rd.Rdict(str(part), db_opts, column_families=families)
            # Forced down to the bottom level: by default RocksDB leaves the bottom level's files
            # (and the other key groups in them) alone unless a compaction filter is set.
            whole = rd.CompactOptions()
            whole.set_bottommost_level_compaction(rd.BottommostLevelCompaction.force())
            for name in families:
                cf = db.get_column_family(name)
                self._clip(cf, first, last + 1)
                cf.compact_range(None, None, whole)
            db.close()
            parts.append(part)
        self._split_parts = ((checkpoint, ways), parts)
        return parts

    def _cache_for_default(self, config: RocksDBConfig) -> Any:
        if self._shared_cache is not None:
            return self._shared_cache
        cache = rd.Cache(config.block_cache_size)
        self._caches.append(cache)
        return cache

    def _column_ops(self, cf: Any, handle: Any) -> ColumnOps:
        db = self._db

        def scan(start: bytes, prefix: bytes, limit: int) -> list[Entry]:
            it = cf.iter()
            it.seek(start)
            out: list[Entry] = []
            while it.valid():
                k = it.key()
                if not k.startswith(prefix):
                    break
                out.append((k, it.value()))
                if len(out) == limit:
                    break
                it.next()
            return out

        def write(ops: list[WriteOp]) -> None:
            wb = rd.WriteBatch(raw_mode=True)
            for k, v in ops:
                if v is None:
                    wb.delete(k, handle)
                else:
                    wb.put(k, v, handle)
            db.write(wb)

        return ColumnOps(get=cf.get, put=cf.put, delete=cf.delete, scan=scan, write=write)

    def _flush_storage(self) -> None:
        for cf in self._cfs.values():
            cf.flush(True)

    def _checkpoint(self, dest: Path) -> tuple[int, int]:
        dest.parent.mkdir(parents=True, exist_ok=True)
        rd.Checkpoint(self._db).create_checkpoint(str(dest))
        sizes = {e.name: e.stat().st_size for e in os.scandir(dest) if e.name.endswith(".sst")}
        new = sum(size for name, size in sizes.items() if name not in self._last_checkpoint_ssts)
        self._last_checkpoint_ssts = set(sizes)
        return new, sum(sizes.values())

    def statistics(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """RocksDB statistics since open: (tickers, histograms)."""
        return parse_statistics(self._db_opts.get_statistics() or "")

    def _storage_counters(self) -> dict[str, float]:
        tickers, hists = self.statistics()
        out = dict(tickers)
        # Uncompressed bytes of snappy data blocks read on misses: Flink's FRocksDB decompresses
        # them far slower than this RocksDB (tuner.costmodel.FROCKSDB_SNAPPY_EXTRA_S_PER_BYTE).
        # Most data sits in the last level, so its codec stands for every miss.
        out[SNAPPY_DATA_BYTES] = self._snappy_share * out.get(
            "rocksdb.block.cache.data.bytes.insert", 0.0
        )
        for name, h in hists.items():
            out[f"{name}.count"] = h["count"]
            out[f"{name}.sum"] = h["sum"]
        return out

    def _sum_property(self, name: str) -> int:
        return sum(int(cf.property_int_value(name) or 0) for cf in self._cfs.values())

    def memory(self) -> dict[str, int]:
        """See :meth:`Engine.memory`; a shared cache is counted once."""
        caches = [self._shared_cache] if self._shared_cache is not None else self._caches
        return {
            "block_cache_usage": sum(int(c.get_usage()) for c in caches),
            "block_cache_pinned_usage": sum(int(c.get_pinned_usage()) for c in caches),
            "memtables_bytes": self._sum_property("rocksdb.cur-size-all-mem-tables"),
            "table_readers_bytes": self._sum_property("rocksdb.estimate-table-readers-mem"),
            "rss_bytes": int(psutil.Process().memory_info().rss),
        }

    def table_blocks(self) -> dict[str, float]:
        """See :meth:`Engine.table_blocks`."""
        largest: tuple[int, Any] | None = None
        for cf in self._cfs.values():
            size = int(cf.property_int_value("rocksdb.total-sst-files-size") or 0)
            if largest is None or size > largest[0]:
                largest = (size, cf)
        if largest is None or largest[0] == 0:
            return {}
        size, cf = largest
        props = _table_properties(cf.property_value("rocksdb.aggregated-table-properties"))
        return {
            "largest_cf_sst_bytes": float(size),
            "largest_cf_entries": props.get("# entries", 0.0),
            "largest_cf_raw_bytes": props.get("raw key size", 0.0)
            + props.get("raw value size", 0.0),
            "largest_cf_data_bytes": props.get("data block size", 0.0),
            "largest_cf_data_blocks": props.get("# data blocks", 0.0),
            "largest_cf_index_bytes": props.get("index block size", 0.0),
        }

    def storage(self) -> dict[str, int]:
        """See :meth:`Engine.storage`."""
        db = self._db
        return {
            "total_sst_bytes": self._sum_property("rocksdb.total-sst-files-size"),
            "live_data_bytes": self._sum_property("rocksdb.estimate-live-data-size"),
            "compaction_pending": self._sum_property("rocksdb.compaction-pending"),
            "running_compactions": int(db.property_int_value("rocksdb.num-running-compactions")),
            "running_flushes": int(db.property_int_value("rocksdb.num-running-flushes")),
        }

    def lsm_shape(self) -> dict[str, int]:
        """See :meth:`Engine.lsm_shape`."""
        return {
            "pending_compaction_bytes": self._sum_property(
                "rocksdb.estimate-pending-compaction-bytes"
            ),
            "l0_files": max(
                (
                    int(cf.property_int_value("rocksdb.num-files-at-level0") or 0)
                    for cf in self._cfs.values()
                ),
                default=0,
            ),
        }

    def live_bytes(self) -> int:
        """See :meth:`Engine.live_bytes`: a full scan of every column family (seconds per GB;
        call it outside a measured phase)."""
        total = 0
        for cf in self._cfs.values():
            it = cf.iter()
            it.seek_to_first()
            while it.valid():
                total += len(it.key()) + len(it.value())
                it.next()
        return total

    def _close_storage(self) -> None:
        # Dropping the column-family handles first lets close() really shut RocksDB down.
        self._cfs = {}
        if self._db is not None:
            self._db.close()
        self._db = None
        self._caches = []
        self._shared_cache = None
        self._wbm = None


def _table_properties(text: str | None) -> dict[str, float]:
    """RocksDB's aggregated table properties (``name=value; ...``), the numeric ones; the index
    block's name carries its encoding in parentheses, which is dropped."""
    out: dict[str, float] = {}
    for part in (text or "").split(";"):
        name, sep, value = part.partition("=")
        if not sep:
            continue
        name = re.sub(r" \(user-key\?.*\)$", "", name.strip())
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out


def _no_wal() -> Any:
    """Write options as RocksDBResourceContainer.getWriteOptions makes them: WAL disabled."""
    wo = rd.WriteOptions()
    wo.disable_wal = True  # type: ignore[method-assign,assignment]  # a property at runtime
    return wo


# Entries per write batch in a scale-in's copy: RocksDBWriteBatchWrapper's default capacity.
_COPY_BATCH = 500


def _copy_entries(source: Path, base: Any, options: tuple[Any, dict[str, Any]]) -> None:
    """Every entry of the instance at ``source`` written into ``base`` (open, with the same
    options and column families), in write batches of :data:`_COPY_BATCH`, as Flink copies a
    temporary instance into the base one (copyTempDbIntoBaseDb)."""
    db_opts, families = options
    tmp = rd.Rdict(str(source), db_opts, column_families=families)
    try:
        for name in families:
            target = base.get_column_family_handle(name)
            wb = rd.WriteBatch(raw_mode=True)
            it = tmp.get_column_family(name).iter()
            it.seek_to_first()
            while it.valid():
                wb.put(it.key(), it.value(), target)
                if len(wb) >= _COPY_BATCH:
                    base.write(wb)
                    wb = rd.WriteBatch(raw_mode=True)
                it.next()
            if len(wb):
                base.write(wb)
            del it
    finally:
        tmp.close()
