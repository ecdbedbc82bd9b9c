"""Real Flink as the search's measurement engine (``tuner run --engine flink``); its sibling
:mod:`tuner.engine.flink_backend` drives Flink's state backend without a job.

Each candidate runs the bundled Flink job (the one ``tuner validate`` uses) on the run's exact
operation stream, with the candidate's options in the job's Configuration. Slower than the replay
(a JVM and a MiniCluster per trial, about 10 s more on 2 cores) but nothing is modelled: the
objective is Flink's own records/s, and every RocksDB option goes through Flink's own code.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from tuner.engine.base import Measurement
from tuner.errors import TunerError, TunerRuntimeError
from tuner.flink import options as fo
from tuner.trace.parquet import read_trace
from tuner.validate.flink import compile_job, find_flink
from tuner.validate.job import FlinkRun, prepare_stream, run_config, settings_entries
from tuner.workload import Workload


class Candidate(Protocol):
    """What this engine needs of a search candidate (tuner.search.study.Candidate)."""

    @property
    def label(self) -> str: ...
    @property
    def settings(self) -> Mapping[str, fo.FlinkValue]: ...
    @property
    def repeat(self) -> int: ...


def flink_metrics(run: FlinkRun) -> dict[str, float]:
    """A Flink run as trial metrics: ``ops_per_s`` is Flink's records/s (one state call per
    record); RocksDB's counters keep the replay's names where they mean the same."""
    row = run.row()
    t = run.tickers
    out: dict[str, float] = {
        "ops_per_s": run.records_per_s,
        "wall_ops_per_s": run.records_per_s,
        "ops": float(run.measure_rows),
        "replay_wall_s": run.measure_s,
        "jvm_startup_s": run.startup_s,
        "settled": float(run.settled),
        "block_cache_hits": t.get("rocksdb.block.cache.hit", math.nan),
        "block_cache_misses": t.get("rocksdb.block.cache.miss", math.nan),
        "compaction_bytes_read": t.get("rocksdb.compact.read.bytes", math.nan),
        "compaction_bytes_written": t.get("rocksdb.compact.write.bytes", math.nan),
        "flush_bytes_written": t.get("rocksdb.flush.write.bytes", math.nan),
        "stall_micros": t.get("rocksdb.stall.micros", math.nan),
        # Flink reports no per-call latencies: the Pareto objective needs the replay engine.
        "read_p99_us": math.nan,
    }
    for key in (
        "block_cache_hit_ratio",
        "checkpoint_count",
        "checkpoint_p50_s",
        "checkpoint_max_s",
        "checkpoint_incremental_bytes_mean",
    ):
        value = row.get(key)
        if isinstance(value, int | float):
            out[key] = float(value)
    return out


class FlinkMeasure:
    """Measures candidates on real Flink; one JVM per measurement (its own process, so a crash
    or a timeout fails that trial only)."""

    def __init__(self, workload: Workload, trace_path: Path, work: Path, timeout_s: float) -> None:
        self.workload = workload
        self.work = work
        self.timeout_s = timeout_s
        self.flink = find_flink("2.x")
        self.classes = compile_job(self.flink)
        trace = read_trace(trace_path)
        self.stream = prepare_stream(
            trace.header, trace.batches("preload"), trace.batches("measure"), work / "stream"
        )
        self._count = 0

    def settings(self, candidate: Candidate) -> dict[str, str]:
        """The candidate's options as the job's Configuration entries (Flink syntax)."""
        merged: Mapping[str, fo.FlinkValue] = {
            **fo.one_slot_memory_settings(self.workload.memory),
            **candidate.settings,
        }
        return settings_entries(merged)

    def __call__(self, candidate: Candidate) -> Measurement:
        self._count += 1
        workdir = self.work / f"flink-{self._count}"
        started = time.monotonic()
        try:
            run = run_config(
                self.flink,
                self.classes,
                self.stream,
                candidate.label,
                candidate.repeat,
                None,
                self.settings(candidate),
                budget_bytes=self.workload.memory.budget,
                checkpoint_interval_ms=self.workload.checkpointing.interval_ms,
                incremental=self.workload.checkpointing.incremental,
                workdir=workdir,
                timeout_s=self.timeout_s,
            )
        except (TunerError, TunerRuntimeError, RuntimeError, OSError, KeyError, ValueError) as exc:
            return Measurement(
                "failed", f"flink: {exc}", wall_s=time.monotonic() - started, rss_peak_bytes=0
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return Measurement(
            "ok",
            "",
            flink_metrics(run),
            wall_s=time.monotonic() - started,
            rss_peak_bytes=run.rss_peak_bytes,
        )
