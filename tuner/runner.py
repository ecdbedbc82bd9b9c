"""One tuning run, end to end: prepare the run directory, generate the operation stream once,
run the study with every measurement isolated in its own process, then write the
recommendation, the Flink config files and the report.

This is the library behind ``tuner run``; the CLI only parses arguments and prints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import optuna

from tuner import config_files
from tuner.confirm import (
    CONFIRM_ENGINE,
    CONFIRMATION_CSV,
    MINIMAL_LABEL,
    Confirmation,
    ConfirmTarget,
    complete_rounds,
    confirmed_recommendation,
    decide,
    run_confirmation,
    select_targets,
)
from tuner.costmodel import PRESETS, Disk, disk_from, read_wait_share
from tuner.engine import flink_backend
from tuner.errors import TunerError, TunerRuntimeError
from tuner.fileio import atomic_write_text
from tuner.flink import options as fo
from tuner.flink.baseline import settings_from_json
from tuner.flink.memory import GUARD_FACTOR, Memory
from tuner.flink.options import FlinkValue
from tuner.measuring import (
    FINISH_RESERVE_S,
    RunSettings,
    flink_measure,
    measure_candidate,
)
from tuner.promise import Promise, promise_of, state_share
from tuner.recommend import Gain, Recommendation, measure_gain, recommend, reference_name
from tuner.report import render_report
from tuner.rescale import NONE as NO_RESCALE
from tuner.rescale import describe_rescale
from tuner.rundir import (
    RunDir,
    RunStatus,
    claim_run_dir,
    new_run_dir,
    records_to_csv,
)
from tuner.scale import (
    ScaleSpec,
    check_footprint,
    dump_scale,
    model_workload,
    read_scale,
)
from tuner.search.ablation import Ablation, KeyEffect, Minimizer
from tuner.search.importance import param_importances
from tuner.search.measure import ENGINES
from tuner.search.study import (
    CHECKPOINT_BYTES,
    CURRENT_LABEL,
    DEFAULT_LABEL,
    FLOORED,
    RECOMMENDED_LABEL,
    RESTORE_KEYS_LABEL,
    RESTORE_S,
    THROUGHPUT,
    Candidate,
    Objective,
    StudyConfig,
    StudyLoop,
    StudyOutcome,
    StudyProgress,
    TrialRecord,
    create_study,
    warm_start,
)
from tuner.trace.parquet import read_trace
from tuner.trace.source import trace_file
from tuner.units import MIB, format_memory_size
from tuner.validate.flink import find_flink
from tuner.workload import Workload, dump_workload, load_workload

log = logging.getLogger(__name__)

STUDY_NAME = "tuner"

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


def shared_tm_deviation(memory: Memory) -> str | None:
    """The deviation of a ``fixed-per-tm`` budget shared by several slots (None otherwise).

    Flink gives the TaskManager one cache and one write buffer manager for all its slots; every
    engine here measures one slot with its share. Measured (tools/shared_tm_memory.py, README
    "Known deviations"), sharing changes misses by a factor that depends on the block size, so it
    can reorder configurations.
    """
    if memory.mode != "fixed-per-tm" or memory.slots_per_tm < 2:
        return None
    n = memory.slots_per_tm
    return (
        f"fixed-per-tm memory is shared by {n} slots: Flink gives the TaskManager one block "
        f"cache and one write buffer manager, while the replay (and the confirmation on Flink's "
        f"backend) measures one slot with its 1/{n} share. Measured on four bundled workloads, "
        "the shared cache had 0.17-1.08x the block-cache misses of per-slot caches, 128 KiB-block "
        "sets gaining most, so a ranking between block sizes may not hold on Flink; managed "
        "memory (one cache per slot) is modelled as Flink runs it."
    )


def deviations_for(workload: Workload) -> list[str]:
    """What the replay cannot do as Flink does, for this workload."""
    shared = shared_tm_deviation(workload.memory)
    return [*DEVIATIONS, *([shared] if shared else [])]


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
    # Search trials finished when --time-budget ended the search early (None: it did not).
    time_budget_trials: int | None = None
    # What the time budget cut (the search, the minimal recommendation, the confirmation).
    budget_cuts: tuple[str, ...] = ()


def start_run(
    workload: Workload,
    out: Path | None,
    results_root: Path,
    scale: ScaleSpec | None = None,
    key_sample: float = 1.0,
) -> tuple[RunDir, Workload]:
    """Create the run directory and its inputs (status ``running``); ``workload.yaml`` keeps
    the scale, so a resumed run replays the same model. With ``key_sample`` below 1 the run
    replays that share of the recorded trace's keys, written to the run's ``trace.parquet``
    (:func:`tuner.trace.subsample.sample_trace`) before ``workload.yaml`` names it; the
    workload returned is the one the run replays."""
    rd = claim_run_dir(out) if out is not None else new_run_dir(results_root, workload.name)
    rd.write_meta(
        {
            "workload": workload.name,
            "source": workload.source,
            "status": "running",
            "created_at": time.time(),
            "deviations": deviations_for(workload),
        }
    )
    if key_sample < 1 and workload.trace is not None:
        from tuner.trace.subsample import sample_trace

        sample_trace(workload.trace, rd.trace, key_sample)
        workload = replace(workload, trace=str(rd.trace.resolve()))
    text = dump_workload(workload)
    if scale is not None and scale != ScaleSpec():
        text += dump_scale(scale)
    atomic_write_text(rd.workload_yaml, text)
    return rd, workload


def prepare_trace(workload: Workload, rd: RunDir) -> Path:
    """The operation stream every trial replays: the workload's recorded trace, or the
    generator's stream written once into the run directory."""
    return trace_file(workload, rd.trace)


def _settings_record(settings: RunSettings) -> dict[str, Any]:
    """The settings as run.json keeps them (for resume): a storage URL without its password,
    which a resumed run takes from PGPASSWORD or .pgpass, or from --storage given again."""
    record = asdict(settings)
    if settings.storage:
        from tuner.search.storage import public_url

        record["storage"] = public_url(settings.storage)
    return record


def run_study(
    workload: Workload,
    rd: RunDir,
    settings: RunSettings,
    *,
    on_progress: Callable[[StudyProgress], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    started: float | None = None,
) -> RunSummary:
    """Run (or resume) the study in ``rd`` and write every output. ``started`` is when the
    time budget's clock started (time.monotonic(); default: now): the CLI starts it before its
    own imports, so that the budget is the wall time the user waits.

    run.json ends ``complete``, ``incomplete`` (stopped by ``should_stop``, or by a
    KeyboardInterrupt, which is raised again) or ``failed`` (an error, raised again), so a
    notebook caller is never left with a run that says ``running``."""
    try:
        return _run_study(workload, rd, settings, on_progress, should_stop, started)
    except KeyboardInterrupt:
        rd.set_status("incomplete")
        raise
    except (TunerError, TunerRuntimeError, OSError):
        rd.set_status("failed")
        raise


def _run_study(
    workload: Workload,
    rd: RunDir,
    settings: RunSettings,
    on_progress: Callable[[StudyProgress], None] | None,
    should_stop: Callable[[], bool],
    started: float | None,
) -> RunSummary:
    # Trial databases a killed run left behind.
    shutil.rmtree(rd.work, ignore_errors=True)
    # Production units for the study and everything emitted; the model only for the replay.
    model = model_workload(workload, settings.scale)
    check_footprint(workload, settings.scale, rd.path, settings.jobs)
    meta = rd.read_meta()
    seed = settings.seed if settings.seed is not None else workload.seed
    objective = settings.objective
    if objective not in ("throughput", "pareto", *FLOORED):
        raise TunerError(
            f"unknown objective {objective!r}; expected throughput, pareto, checkpoint or recovery"
        )
    if not 0 < settings.throughput_floor <= 1:
        raise TunerError(
            f"the throughput floor must be in (0, 1], got {settings.throughput_floor}",
            where="--throughput-floor",
        )
    engines = (*ENGINES, "flink", "fake")
    if settings.engine not in engines:
        raise TunerError(
            f"unknown engine {settings.engine!r}; expected one of {', '.join(engines[:-1])}"
        )
    line = workload.flink_version
    if settings.confirm and settings.engine != "flink" and not flink_backend.available(line):
        # Said before the search, not after it.
        raise TunerError(
            f"--confirm needs the flink-backend engine: {flink_backend.INSTALL_HINT}",
            where="--confirm",
        )
    if settings.engine == "flink-backend" and not flink_backend.available(line):
        raise TunerError(
            f"--engine flink-backend needs Flink 2.x and a JDK 17: {flink_backend.INSTALL_HINT}",
            where="--engine",
        )
    if settings.engine == "flink" and settings.scale.factor != 1.0:
        raise TunerError(
            "--engine flink replays at full size only: a real Flink job's options are not "
            "scaled to the model; use the rocksdict or flink-backend engine, or scale 1",
            where="--engine",
        )
    if settings.engine == "flink" and objective in ("pareto", *FLOORED):
        raise TunerError(
            f"--objective {objective} needs read latencies, checkpoint sizes or restore times, "
            "which the Flink engine does not report; use the rocksdict engine",
            where="--objective",
        )
    started = time.monotonic() if started is None else started
    config = StudyConfig(
        trials=settings.trials,
        seed=seed,
        objective=cast(Objective, objective),  # one of them: checked above
        repeats=settings.repeats,
        jobs=settings.jobs,
        current=dict(settings.baseline) if settings.baseline is not None else None,
        throughput_floor=settings.throughput_floor,
        # The measurements end early enough to leave time for the report and config files.
        deadline=None
        if settings.time_budget_s is None
        else started + settings.time_budget_s - FINISH_RESERVE_S,
        **_confirmation_reserve(workload, settings, None),
        # Restore options act on Flink's own restore only (the replay copies local files and
        # has no ingest or file deletion): searched there, for the recovery objective.
        restore_search=(
            ("rescale" if settings.rescale != NO_RESCALE else "restore")
            if objective == "recovery" and settings.engine == "flink-backend"
            else "none"
        ),
        warm_start=settings.warm_start,
    )
    refine = (
        Minimizer(
            workload,
            settings.baseline,
            repeats=settings.minimal_repeats,
            max_measurements=settings.minimal_max_measurements,
            reference=CURRENT_LABEL if settings.baseline is not None else DEFAULT_LABEL,
            metric=FLOORED.get(objective, THROUGHPUT),
            lower_is_better=objective in FLOORED,
        )
        if settings.minimal
        else None
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
        settings=_settings_record(settings),
        scale=settings.scale.factor,
    )
    trace = prepare_trace(model, rd)
    column_families = list(read_trace(trace).header.names)
    _refuse_a_budget_too_small(workload, model, settings, len(column_families))
    if refine is not None:
        refine.column_families = len(column_families)
    price = _price_confirmation(workload, model, rd, trace, settings, disk, config, on_progress)
    if price is not None:
        config = replace(config, **_confirmation_reserve(workload, settings, price))
    measure = (
        flink_measure(model, rd, trace, settings)
        if settings.engine == "flink"
        else measure_candidate(model, rd, trace, settings, disk, settings.engine, config.deadline)
    )
    storage = settings.storage or meta.get("storage")
    loop_class: Callable[..., StudyLoop] = StudyLoop
    if storage is None:
        study = create_study(
            rd.storage_url, STUDY_NAME, config, warm=len(warm_start(workload, config)[0])
        )
    else:  # one study on a database server, trials from any number of workers
        from tuner.remote import open_coordinator

        study, loop_class = open_coordinator(
            replace(settings, storage=storage), model, rd, trace, config, measure
        )
    earlier = rd.read_records()
    records: list[TrialRecord] = list(earlier)

    def sink(rec: TrialRecord) -> None:
        records.append(rec)
        rd.write_records(records)

    loop = loop_class(
        workload,
        study,
        config,
        measure,
        sink,
        earlier=earlier,
        on_progress=on_progress,
        should_stop=should_stop,
        column_families=len(column_families),
        refine=refine,
    )
    confirmation: Confirmation | None = None
    note = ""
    try:
        outcome = loop.run()
        if not outcome.interrupted and outcome.best_settings is not None:
            ablation = outcome.refinement if isinstance(outcome.refinement, Ablation) else None
            confirmation, note, complete = _confirm(
                workload,
                rd,
                trace,
                settings,
                disk,
                outcome.records,
                should_stop,
                on_progress,
                minimal=dict(ablation.settings) if ablation is not None else None,
                deadline=config.deadline,
                cuts=outcome.budget_cuts,
            )
            outcome.interrupted = not complete
    finally:
        shutil.rmtree(rd.work, ignore_errors=True)
    too_small = _guard_refused_the_reference(workload, settings, outcome.records)
    if too_small:
        rd.set_status("failed", finished_at=time.time(), created_at=meta.get("created_at"))
        raise TunerError(too_small, file=workload.source, where=_budget_field(workload.memory))
    failure = _mostly_failed(outcome.records) or _no_search_result(outcome.records)
    if failure and not outcome.interrupted:
        rd.set_status("failed", finished_at=time.time(), created_at=meta.get("created_at"))
        raise TunerRuntimeError(f"{failure}; no advice given (trials.csv in {rd.path})")
    rec = finish(
        workload,
        rd,
        study,
        outcome,
        column_families,
        confirmation,
        note,
        settings.engine,
        settings,
    )
    status: RunStatus = "incomplete" if outcome.interrupted else "complete"
    # Written with or without a budget: a report says "no time budget" only when it knows.
    budget: dict[str, Any] = {
        "time_budget_s": settings.time_budget_s,
        "time_budget_trials": outcome.time_budget_trials,
        "time_budget_cuts": list(outcome.budget_cuts),
        "warm_start": list(outcome.warm_start),
        "warm_start_left_out": dict(outcome.warm_start_left_out),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    rd.set_status(status, finished_at=time.time(), created_at=meta.get("created_at"), **budget)
    render_report(rd.path)
    return RunSummary(
        rd.path,
        status,
        rec,
        sum(1 for r in outcome.records if r.status == "failed"),
        sum(1 for r in outcome.records if r.status == "skipped"),
        confirmation,
        note,
        outcome.time_budget_trials,
        tuple(outcome.budget_cuts),
    )


def _budget_field(memory: Memory) -> str:
    """The workload field that holds the slot's RocksDB budget."""
    if memory.mode in ("fixed-per-slot", "fixed-per-tm"):
        return "memory." + memory.mode.replace("-", "_")
    return "memory.managed_per_slot"


def _reference_settings(settings: RunSettings) -> Mapping[str, FlinkValue]:
    return dict(settings.baseline) if settings.baseline is not None else {}


def _refuse_a_budget_too_small(
    workload: Workload, model: Workload, settings: RunSettings, column_families: int
) -> None:
    """A TunerError (exit 2) before anything is measured when the reference configuration
    (--baseline, else Flink's default) cannot run within the budget for this many column
    families: it names why and the smallest budget that would do."""
    reference = _reference_settings(settings)
    why = fo.invalid_reason(reference, model.memory, column_families, model.flink_version)
    if why is None or model.memory.mode == "unmanaged":  # no budget to name: sizes set it
        return
    factor = settings.scale.factor
    least = fo.least_budget(reference, model.memory, column_families, model.flink_version)
    enough = (
        f"the smallest budget that would do: {format_memory_size(_whole_mib(least / factor))}"
        if least is not None
        else "no budget up to 1 TiB would do"
    )
    raise TunerError(
        f"{format_memory_size(workload.memory.budget)} per slot is too small for the "
        f"{column_families} column {'family' if column_families == 1 else 'families'} of this "
        "job under "
        f"{_reference_name(settings)}: {why}; {enough}",
        file=workload.source,
        where=_budget_field(workload.memory),
    )


def _reference_name(settings: RunSettings) -> str:
    return "your --baseline" if settings.baseline is not None else "Flink's default"


def _whole_mib(n: float) -> int:
    return max(1, math.ceil(n / MIB)) * MIB


def _guard_refused_the_reference(
    workload: Workload, settings: RunSettings, records: Sequence[TrialRecord]
) -> str:
    """Why the budget is too small, or "": every measurement of the reference was stopped by
    the memory guard (RocksDB itself held more than the guard allows), so no candidate can be
    compared with it. The smallest budget is at least what RocksDB held over the guard's
    factor (RocksDB's floors do not shrink with the budget, its cache does)."""
    reference = CURRENT_LABEL if settings.baseline is not None else DEFAULT_LABEL
    runs = [r for r in records if r.candidate.kind == "baseline" and r.candidate.label == reference]
    guarded = [r for r in runs if not r.ok and r.reason.startswith("MemoryBudgetExceeded")]
    if not runs or len(guarded) < len(runs):
        return ""
    held = max(float(r.metrics.get("rocksdb_memory_peak_bytes", 0.0)) for r in guarded)
    least = _whole_mib(held / GUARD_FACTOR / settings.scale.factor)
    at_least = f"; give the slot at least {format_memory_size(least)}" if held else ""
    return (
        f"{format_memory_size(workload.memory.budget)} per slot is too small to replay this job: "
        f"every measurement of {reference} was stopped by the memory guard "
        f"({guarded[0].reason.splitlines()[0].removeprefix('MemoryBudgetExceeded: ')}){at_least}"
    )


def _mostly_failed(records: Sequence[TrialRecord]) -> str:
    """Why a run's measurements cannot carry advice, or "": more than half of them produced no
    figures (crashed, timed out, stopped by a guard). A candidate measured but infeasible (over
    a disk budget) is a result, not a failure; skipped candidates were never measured."""
    measured = [r for r in records if r.status != "skipped"]
    # Partial figures (a guard's peak) do not make a measurement: its throughput does.
    failed = [r for r in measured if not r.ok and THROUGHPUT not in r.metrics]
    if not measured or 2 * len(failed) <= len(measured):
        return ""
    lines = [r.reason.splitlines()[0] if r.reason else "no reason given" for r in failed]
    common, count = Counter(line.split(":")[0] for line in lines).most_common(1)[0]
    head = (
        f"every one of {len(measured)} measurements failed"
        if len(failed) == len(measured)
        else f"{len(failed)} of {len(measured)} measurements failed"
    )
    return f"{head} ({count} of them {common!r}); the first: {lines[0]}"


def _no_search_result(records: Sequence[TrialRecord]) -> str:
    """Why a run that measured its baselines has no search result to advise from, or "". A
    trial measured but infeasible (over a disk budget, against a size rule at the job's size)
    is a result, as in :func:`_mostly_failed`: its run reports that nothing fits."""
    searched = [r for r in records if r.candidate.kind == "search"]
    if any(r.ok or THROUGHPUT in r.metrics for r in searched):
        return ""
    failed = [r for r in searched if r.status == "failed"]
    skipped = len(searched) - len(failed)
    first = failed[0].reason.splitlines()[0] if failed and failed[0].reason else ""
    return (
        f"no search trial succeeded ({len(failed)} failed, {skipped} skipped as over the "
        f"budget or against a rule)" + (f"; the first failure: {first}" if first else "")
    )


# A measurement on the flink-backend engine against one on the replay, in wall time (README:
# "flink-backend vs rocksdict": 1.64x measured; rounded up, a JVM start is in it).
FLINK_BACKEND_COST = 2


def _confirmation_cost(workload: Workload, settings: RunSettings, least: bool = False) -> int:
    """The confirmation's measurements, for the time budget: 0 when no confirmation will run
    (the conditions of :func:`_confirm`). ``least``: the smallest one :func:`_fit_confirmation`
    would still make (one search candidate, two rounds)."""
    if (
        settings.confirm is False
        or settings.engine == "flink"
        or settings.objective != "throughput"
        or not flink_backend.available(workload.flink_version)
    ):
        return 0
    # The reference, Flink's default or the user's configuration beside it, the minimal
    # recommendation, the top candidates and the best other predefined set.
    top, rounds = (
        (min(1, settings.confirm_top), min(2, settings.repeats))
        if least
        else (settings.confirm_top, settings.repeats)
    )
    return (2 + (settings.baseline is not None) + top + 1) * rounds


def _confirmation_count(
    settings: RunSettings, unit: int, priced: bool = False
) -> Callable[[Sequence[TrialRecord]], float]:
    """The whole confirmation's measurements (times ``unit``) given the records so far: the
    configurations :func:`select_targets` would pick from them, and the minimal recommendation
    when there will be one. After one search trial that is one candidate, not the top N.
    ``priced`` (a measurement of Flink's default is the unit): each weighted by
    :func:`_relative_cost`."""

    def count(records: Sequence[TrialRecord]) -> float:
        targets = select_targets(records, settings.confirm_top, current=settings.baseline)
        cost = _relative_cost(records) if priced else _same_cost
        weight = sum(cost(t.label) for t in targets) + settings.minimal
        return weight * settings.repeats * unit

    return count


# Bounds on a configuration's measurement against Flink's default's: the replay's wall time
# follows the confirmation's only roughly (Nexmark q16: trial-3 0.61x on the replay, 0.41x on
# Flink's backend; q4: trial-29 0.84x and 0.95-2.5x; production-dedup-ttl: trial-6 2.6x and
# 4.3x, where a bound of 2 kept 421 s for a confirmation that took 505 s). Over 16 runs a bound
# of 4 changed that run alone.
RELATIVE_COST_BOUNDS = (0.5, 4.0)


def _same_cost(_label: str) -> float:
    """Every configuration's measurement costs one unit (no price measured to weigh by)."""
    return 1.0


def _relative_cost(records: Sequence[TrialRecord]) -> Callable[[str], float]:
    """How long a configuration's confirmation measurement takes against one of Flink's
    default, which prices them (:func:`_price_confirmation`): the ratio of their median wall
    times in the search's own measurements, within :data:`RELATIVE_COST_BOUNDS`; 1 for a
    configuration the search did not measure (the minimal recommendation). Flink's default is
    the slow one on a state that outgrows the cache, so pricing every measurement at its cost
    kept twice the time the confirmation took (Nexmark q16: 452 s kept, 233 s taken; the
    search stopped after 3 trials and 8 of 15 minutes went unused). Weighted, over 16 Nexmark
    and production runs the time kept fell closer to the time taken on 13."""
    walls: dict[str, list[float]] = {}
    for r in records:
        if r.ok:
            walls.setdefault(r.candidate.label, []).append(r.wall_s)
    default = walls.get(DEFAULT_LABEL)
    low, high = RELATIVE_COST_BOUNDS

    def cost(label: str) -> float:
        own = walls.get(label)
        if not own or not default or label == DEFAULT_LABEL:
            return 1.0
        return min(high, max(low, statistics.median(own) / statistics.median(default)))

    return cost


def _confirmation_reserve(
    workload: Workload, settings: RunSettings, price_s: float | None
) -> dict[str, Any]:
    """The :class:`StudyConfig` fields that keep the confirmation's time out of the search:
    counted in measurements at a measured ``price_s``, or, unpriced, in search-trial lengths
    (:data:`FLINK_BACKEND_COST` of them a measurement)."""
    unit = 1 if price_s is not None else FLINK_BACKEND_COST
    return {
        "reserve_after": _confirmation_cost(workload, settings) * unit,
        "reserve_after_least": _confirmation_cost(workload, settings, least=True) * unit,
        "reserve_price_s": price_s,
        "reserve_count": _confirmation_count(settings, unit, priced=price_s is not None),
    }


# Flink's default is priced twice and the faster run kept, with no margin on top: on a state
# that outgrows the cache the default runs fast in some runs and 2-3x slower in others, and the
# candidates the confirmation measures beside it are mostly faster than it. Measured per
# confirmation measurement against the price (faster run x 1.25, the rule before): Nexmark q16
# 15.0 s against 30.1 s, production-keyed-aggregation 10.9 s against 18.8 s, Nexmark q5 6.1 s
# against 8.0 s; a single run x 1.25 had priced q16 at 44.5 s and left its search 2 trials in a
# run that finished in 5 of its 15 minutes. A confirmation that does run long is cut to what is
# left, and says so.
CONFIRM_PRICE_RUNS = 2
CONFIRM_PRICE_FIELD = "confirm_price_s"


def _price_confirmation(
    workload: Workload,
    model: Workload,
    rd: RunDir,
    trace: Path,
    settings: RunSettings,
    disk: Disk,
    config: StudyConfig,
    on_progress: Callable[[StudyProgress], None] | None,
) -> float | None:
    """Seconds one confirmation measurement takes on this run's model, measured before the
    search (the faster of :data:`CONFIRM_PRICE_RUNS` runs of Flink's default on the
    confirmation's engine, JVM start included), so that the time budget keeps what the
    confirmation needs rather than a guess in search-trial lengths. None when there is no
    budget or no confirmation, or every pricing run failed (the guess stands). Kept in run.json
    for a resume."""
    if config.deadline is None or not _confirmation_cost(workload, settings):
        return None
    meta = rd.read_meta()
    if isinstance(meta.get(CONFIRM_PRICE_FIELD), int | float):
        return float(meta[CONFIRM_PRICE_FIELD])
    measure = measure_candidate(model, rd, trace, settings, disk, CONFIRM_ENGINE, config.deadline)
    took: list[float] = []
    for i in range(CONFIRM_PRICE_RUNS):
        if on_progress is not None:
            on_progress(
                StudyProgress(
                    f"pricing the confirmation on {CONFIRM_ENGINE}",
                    i,
                    CONFIRM_PRICE_RUNS,
                    None,
                    None,
                    None,
                )
            )
        started = time.monotonic()
        m = measure(Candidate(DEFAULT_LABEL, "baseline", {fo.PREDEFINED_OPTIONS: "DEFAULT"}))
        if m.status == "ok":
            took.append(time.monotonic() - started)
        else:
            log.warning("a pricing measurement of the confirmation failed: %s", m.reason)
    if not took:
        log.warning(
            "pricing the confirmation failed: priced as %d search trials a measurement",
            FLINK_BACKEND_COST,
        )
        return None
    price = round(min(took), 2)
    meta[CONFIRM_PRICE_FIELD] = price
    rd.write_meta(meta)
    return price


def _confirm(
    workload: Workload,
    rd: RunDir,
    trace: Path,
    settings: RunSettings,
    disk: Disk,
    records: list[TrialRecord],
    should_stop: Callable[[], bool],
    on_progress: Callable[[StudyProgress], None] | None = None,
    *,
    minimal: Mapping[str, FlinkValue] | None = None,
    deadline: float | None = None,
    cuts: list[str] | None = None,
) -> tuple[Confirmation | None, str, bool]:
    """The confirmation on the flink-backend engine, when asked for and available: (the
    decision, why there is none, whether every measurement ran). ``minimal`` is the minimal
    recommendation's complete settings, confirmed beside the search's best. With a
    ``deadline`` (the time budget) it is shortened to what is left, or skipped, and what was
    cut is appended to ``cuts``."""
    cuts = [] if cuts is None else cuts
    if settings.confirm is False:
        return None, "confirmation switched off by --no-confirm", True
    if settings.engine == "flink":
        return None, "every candidate was measured on a real Flink job", True
    if settings.engine == "flink-backend" and settings.objective != "throughput":
        return None, "every candidate was measured on Flink's own state backend", True
    if settings.objective != "throughput":
        return (
            None,
            f"--objective {settings.objective} is not confirmed: the confirmation compares "
            "throughput only",
            True,
        )
    if not flink_backend.available(workload.flink_version):
        if settings.confirm:
            raise TunerError(
                f"--confirm needs the flink-backend engine: {flink_backend.INSTALL_HINT}",
                where="--confirm",
            )
        hint = flink_backend.INSTALL_HINT
        return None, f"the flink-backend engine is not installed: {hint}", True
    path = rd.path / CONFIRMATION_CSV
    earlier = rd.read_confirmation_records()
    done: list[TrialRecord] = list(earlier)

    def sink(rec: TrialRecord) -> None:
        done.append(rec)
        atomic_write_text(path, records_to_csv(done))

    def targets_for(top: int) -> list[ConfirmTarget]:
        return select_targets(records, top, current=settings.baseline, minimal=minimal)

    targets, rounds = targets_for(settings.confirm_top), settings.repeats
    if deadline is not None:
        left = deadline - time.monotonic()
        times = [r.wall_s for r in records if r.status != "skipped"]
        price = rd.read_meta().get(CONFIRM_PRICE_FIELD)
        per = FLINK_BACKEND_COST * statistics.median(times) if times else 0.0
        if isinstance(price, int | float):
            per = float(price)
        done_before = {(r.candidate.label, r.candidate.repeat) for r in earlier}
        # Priced, a measurement of Flink's default; each other configuration at its share.
        cost = _relative_cost(records) if isinstance(price, int | float) else _same_cost
        fit = _fit_confirmation(
            targets_for, settings.confirm_top, settings.repeats, per, left, done_before, cost
        )
        if fit is None:
            least = len(targets_for(1)) * min(2, settings.repeats)
            why = (
                f"the confirmation on Flink's own backend was skipped: the time budget had "
                f"{max(0.0, left):.0f} s left and it needs at least {least} measurements of "
                f"about {per:.0f} s"
            )
            cuts.append(why)
            return None, why, True
        targets, rounds = fit
        asked = len(targets_for(settings.confirm_top))
        if (len(targets), rounds) != (asked, settings.repeats):
            cuts.append(
                f"the confirmation was shortened to fit the time budget: {len(targets)} "
                f"configurations in {rounds} rounds instead of {asked} in {settings.repeats}"
            )
    # A scaled run is confirmed on the same model (its memory, its options' sizes scaled).
    model = model_workload(workload, settings.scale)
    measure = measure_candidate(model, rd, trace, settings, disk, CONFIRM_ENGINE, deadline)
    started = time.monotonic()

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    def stop() -> bool:
        return should_stop() or out_of_time()

    def progress(label: str, i: int, total: int) -> None:
        if on_progress is not None:
            eta = (time.monotonic() - started) / i * (total - i) if i else None
            on_progress(
                StudyProgress(f"confirm {label} on {CONFIRM_ENGINE}", i, total, None, None, eta)
            )

    measured, complete = run_confirmation(
        targets, rounds, measure, sink, earlier, stop, time.time, progress
    )
    if not complete and out_of_time() and not should_stop():
        # Ended by the budget, not by the user: the run is complete, its cut said plainly. Its
        # whole rounds still decide when there are two, the least that measures the noise (a
        # Nexmark q4 run had 17 of 18 measurements, two rounds whole, and emitted an unconfirmed
        # pick that lost to Flink's default in the job).
        total = len(targets) * rounds
        ran = f"after {len(measured) - len(earlier)} of {total} measurements"
        whole = len({r.candidate.repeat for r in complete_rounds(measured, targets)})
        if whole >= 2:
            cuts.append(
                f"the time budget ran out during the confirmation on Flink's own backend, {ran}: "
                f"decided on its {whole} whole rounds of {rounds}"
            )
            version = find_flink(workload.flink_version).version
            return decide(measured, targets, flink_version=version), "", True
        why = (
            f"the time budget ran out during the confirmation on Flink's own backend, {ran}: "
            "not confirmed"
        )
        cuts.append(why)
        return None, why, True
    if not complete:
        total = len(targets) * rounds
        return (
            None,
            f"the confirmation stopped after {len(measured)} of {total} measurements; "
            f"`tuner run --resume {rd.path}` finishes it",
            False,
        )
    version = find_flink(workload.flink_version).version
    return decide(measured, targets, flink_version=version), "", True


def _contribution(effect: KeyEffect) -> str:
    """What a kept key's revert cost, for its comment; why there is no figure when the revert
    was not measured (its decision says why: Flink refuses it, or it failed)."""
    figures = (effect.cost, effect.low, effect.high)
    if effect.n == 0 or not all(math.isfinite(x) for x in figures):
        return f"not reverted ({effect.decision})"
    return (
        f"reverting it cost {effect.cost:+.1%} ({effect.low:+.1%} .. {effect.high:+.1%}, "
        f"{effect.n} repeats)"
    )


def _fit_confirmation(
    targets_for: Callable[[int], list[ConfirmTarget]],
    top: int,
    rounds: int,
    per_s: float,
    left_s: float,
    done: set[tuple[str, int]],
    cost: Callable[[str], float] = _same_cost,
) -> tuple[list[ConfirmTarget], int] | None:
    """The largest confirmation that fits ``left_s`` at ``per_s`` a measurement of Flink's
    default (``cost(label)`` times that for another configuration): fewer search candidates
    first (down to one), then fewer rounds (down to two, the least that gives a noise figure);
    measurements in ``done`` (label, round) cost nothing. None when even that does not fit."""
    least_rounds = min(2, rounds)
    shapes = [(t, rounds) for t in range(top, 0, -1)]
    shapes += [(1, r) for r in range(rounds - 1, least_rounds - 1, -1)]
    for t, r in shapes:
        targets = targets_for(t)
        todo = sum(cost(tg.label) for tg in targets for i in range(r) if (tg.label, i) not in done)
        if todo * per_s <= left_s:
            return targets, r
    return None


# Engines whose figures are Flink's own: a run measured on them needs no confirmation.
FAITHFUL_ENGINES: tuple[str, ...] = ("flink", "flink-backend")


def _kept(
    workload: Workload,
    outcome: StudyOutcome,
    importances: Mapping[str, float],
    engine: str,
    settings: RunSettings | None,
    gain: Gain,
    why: str,
) -> tuple[Recommendation, Promise]:
    """The recommendation to keep your configuration (the user's baseline, or Flink's default),
    and a promise of no gain saying ``why``."""
    kept = recommend(
        workload,
        {},
        None,
        outcome.records,
        importances,
        engine,
        baseline=settings.baseline if settings is not None else None,
        baseline_source=settings.baseline_source if settings is not None else None,
    )
    promise = Promise(
        "your configuration",
        gain.engine,
        gain.reference,
        None,
        None,
        None,
        gain.n,
        False,
        state_share(workload),
        note=why,
    )
    return replace(kept, gain=None), promise


def _changed_keys(
    emitted: Mapping[str, FlinkValue], workload: Workload, settings: RunSettings
) -> set[str]:
    """The keys whose value the emitted settings change against the reference the run
    measured (the workload's memory, then the user's --baseline, over Flink's defaults)."""
    return fo.changed_keys(
        emitted, {**fo.memory_settings(workload.memory), **_reference_settings(settings)}
    )


def _cost_figure(what: str, gain: Gain) -> str:
    return f"{what} {gain.median_gain:+.1%} (pairwise {gain.low:+.1%} .. {gain.high:+.1%})"


def _same_work(
    changed: set[str], records: Sequence[TrialRecord], reference: str, label: str
) -> str:
    """Why the state calls of the re-measured ``label`` are the reference's: the keys, and the
    counted figures of the re-measured rounds (medians) side by side."""
    keys = ", ".join(f"`{k.removeprefix('state.backend.rocksdb.')}`" for k in sorted(changed))
    line = f"it changes only {keys}, which Flink reads when it restores, never in a state call"
    counted = []
    for metric, what in (
        ("user_bytes_written", "bytes written"),
        ("compaction_bytes_written", "compaction bytes"),
        ("block_cache_misses", "block-cache misses"),
    ):
        medians = [
            statistics.median(values)
            for which in (label, reference)
            if (
                values := [
                    r.metrics[metric]
                    for r in records
                    if r.ok
                    and r.candidate.kind == "remeasure"
                    and r.candidate.label == which
                    and metric in r.metrics
                ]
            )
        ]
        if len(medians) == 2 and medians[1] > 0:
            counted.append(f"{what} {medians[0] / medians[1] - 1:+.1%}")
    if counted:
        line += f" (counted in the re-measured rounds: {', '.join(counted)})"
    return line


def _within_the_floor(
    workload: Workload,
    outcome: StudyOutcome,
    importances: Mapping[str, float],
    engine: str,
    settings: RunSettings,
    rec: Recommendation,
    promise: Promise,
    cost_gain: Gain,
    what: str,
) -> tuple[Recommendation, Promise, str, Gain]:
    """A checkpoint or recovery pick that improved its figure in every round, held against the
    throughput floor: (what to emit, its promise, the headline, the emitted configuration's
    figure for the objective). A pick that changes only restore keys keeps the floor by
    construction; one re-measured below it is replaced by its restore keys alone where they
    restored faster in every round (--objective recovery), else by your configuration."""
    assert promise.gain is not None
    measured = _cost_figure(what, cost_gain)
    headline = f"{measured} and {promise.describe()}"
    emitted_gain = cost_gain
    throughput = promise.gain
    changed = _changed_keys(rec.settings, workload, settings)
    if changed and changed <= fo.RESTORE_ONLY:
        # Nothing a state call reads changed: the throughput figure can only be the
        # spread between processes (a one-key ingest-mode pick measured -19.1 % on
        # Flink's backend with the same bytes written and read).
        promise = replace(
            promise,
            unchanged=_same_work(changed, outcome.records, cost_gain.reference, RECOMMENDED_LABEL),
        )
        headline = f"{measured} and {promise.describe()}"
    elif throughput < settings.throughput_floor - 1:
        why = (
            f"its throughput re-measured {throughput:+.1%} against "
            f"{reference_name(promise.reference)}, below the floor of "
            f"{settings.throughput_floor - 1:+.0%} (--throughput-floor "
            f"{settings.throughput_floor:g})"
        )
        alone = measure_gain(
            outcome.records, RESTORE_S, engine, cost_gain.reference, RESTORE_KEYS_LABEL
        )
        alone_calls = measure_gain(
            outcome.records, THROUGHPUT, engine, cost_gain.reference, RESTORE_KEYS_LABEL
        )
        if alone is not None and alone.high < 0 and alone_calls is not None:
            # Its restore keys alone restored faster in every round too: they change no
            # state call, so they keep the floor by construction. Emitted instead.
            keys = {k: v for k, v in rec.settings.items() if k in fo.RESTORE_ONLY}
            rec = replace(
                recommend(
                    workload,
                    keys,
                    rec.trial_number,
                    outcome.records,
                    importances,
                    engine,
                    baseline=settings.baseline,
                    baseline_source=settings.baseline_source,
                ),
                gain=alone_calls,
            )
            promise = replace(
                promise,
                label="its restore keys alone",
                gain=alone_calls.median_gain,
                low=alone_calls.low,
                high=alone_calls.high,
                n=alone_calls.n,
                significant=alone_calls.significant,
                unchanged=_same_work(
                    set(keys), outcome.records, cost_gain.reference, RESTORE_KEYS_LABEL
                ),
                note=f"it restored {cost_gain.median_gain:+.1%}, but {why}",
            )
            headline = (
                f"{_cost_figure(what, alone)} for the search's pick's restore keys "
                f"alone and {promise.describe()}. The whole pick is not emitted: "
                f"{promise.note}"
            )
            emitted_gain = alone
        else:
            headline = f"{measured}, but {why}, so keep your configuration"
            rec, promise = _kept(workload, outcome, importances, engine, settings, cost_gain, why)
    return rec, promise, headline, emitted_gain


def finish(
    workload: Workload,
    rd: RunDir,
    study: optuna.Study,
    outcome: StudyOutcome,
    column_families: list[str],
    confirmation: Confirmation | None = None,
    confirm_note: str = "",
    engine: str = "rocksdict",
    settings: RunSettings | None = None,
) -> Recommendation | None:
    """Write recommendation.json and the Flink config files: the confirmation's choice when
    there is one (or "keep your configuration"), else the best search trial (the minimal
    recommendation when one was made, with the full search winner beside it), marked
    unconfirmed."""
    if outcome.best_settings is None:
        return None
    ablation = outcome.refinement if isinstance(outcome.refinement, Ablation) else None
    importances = param_importances(study) or {}
    minimal = contributions = None
    if ablation is not None:
        minimal = {k: ablation.settings[k] for k in ablation.kept}
        effects = {e.key: e for e in ablation.effects}
        contributions = {k: _contribution(effects[k]) for k in ablation.kept}
    rec = recommend(
        workload,
        outcome.best_settings,
        outcome.best_trial_number,
        outcome.records,
        importances,
        engine,
        minimal=minimal,
        contributions=contributions,
        baseline=settings.baseline if settings is not None else None,
        baseline_source=settings.baseline_source if settings is not None else None,
    )
    checkpoint_gain = measure_gain(outcome.records, CHECKPOINT_BYTES, engine)
    restore_gain = measure_gain(outcome.records, RESTORE_S, engine)
    # Measured on the re-measured settings, which are the emitted ones when unconfirmed.
    replay_gain = rec.gain
    if confirmation is not None:
        rec = confirmed_recommendation(
            workload,
            rec,
            confirmation,
            outcome,
            importances,
            engine,
            baseline=settings.baseline if settings is not None else None,
            baseline_source=settings.baseline_source if settings is not None else None,
        )
    promise = promise_of(
        MINIMAL_LABEL if ablation is not None else f"search trial {outcome.best_trial_number}",
        state_share(workload),
        confirmation=confirmation,
        replay_gain=replay_gain,
        read_wait=next(
            (
                read_wait_share(r.metrics)
                for r in outcome.records
                if r.ok and r.candidate.kind == "baseline" and r.candidate.label == DEFAULT_LABEL
            ),
            None,
        ),
        model=settings.scale.factor if settings is not None else 1.0,
    )
    headline = promise.describe() if promise is not None else rec.headline
    objective = settings.objective if settings is not None else "throughput"
    cost_gain = {"checkpoint": checkpoint_gain, "recovery": restore_gain}.get(objective)
    if cost_gain is not None:
        # The objective's figure first (smaller checkpoints, faster restores), then what
        # throughput it kept.
        rescaled = describe_rescale(settings.rescale if settings is not None else NO_RESCALE)
        what = (
            "incremental checkpoint size"
            if objective == "checkpoint"
            else "restore time from a checkpoint of the end state (local copy"
            + (f"; {rescaled})" if rescaled else ")")
        )
        measured = _cost_figure(what, cost_gain)
        headline = f"{measured} and {headline}"
        if cost_gain.high >= 0:
            # Not lower than the reference's in every re-measured round: a configuration
            # searched for this figure is not emitted when it does not improve it.
            reference = (
                "Flink's default" if cost_gain.reference == DEFAULT_LABEL else "your configuration"
            )
            why = f"the search's pick is not below {reference} in every round"
            headline = f"{measured}: {why}, so keep your configuration"
            rec, promise = _kept(workload, outcome, importances, engine, settings, cost_gain, why)
        elif promise is not None and promise.gain is not None and settings is not None:
            rec, promise, headline, emitted_gain = _within_the_floor(
                workload,
                outcome,
                importances,
                engine,
                settings,
                rec,
                promise,
                cost_gain,
                what,
            )
            if objective == "recovery":
                restore_gain = emitted_gain
    elif (
        confirmation is None
        and replay_gain is not None
        and replay_gain.reference == DEFAULT_LABEL
        and replay_gain.median_gain <= 0
    ):
        # Unconfirmed and no faster than Flink's default in median on the replay (Nexmark q4: a
        # 9-key minimal recommendation at -6.5 %, its confirmation cut by the time budget):
        # nothing measured says it helps, so nothing is emitted. Against a --baseline the pick
        # is still emitted with its figure: not yet decided there (a one-trial run's single
        # re-measured pair loses to the user's configuration by noise alone).
        why = (
            f"the search's pick measured {replay_gain.median_gain:+.1%} against "
            f"{replay_gain.reference_name} "
            f"(pairwise {replay_gain.low:+.1%} .. {replay_gain.high:+.1%}), no gain"
        )
        rec, promise = _kept(workload, outcome, importances, engine, settings, replay_gain, why)
        headline = promise.describe()
    # A search measured on Flink's own backend or a real job has nothing more faithful to be
    # confirmed on: its figure is not marked unconfirmed.
    faithful = engine in FAITHFUL_ENGINES
    if confirmation is None and not faithful:
        headline += f"; UNCONFIRMED: not re-measured on Flink's own state backend ({confirm_note})"
    rec = replace(rec, headline=headline)
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in outcome.best_settings.items()}
    default_gain = measure_gain(outcome.records, engine=engine, reference=DEFAULT_LABEL)
    payload: dict[str, Any] = {
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in rec.settings.items()},
        "comments": dict(rec.comments),
        "headline": rec.headline,
        # The one figure: of exactly the emitted settings, from the most faithful engine.
        "promise": promise.as_dict() if promise is not None else None,
        "trial_number": rec.trial_number,
        "gain": asdict(rec.gain) if rec.gain is not None else None,
        "search_gain": asdict(replay_gain) if replay_gain is not None else None,
        "confirmation": confirmation.as_dict()
        if confirmation is not None
        else {
            "status": "measured on Flink" if faithful else "unconfirmed",
            "reason": confirm_note,
        },
        "pareto_trial_numbers": outcome.pareto_trial_numbers,
        "interrupted": outcome.interrupted,
        # The full search winner stays available beside the minimal recommendation.
        "search_winner": {"trial_number": outcome.best_trial_number, "settings": plain},
        "minimal": ablation.to_json() if ablation is not None else None,
        "importances": importances,
        "gain_vs_default": asdict(default_gain) if default_gain is not None else None,
        "checkpoint_gain": asdict(checkpoint_gain) if checkpoint_gain is not None else None,
        "restore_gain": asdict(restore_gain) if restore_gain is not None else None,
        "objective": settings.objective if settings is not None else "throughput",
        "throughput_floor": settings.throughput_floor if settings is not None else None,
        "baseline": (
            {
                "source": settings.baseline_source,
                "settings": {
                    k: list(v) if isinstance(v, tuple) else v for k, v in settings.baseline.items()
                },
            }
            if settings is not None and settings.baseline is not None
            else None
        ),
    }
    atomic_write_text(rd.path / "recommendation.json", json.dumps(payload, indent=2) + "\n")
    config_files.write_config_files(
        rd.path,
        rec,
        workload,
        column_families,
        config_files.measured_as_emitted(outcome.records, rec.settings, workload),
        settings.scale.factor if settings is not None else 1.0,
    )
    return rec


@dataclass(frozen=True)
class ResumedRun:
    """An earlier run to continue: its workload, directory and the settings it keeps."""

    workload: Workload
    run_dir: RunDir
    settings: RunSettings
    kept: tuple[str, ...]  # settings taken from the earlier run (not overridden)
    changed: tuple[str, ...]  # settings the caller overrode


def _same_setting(name: str, saved: Any, given: Any) -> bool:
    """Whether a setting given again is the run's own: run.json keeps the storage URL without
    its password, so the password is not a change."""
    if name == "storage" and isinstance(saved, str) and isinstance(given, str):
        from tuner.search.storage import same_storage

        return same_storage(saved, given)
    return bool(saved == given)


# Older run.json files carried these settings at the top level, before "settings" existed.
_LEGACY_SETTING_KEYS = ("trials", "seed", "objective", "jobs", "engine")


def resume_run(path: Path, overrides: Mapping[str, Any] | None = None) -> ResumedRun:
    """An earlier run, to continue it with every setting it was started with.

    A resumed run is measured as it began: mixing trial counts, engines, disks or objectives
    within one study would compare unlike numbers. ``overrides`` (RunSettings field names) are
    the settings the caller explicitly changes; everything else comes from run.json.
    """
    rd = RunDir(path)
    meta = rd.read_meta()
    if not rd.workload_yaml.exists():
        raise TunerError("run directory has no workload.yaml to resume from", file=str(path))
    fields = {f.name for f in dataclasses.fields(RunSettings)}
    saved: dict[str, Any] = {k: meta[k] for k in _LEGACY_SETTING_KEYS if k in meta}
    if meta.get("disk") in PRESETS:
        saved["disk"] = meta["disk"]
    saved.update({k: v for k, v in dict(meta.get("settings") or {}).items() if k in fields})
    if isinstance(saved.get("scale"), dict):  # run.json holds the ScaleSpec as a mapping
        saved["scale"] = ScaleSpec(**saved["scale"])
    else:  # a run from before settings were kept: its workload.yaml says the scale
        saved["scale"] = read_scale(rd.workload_yaml)
    unknown = sorted(set(overrides or {}) - fields)
    if unknown:
        raise TunerError(f"unknown run settings {unknown}; expected some of {sorted(fields)}")
    given = dict(overrides or {})
    if isinstance(saved.get("baseline"), Mapping):
        saved["baseline"] = settings_from_json(saved["baseline"])
    settings = RunSettings(**{**saved, **given})
    changed = tuple(
        k for k in given if not _same_setting(k, saved.get(k, getattr(RunSettings(), k)), given[k])
    )
    kept = tuple(k for k in saved if k not in given)
    return ResumedRun(load_workload(rd.workload_yaml), rd, settings, kept, changed)


__all__ = [
    "DEVIATIONS",
    "ResumedRun",
    "RunSettings",
    "RunSummary",
    "resume_run",
    "run_study",
    "start_run",
]
