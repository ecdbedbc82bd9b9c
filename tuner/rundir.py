"""A run directory: where one study's inputs, raw results and outputs live.

Layout (names are a contract, scripts rely on them)::

    run.json            what ran, its status (running | incomplete | complete | failed)
    workload.yaml       the resolved input
    trace.parquet       the operation stream every trial replays (generated once per run)
    study.db            the Optuna study (SQLite; optuna-dashboard opens it)
    trials.csv          one row per measurement: baselines, trials, re-measurements
    config.yaml, flink-conf.yaml, flink-deployment.yaml, rocksdb-options.ini
    recommendation.json, report.md, plots/*.png

Every file is written atomically; an existing run is never overwritten (only resumed).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from tuner.confirm import CONFIRMATION_CSV
from tuner.errors import TunerError
from tuner.fileio import atomic_write_text, create_exclusive_text, fsync_dir
from tuner.flink.options import FlinkValue
from tuner.search.study import Candidate, Kind, TrialRecord

RUN_FORMAT = "tuner-run"
RUN_FORMAT_VERSION = 1
RunStatus = Literal["running", "incomplete", "complete", "failed"]

FIXED_COLUMNS: tuple[str, ...] = (
    "seq",
    "label",
    "kind",
    "trial_number",
    "repeat",
    "status",
    "reason",
    "started_at",
    "wall_s",
    "rss_peak_bytes",
    "settings",
)


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory, and the few operations on its bookkeeping files."""

    path: Path

    @property
    def meta(self) -> Path:
        """run.json."""
        return self.path / "run.json"

    @property
    def trials_csv(self) -> Path:
        """trials.csv."""
        return self.path / "trials.csv"

    @property
    def study_db(self) -> Path:
        """study.db (Optuna, SQLite)."""
        return self.path / "study.db"

    @property
    def storage_url(self) -> str:
        """The SQLAlchemy URL of study.db."""
        return f"sqlite:///{self.study_db.resolve()}"

    @property
    def trace(self) -> Path:
        """trace.parquet: the operation stream of this run."""
        return self.path / "trace.parquet"

    @property
    def workload_yaml(self) -> Path:
        """workload.yaml: the resolved input."""
        return self.path / "workload.yaml"

    @property
    def work(self) -> Path:
        """Scratch space for trial databases; removed when trials end."""
        return self.path / ".work"

    def read_meta(self) -> dict[str, Any]:
        """run.json as a dict; refuses a newer format."""
        try:
            meta = json.loads(self.meta.read_text())
        except FileNotFoundError:
            raise TunerError(
                "not a tuner run directory (no run.json)", file=str(self.path)
            ) from None
        except json.JSONDecodeError as exc:
            raise TunerError(f"run.json is not valid JSON: {exc}", file=str(self.meta)) from None
        if meta.get("format") != RUN_FORMAT:
            raise TunerError("run.json is not a tuner run", file=str(self.meta))
        if int(meta.get("version", 0)) > RUN_FORMAT_VERSION:
            raise TunerError(
                f"run format version {meta['version']} is newer than this tuner reads "
                f"({RUN_FORMAT_VERSION}); upgrade tuner",
                file=str(self.meta),
            )
        return cast(dict[str, Any], meta)

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        """Rewrite run.json."""
        data = {"format": RUN_FORMAT, "version": RUN_FORMAT_VERSION, **meta}
        atomic_write_text(self.meta, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def set_status(self, status: RunStatus, **extra: Any) -> None:
        """Update the run's status in run.json."""
        meta = self.read_meta()
        meta.update(status=status, updated_at=time.time(), **extra)
        self.write_meta(meta)

    def write_records(self, records: Sequence[TrialRecord]) -> None:
        """Rewrite trials.csv with every record (atomic: the old file stays until replaced)."""
        atomic_write_text(self.trials_csv, records_to_csv(records))

    def read_records(self) -> list[TrialRecord]:
        """The records in trials.csv (empty when there is none yet)."""
        if not self.trials_csv.exists():
            return []
        return records_from_csv(self.trials_csv.read_text(), str(self.trials_csv))

    def read_confirmation_records(self) -> list[TrialRecord]:
        """The confirmation's measurements on Flink's backend, confirmation.csv (empty when
        the run has none)."""
        path = self.path / CONFIRMATION_CSV
        if not path.exists():
            return []
        return records_from_csv(path.read_text(), str(path))


def new_run_dir(results: Path, name: str, now: float | None = None) -> RunDir:
    """A fresh ``<results>/<name>-<timestamp>`` directory; never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = results / f"{name}-{stamp}"
    for n in itertools.count(1):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            results.mkdir(parents=True, exist_ok=True)
            # mkdir is the claim: of runs started in the same second, each creates its own.
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise TunerError(
                f"cannot create the run directory: {exc.strerror}", file=str(path)
            ) from None
        return claim_run_dir(path)
    raise AssertionError("unreachable")


def claim_run_dir(path: Path) -> RunDir:
    """Create ``path`` for a new run; refuses a directory that already holds anything.

    The claim is run.json, created only where none is (an empty directory made beforehand is
    claimed too): of two runs started on one directory at once, one gets it and the other is
    refused, where a check followed by a mkdir would let both write into it."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise _taken(path)
    meta = {"format": RUN_FORMAT, "version": RUN_FORMAT_VERSION, "status": "running"}
    try:
        path.mkdir(parents=True, exist_ok=True)
        fsync_dir(path.parent)
        create_exclusive_text(RunDir(path).meta, json.dumps(meta, indent=2) + "\n")
    except FileExistsError:
        raise _taken(path) from None
    except OSError as exc:
        raise TunerError(
            f"cannot write the output directory: {exc.strerror}", file=str(path)
        ) from None
    return RunDir(path)


def _taken(path: Path) -> TunerError:
    return TunerError(
        "output directory exists and is not empty; pass --resume to continue that run, "
        "or choose another --out",
        file=str(path),
    )


def _settings_json(settings: Mapping[str, FlinkValue]) -> str:
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()})


def _settings_from_json(text: str) -> dict[str, FlinkValue]:
    raw = json.loads(text) if text else {}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}


def _display(value: FlinkValue) -> str | float | int | bool:
    return ";".join(value) if isinstance(value, tuple) else value


def records_to_csv(records: Sequence[TrialRecord]) -> str:
    """trials.csv text: fixed columns, then metrics, then one column per Flink setting."""
    # A metric may not shadow a fixed column (the worker's own wall time and RSS win).
    metric_cols = sorted({k for r in records for k in r.metrics} - set(FIXED_COLUMNS))
    setting_cols = sorted({k for r in records for k in r.candidate.settings})
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*FIXED_COLUMNS, *metric_cols, *setting_cols])
    for r in records:
        c = r.candidate
        fixed = [
            r.seq,
            c.label,
            c.kind,
            "" if c.trial_number is None else c.trial_number,
            c.repeat,
            r.status,
            r.reason,
            f"{r.started_at:.3f}",
            f"{r.wall_s:.3f}",
            r.rss_peak_bytes,
            _settings_json(c.settings),
        ]
        metrics = [_fmt_metric(r.metrics.get(k)) for k in metric_cols]
        settings = [_display(c.settings[k]) if k in c.settings else "" for k in setting_cols]
        w.writerow([*fixed, *metrics, *settings])
    return out.getvalue()


def _fmt_metric(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(float(v))


def records_from_csv(text: str, file: str) -> list[TrialRecord]:
    """Parse trials.csv back into records (for --resume and reports)."""
    reader = csv.DictReader(io.StringIO(text))
    fields = reader.fieldnames or []
    missing = [c for c in FIXED_COLUMNS if c not in fields]
    if missing:
        raise TunerError(f"missing columns {missing}", file=file)
    setting_start = fields.index("settings") + 1
    records = []
    for i, row in enumerate(reader, start=2):
        try:
            settings = _settings_from_json(row["settings"])
            metric_names = [f for f in fields[setting_start:] if f not in settings]
            metrics = {k: float(row[k]) for k in metric_names if row.get(k) not in (None, "")}
            cand = Candidate(
                label=row["label"],
                kind=cast(Kind, row["kind"]),
                settings=settings,
                trial_number=int(row["trial_number"]) if row["trial_number"] else None,
                repeat=int(row["repeat"]),
            )
            records.append(
                TrialRecord(
                    seq=int(row["seq"]),
                    candidate=cand,
                    status=cast(Literal["ok", "failed", "skipped"], row["status"]),
                    reason=row["reason"],
                    metrics=metrics,
                    wall_s=float(row["wall_s"]),
                    rss_peak_bytes=int(row["rss_peak_bytes"]),
                    started_at=float(row["started_at"]),
                )
            )
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise TunerError(f"malformed row: {exc}", file=file, where=f"line {i}") from None
    return records
