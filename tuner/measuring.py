"""How a run measures its candidates: the run's settings (`RunSettings`), the time budget's
floor, and the measurement factories (the replay with its cost model and trial timeouts, or a
real Flink job) that the local run (tuner.runner) and the workers of a shared study
(tuner.remote) both use."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tuner.confirm import DEFAULT_TOP
from tuner.costmodel import Disk, score
from tuner.engine.base import Measurement
from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.flink.cache_shards import oversized_blocks
from tuner.flink.options import FlinkValue
from tuner.rundir import RunDir
from tuner.scale import ScaleSpec, model_config, production_bytes
from tuner.search.measure import PROCESS_ALLOWANCE, measure_isolated
from tuner.search.study import BASELINES, CURRENT_LABEL, DEFAULT_LABEL, Candidate
from tuner.units import format_duration
from tuner.workload import Workload

__all__ = [
    "DEFAULT_TRIAL_TIMEOUT_S",
    "RunSettings",
    "check_time_budget",
    "flink_measure",
    "least_time_budget",
    "measure_candidate",
]

DEFAULT_TRIAL_TIMEOUT_S = 900.0
ADAPTIVE_TIMEOUT_FLOOR_S = 120.0
BUDGET_TIMEOUT_FLOOR_S = 10.0
BUDGET_ADAPTIVE_FLOOR_S = 30.0
# No trial may take more than this share of the time budget: a slow candidate is far from
# winning, and without a cap one could eat a quarter of the budget.
TRIAL_BUDGET_SHARE = 8
# The least one measurement takes, whatever the workload: a process started, the operation
# stream read, RocksDB opened, written and closed (the 4000-record tests/data/cli/tiny.yaml took
# 1.7-4.6 s per measurement on 2 shared cores). Only for refusing a budget that cannot work.
MEASUREMENT_FLOOR_S = 5.0
# What a run does after its last measurement under a time budget: the report with its plots and
# the config files (5 s for the tiny test job on 2 loaded cores).
FINISH_RESERVE_S = 10.0


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
    rss_margin: int = PROCESS_ALLOWANCE
    # A study shared by many machines (tuner.remote): the database URL and the study's name
    # (default: the run directory's name); how often a trial's worker says it is alive.
    storage: str | None = None
    study_name: str | None = None
    heartbeat_s: int = 10
    # The workload's `scale:` (tuner.scale): trials replay a model of the production job.
    scale: ScaleSpec = field(default_factory=ScaleSpec)
    # The user's configuration (tuner run --baseline), as read and checked once; a resumed run
    # keeps these values even if the file changed since.
    baseline: Mapping[str, FlinkValue] | None = None
    baseline_source: str | None = None
    # The minimal recommendation (tuner.search.ablation): repeats per reverted key, and a bound
    # on its measurements.
    minimal: bool = True
    minimal_repeats: int = 2
    minimal_max_measurements: int = 80
    # --objective checkpoint: the least throughput, as a share of the reference's.
    throughput_floor: float = 0.9
    # --time-budget: seconds this invocation may take; the search ends early to leave time for
    # what follows it (None: run every trial asked for). `tuner run` gives 15 min unless told;
    # the library none, so an API caller opts in.
    time_budget_s: float | None = None
    # --rescale: the factor the job's parallelism changed by before every restore (tuner.rescale:
    # 4.0 grew four-fold, 0.25 shrank four-fold; 1.0 none).
    rescale: float = 1.0
    # --warm-start: the search starts from what the baselines measured (StudyConfig.warm_start).
    warm_start: bool = True


def least_time_budget(settings: RunSettings) -> float:
    """Seconds the smallest run with these settings takes: Flink's predefined sets (and the
    --baseline) measured, one search trial, and the re-measurement rounds of the
    recommendation beside the reference(s), each at :data:`MEASUREMENT_FLOOR_S`. The minimal
    recommendation and the confirmation are not counted: the budget skips them when short.
    Then :data:`FINISH_RESERVE_S` to write the report."""
    users = settings.baseline is not None
    baselines = len(BASELINES) + users
    remeasure = (2 + users) * settings.repeats
    return (baselines + 1 + remeasure) * MEASUREMENT_FLOOR_S + FINISH_RESERVE_S


def check_time_budget(settings: RunSettings) -> None:
    """Refuse a --time-budget too small for even one search trial (TunerError, exit 2)."""
    budget = settings.time_budget_s
    if budget is None:
        return
    least = least_time_budget(settings)
    if budget < least:
        measurements = round((least - FINISH_RESERVE_S) / MEASUREMENT_FLOOR_S)
        raise TunerError(
            f"{format_duration(round(budget * 1000))} is too short for even one search trial: "
            f"give at least {format_duration(round(least * 1000))} ({measurements} measurements "
            f"- the predefined sets, one trial, {settings.repeats} re-measurement rounds - at "
            f"{MEASUREMENT_FLOOR_S:g} s each and {FINISH_RESERVE_S:g} s for the report), "
            "or `none`",
            where="--time-budget",
        )


def measure_candidate(
    workload: Workload,
    rd: RunDir,
    trace: Path,
    settings: RunSettings,
    disk: Disk,
    engine: str = "rocksdict",
    deadline: float | None = None,
) -> Callable[[Candidate], Measurement]:
    """Measure a candidate on ``workload`` (the replayed model); a trial whose peak SST bytes,
    scaled back to production, exceed the scale's disk budget is infeasible (failed). With a
    ``deadline`` (--time-budget, time.monotonic() seconds) no trial runs past it."""
    factor = settings.scale.factor
    disk_budget = settings.scale.disk_budget
    counter = iter(range(1 << 30))
    durations: list[float] = []

    def measure(candidate: Candidate) -> Measurement:
        workdir = rd.work / f"m{time.time_ns()}-{next(counter)}"
        # A hung trial (RocksDB can wait on a flush for ever) must not hold the study for the
        # full --trial-timeout once we know how long a trial takes: 10x the median, 2 min at least.
        timeout = settings.timeout_s
        capped = ""  # why the budget shortened the timeout, said in trials.csv when it fires
        if durations:
            # Under a time budget a shorter floor: a trial ten times slower than the median is
            # far from winning, and two minutes each would spend the budget on such trials
            # (measured: 5 of 8 trials of production-keyed-aggregation, 8 s median, ran into
            # 120 s).
            floor = ADAPTIVE_TIMEOUT_FLOOR_S if deadline is None else BUDGET_ADAPTIVE_FLOOR_S
            timeout = min(timeout, max(floor, 10 * statistics.median(durations)))
        budget = settings.time_budget_s
        if deadline is not None and budget is not None:
            share = max(BUDGET_TIMEOUT_FLOOR_S, budget / TRIAL_BUDGET_SHARE)
            if share < timeout:
                timeout = share
                capped = (
                    f"the trial timeout is capped at 1/{TRIAL_BUDGET_SHARE} of the "
                    f"{format_duration(round(budget * 1000))} time budget"
                )
        if deadline is not None:
            # A trial that would outlast the budget is stopped with it (a few seconds at least,
            # so that a late measurement still gets to start and say why it failed).
            left = max(BUDGET_TIMEOUT_FLOOR_S, deadline - time.monotonic())
            if left < timeout:
                timeout = left
                capped = "the trial timeout is capped at the time left in the time budget"
        m = measure_isolated(
            workload,
            trace,
            candidate.settings,
            workdir,
            timeout_s=timeout,
            rss_margin=settings.rss_margin,
            engine_name=engine,
            scale=factor,
            rescale=settings.rescale,
        )
        if m.status != "ok":
            if capped and m.reason.startswith("timeout:"):
                return replace(m, reason=f"{m.reason} ({capped})")
            return m
        durations.append(m.wall_s)
        metrics = score(m.metrics, disk)
        peak = production_bytes(metrics.get("sst_bytes_peak", 0.0), factor)
        metrics["sst_bytes_peak_production"] = peak
        if disk_budget is not None and peak > disk_budget:
            return replace(
                m,
                status="failed",
                reason=f"over the disk budget: peak SST size {peak / (1 << 30):.2f} GiB in "
                f"production units > scale.disk_budget {disk_budget / (1 << 30):.2f} GiB",
                metrics=metrics,
            )
        if candidate.label not in (DEFAULT_LABEL, CURRENT_LABEL):
            # The reference is measured whatever it does: it is what the gain is against.
            model, _ = model_config(
                fo.resolve(candidate.settings, workload.memory, workload.flink_version), factor
            )
            oversized = oversized_blocks(metrics, candidate.settings, model, factor)
            if oversized is not None:
                return replace(m, status="failed", reason=oversized, metrics=metrics)
        return replace(m, metrics=metrics)

    return measure


def flink_measure(
    workload: Workload, rd: RunDir, trace: Path, settings: RunSettings
) -> Callable[[Candidate], Measurement]:
    """Measurements on real Flink: no cost model, Flink's own records/s is the objective."""
    from tuner.engine.flink_job import FlinkMeasure

    return FlinkMeasure(workload, trace, rd.work, settings.timeout_s)
