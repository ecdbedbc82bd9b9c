"""Counted quantities, replay vs Flink, per configuration: where a rank disagreement comes from.

Throughput compares two wall clocks; the counters say *why* they differ. For each configuration
the replay's RocksDB statistics (its trial records, measured phase) are set beside Flink's own
(the validation job reads the same tickers from Flink's RocksDB instance over its measured
phase), each per 1,000 state calls, because ``tuner validate --records`` may send Flink fewer
calls than the study replayed. CPU time is per 1,000 calls too: the replay's process CPU, Flink's
task thread and its whole JVM.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuner.search.study import TrialRecord
from tuner.validate.job import FlinkRun

__all__ = ["COUNTERS", "CounterComparison", "compare_counters", "render_counters"]

# (name shown, replay metric, Flink ticker or run field). Bytes read from SST files: the level
# read tickers count every read through RocksDB's file reader, compaction input included.
COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("block-cache hits", "block_cache_hits", "rocksdb.block.cache.hit"),
    ("block-cache misses", "block_cache_misses", "rocksdb.block.cache.miss"),
    ("SST bytes read", "sst_bytes_read", "sst_bytes_read"),
    ("flush bytes", "flush_bytes_written", "rocksdb.flush.write.bytes"),
    ("compaction bytes written", "compaction_bytes_written", "rocksdb.compact.write.bytes"),
    ("stall µs", "stall_micros", "rocksdb.stall.micros"),
    ("CPU s (replay process / Flink task thread)", "cpu_s", "task_cpu_s"),
    ("CPU s (replay process / Flink JVM)", "cpu_s", "process_cpu_s"),
)
# Within this ratio a counter agrees (the goal: every counted quantity within 15 %).
TOLERANCE = 0.15


@dataclass(frozen=True)
class CounterComparison:
    """One configuration and counter: medians per 1,000 state calls on both sides."""

    label: str
    counter: str
    replay_per_k: float
    flink_per_k: float

    @property
    def ratio(self) -> float:
        """Flink / replay (NaN when the replay counted nothing)."""
        if not (math.isfinite(self.replay_per_k) and self.replay_per_k > 0):
            return math.nan
        return self.flink_per_k / self.replay_per_k

    @property
    def agrees(self) -> bool:
        """Within :data:`TOLERANCE` (both zero also agrees)."""
        if self.replay_per_k == 0 and self.flink_per_k == 0:
            return True
        return math.isfinite(self.ratio) and abs(self.ratio - 1) <= TOLERANCE


def _flink_value(run: FlinkRun, field: str) -> float:
    if field == "task_cpu_s":
        return run.task_cpu_s
    if field == "process_cpu_s":
        return run.process_cpu_s
    t = run.tickers
    if field == "sst_bytes_read":
        if "rocksdb.last.level.read.bytes" not in t:
            return math.nan
        return t["rocksdb.last.level.read.bytes"] + t.get("rocksdb.non.last.level.read.bytes", 0)
    return t.get(field, math.nan)


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def compare_counters(
    records: Sequence[TrialRecord], runs: Sequence[FlinkRun]
) -> list[CounterComparison]:
    """Per configuration Flink ran and counter: replay vs Flink per 1,000 state calls."""
    replay: dict[str, list[Mapping[str, float]]] = {}
    for r in records:
        if r.ok and r.candidate.kind in ("baseline", "remeasure") and r.metrics.get("ops"):
            replay.setdefault(r.candidate.label, []).append(r.metrics)
    flink: dict[str, list[FlinkRun]] = {}
    for run in runs:
        if run.measure_rows > 0:
            flink.setdefault(run.label, []).append(run)
    out = []
    for label, label_runs in flink.items():
        rows = replay.get(label, [])
        for name, metric, field in COUNTERS:
            rp = _median([1000 * float(m.get(metric, math.nan)) / float(m["ops"]) for m in rows])
            fl = _median([1000 * _flink_value(r, field) / r.measure_rows for r in label_runs])
            out.append(CounterComparison(label, name, rp, fl))
    return out


def _num(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


def render_counters(rows: Sequence[CounterComparison]) -> list[str]:
    """validation.md lines: one table, a row per configuration and counter."""
    if not rows:
        return []
    lines = [
        "### Counted quantities, replay vs Flink (per 1,000 state calls, medians)",
        "",
        "RocksDB's own statistics over the measured phase on both sides. A counter agrees when "
        f"Flink's is within {TOLERANCE:.0%} of the replay's.",
        "",
        "| configuration | counter | replay | Flink | Flink / replay | agrees |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in rows:
        ratio = "n/a" if not math.isfinite(c.ratio) else f"{c.ratio:.2f}"
        lines.append(
            f"| {c.label} | {c.counter} | {_num(c.replay_per_k)} | {_num(c.flink_per_k)} | "
            f"{ratio} | {'yes' if c.agrees else 'no'} |"
        )
    return lines
