"""The read API: a run directory as pandas DataFrames, for the report and for notebooks.

A run writes ``trials.csv`` (one row per measurement) and ``study.db``; everything here reads
those files and never writes, so a report can be re-rendered, and a run inspected while it is
still going, without touching its results. ``run.json`` of a newer format is refused.

Example::

    run = load_run("results/orders-20250101-120000")
    run.baselines()[["label", "ops_per_s", "read_p99_us"]]
    run.gain()
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from tuner.costmodel import Disk, disk_from, score
from tuner.errors import TunerError
from tuner.recommend import Gain, measure_gain
from tuner.rundir import FIXED_COLUMNS, RunDir
from tuner.search.study import (
    DEFAULT_LABEL,
    THROUGHPUT,
    TrialRecord,
    pareto_front,
)

__all__ = [
    "RECOMMENDATION_JSON",
    "Run",
    "list_runs",
    "load_run",
    "trials_frame",
]

RECOMMENDATION_JSON = "recommendation.json"


def trials_frame(records: Sequence[TrialRecord]) -> pd.DataFrame:
    """One row per record: the fixed columns of trials.csv, one float column per metric (NaN
    where a measurement lacks it) and one column per Flink key (NaN where a candidate leaves it
    at its predefined/default value; list options such as compression per level as tuples).
    ``settings`` holds each candidate's settings as a dict.

    A metric named like a fixed column (``wall_s``, ``rss_peak_bytes``) is not repeated: the
    fixed column, measured by the worker around the whole trial, is the one kept.
    """
    metric_cols = sorted({k for r in records for k in r.metrics} - set(FIXED_COLUMNS))
    setting_cols = sorted({k for r in records for k in r.candidate.settings})
    rows: list[dict[str, Any]] = []
    for r in records:
        c = r.candidate
        row: dict[str, Any] = {
            "seq": r.seq,
            "label": c.label,
            "kind": c.kind,
            "trial_number": c.trial_number,
            "repeat": c.repeat,
            "status": r.status,
            "reason": r.reason,
            "started_at": r.started_at,
            "wall_s": r.wall_s,
            "rss_peak_bytes": r.rss_peak_bytes,
            "settings": dict(c.settings),
        }
        row.update({k: float(r.metrics.get(k, math.nan)) for k in metric_cols})
        row.update({k: c.settings[k] for k in setting_cols if k in c.settings})
        rows.append(row)
    # Explicit columns: a run with no measurement yet still has every fixed column.
    df = pd.DataFrame(rows, columns=[*FIXED_COLUMNS, *metric_cols, *setting_cols])
    df["seq"] = df["seq"].astype("int64")
    df["repeat"] = df["repeat"].astype("int64")
    # Baselines and re-measurements of the default have no trial number: a nullable int.
    df["trial_number"] = df["trial_number"].astype("Int64")
    for col in ("started_at", "wall_s", *metric_cols):
        df[col] = df[col].astype("float64")
    df["rss_peak_bytes"] = df["rss_peak_bytes"].astype("int64")
    for col in setting_cols:
        df[col] = _numeric_if_possible(df[col])
    return df


def _numeric_if_possible(col: pd.Series) -> pd.Series:
    """A settings column as float when every value set is a number (sizes, counts, ratios),
    as nullable booleans when every value is a flag, left as is otherwise (enum names, lists)."""
    present = col.dropna()
    if len(present) and all(isinstance(v, bool) for v in present):
        return col.astype("boolean")
    if len(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    ):
        return col.astype("float64")
    return col


# eq=False: comparing runs would compare DataFrames, which has no single truth value.
@dataclass(frozen=True, eq=False)
class Run:
    """One run directory, read: its run.json, its records and the records as a DataFrame."""

    path: Path
    meta: Mapping[str, Any]
    records: tuple[TrialRecord, ...]
    trials: pd.DataFrame = field(repr=False)

    @property
    def name(self) -> str:
        """The directory's name (``<workload>-<timestamp>`` for runs the CLI created)."""
        return self.path.name

    @property
    def status(self) -> str:
        """``running``, ``incomplete``, ``complete`` or ``failed`` as run.json says."""
        return str(self.meta.get("status", "unknown"))

    @property
    def complete(self) -> bool:
        """Whether the run finished every phase (baselines, search, re-measurement)."""
        return self.status == "complete"

    def _kind(self, kind: str) -> pd.DataFrame:
        return self.trials[self.trials["kind"] == kind].reset_index(drop=True)

    def baselines(self) -> pd.DataFrame:
        """Measurements of Flink's predefined option sets (``DEFAULT`` is Flink's default)."""
        return self._kind("baseline")

    def search(self) -> pd.DataFrame:
        """Optuna's trials, every status (filter on ``status == "ok"`` for measured ones)."""
        return self._kind("search")

    def remeasured(self) -> pd.DataFrame:
        """The default and the recommendation re-measured back to back, one row per repeat."""
        return self._kind("remeasure")

    def pareto(self) -> pd.DataFrame:
        """Measured search trials on the throughput/read-p99 front, fastest last."""
        front = pareto_front([r for r in self.records if r.candidate.kind == "search" and r.ok])
        seqs = [r.seq for r in front]
        by_seq = self.trials.set_index("seq", drop=False)
        return by_seq.loc[seqs].reset_index(drop=True)

    def best_search(self) -> pd.Series | None:
        """The measured search trial with the highest throughput, or None before any."""
        ok = self.search()
        if THROUGHPUT not in ok:
            return None
        ok = ok[(ok["status"] == "ok") & ok[THROUGHPUT].notna()]
        if not len(ok):
            return None
        return ok.iloc[int(ok[THROUGHPUT].to_numpy().argmax())]

    def gain(self, metric: str = THROUGHPUT) -> Gain | None:
        """Recommended vs default from the interleaved re-measurements; None before them."""
        return measure_gain(self.records, metric, str(self.meta.get("engine") or "rocksdict"))

    def recommendation(self) -> dict[str, Any] | None:
        """recommendation.json as written by the run, or None when the run wrote none."""
        path = self.path / RECOMMENDATION_JSON
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise TunerError(f"not valid JSON: {exc}", file=str(path)) from None
        if not isinstance(data, dict):
            raise TunerError("expected a JSON object", file=str(path))
        return data

    def study(self) -> optuna.Study | None:
        """The Optuna study in study.db, opened read-only; None when there is no study.db.

        Read-only (SQLite ``mode=ro``) so that inspecting a run that is still going can never
        write to the file its study loop writes to.
        """
        shared = self.meta.get("storage")
        if isinstance(shared, str):  # a study shared by many machines (tuner run --storage)
            from tuner.search.storage import load_shared_study

            return load_shared_study(shared, str(self.meta.get("study_name")))
        db = RunDir(self.path).study_db
        if not db.exists():
            return None
        url = f"sqlite:///file:{db.resolve()}?mode=ro&uri=true"
        try:
            storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
            names = [s.study_name for s in storage.get_all_studies()]
        except Exception as exc:  # SQLAlchemy/Optuna raise many types for a damaged file
            raise TunerError(f"cannot open the Optuna study: {exc}", file=str(db)) from None
        wanted = self.meta.get("study_name")
        if isinstance(wanted, str) and wanted in names:
            name = wanted
        elif len(names) == 1:
            name = names[0]
        else:
            raise TunerError(
                f"expected one Optuna study, found {len(names)} ({', '.join(names)}); "
                "set study_name in run.json",
                file=str(db),
            )
        return optuna.load_study(study_name=name, storage=storage)


def rescored(records: Sequence[TrialRecord], disk: Disk) -> list[TrialRecord]:
    """The records with every finished measurement scored for ``disk`` from its raw counters."""
    return [replace(r, metrics=score(r.metrics, disk)) if r.ok else r for r in records]


def load_run(path: str | Path, disk: str | None = None) -> Run:
    """Read the run directory at ``path``; TunerError when it is not one (or is newer).

    ``disk`` (a tuner.costmodel preset) re-scores every measurement for that disk from its raw
    counters: ``ops_per_s`` becomes the modelled throughput there, nothing is re-run.
    """
    p = Path(path)
    if not p.is_dir():
        raise TunerError("no such run directory", file=str(p))
    rd = RunDir(p)
    meta = rd.read_meta()
    records = tuple(rd.read_records())
    if disk is not None:
        target = disk_from(disk)
        records = tuple(rescored(records, target))
        meta = {**meta, "scored_disk": target.name, "scored_disk_model": target.describe()}
    return Run(p, meta, records, trials_frame(records))


_LIST_COLUMNS: tuple[str, ...] = (
    "name",
    "path",
    "workload",
    "status",
    "created_at",
    "trials",
    "failed",
    "skipped",
    "best_ops_per_s",
    "default_ops_per_s",
    "gain",
    "error",
)


def _summary(run: Run) -> dict[str, Any]:
    search = run.search()
    best = run.best_search()
    default = run.baselines()
    default = default[(default["label"] == DEFAULT_LABEL) & (default["status"] == "ok")]
    gain = run.gain()
    created = _created_at(run.meta)
    return {
        "name": run.name,
        "path": str(run.path),
        "workload": run.meta.get("workload"),
        "status": run.status,
        "created_at": pd.to_datetime(created, unit="s") if created is not None else pd.NaT,
        "trials": int((search["status"] == "ok").sum()),
        "failed": int((run.trials["status"] == "failed").sum()),
        "skipped": int((run.trials["status"] == "skipped").sum()),
        "best_ops_per_s": float(best[THROUGHPUT]) if best is not None else math.nan,
        "default_ops_per_s": (
            float(default[THROUGHPUT].iloc[0])
            if len(default) and THROUGHPUT in default
            else math.nan
        ),
        "gain": gain.median_gain if gain is not None else math.nan,
        "error": "",
    }


def list_runs(results_dir: str | Path) -> pd.DataFrame:
    """One row per run directory under ``results_dir``, newest first.

    Columns: name, path, workload, status, created_at, trials (measured search trials),
    failed, skipped, best_ops_per_s, default_ops_per_s, gain (median relative gain of the
    re-measured recommendation, NaN when not re-measured), error. Directories without run.json
    are not runs and are left out; a run that cannot be read is listed with status
    ``unreadable`` and the reason in ``error``, so one damaged run does not hide the others.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise TunerError("no such results directory", file=str(root))
    rows: list[dict[str, Any]] = []
    order: list[float] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if not RunDir(d).meta.exists():
            continue
        try:
            run = load_run(d)
        except TunerError as exc:
            rows.append({"name": d.name, "path": str(d), "status": "unreadable", "error": str(exc)})
            order.append(d.stat().st_mtime)
            continue
        rows.append(_summary(run))
        # The directory's mtime stands in for runs whose run.json has no creation time.
        created = _created_at(run.meta)
        order.append(created if created is not None else d.stat().st_mtime)
    df = pd.DataFrame(rows, columns=list(_LIST_COLUMNS))
    df["_order"] = order
    return df.sort_values("_order", ascending=False).drop(columns="_order").reset_index(drop=True)


def _created_at(meta: Mapping[str, Any]) -> float | None:
    """run.json's creation time (seconds since the epoch), None when absent or not a number."""
    x = meta.get("created_at")
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None
