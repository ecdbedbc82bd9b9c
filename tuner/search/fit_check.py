"""Does a fitted workload rank configurations as its recording does?

Replays Flink's default and its predefined option sets (and any extra settings, e.g. a run's
recommendation) on the recorded trace and on the fitted workload's generated stream, under the
same memory and disk, and compares the two rankings by Spearman's rank correlation. Each
measurement runs in its own process, as a trial does.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuner.costmodel import modelled_ops_per_s
from tuner.errors import TunerRuntimeError
from tuner.flink import options as fo
from tuner.search.measure import measure_isolated
from tuner.stats import spearman
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import write_trace
from tuner.workload import Workload

__all__ = ["Agreement", "rank_agreement"]


@dataclass(frozen=True)
class Agreement:
    """Modelled ops/s of each configuration on the recording and on the fitted workload."""

    labels: tuple[str, ...]
    recorded: tuple[float, ...]
    fitted: tuple[float, ...]

    @property
    def spearman(self) -> float:
        """Rank correlation of the two columns (1: the same order)."""
        return spearman(self.recorded, self.fitted)

    def render(self) -> str:
        """A Markdown table with the Spearman under it."""
        lines = ["| configuration | recording ops/s | fitted ops/s |", "|---|---:|---:|"]
        for label, r, f in zip(self.labels, self.recorded, self.fitted, strict=True):
            lines.append(f"| {label} | {r:,.0f} | {f:,.0f} |")
        lines.append(f"\nSpearman over {len(self.labels)} configurations: {self.spearman:+.2f}")
        return "\n".join(lines) + "\n"


def _measure(workload: Workload, trace: Path, settings: Mapping[str, fo.FlinkValue]) -> float:
    with tempfile.TemporaryDirectory(prefix="tuner-fitcheck-") as tmp:
        m = measure_isolated(workload, trace, settings, Path(tmp) / "trial", timeout_s=1800)
    if m.status != "ok":
        raise TunerRuntimeError(f"a replay of {trace.name} failed ({m.status}): {m.reason}")
    return modelled_ops_per_s(m.metrics, workload.disk)


def rank_agreement(
    recorded_trace: Path,
    fitted: Workload,
    extra: Mapping[str, Mapping[str, fo.FlinkValue]] | None = None,
    predefined: Sequence[str] = tuple(fo.PREDEFINED),
) -> Agreement:
    """Measure Flink's ``predefined`` sets (default: all) and ``extra`` on ``recorded_trace``
    and on ``fitted``'s stream; the recording is replayed with ``fitted``'s memory,
    checkpointing and disk."""
    configs: dict[str, Mapping[str, fo.FlinkValue]] = {
        name: {fo.PREDEFINED_OPTIONS: name} for name in predefined
    }
    configs.update(extra or {})
    on_trace = dataclasses.replace(fitted, states=(), trace=str(recorded_trace))
    rec: list[float] = []
    fit: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tuner-fitted-") as tmp:
        fitted_trace = Path(tmp) / "fitted.parquet"
        write_trace(
            fitted_trace,
            stream_header(fitted),
            generate(fitted, "preload"),
            generate(fitted, "measure"),
        )
        # Interleaved: recording, fitted, recording, fitted ... so drift hits both alike.
        for settings in configs.values():
            rec.append(_measure(on_trace, recorded_trace, settings))
            fit.append(_measure(fitted, fitted_trace, settings))
    return Agreement(labels=tuple(configs), recorded=tuple(rec), fitted=tuple(fit))
