"""One tuning run, end to end: prepare the run directory, generate the operation stream once,
run the study with every measurement isolated in its own process, then write the
recommendation, the Flink config files and the report.

This is the library behind ``tuner run``; the CLI only parses arguments and prints.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from tuner import emitters
from tuner.confirm import (
    CONFIRM_ENGINE,
    CONFIRMATION_CSV,
    DEFAULT_TOP,
    Confirmation,
    confirmed_recommendation,
    decide,
    run_confirmation,
    select_targets,
)
from tuner.costmodel import Disk, disk_from, score
from tuner.engine import flink_backend
from tuner.errors import TunerError
from tuner.fileio import atomic_write_text
from tuner.recommend import Recommendation, recommend
from tuner.report import render_report
from tuner.report.data import param_importances
from tuner.rundir import (
    RunDir,
    RunStatus,
    claim_run_dir,
    new_run_dir,
    records_from_csv,
    records_to_csv,
)
from tuner.search.measure import ENGINES, measure_isolated
from tuner.search.study import (
    Candidate,
    Progress,
    StudyConfig,
    StudyLoop,
    StudyOutcome,
    TrialRecord,
    create_study,
)
from tuner.search.worker import Measurement
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import read_trace, write_trace
from tuner.validate.flink import find_flink
from tuner.workload import Workload, dump_workload, load_workload

log = logging.getLogger(__name__)

STUDY_NAME = "tuner"
# Headroom over the RocksDB budget before the watchdog stops a trial: the Python interpreter,
# numpy/pyarrow and the operation batches in flight are not part of what Flink budgets.
DEFAULT_RSS_MARGIN = 384 << 20
DEFAULT_TRIAL_TIMEOUT_S = 900.0
ADAPTIVE_TIMEOUT_FLOOR_S = 120.0

# What the replay cannot do as Flink does; run.json carries it into every report.
DEVIATIONS: tuple[str, ...] = (
    "ListState.add uses RocksDB's merge operator in Flink; rocksdict has none, so an append is a "
    "blind put of the element under the list key plus a sequence suffix, and a read combines "
    "them with one prefix scan (same write path, reads cost a scan instead of a merge).",
    "The block cache's high-priority pool (state.backend.rocksdb.memory.high-prio-pool-ratio) "
    "cannot be set through rocksdict: the shared cache runs RocksDB's default pool ratio (0.5) "
    "instead of Flink's 0.1 for index and filter blocks.",
    "Flink's TTL compaction filter is not available: expired state leaves RocksDB only when it "
    "is read (the stream carries Flink's cleanup-on-access clear), never during compaction.",
    "rocksdict bundles RocksDB 9.8.4; Flink 2.x runs FRocksDB 8.10.0 (Flink 1.20: FRocksDB 6.20).",
)


@dataclass(frozen=True)
class RunSettings:
    """How to run a study (everything from the command line except the workload)."""

    trials: int = 30
    seed: int | None = None
    objective: str = "throughput"
    disk: str | None = None  # a cost-model preset; None: the workload's disk
    jobs: int = 1
    engine: str = "rocksdict"  # or "flink" (a real Flink job) or "flink-backend" (tuner[flink])
    repeats: int = 3
    # Confirm the recommendation on the flink-backend engine: None = when it is available.
    confirm: bool | None = None
    confirm_top: int = DEFAULT_TOP
    timeout_s: float = DEFAULT_TRIAL_TIMEOUT_S
    rss_margin: int = DEFAULT_RSS_MARGIN


@dataclass(frozen=True)
class RunSummary:
    """What a run left behind."""

    run_dir: Path
    status: str
    recommendation: Recommendation | None
    failed: int
    skipped: int
    confirmation: Confirmation | None = None
    confirm_note: str = ""  # why there is no confirmation, when there is none


def estimate_disk_bytes(workload: Workload) -> int:
    """A generous estimate of the disk a trial's database and checkpoints need."""
    raw = 0
    for s in workload.states:
        per_key = s.value_size.value * max(s.entries_per_key, s.elements_per_key)
        raw += s.keys * (per_key + s.key_size + 16)
    # SSTs + memtable flushes + one checkpoint's hard links + the trace itself.
    return max(256 << 20, 6 * raw)


def check_disk(path: Path, need: int) -> None:
    """Fail early, with a clear message, when the disk cannot hold a trial."""
    free = shutil.disk_usage(path).free
    if free < need:
        raise TunerError(
            f"only {free >> 20} MiB free on this disk; a trial needs about {need >> 20} MiB",
            file=str(path),
        )


def _measure_candidate(
    workload: Workload,
    rd: RunDir,
    trace: Path,
    settings: RunSettings,
    disk: Disk,
    engine: str = "rocksdict",
) -> Callable[[Candidate], Measurement]:
    counter = iter(range(1 << 30))
    durations: list[float] = []

    def measure(candidate: Candidate) -> Measurement:
        workdir = rd.work / f"m{time.time_ns()}-{next(counter)}"
        # A hung trial (RocksDB can wait on a flush for ever) must not hold the study for the
        # full --trial-timeout once we know how long a trial takes: 10x the median, 2 min at least.
        timeout = settings.timeout_s
        if durations:
            timeout = min(timeout, max(ADAPTIVE_TIMEOUT_FLOOR_S, 10 * statistics.median(durations)))
        m = measure_isolated(
            workload,
            trace,
            candidate.settings,
            workdir,
            timeout_s=timeout,
            rss_margin=settings.rss_margin,
            engine=engine,
        )
        if m.status != "ok":
            return m
        durations.append(m.wall_s)
        return replace(m, metrics=score(m.metrics, disk))

    return measure


def _flink_measure(
    workload: Workload, rd: RunDir, trace: Path, settings: RunSettings
) -> Callable[[Candidate], Measurement]:
    """Measurements on real Flink: no cost model, Flink's own records/s is the objective."""
    from tuner.validate.engine import FlinkMeasure

    return FlinkMeasure(workload, trace, rd.work, settings.timeout_s)


def start_run(workload: Workload, out: Path | None, results_root: Path) -> RunDir:
    """Create the run directory and its inputs (status ``running``)."""
    rd = claim_run_dir(out) if out is not None else new_run_dir(results_root, workload.name)
    rd.write_meta(
        {
            "workload": workload.name,
            "source": workload.source,
            "status": "running",
            "created_at": time.time(),
            "deviations": list(DEVIATIONS),
        }
    )
    atomic_write_text(rd.workload_yaml, dump_workload(workload))
    return rd


def prepare_trace(workload: Workload, rd: RunDir) -> Path:
    """The operation stream every trial replays: the workload's recorded trace, or the
    generator's stream written once into the run directory."""
    if workload.trace is not None:
        return Path(workload.trace)
    if not rd.trace.exists():
        write_trace(
            rd.trace,
            stream_header(workload),
            generate(workload, "preload"),
            generate(workload, "measure"),
        )
    return rd.trace


def run_study(
    workload: Workload,
    rd: RunDir,
    settings: RunSettings,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunSummary:
    """Run (or resume) the study in ``rd`` and write every output."""
    # Trial databases a killed run left behind.
    shutil.rmtree(rd.work, ignore_errors=True)
    check_disk(rd.path, estimate_disk_bytes(workload) * settings.jobs)
    meta = rd.read_meta()
    seed = settings.seed if settings.seed is not None else workload.seed
    objective = settings.objective
    if objective not in ("throughput", "pareto"):
        raise TunerError(f"unknown objective {objective!r}; expected throughput or pareto")
    engines = (*ENGINES, "flink")
    if settings.engine not in engines:
        raise TunerError(
            f"unknown engine {settings.engine!r}; expected one of {', '.join(engines)}"
        )
    if settings.confirm and settings.engine != "flink" and not flink_backend.available():
        # Said before the search, not after it.
        raise TunerError(
            f"--confirm needs the flink-backend engine: {flink_backend.INSTALL_HINT}",
            where="--confirm",
        )
    if settings.engine == "flink-backend" and not flink_backend.available():
        raise TunerError(
            f"--engine flink-backend needs Flink 2.x and a JDK 17: {flink_backend.INSTALL_HINT}",
            where="--engine",
        )
    if settings.engine == "flink" and objective == "pareto":
        raise TunerError(
            "--objective pareto needs read latencies, which the Flink engine does not report; "
            "use the rocksdict engine",
            where="--objective",
        )
    config = StudyConfig(
        trials=settings.trials,
        seed=seed,
        objective="pareto" if objective == "pareto" else "throughput",
        repeats=settings.repeats,
        jobs=settings.jobs,
    )
    disk = disk_from(settings.disk) if settings.disk else workload.disk
    rd.set_status(
        "running",
        trials=settings.trials,
        seed=seed,
        objective=objective,
        jobs=settings.jobs,
        engine=settings.engine,
        disk=disk.name,
        disk_model=disk.describe(),
    )
    trace = prepare_trace(workload, rd)
    column_families = list(read_trace(trace).header.names)
    study = create_study(rd.storage_url, STUDY_NAME, config)
    earlier = rd.read_records()
    records: list[TrialRecord] = list(earlier)

    def sink(rec: TrialRecord) -> None:
        records.append(rec)
        rd.write_records(records)

    loop = StudyLoop(
        workload,
        study,
        config,
        _flink_measure(workload, rd, trace, settings)
        if settings.engine == "flink"
        else _measure_candidate(workload, rd, trace, settings, disk, settings.engine),
        sink,
        earlier=earlier,
        on_progress=on_progress,
        should_stop=should_stop,
        column_families=len(column_families),
    )
    confirmation: Confirmation | None = None
    note = ""
    try:
        outcome = loop.run()
        if not outcome.interrupted and outcome.best_settings is not None:
            confirmation, note, complete = _confirm(
                workload, rd, trace, settings, disk, outcome.records, should_stop, on_progress
            )
            outcome.interrupted = not complete
    finally:
        shutil.rmtree(rd.work, ignore_errors=True)
    rec = finish(workload, rd, study, outcome, column_families, confirmation, note, settings.engine)
    status: RunStatus = "incomplete" if outcome.interrupted else "complete"
    rd.set_status(status, finished_at=time.time(), created_at=meta.get("created_at"))
    render_report(rd.path)
    return RunSummary(
        rd.path,
        status,
        rec,
        sum(1 for r in outcome.records if r.status == "failed"),
        sum(1 for r in outcome.records if r.status == "skipped"),
        confirmation,
        note,
    )


def _confirm(
    workload: Workload,
    rd: RunDir,
    trace: Path,
    settings: RunSettings,
    disk: Disk,
    records: list[TrialRecord],
    should_stop: Callable[[], bool],
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[Confirmation | None, str, bool]:
    """The confirmation on the flink-backend engine, when asked for and available: (the
    decision, why there is none, whether every measurement ran)."""
    if settings.confirm is False:
        return None, "confirmation switched off (--no-confirm)", True
    if settings.engine == "flink":
        return None, "every candidate was measured on a real Flink job", True
    if not flink_backend.available():
        if settings.confirm:
            raise TunerError(
                f"--confirm needs the flink-backend engine: {flink_backend.INSTALL_HINT}",
                where="--confirm",
            )
        hint = flink_backend.INSTALL_HINT
        return None, f"the flink-backend engine is not installed ({hint})", True
    path = rd.path / CONFIRMATION_CSV
    earlier = records_from_csv(path.read_text(), str(path)) if path.exists() else []
    done: list[TrialRecord] = list(earlier)

    def sink(rec: TrialRecord) -> None:
        done.append(rec)
        atomic_write_text(path, records_to_csv(done))

    targets = select_targets(records, settings.confirm_top)
    measure = _measure_candidate(workload, rd, trace, settings, disk, CONFIRM_ENGINE)
    started = time.monotonic()

    def progress(label: str, i: int, total: int) -> None:
        if on_progress is not None:
            eta = (time.monotonic() - started) / i * (total - i) if i else None
            on_progress(Progress(f"confirm {label} on {CONFIRM_ENGINE}", i, total, None, None, eta))

    measured, complete = run_confirmation(
        targets, settings.repeats, measure, sink, earlier, should_stop, time.time, progress
    )
    if not complete:
        total = len(targets) * settings.repeats
        return (
            None,
            f"the confirmation stopped after {len(measured)} of {total} measurements; "
            f"`tuner run --resume {rd.path}` finishes it",
            False,
        )
    version = find_flink().version
    return decide(measured, targets, flink_version=version), "", True


def finish(
    workload: Workload,
    rd: RunDir,
    study: optuna.Study,
    outcome: StudyOutcome,
    column_families: list[str],
    confirmation: Confirmation | None = None,
    confirm_note: str = "",
    engine: str = "rocksdict",
) -> Recommendation | None:
    """Write recommendation.json and the Flink config files: the confirmation's choice when
    there is one (or "keep your configuration"), else the best search trial, marked
    unconfirmed."""
    if outcome.best_settings is None:
        return None
    importances = param_importances(study) or {}
    rec = recommend(
        workload,
        outcome.best_settings,
        outcome.best_trial_number,
        outcome.records,
        importances,
        engine,
    )
    replay_gain = rec.gain
    if confirmation is not None:
        rec = confirmed_recommendation(workload, rec, confirmation, outcome, importances, engine)
    else:
        rec = replace(
            rec,
            headline=f"{rec.headline}; UNCONFIRMED: not re-measured on Flink's own state "
            f"backend ({confirm_note})",
        )
    payload: dict[str, Any] = {
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in rec.settings.items()},
        "comments": dict(rec.comments),
        "headline": rec.headline,
        "trial_number": rec.trial_number,
        "gain": asdict(rec.gain) if rec.gain is not None else None,
        "search_gain": asdict(replay_gain) if replay_gain is not None else None,
        "confirmation": confirmation.as_dict()
        if confirmation is not None
        else {"status": "unconfirmed", "reason": confirm_note},
        "pareto_trial_numbers": outcome.pareto_trial_numbers,
        "interrupted": outcome.interrupted,
    }
    atomic_write_text(rd.path / "recommendation.json", json.dumps(payload, indent=2) + "\n")
    emitters.write_config_files(rd.path, rec, workload, column_families)
    return rec


def resume_run(path: Path) -> tuple[Workload, RunDir]:
    """The workload and run directory of an earlier run, to continue it."""
    rd = RunDir(path)
    rd.read_meta()
    if not rd.workload_yaml.exists():
        raise TunerError("run directory has no workload.yaml to resume from", file=str(path))
    return load_workload(rd.workload_yaml), rd


__all__ = [
    "DEVIATIONS",
    "RunSettings",
    "RunSummary",
    "resume_run",
    "run_study",
    "start_run",
]
