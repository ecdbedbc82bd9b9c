"""``tuner compare``: any configurations measured interleaved, with repeats, each measurement in
its own process (as a trial is), and a table with the spread.

A configuration is one of Flink's predefined option sets by name (``DEFAULT``,
``SPINNING_DISK_OPTIMIZED_HIGH_MEM``, ...), a Flink config file (config.yaml, flink-conf.yaml or
FlinkDeployment, read and checked as ``tuner check-config`` does), or a run directory (its
recommendation as re-measured, from recommendation.json). Throughput is the cost model's
counted ``ops_per_s``.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuner.costmodel import Disk, score
from tuner.engine.base import Measurement
from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.flink.baseline import read_user_config, settings_from_json
from tuner.noise import MetricSpread, spread
from tuner.search.measure import PROCESS_ALLOWANCE, measure_isolated
from tuner.trace.source import trace_file
from tuner.workload import Workload

__all__ = ["CompareResult", "Contender", "compare", "contender", "recommendation_contender"]

THROUGHPUT = "ops_per_s"
# Figures shown beside throughput (medians), when measured.
EXTRA: tuple[tuple[str, str], ...] = (
    ("read_p99_us", "read p99 µs"),
    ("checkpoint_incremental_bytes_mean", "ckpt MiB"),
)

# One measurement of ``settings`` (repeat ``r``): a hook so tests can measure without RocksDB.
MeasureFn = Callable[[Mapping[str, fo.FlinkValue], Path], Measurement]


@dataclass(frozen=True)
class Contender:
    """One configuration to compare."""

    name: str
    settings: Mapping[str, fo.FlinkValue]
    source: str  # "predefined" or the file it was read from


def contender(spec: str, flink_version: str) -> Contender:
    """A predefined option set by name, a Flink config file, or a run directory."""
    if spec in fo.PREDEFINED:
        return Contender(spec, {fo.PREDEFINED_OPTIONS: spec}, "predefined")
    path = Path(spec)
    if path.is_dir():
        return replace(recommendation_contender(path), name=spec)
    if not path.exists():
        raise TunerError(
            f"neither a file nor one of Flink's option sets ({', '.join(fo.PREDEFINED)})",
            file=spec,
        )
    user = read_user_config(path, flink_version)
    return Contender(spec, dict(user.settings), str(path))


@dataclass(frozen=True)
class CompareResult:
    """Every measurement per configuration, in the order they were given."""

    contenders: tuple[Contender, ...]
    runs: Mapping[str, list[dict[str, float]]]  # name -> metrics of each finished repeat
    failures: Mapping[str, list[str]]
    repeats: int

    def spread(self, name: str, metric: str = THROUGHPUT) -> MetricSpread | None:
        """Median, range and CV of ``metric`` over ``name``'s finished repeats."""
        values = [r[metric] for r in self.runs[name] if metric in r and not math.isnan(r[metric])]
        return spread(metric, values) if values else None

    def render(self) -> str:
        """The table for the terminal: one row per configuration, the first as reference."""
        head = (
            f"{'configuration':<34}{'n':>3}{'median ops/s':>14}{'min–max':>22}{'CV':>7}"
            f"{'vs first':>10}"
        )
        head += "".join(f"{h:>14}" for _, h in EXTRA)
        lines = [head]
        first = self.spread(self.contenders[0].name)
        for c in self.contenders:
            s = self.spread(c.name)
            fails = len(self.failures[c.name])
            if s is None:
                lines.append(f"{c.name[:33]:<34}{0:>3}  every measurement failed ({fails})")
                continue
            rel = (
                f"{s.median / first.median - 1:+.1%}" if first is not None and first.median else "–"
            )
            cv = "–" if math.isnan(s.cv) else f"{s.cv:.1%}"
            row = (
                f"{c.name[:33]:<34}{s.n:>3}{s.median:>14,.0f}"
                f"{f'{s.low:,.0f}–{s.high:,.0f}':>22}{cv:>7}{rel:>10}"
            )
            for metric, _ in EXTRA:
                m = self.spread(c.name, metric)
                scale = 1 / (1 << 20) if metric.endswith("bytes_mean") else 1.0
                row += f"{m.median * scale:>14,.1f}" if m is not None else f"{'–':>14}"
            if fails:
                row += f"  ({fails} failed)"
            lines.append(row)
        return "\n".join(lines)

    def rows(self) -> list[dict[str, object]]:
        """One row per measurement, for a CSV file."""
        out: list[dict[str, object]] = []
        for c in self.contenders:
            for i, m in enumerate(self.runs[c.name]):
                out.append({"configuration": c.name, "repeat": i, **m})
        return out


def recommendation_contender(run_dir: Path) -> Contender:
    """A run's recommendation as measured: the minimal configuration when the run made one
    (complete, with the user's own keys), else the emitted settings."""
    path = run_dir / "recommendation.json"
    try:
        rec: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise TunerError(
            "no recommendation.json in this run directory", file=str(run_dir)
        ) from None
    except json.JSONDecodeError as exc:
        raise TunerError(f"not valid JSON: {exc}", file=str(path)) from None
    minimal = rec.get("minimal")
    raw = minimal["settings"] if isinstance(minimal, dict) else rec.get("settings") or {}
    return Contender("recommended", settings_from_json(raw), str(path))


def compare(
    workload: Workload,
    contenders: Sequence[Contender],
    repeats: int,
    disk: Disk,
    *,
    timeout_s: float = 900.0,
    rss_margin: int = PROCESS_ALLOWANCE,
    on_measure: Callable[[int, int, str], None] | None = None,
    measure: MeasureFn | None = None,
    scale: float = 1.0,
) -> CompareResult:
    """Measure every contender ``repeats`` times, interleaved (A, B, C, A, B, C, ...), each in
    its own process; figures scored for ``disk``. ``workload`` is the replayed model of a
    scaled job (tuner.scale) and ``scale`` its factor: option values stay in production units."""
    if not contenders:
        raise TunerError("give at least one configuration to compare")
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise TunerError(f"configurations named twice: {names}")
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    failures: dict[str, list[str]] = {n: [] for n in names}
    total = repeats * len(contenders)
    with tempfile.TemporaryDirectory(prefix="tuner-compare-") as tmp:
        root = Path(tmp)
        trace = trace_file(workload, root / "trace.parquet")

        def isolated(settings: Mapping[str, fo.FlinkValue], workdir: Path) -> Measurement:
            return measure_isolated(
                workload,
                trace,
                settings,
                workdir,
                timeout_s=timeout_s,
                rss_margin=rss_margin,
                scale=scale,
            )

        run = measure or isolated
        done = 0
        for r in range(repeats):
            for c in contenders:
                if on_measure is not None:
                    on_measure(done, total, c.name)
                m = run(c.settings, root / f"m-{r}-{done}")
                done += 1
                if m.status == "ok":
                    runs[c.name].append(score(m.metrics, disk))
                else:
                    failures[c.name].append(m.reason)
    return CompareResult(tuple(contenders), runs, failures, repeats)
