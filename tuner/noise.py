"""How much a measurement moves when nothing changes: one configuration, measured N times.

Each repeat replays the same operation stream in its own process, exactly as a trial does; the
coefficient of variation (stddev / mean) of every metric says which figures can be trusted to
rank configurations on this machine and which cannot.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tuner.costmodel import Disk, score
from tuner.engine.base import Measurement
from tuner.flink import options as fo
from tuner.search.measure import PROCESS_ALLOWANCE, measure_isolated
from tuner.trace.source import trace_file
from tuner.workload import Workload

# The figures worth a line in the summary, in this order; every other metric is in .runs.
HEADLINE_METRICS: tuple[str, ...] = (
    "ops_per_s",
    "wall_ops_per_s",
    "cpu_s",
    "block_cache_misses",
    "sst_bytes_read",
    "flush_bytes_written",
    "compaction_bytes_written",
    "read_p99_us",
    "write_p99_us",
    "checkpoint_p50_s",
)


@dataclass(frozen=True)
class MetricSpread:
    """One metric over the repeats."""

    name: str
    n: int
    mean: float
    median: float
    low: float
    high: float
    cv: float  # stddev / mean; NaN when the mean is 0


@dataclass(frozen=True)
class NoiseResult:
    """Every repeat's metrics, and the spread of each metric."""

    runs: list[dict[str, float]]
    failures: list[str]
    spreads: dict[str, MetricSpread]

    def render(self) -> str:
        """A table for the terminal: the headline metrics first."""
        names = [m for m in HEADLINE_METRICS if m in self.spreads]
        lines = [f"{'metric':<28}{'n':>3}{'median':>16}{'min':>16}{'max':>16}{'CV':>9}"]
        for name in names:
            s = self.spreads[name]
            cv = "n/a" if math.isnan(s.cv) else f"{s.cv:.1%}"
            lines.append(
                f"{name:<28}{s.n:>3}{s.median:>16,.1f}{s.low:>16,.1f}{s.high:>16,.1f}{cv:>9}"
            )
        if self.failures:
            lines.append(f"{len(self.failures)} repeat(s) failed: " + "; ".join(self.failures))
        return "\n".join(lines)


def spread(name: str, values: list[float]) -> MetricSpread:
    """Mean, median, range and coefficient of variation of ``values``."""
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return MetricSpread(
        name,
        len(values),
        mean,
        statistics.median(values),
        min(values),
        max(values),
        sd / mean if mean else math.nan,
    )


def summarize(runs: list[Mapping[str, float]]) -> dict[str, MetricSpread]:
    """The spread of every metric present (and a number) in all runs."""
    if not runs:
        return {}
    names = set.intersection(*(set(r) for r in runs))
    out = {}
    for name in sorted(names):
        values = [float(r[name]) for r in runs]
        if not any(math.isnan(v) for v in values):
            out[name] = spread(name, values)
    return out


def measure_noise(
    workload: Workload,
    repeats: int,
    disk: Disk,
    settings: Mapping[str, fo.FlinkValue] | None = None,
    *,
    timeout_s: float = 900.0,
    rss_margin: int = PROCESS_ALLOWANCE,
    on_repeat: Callable[[int, int], None] | None = None,
    jobs: int = 1,
    scale: float = 1.0,
) -> NoiseResult:
    """Measure ``settings`` (default: Flink's default) ``repeats`` times on ``workload``,
    ``jobs`` at once (to see what parallel trials do to the figures). ``workload`` is the
    replayed model of a scaled job (tuner.scale), ``scale`` its factor."""
    chosen = dict(settings or {fo.PREDEFINED_OPTIONS: "DEFAULT"})
    runs: list[dict[str, float]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tuner-noise-") as tmp:
        root = Path(tmp)
        trace = trace_file(workload, root / "trace.parquet")

        def one(i: int) -> Measurement:
            if on_repeat is not None:
                on_repeat(i, repeats)
            workdir = root / f"repeat-{i}"
            return measure_isolated(
                workload,
                trace,
                chosen,
                workdir,
                timeout_s=timeout_s,
                rss_margin=rss_margin,
                scale=scale,
            )

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            measured = list(pool.map(one, range(repeats)))
        for m in measured:
            if m.status == "ok":
                runs.append({**score(m.metrics, disk), "trial_rss_peak_bytes": m.rss_peak_bytes})
            else:
                failures.append(m.reason)
    return NoiseResult(runs, failures, summarize(list(runs)))
