"""Replay an operation stream on an engine and measure it.

Two phases: the preload (state built up to the size the job holds, not measured), then a flush
and a wait for compactions to settle, then the measured batches, with a checkpoint each time
event time passes the checkpoint interval. Counted quantities are deltas of the engine's
cumulative counters (RocksDB statistics cannot be reset) between the start and the end of the
measured phase; latencies are the executor's sampled state-call timings of that phase.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tuner.trace.ops import COLUMNS, OpBatch, StreamHeader

from .base import Engine

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (phase, ops done in that phase)


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


def replay(
    engine: Engine,
    header: StreamHeader,
    preload: Iterable[OpBatch],
    measure: Iterable[OpBatch],
    checkpoint_interval_ms: int,
    workdir: Path,
    progress: Progress | None = None,
    *,
    settle_timeout_s: float = 120.0,
) -> ReplayResult:
    """Replay ``preload`` then ``measure`` on the open ``engine``; checkpoints go to
    ``workdir/checkpoints`` (only the latest is kept)."""
    if engine.header != header:
        raise ValueError("the engine was opened with another stream header")
    if checkpoint_interval_ms <= 0:
        raise ValueError(
            f"`checkpoint_interval_ms > 0` must hold, but got {checkpoint_interval_ms=}"
        )
    rss_peak = engine.rss_bytes()

    done = 0
    for batch in preload:
        engine.apply(batch)
        done += len(batch)
        if progress:
            progress("preload", done)
    engine.flush()
    settled = engine.wait_for_background(settle_timeout_s)
    if not settled:
        log.warning("compactions still pending %.0f s after the preload", settle_timeout_s)
    rss_peak = max(rss_peak, engine.rss_bytes())

    engine.take_latencies()  # drop the preload's samples
    before = engine.snapshot_counters()
    cp_dir = Path(workdir) / "checkpoints"
    cp_durations: list[float] = []
    cp_new_bytes: list[int] = []
    last_cp: Path | None = None
    next_cp: int | None = None
    ops = 0
    records = 0
    last_ts: int | None = None

    def checkpoint() -> None:
        nonlocal last_cp
        dest = cp_dir / f"chk-{len(cp_durations) + 1}"
        stats = engine.flush_and_checkpoint(dest)
        cp_durations.append(stats.duration_s)
        cp_new_bytes.append(stats.new_sst_bytes)
        if last_cp is not None:
            shutil.rmtree(last_cp, ignore_errors=True)
        last_cp = dest

    cpu0 = engine.cpu_time()
    wall0 = time.perf_counter()
    for batch in measure:
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
            progress("measure", ops)
    wall = time.perf_counter() - wall0
    cpu = engine.cpu_time() - cpu0
    after = engine.snapshot_counters()
    reads, writes = engine.take_latencies()
    mem = engine.memory()
    sto = engine.storage()
    rss_peak = max(rss_peak, engine.rss_bytes())
    if last_cp is not None:
        shutil.rmtree(last_cp, ignore_errors=True)

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
        if k.startswith("state.")
    }
    # Raw counts the disk cost model needs (tuner.costmodel): one miss is one block read.
    extra["block_cache_hits"] = hits
    extra["block_cache_misses"] = misses
    extra["block_cache_data_misses"] = _delta(after, before, "rocksdb.block.cache.data.miss")
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
        space_amplification=_ratio(sto["total_sst_bytes"], sto["live_data_bytes"]),
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
