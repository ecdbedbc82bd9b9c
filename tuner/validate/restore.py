"""``tuner validate --restore``: the run's restore figures against a real Flink job's restore.

Each Flink run of the validation then ends with a real restore: the job's state at the end of
the measured phase checkpointed (incremental, to a local directory), the job cancelled, the same
job submitted from that checkpoint, and the time its keyed operator's subtask spent
INITIALIZING taken from Flink's own execution-state timestamps (what Flink's web UI shows; the
RocksDB backend is built from the checkpoint then). This module sets those figures beside what
the run measured for the same configuration: the run's own restore (trials.csv, measured by the
run's engine) and, when the run was confirmed, Flink's state backend driven without a job
(confirmation.csv).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.confirm import MINIMAL_LABEL
from tuner.search.study import RECOMMENDED_LABEL, TrialRecord
from tuner.validate.fidelity import medians, replay_rates
from tuner.validate.job import FlinkRun

__all__ = ["AGREEMENT", "RestoreCheck", "render_restore", "restore_checks"]

# The bar: a restore figure within a quarter of the real job's restore.
AGREEMENT = 0.25
RESTORE_METRIC = "restore_s"


@dataclass(frozen=True)
class RestoreCheck:
    """One configuration: the run's restore figures and the real job's."""

    label: str
    run_s: float  # the run's own median restore (trials.csv, its engine), nan when absent
    backend_s: float  # Flink's backend without a job (confirmation.csv), nan when absent
    real_s: float  # median of the real job's restores
    real_min_s: float
    real_max_s: float
    real_runs: int
    real_rocksdb_s: float = math.nan  # median of the RocksDB backend's part (Flink's log)

    def off_by(self, predicted: float, real: float | None = None) -> float:
        """``predicted / real - 1`` against the whole real restore, or ``real`` when given
        (nan when either is missing)."""
        real = self.real_s if real is None else real
        if not (math.isfinite(predicted) and math.isfinite(real) and real > 0):
            return math.nan
        return predicted / real - 1.0


def _restore_medians(
    records: Sequence[TrialRecord], recommended_as: str | None
) -> dict[str, float]:
    """Median restore time per label; ``recommended_as`` stands for `recommended` (as in
    :func:`tuner.validate.fidelity.compute_fidelity`)."""
    kinds = ("baseline", "remeasure", "search")
    out = medians(replay_rates(records, RESTORE_METRIC, kinds))
    if recommended_as is not None:
        out[RECOMMENDED_LABEL] = out.get(recommended_as, math.nan)
    return out


def restore_checks(
    runs: Sequence[FlinkRun],
    records: Sequence[TrialRecord],
    backend_records: Sequence[TrialRecord] = (),
    recommended_as: str | None = None,
) -> list[RestoreCheck]:
    """The restore figures per configuration label of ``runs`` (runs without a real restore
    are left out), in the order the labels first appear.

    ``recommended_as`` names the label the run's config.yaml holds when it is not the
    re-measured search result (:func:`tuner.validate.run.recommended_stand_in`); on the
    confirmation's records the emitted minimal recommendation is `minimal` otherwise.
    """
    real: dict[str, list[float]] = {}
    rocksdb: dict[str, list[float]] = {}
    for r in runs:
        if r.restore is not None and math.isfinite(r.restore.initializing_s):
            real.setdefault(r.label, []).append(r.restore.initializing_s)
            if math.isfinite(r.restore.rocksdb_s):
                rocksdb.setdefault(r.label, []).append(r.restore.rocksdb_s)
    run = _restore_medians(records, recommended_as)
    backend = _restore_medians(backend_records, recommended_as or MINIMAL_LABEL)
    return [
        RestoreCheck(
            label=label,
            run_s=run.get(label, math.nan),
            backend_s=backend.get(label, math.nan),
            real_s=statistics.median(vals),
            real_min_s=min(vals),
            real_max_s=max(vals),
            real_runs=len(vals),
            real_rocksdb_s=statistics.median(rocksdb[label]) if label in rocksdb else math.nan,
        )
        for label, vals in real.items()
    ]


def _ms(v: float) -> str:
    return "not measured" if not math.isfinite(v) else f"{v * 1000:,.0f} ms"


def _off(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    verdict = "within" if abs(v) <= AGREEMENT else "outside"
    return f"{v:+.0%} ({verdict} ±{AGREEMENT:.0%})"


# What measured trials.csv's restore, as a column names it.
_ENGINE_COLUMNS = {"rocksdict": "replay", "flink-backend": "Flink's backend", "flink": "Flink job"}


def render_restore(checks: Sequence[RestoreCheck], run_engine: str = "rocksdict") -> list[str]:
    """validation.md's restore section (empty when no run measured a restore); ``run_engine``
    is the engine that measured the run's trials.csv."""
    if not checks:
        return []
    name = _ENGINE_COLUMNS.get(run_engine, run_engine)
    lines = [
        "### Restore: the run's figures against a real Flink job's",
        "",
        "Each Flink run above then checkpointed the state at the end of its measured phase "
        "(to a local directory), was cancelled, and the same job was restored from that "
        "checkpoint: the real restore is how long the keyed operator's subtask was "
        "INITIALIZING, from Flink's own execution-state timestamps (its web UI's figure); of "
        "it, the RocksDB backend's own restore is the time from Flink's log line starting the "
        "incremental restore to the one saying the backend is built (millisecond stamps).",
        "",
        f"| configuration | real Flink restore (median, range, runs) | of it, RocksDB's "
        f"| the run ({name}) | the run vs real | confirmation (Flink's backend) "
        "| confirmation vs real | confirmation vs RocksDB's part |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in checks:
        lines.append(
            f"| {c.label} | {_ms(c.real_s)} ({_ms(c.real_min_s)} .. {_ms(c.real_max_s)}, "
            f"{c.real_runs}) | {_ms(c.real_rocksdb_s)} | {_ms(c.run_s)} | "
            f"{_off(c.off_by(c.run_s))} | {_ms(c.backend_s)} | {_off(c.off_by(c.backend_s))} | "
            f"{_off(c.off_by(c.backend_s, c.real_rocksdb_s))} |"
        )
    return lines
