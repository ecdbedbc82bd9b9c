"""Replay an operation stream on an engine and measure it.

Two phases: the preload (state built up to the size the job holds, not measured), then a flush
and a wait for compactions to settle, then the measured batches, with a checkpoint each time
event time passes the checkpoint interval. Counted quantities are deltas of the engine's
cumulative counters (RocksDB statistics cannot be reset) between the start and the end of the
measured phase; latencies are the executor's sampled state-call timings of that phase.

Steady state, not a bulk load: the measured phase starts from an LSM whose compactions have
caught up (every level within its target, ``pending_compaction_bytes_start`` ≈ 0), as a
long-running job's is. Compaction debt the measured phase leaves behind is paid inside it: the
replay flushes and waits for compactions to settle again, and the CPU time and the flush and
compaction bytes of that settling are counted like the rest. A configuration that only postpones
compaction therefore cannot win; what a settle timeout leaves unpaid is reported as
``compaction_debt_bytes`` and priced by the cost model. ``stall_risk`` is the measured phase's
worst L0 file count or pending bytes over RocksDB's slowdown triggers at its end (≥ 1: RocksDB
was slowing writes).

Space amplification is the SST bytes at the end over the live data (key and value bytes of what
the stream wrote and did not delete, counted by a full scan after the measurement), not RocksDB's
``estimate-live-data-size``, which universal compaction misreads by 10x and more.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tuner.errors import TunerRuntimeError
from tuner.flink.memory import covered_bytes
from tuner.trace.ops import COLUMNS, OpBatch, StreamHeader

from .base import Engine

log = logging.getLogger(__name__)

OnReplayProgress = Callable[[str, int], None]  # (phase, ops done in that phase)


@dataclass(frozen=True)
class ReplayResult:
    """What one measured replay produced. Rates per wall second; sizes in bytes; NaN where a
    ratio has no denominator (no reads, no live data)."""

    ops: int
    records: int  # runs of equal event time: the input records the calls belong to
    wall_s: float
    cpu_s: float
    ops_per_s: float
    read_p50_us: float
    read_p99_us: float
    write_p50_us: float
    write_p99_us: float
    write_amplification: float
    space_amplification: float
    block_cache_hit_ratio: float
    sst_bytes_read: float
    compaction_bytes_read: float
    compaction_bytes_written: float
    flush_bytes_written: float
    user_bytes_written: float
    stall_micros: float
    block_cache_usage: int
    memtables_bytes: int
    table_readers_bytes: int
    total_sst_bytes: int
    rss_peak_bytes: int
    checkpoint_count: int
    checkpoint_p50_s: float
    checkpoint_max_s: float
    checkpoint_incremental_bytes_mean: float
    settled: bool  # compactions settled after the preload within the timeout
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """Flat dict of numbers (``extra`` entries keep their own names)."""
        d = asdict(self)
        extra = d.pop("extra")
        out = {k: float(v) for k, v in d.items()}
        out.update({k: float(v) for k, v in extra.items()})
        return out


class MemoryBudgetExceeded(TunerRuntimeError):
    """RocksDB itself reported more memory than the slot's budget allows (the memory guard)."""


class _MemoryGuard:
    """Watches the memory Flink's budget covers, as RocksDB reports it (block cache with the
    memtables charged to it, index and filter blocks: :func:`tuner.flink.memory.covered_bytes`),
    not the process's RSS, which also holds Python, Arrow and the stream's buffers. Sampled at
    most every ``every_s`` seconds: on Flink's backend a sample is a round trip to the JVM."""

    def __init__(self, engine: Engine, limit: int | None, every_s: float = 0.2) -> None:
        self._engine = engine
        self._limit = limit
        self._every_s = every_s
        self._last = -math.inf
        self.peak = 0

    def check(self, *, now: bool = False) -> None:
        t = time.monotonic()
        if not now and t - self._last < self._every_s:
            return
        self._last = t
        mem = self._engine.memory()
        config = self._engine.config
        used = covered_bytes(
            mem, shared=config.shared_memory, index_in_cache=config.cache_index_and_filter_blocks
        )
        self.peak = max(self.peak, used)
        if self._limit is not None and used > self._limit:
            mib = 1 << 20
            outside = 0 if config.cache_index_and_filter_blocks else mem["table_readers_bytes"]
            raise MemoryBudgetExceeded(
                f"memory guard: RocksDB held {used / mib:.0f} MiB (block cache "
                f"{mem['block_cache_usage'] / mib:.0f} MiB, memtables "
                f"{mem['memtables_bytes'] / mib:.0f} MiB, index and filters outside the cache "
                f"{outside / mib:.0f} MiB), over the limit {self._limit / mib:.0f} MiB"
            )


def _slice(batch: OpBatch, start: int, stop: int) -> OpBatch:
    return OpBatch.from_columns(
        batch.states, {name: getattr(batch, name)[start:stop] for name, _ in COLUMNS}
    )


def _percentile_us(ns: npt.NDArray[np.int64], q: float) -> float:
    return float(np.percentile(ns, q)) / 1000.0 if ns.size else math.nan


def _delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


class _Split:
    """The first ``n`` calls of a batch stream (``head``), then the rest (``tail``), splitting
    the batch at the boundary; read lazily, in order."""

    def __init__(self, batches: Iterable[OpBatch], n: int) -> None:
        self._it = iter(batches)
        self._n = n
        self._rest: OpBatch | None = None

    def head(self) -> Iterator[OpBatch]:
        left = self._n
        while left > 0:
            batch = next(self._it, None)
            if batch is None:
                return
            if len(batch) <= left:
                left -= len(batch)
                yield batch
            else:
                yield _slice(batch, 0, left)
                self._rest = _slice(batch, left, len(batch))
                left = 0

    def tail(self) -> Iterator[OpBatch]:
        if self._rest is not None:
            yield self._rest
        yield from self._it


# Restores per measurement, from the same checkpoint; restore_s is their median. One restore of
# a small state is ~0.1 s of wall clock whose spread on a shared machine (+-25 % between
# identical measurements) hid the differences between configurations; a few more restores cost
# little beside the replay they follow.
RESTORE_ROUNDS = 3

# State counters that are levels, not counts: a difference of two of them means nothing, so
# they are reported as they stand at the end (heap_timers, heap_timer_bytes, heap_timers_peak).
_STATE_LEVELS = frozenset({"state.heap_timers", "state.heap_timer_bytes", "state.heap_timers_peak"})


def replay(
    engine: Engine,
    header: StreamHeader,
    preload: Iterable[OpBatch],
    measure: Iterable[OpBatch],
    checkpoint_interval_ms: int,
    workdir: Path,
    progress: OnReplayProgress | None = None,
    *,
    settle_timeout_s: float = 600.0,
    settle_end: bool = True,
    scan_live: bool = True,
    warmup_ops: int = 0,
    memory_limit_bytes: int | None = None,
    rescale: float = 1.0,
) -> ReplayResult:
    """Replay ``preload`` then ``measure`` on the open ``engine``; checkpoints go to
    ``workdir/checkpoints`` (only the latest is kept).

    ``settle_end`` pays the measured phase's compaction debt inside it (see the module
    docstring); ``scan_live`` counts the live bytes for the space amplification. The first
    ``warmup_ops`` calls of ``measure`` run (with their checkpoints) before the measurement
    starts, followed by a settle: the measured phase begins with a warm cache.

    ``memory_limit_bytes``: the memory guard's limit on what RocksDB reports it holds of the
    slot's budget (:class:`MemoryBudgetExceeded` past it); its peak is
    ``rocksdb_memory_peak_bytes``, beside the process's ``rss_peak_bytes``.
    """
    if engine.header != header:
        raise ValueError("the engine was opened with another stream header")
    if checkpoint_interval_ms <= 0:
        raise ValueError(
            f"`checkpoint_interval_ms > 0` must hold, but got {checkpoint_interval_ms=}"
        )
    rss_peak = engine.rss_bytes()
    guard = _MemoryGuard(engine, memory_limit_bytes)

    done = 0
    for batch in preload:
        engine.apply(batch)
        guard.check()
        done += len(batch)
        if progress:
            progress("preload", done)
    engine.flush()
    settled = engine.wait_for_background(settle_timeout_s)
    if not settled:
        log.warning("compactions still pending %.0f s after the preload", settle_timeout_s)
    rss_peak = max(rss_peak, engine.rss_bytes())

    cp_dir = Path(workdir) / "checkpoints"
    cp_durations: list[float] = []
    cp_new_bytes: list[int] = []
    last_cp: Path | None = None
    taken = 0  # checkpoints of the warm-up and the measured phase alike: names never repeat
    next_cp: int | None = None
    ops = 0
    records = 0
    last_ts: int | None = None
    sst_peak = 0
    l0_peak = 0

    def checkpoint() -> None:
        nonlocal last_cp, sst_peak, l0_peak, taken
        l0_peak = max(l0_peak, engine.lsm_shape()["l0_files"])  # before the flush adds one
        taken += 1
        dest = cp_dir / f"chk-{taken}"
        stats = engine.flush_and_checkpoint(dest)
        cp_durations.append(stats.duration_s)
        cp_new_bytes.append(stats.new_sst_bytes)
        sst_peak = max(sst_peak, stats.total_sst_bytes)
        if last_cp is not None:
            shutil.rmtree(last_cp, ignore_errors=True)
        last_cp = dest

    def run(batches: Iterable[OpBatch], phase: str) -> None:
        """Apply ``batches``, checkpointing each time event time passes the interval."""
        nonlocal next_cp, ops, records, last_ts, rss_peak
        for batch in batches:
            n = len(batch)
            if n == 0:
                continue
            ts = batch.ts
            # Records: a new record starts wherever the event timestamp changes.
            changes = int(np.count_nonzero(ts[1:] != ts[:-1])) + 1
            records += changes - (1 if last_ts is not None and int(ts[0]) == last_ts else 0)
            last_ts = int(ts[-1])
            if next_cp is None:
                next_cp = int(ts[0]) + checkpoint_interval_ms
            start = 0
            while start < n:
                due = np.flatnonzero(ts[start:] >= next_cp)
                if due.size == 0:
                    engine.apply(_slice(batch, start, n) if start else batch)
                    guard.check()
                    break
                cut = start + int(due[0])
                if cut > start:
                    engine.apply(_slice(batch, start, cut))
                checkpoint()
                while next_cp <= int(ts[cut]):
                    next_cp += checkpoint_interval_ms
                start = cut
            ops += n
            rss_peak = max(rss_peak, engine.rss_bytes())
            if progress:
                progress(phase, ops)

    stream = _Split(measure, warmup_ops)
    if warmup_ops > 0:
        # The job has been running: the cache holds its hot blocks, the memtables their share.
        run(stream.head(), "warm-up")
        engine.flush()
        settled = engine.wait_for_background(settle_timeout_s) and settled
    engine.take_latencies()  # drop the preload's and warm-up's samples
    shape_start = engine.lsm_shape()
    before = engine.snapshot_counters()
    cp_durations.clear()
    cp_new_bytes.clear()
    ops = records = 0
    sst_peak = engine.storage()["total_sst_bytes"]
    l0_peak = shape_start["l0_files"]
    cpu0 = engine.cpu_time()
    wall0 = time.perf_counter()
    run(stream.tail(), "measure")
    wall = time.perf_counter() - wall0
    shape_end = engine.lsm_shape()
    l0_peak = max(l0_peak, shape_end["l0_files"])
    settle_cpu0 = engine.cpu_time()
    settle_wall0 = time.perf_counter()
    settled_end = True
    if settle_end:
        engine.flush()
        settled_end = engine.wait_for_background(settle_timeout_s)
        if not settled_end:
            log.warning(
                "compactions still pending %.0f s after the measured phase", settle_timeout_s
            )
    settle_wall = time.perf_counter() - settle_wall0
    cpu = engine.cpu_time() - cpu0
    settle_cpu = engine.cpu_time() - settle_cpu0
    debt = (
        engine.lsm_shape()["pending_compaction_bytes"]
        if settle_end
        else shape_end["pending_compaction_bytes"]
    )
    after = engine.snapshot_counters()
    guard.check(now=True)
    reads, writes = engine.take_latencies()
    mem = engine.memory()
    sto = engine.storage()
    sst_peak = max(sst_peak, sto["total_sst_bytes"])
    rss_peak = max(rss_peak, engine.rss_bytes())
    # Recovery: restore a new instance from a checkpoint of the state at the end of the measured
    # phase, after every counted figure is taken, so nothing above sees it.
    taken += 1
    final = cp_dir / f"chk-{taken}"
    engine.flush_and_checkpoint(final)
    restores = []
    for _ in range(RESTORE_ROUNDS):
        one = engine.restore_from(final, Path(workdir) / "restored", rescale)
        shutil.rmtree(Path(workdir) / "restored", ignore_errors=True)
        if one is None:
            break
        restores.append(one)
    restored = restores[len(restores) // 2] if len(restores) == RESTORE_ROUNDS else None
    if restored is not None:
        restored = replace(restored, duration_s=statistics.median(r.duration_s for r in restores))
    shutil.rmtree(final, ignore_errors=True)
    if last_cp is not None:
        shutil.rmtree(last_cp, ignore_errors=True)
    live = engine.live_bytes() if scan_live else None
    if live is None:  # an engine that cannot scan: RocksDB's estimate, flagged as such
        live = sto["live_data_bytes"]
    config = engine.config
    stall_risk = max(
        l0_peak / config.level0_slowdown_writes_trigger,
        shape_end["pending_compaction_bytes"] / config.soft_pending_compaction_bytes_limit,
    )

    user = _delta(after, before, "rocksdb.bytes.written")
    flushed = _delta(after, before, "rocksdb.flush.write.bytes")
    compact_w = _delta(after, before, "rocksdb.compact.write.bytes")
    hits = _delta(after, before, "rocksdb.block.cache.hit")
    misses = _delta(after, before, "rocksdb.block.cache.miss")
    sst_read = _delta(after, before, "rocksdb.last.level.read.bytes") + _delta(
        after, before, "rocksdb.non.last.level.read.bytes"
    )
    extra = {
        k.replace(".", "_"): _delta(after, before, k)
        for k in sorted(after)
        if k.startswith("state.") and k not in _STATE_LEVELS
    }
    # Raw counts the disk cost model needs (tuner.costmodel): one miss is one block read.
    extra["block_cache_hits"] = hits
    extra["block_cache_misses"] = misses
    extra["block_cache_data_misses"] = _delta(after, before, "rocksdb.block.cache.data.miss")
    extra["snappy_data_bytes_missed"] = _delta(after, before, "tuner.snappy.data.bytes.insert")
    # Steady state and debt (module docstring).
    extra["pending_compaction_bytes_start"] = shape_start["pending_compaction_bytes"]
    extra["pending_compaction_bytes_end"] = shape_end["pending_compaction_bytes"]
    extra["l0_files_start"] = shape_start["l0_files"]
    extra["l0_files_end"] = shape_end["l0_files"]
    extra["l0_files_peak"] = l0_peak
    extra["compaction_debt_bytes"] = debt
    extra["stall_risk"] = stall_risk
    extra["settle_end_wall_s"] = settle_wall
    extra["settle_end_cpu_s"] = settle_cpu
    extra["settled_end"] = float(settled_end)
    extra["live_bytes"] = live
    extra["rocksdb_memory_peak_bytes"] = guard.peak
    extra["sst_bytes_peak"] = sst_peak
    extra.update(engine.checkpoint_figures())
    extra.update(engine.table_blocks())
    if restored is not None:
        extra["restore_s"] = restored.duration_s
        extra["restore_s_min"] = min(r.duration_s for r in restores)
        extra["restore_s_max"] = max(r.duration_s for r in restores)
        extra["restore_rescale"] = float(rescale)
        extra["restore_bytes"] = restored.bytes
        if restored.sst_files is not None:
            extra["restore_sst_files"] = restored.sst_files
        if restored.handles is not None and restored.handles_in_range is not None:
            extra["restore_handles"] = restored.handles
            extra["restore_handles_in_range"] = restored.handles_in_range
    extra.update(engine.memory_figures(rss_peak))
    # Heap timers (timer-service.factory: HEAP) at the end: JVM heap outside managed memory;
    # 0 with RocksDB timers, left out where the engine does not count them (Flink's backend).
    if "state.heap_timers" in after:
        extra["heap_timers"] = after["state.heap_timers"]
        extra["heap_timer_bytes"] = after["state.heap_timer_bytes"]
        extra["heap_timers_peak"] = after.get("state.heap_timers_peak", 0.0)
    extra["space_amplification_estimate"] = _ratio(sto["total_sst_bytes"], sto["live_data_bytes"])
    for name in ("rocksdb.db.get.micros", "rocksdb.db.write.micros", "rocksdb.db.seek.micros"):
        count = _delta(after, before, f"{name}.count")
        if count:
            key = name.replace("rocksdb.db.", "rocksdb_").replace(".micros", "_mean_us")
            extra[key] = _delta(after, before, f"{name}.sum") / count
    if cp_durations:
        cp = np.asarray(cp_durations)
        cp_p50, cp_max = float(np.median(cp)), float(cp.max())
        cp_mean = float(np.mean(cp_new_bytes))
    else:
        cp_p50 = cp_max = cp_mean = math.nan
    return ReplayResult(
        ops=ops,
        records=records,
        wall_s=wall,
        cpu_s=cpu,
        ops_per_s=_ratio(ops, wall),
        read_p50_us=_percentile_us(reads, 50),
        read_p99_us=_percentile_us(reads, 99),
        write_p50_us=_percentile_us(writes, 50),
        write_p99_us=_percentile_us(writes, 99),
        write_amplification=_ratio(flushed + compact_w, user),
        space_amplification=_ratio(sto["total_sst_bytes"], live),
        block_cache_hit_ratio=_ratio(hits, hits + misses),
        sst_bytes_read=sst_read,
        compaction_bytes_read=_delta(after, before, "rocksdb.compact.read.bytes"),
        compaction_bytes_written=compact_w,
        flush_bytes_written=flushed,
        user_bytes_written=user,
        stall_micros=_delta(after, before, "rocksdb.stall.micros"),
        block_cache_usage=mem["block_cache_usage"],
        memtables_bytes=mem["memtables_bytes"],
        table_readers_bytes=mem["table_readers_bytes"],
        total_sst_bytes=sto["total_sst_bytes"],
        rss_peak_bytes=rss_peak,
        checkpoint_count=len(cp_durations),
        checkpoint_p50_s=cp_p50,
        checkpoint_max_s=cp_max,
        checkpoint_incremental_bytes_mean=cp_mean,
        settled=settled,
        extra=extra,
    )
