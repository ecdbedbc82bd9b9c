"""The study loop: baselines, the Optuna search, and the interleaved re-measurement.

Every measurement becomes one :class:`TrialRecord`; the loop hands each to a ``sink`` (the run
directory appends it to ``trials.csv``) before telling Optuna, so a crash loses at most the trial
that was running. On resume the records already written are skipped, trials Optuna still shows
as running (the main process was killed) are completed from their record or marked failed.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, Protocol

import optuna
from optuna.trial import TrialState

from tuner.engine.base import Measurement
from tuner.flink import options as fo
from tuner.search import space
from tuner.search.space import WARM_START_ATTR
from tuner.trace.source import has_timers
from tuner.workload import Workload, column_family_count

log = logging.getLogger(__name__)

Kind = Literal["baseline", "search", "remeasure", "ablation"]
Objective = Literal["throughput", "pareto", "checkpoint", "recovery"]

BASELINES: tuple[str, ...] = (
    "DEFAULT",
    "SPINNING_DISK_OPTIMIZED",
    "SPINNING_DISK_OPTIMIZED_HIGH_MEM",
    "FLASH_SSD_OPTIMIZED",
)
DEFAULT_LABEL = "DEFAULT"
CURRENT_LABEL = "current"  # the user's own configuration (tuner run --baseline)
RECOMMENDED_LABEL = "recommended"
# Re-measured beside the recommendation under --objective recovery: its restore keys alone.
RESTORE_KEYS_LABEL = "restore-keys"
THROUGHPUT = "ops_per_s"
READ_P99 = "read_p99_us"
# Bytes of new SST files each incremental checkpoint uploads (counted, not timed).
CHECKPOINT_BYTES = "checkpoint_incremental_bytes_mean"
CHECKPOINT_DURATION = "checkpoint_p50_s"
# Seconds to restore a new instance from a checkpoint of the state at the end of the measured
# phase (tuner.engine.replay): copy the files, open RocksDB.
RESTORE_S = "restore_s"
# Objectives that minimise a cost while throughput keeps a floor, and the cost each minimises.
FLOORED: Final[Mapping[str, str]] = MappingProxyType(
    {"checkpoint": CHECKPOINT_BYTES, "recovery": RESTORE_S}
)


@dataclass(frozen=True)
class Candidate:
    """A set of Flink settings to measure, and why it is measured."""

    label: str
    kind: Kind
    settings: Mapping[str, fo.FlinkValue]
    trial_number: int | None = None
    repeat: int = 0


@dataclass(frozen=True)
class TrialRecord:
    """One row of ``trials.csv``: a candidate and what measuring it gave."""

    seq: int
    candidate: Candidate
    status: Literal["ok", "failed", "skipped"]
    reason: str
    metrics: Mapping[str, float]
    wall_s: float
    rss_peak_bytes: int
    started_at: float

    @property
    def ok(self) -> bool:
        """Whether the measurement finished."""
        return self.status == "ok"


Measure = Callable[[Candidate], Measurement]
Sink = Callable[[TrialRecord], None]
RunBatch = Callable[[Sequence[Candidate]], list[TrialRecord]]


class Refine(Protocol):
    """A step between the search and the re-measurement that may change what is recommended
    (the minimal recommendation, tuner.search.ablation). It measures through ``run_batch``
    (records land in trials.csv), finds earlier records in ``records`` on resume, and returns
    the settings to recommend with what it found; None when it was asked to stop."""

    def __call__(
        self,
        best: Mapping[str, fo.FlinkValue],
        records: Sequence[TrialRecord],
        run_batch: RunBatch,
        should_stop: Callable[[], bool],
        room: Callable[[int], bool] | None = None,
    ) -> tuple[dict[str, fo.FlinkValue], object] | None: ...

    def planned(self, best: Mapping[str, fo.FlinkValue] | None) -> int:
        """Measurements it will make at most (for the progress total)."""
        ...

    def least(self, best: Mapping[str, fo.FlinkValue] | None) -> int:
        """Measurements it needs at the least, however little time is left."""
        ...

    def fit_to(self, measurements: int) -> None:
        """Make at most about ``measurements`` (what the time budget leaves)."""
        ...


@dataclass(frozen=True)
class StudyProgress:
    """Where the study is, for a progress bar."""

    phase: str
    done: int
    total: int
    best_label: str | None
    best_value: float | None
    eta_s: float | None
    best_metric: str = THROUGHPUT  # what best_value is: the objective's own figure


@dataclass
class StudyConfig:
    """How to search."""

    trials: int = 30
    seed: int = 0
    objective: Objective = "throughput"
    repeats: int = 3
    baselines: Sequence[str] = BASELINES
    max_skips_per_trial: int = 50
    jobs: int = 1  # measurements at once; >1 shares the CPUs (see README: parallel trials)
    # The user's configuration, measured beside Flink's option sets and re-measured as the
    # reference of the headline gain (tuner run --baseline); None: Flink's default is.
    current: Mapping[str, fo.FlinkValue] | None = None
    # --objective checkpoint: a candidate counts only while its throughput is at least this
    # share of the reference's (current when given, else Flink's default) as a baseline measured.
    throughput_floor: float = 0.9
    # tuner run --time-budget: when the run must end (time.monotonic() seconds), and how many
    # measurements of a search trial's length the run makes after the loop (the confirmation).
    deadline: float | None = None
    reserve_after: int = 0
    # The least confirmation the runner would still make (fewer candidates and rounds), kept
    # when the whole one cannot be: without it a run whose budget could not hold the whole
    # confirmation kept no time for any (the demo job at real size: 100 s left, 208 s needed).
    reserve_after_least: int = 0
    # What one reserved measurement costs, in seconds, when the runner measured it (one
    # measurement on the confirmation's engine, on the run's own model); None: a search
    # trial's length. Counted in trial lengths, the demo job at real size kept 530 s for a
    # confirmation that took 110 s and stopped its search after 2 of 30 trials.
    reserve_price_s: float | None = None
    # The whole reserve given what the search has found so far (the confirmation confirms the
    # configurations the search really has: fewer than its top N after one or two trials);
    # None: reserve_after. Never more than reserve_after.
    reserve_count: Callable[[Sequence[TrialRecord]], float] | None = None
    # How a restore runs is searched too (space.RestoreSearch): --objective recovery on Flink's
    # own backend, where those options act.
    restore_search: space.RestoreSearch = "none"
    # Tell the search what the baselines measured before it draws its first trial (a warm
    # start): each of Flink's option sets and the user's configuration that is a point of the
    # search space. They stand in for random trials: the random start is not shortened by them.
    warm_start: bool = True


@dataclass
class StudyOutcome:
    """Everything the run produced, for the recommendation and the report."""

    records: list[TrialRecord]
    best_trial_number: int | None
    best_settings: dict[str, fo.FlinkValue] | None
    interrupted: bool = False
    pareto_trial_numbers: list[int] = field(default_factory=list)
    # What was re-measured and is recommended: the minimal change set when a Refine hook
    # shrank the search winner (best_settings), else best_settings itself.
    recommended_settings: dict[str, fo.FlinkValue] | None = None
    refinement: object | None = None  # what the Refine hook found (tuner.search.ablation)
    # Search trials finished when the time budget ended the search early (None: it did not).
    time_budget_trials: int | None = None
    # What the time budget cut, each said as a sentence for the CLI and the report.
    budget_cuts: list[str] = field(default_factory=list)
    # The baselines told to the search before its first trial (a warm start), and those left
    # out with why.
    warm_start: list[str] = field(default_factory=list)
    warm_start_left_out: dict[str, str] = field(default_factory=dict)


def create_study(
    storage_url: str | optuna.storages.BaseStorage,
    name: str,
    config: StudyConfig,
    *,
    load_if_exists: bool = True,
    constant_liar: bool = False,
    warm: int = 0,
) -> optuna.Study:
    """Create (or load) the Optuna study: in the run directory's SQLite file, or in a shared
    database (tuner.remote; ``load_if_exists=False`` there: a name is never silently shared).
    ``warm``: baselines the loop will tell the study before the search (:func:`warm_start`);
    TPE counts them as finished trials, so the random start is lengthened by as many."""
    n_startup = max(4, config.trials // 3) + warm
    # constant_liar: with many workers, running trials count as bad so that workers asking at
    # once do not all get the same point (Optuna's advice for distributed TPE).
    with warnings.catch_warnings():
        # Optuna 5 deprecates constraints_func for Trial.set_constraint, which Optuna 4 (still
        # supported here) lacks; it keeps working until Optuna 7, so users need not see this.
        warnings.filterwarnings("ignore", message=".*constraints_func", category=FutureWarning)
        sampler = optuna.samplers.TPESampler(
            seed=config.seed,
            n_startup_trials=n_startup,
            multivariate=True,
            constant_liar=constant_liar,
            # The throughput floor of --objective checkpoint or recovery, as Optuna's constraint
            # (<= 0 holds).
            constraints_func=_constraint if config.objective in FLOORED else None,
        )
    directions: list[Literal["minimize", "maximize"]] = (
        ["maximize"]
        if config.objective == "throughput"
        else ["minimize"]
        if config.objective in FLOORED
        else ["maximize", "minimize"]
    )
    return optuna.create_study(
        storage=storage_url,
        study_name=name,
        directions=directions,
        sampler=sampler,
        load_if_exists=load_if_exists,
    )


def warm_start(
    workload: Workload, config: StudyConfig
) -> tuple[dict[str, space.Point], dict[str, str]]:
    """The baselines that are points of the search space (by label), and those that are not,
    with why. Only configurations that open RocksDB exactly as a search point would are told
    to the search: a near miss would teach it a figure its point never had."""
    if not config.warm_start:
        return {}, {}
    settings: dict[str, Mapping[str, fo.FlinkValue]] = {
        name: {fo.PREDEFINED_OPTIONS: name} for name in config.baselines
    }
    if config.current is not None:
        settings[CURRENT_LABEL] = config.current
    points: dict[str, space.Point] = {}
    left_out: dict[str, str] = {}
    where = (workload.memory, workload.flink_version, has_timers(workload), config.restore_search)
    for label, s in settings.items():
        point = space.point_of(s, *where)
        if point is not None:
            points[label] = point
            continue
        off = space.off_space(s, *where)
        left_out[label] = (
            f"outside the searched ranges ({', '.join(off)})"
            if off
            else "sets options the search does not"
        )
    return points, left_out


def _constraint(trial: optuna.trial.FrozenTrial) -> list[float]:
    return [float(trial.user_attrs.get(CONSTRAINT_ATTR, 0.0))]


CONSTRAINT_ATTR = "throughput_below_floor"


def _values(config: StudyConfig, metrics: Mapping[str, float]) -> list[float]:
    if config.objective == "throughput":
        return [float(metrics[THROUGHPUT])]
    if config.objective in FLOORED:
        return [float(metrics[FLOORED[config.objective]])]
    return [float(metrics[THROUGHPUT]), float(metrics[READ_P99])]


class StudyLoop:
    """Runs baselines, search trials and re-measurements, resuming from earlier records."""

    def __init__(
        self,
        workload: Workload,
        study: optuna.Study,
        config: StudyConfig,
        measure: Measure,
        sink: Sink,
        earlier: Sequence[TrialRecord] = (),
        on_progress: Callable[[StudyProgress], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        column_families: int | None = None,
        refine: Refine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workload = workload
        self._clock = clock
        self._time_budget_trials: int | None = None
        self._budget_cuts: list[str] = []
        # Configurations a re-measurement round holds, once it is known (progress's total).
        self._remeasured: int | None = None
        # How much time the search keeps for the confirmation once decided: the whole reserve,
        # the least one, or none (None: not decided yet, counted as the whole one).
        self._reserve_confirmation: Literal["whole", "least", "none"] | None = None
        self._reserve_refine: bool | None = None  # the same for the refine step's floor
        self._refine = refine
        self._refined: tuple[dict[str, fo.FlinkValue], object] | None = None
        self.study = study
        self.config = config
        self._measure = measure
        self._sink = sink
        self.records: list[TrialRecord] = list(earlier)
        self._on_progress = on_progress
        self._should_stop = should_stop
        # Column families of the replayed instance (states + timer services): from the trace
        # header when there is one, else from the workload's states.
        self._cfs = (
            column_families if column_families is not None else column_family_count(workload.states)
        )
        self._durations: list[float] = [r.wall_s for r in earlier if r.status != "skipped"]
        self._warm: list[str] = []  # baselines told to the search (see _warm_start)
        self._warm_left_out: dict[str, str] = {}
        self._timers = has_timers(workload)  # where timers live is searched only if there are any

    # -- bookkeeping -----------------------------------------------------------------------
    def _reference(self) -> list[tuple[str, Mapping[str, fo.FlinkValue]]]:
        """The configurations re-measured beside the recommendation."""
        out: list[tuple[str, Mapping[str, fo.FlinkValue]]] = [
            (DEFAULT_LABEL, {fo.PREDEFINED_OPTIONS: "DEFAULT"})
        ]
        if self.config.current is not None:
            out.append((CURRENT_LABEL, self.config.current))
        return out

    def _total(self) -> int:
        extra = 0 if self.config.current is None else 1
        refine = 0 if self._refine is None else self._refine.planned(self._best_trial()[1])
        return (
            len(self.config.baselines)
            + extra
            + self.config.trials
            + refine
            + (self._remeasured or len(self._reference()) + 1) * self.config.repeats
        )

    def _done(self) -> int:
        return sum(1 for r in self.records if r.status != "skipped")

    def _best(self) -> tuple[str | None, float | None]:
        """The progress line's best, among the baselines and the search trials. The minimal
        recommendation's reverts and the re-measurements are not candidates: named there, one
        read as a configuration the search had found ("best 191.5k ops/s
        (minimal:greedy-4-thread.num-6a981033)")."""
        metric = FLOORED.get(self.config.objective)
        found = [r for r in self.records if r.ok and r.candidate.kind in ("baseline", "search")]
        if metric is None:
            ok = [r for r in found if THROUGHPUT in r.metrics]
            if not ok:
                return None, None
            best = max(ok, key=lambda r: r.metrics[THROUGHPUT])
            return best.candidate.label, best.metrics[THROUGHPUT]
        # A floored objective: the least figure among candidates that keep the floor.
        floor = self.floor()
        kept = [
            r
            for r in found
            if metric in r.metrics
            and (floor is None or float(r.metrics.get(THROUGHPUT, 0.0)) >= floor)
        ]
        if not kept:
            return None, None
        least = min(kept, key=lambda r: r.metrics[metric])
        return least.candidate.label, least.metrics[metric]

    def _progress(self, phase: str) -> None:
        if self._on_progress is None:
            return
        done, total = self._done(), self._total()
        eta = None
        if self._durations:
            eta = statistics.median(self._durations) * max(0, total - done)
            if self.config.deadline is not None:  # the budget ends the run by then
                eta = min(eta, max(0.0, self.config.deadline - self._clock()))
        label, value = self._best()
        metric = FLOORED.get(self.config.objective, THROUGHPUT)
        self._on_progress(StudyProgress(phase, done, total, label, value, eta, metric))

    def _record(self, rec: TrialRecord) -> TrialRecord:
        self.records.append(rec)
        self._sink(rec)
        return rec

    def _skip_reason(self, candidate: Candidate) -> str | None:
        return fo.invalid_reason(
            candidate.settings, self.workload.memory, self._cfs, self.workload.flink_version
        )

    def _run_batch(self, candidates: Sequence[Candidate]) -> list[TrialRecord]:
        """Measure candidates, ``config.jobs`` at a time, and record them in the given order.

        Search candidates over the budget are recorded as skipped without running; baselines
        over the budget are measured (users run them today) but flagged ``over_budget``.
        """
        started = time.time()
        reasons = [self._skip_reason(c) for c in candidates]
        to_run = [
            c for c, r in zip(candidates, reasons, strict=True) if not (r and c.kind == "search")
        ]
        if self.config.jobs > 1 and len(to_run) > 1:
            with ThreadPoolExecutor(max_workers=self.config.jobs) as pool:
                measured = list(pool.map(self._measure, to_run))
        else:
            measured = [self._measure(c) for c in to_run]
        results = dict(zip(map(id, to_run), measured, strict=True))
        out = []
        for cand, reason in zip(candidates, reasons, strict=True):
            m = results.get(id(cand))
            if m is None:
                rec = TrialRecord(
                    len(self.records), cand, "skipped", reason or "", {}, 0.0, 0, started
                )
            else:
                metrics = dict(m.metrics)
                if reason is not None:
                    metrics["over_budget"] = 1.0
                rec = TrialRecord(
                    len(self.records),
                    cand,
                    m.status,
                    m.reason or (reason or ""),
                    metrics,
                    m.wall_s,
                    m.rss_peak_bytes,
                    started,
                )
                self._durations.append(m.wall_s / max(1, min(self.config.jobs, len(to_run))))
            out.append(self._record(rec))
        return out

    def _run_in_chunks(self, candidates: Sequence[Candidate], phase: str) -> bool:
        """Run candidates ``jobs`` at a time; False when asked to stop before the end."""
        for i in range(0, len(candidates), self.config.jobs):
            if self._should_stop():
                return False
            chunk = candidates[i : i + self.config.jobs]
            self._progress(f"{phase} {', '.join(c.label for c in chunk)}")
            self._run_batch(chunk)
        return True

    def _run_batch_progress(self, candidates: Sequence[Candidate]) -> list[TrialRecord]:
        self._progress(f"minimal recommendation ({len(candidates)} configurations)")
        return self._run_batch(candidates)

    def _has(self, label: str, kind: Kind, repeat: int = 0) -> bool:
        return any(
            r.candidate.label == label and r.candidate.kind == kind and r.candidate.repeat == repeat
            for r in self.records
        )

    def _confirmation_s(self, per: float) -> float:
        """Seconds kept for the confirmation: its measurements (the configurations it will have
        given what the search found so far, when the runner can tell) at their measured price,
        else at ``per``, a search trial's."""
        c = self.config
        level = self._reserve_confirmation or "whole"
        if level == "none":
            return 0.0
        count: float = c.reserve_after_least if level == "least" else c.reserve_after
        if level == "whole" and c.reserve_count is not None:
            count = min(count, c.reserve_count(self.records))
        return count * (per if c.reserve_price_s is None else c.reserve_price_s)

    def _after_refine(self, per: float) -> float:
        """Seconds the run spends after the refine step: re-measure, confirmation (unless the
        budget could not hold it from the start, see :meth:`_out_of_time`)."""
        remeasure = (len(self._reference()) + 1) * self.config.repeats
        return remeasure * per + self._confirmation_s(per)

    def _after_search(self, per: float) -> float:
        """Seconds the run spends after the search at the least: refine (bounded to what is
        left, so only its floor is reserved), then :meth:`_after_refine`."""
        refine = 0
        if self._refine is not None and self._reserve_refine is not False:
            refine = self._refine.least(self._best_trial()[1])
        return refine * per + self._after_refine(per)

    def _left(self) -> tuple[float, float] | None:
        """(seconds left in the time budget, seconds per measurement), or None without a
        budget or before anything was measured. Per measurement: the median, or what Flink's
        default, the best trial or a re-measurement took when longer, as what follows the
        search measures those and configurations near the winner (measured on quickstart:
        search trials 2.7 s median, the winner and its reverts 4-6 s)."""
        if self.config.deadline is None or not self._durations:
            return None
        per = statistics.median(self._durations)
        best_number = self._best_trial()[0]
        for r in self.records:
            c = r.candidate
            if r.status != "skipped" and (
                c.kind == "remeasure"
                or (c.kind == "baseline" and c.label in (DEFAULT_LABEL, CURRENT_LABEL))
                or (
                    c.kind == "search" and best_number is not None and c.trial_number == best_number
                )
            ):
                per = max(per, r.wall_s / max(1, self.config.jobs))
        return self.config.deadline - self._clock(), per

    def _room(self, measurements: int) -> bool:
        """Whether ``measurements`` more, after the search, still leave time for the
        re-measurements and the confirmation: the refine step asks before each optional
        measurement, as its own may run longer than the search's median."""
        left = self._left()
        if left is None:
            return True
        seconds, per = left
        # Its own measurements at what they have taken so far (configurations between the
        # winner and the reference can be slower than both), what follows at the usual price.
        refined = [
            r.wall_s / max(1, self.config.jobs)
            for r in self.records
            if r.candidate.kind == "ablation" and r.status != "skipped"
        ]
        own = max(per, statistics.median(refined)) if refined else per
        return seconds >= own * measurements + self._after_refine(per)

    def _out_of_time(self) -> bool:
        """Whether one more search trial would leave too little time for what follows it.
        Never before the first successful search trial: a recommendation needs one, and time
        kept for what follows it is of no use without it (on production-dedup-ttl the first
        trial failed after 93 s and the search stopped there, with 10 of 15 minutes unused)."""
        left = self._left()
        if left is None or self._best_trial()[1] is None:
            return False
        seconds, per = left
        # Decided once, after the first successful trial (the refine step's floor depends on the
        # winner): when the budget cannot hold the whole confirmation beside one more trial and
        # what else follows, the least one is kept; when not even that, then the minimal
        # recommendation's floor: keeping time for a step that cannot fit would only stop the
        # search to leave time that is then not used; the search gets that time instead.
        decide = self._best_trial()[1] is not None
        if decide and self._reserve_confirmation is None and self.config.reserve_after:
            levels: tuple[Literal["whole", "least", "none"], ...] = ("whole", "least", "none")
            for level in levels:
                self._reserve_confirmation = level
                if level == "none" or seconds >= per + self._after_search(per):
                    break
        if decide and self._reserve_refine is None and self._refine is not None:
            self._reserve_refine = seconds >= per + self._after_search(per)
        return seconds < per + self._after_search(per)

    # -- phases ----------------------------------------------------------------------------
    def run(self) -> StudyOutcome:
        """Run (or finish) the study; stops early, cleanly, when ``should_stop`` says so."""
        self._recover_running_trials()
        baselines = [
            Candidate(name, "baseline", {fo.PREDEFINED_OPTIONS: name})
            for name in self.config.baselines
            if not self._has(name, "baseline")
        ]
        if self.config.current is not None and not self._has(CURRENT_LABEL, "baseline"):
            baselines.append(Candidate(CURRENT_LABEL, "baseline", dict(self.config.current)))
        if not self._run_in_chunks(baselines, "baseline"):
            return self._outcome(interrupted=True)
        self._warm_start()
        if not self._search():
            return self._outcome(interrupted=True)
        best_number, best_settings = self._best_trial()
        left = self._left()
        refine = self._refine
        if best_settings is not None and refine is not None and left is not None:
            seconds, per = left
            fits = max(0, int((seconds - self._after_refine(per)) / per))
            least = refine.least(best_settings)
            if fits < least:
                # Started anyway, its one-at-a-time step (which cannot be shortened) would run
                # past the budget: the search winner is recommended whole instead.
                refine = None
                self._budget_cuts.append(
                    f"the minimal recommendation was skipped: it needs {least} measurements "
                    f"(about {least * per:.0f} s) and the budget left room for {fits} after "
                    "the re-measurements and the confirmation; the search winner is "
                    "recommended whole"
                )
            else:
                refine.fit_to(fits)
        if best_settings is not None and refine is not None:
            self._refined = refine(
                best_settings,
                self.records,
                self._run_batch_progress,
                self._should_stop,
                self._room,
            )
            if self._refined is None:
                return self._outcome(interrupted=True)
            untried = getattr(self._refined[1], "untried_for_time", 0)
            if untried:
                self._budget_cuts.append(
                    f"the minimal recommendation kept {untried} key(s) without trying to drop "
                    "them: its measurements took longer than planned, and trying would have "
                    "left too little time for the re-measurements and the confirmation"
                )
            best_settings = self._refined[0]
        if best_settings is not None and not self._remeasure(best_number, best_settings):
            return self._outcome(interrupted=True)
        self._progress("done")
        return self._outcome(interrupted=False)

    def _remeasure(self, number: int | None, settings: Mapping[str, fo.FlinkValue]) -> bool:
        """The interleaved re-measurement, round by round; False when asked to stop. Under a
        time budget a round after the first starts only when what is left holds it (the first
        always runs: the headline's gain rests on it), and rounds not run are said. They come
        before the confirmation, which the runner fits to what they leave."""
        labelled = (*self._reference(), (RECOMMENDED_LABEL, settings))
        restore_keys = self._restore_keys_alone(settings)
        if restore_keys is not None:
            labelled = (*labelled, (RESTORE_KEYS_LABEL, restore_keys))
        self._remeasured = len(labelled)
        rounds = self.config.repeats
        for i in range(rounds):
            pending = [
                Candidate(label, "remeasure", s, number, i)
                for label, s in labelled
                if not self._has(label, "remeasure", i)
            ]
            left = self._left()
            if i and pending and left is not None and left[0] < left[1] * len(pending):
                self._budget_cuts.append(
                    f"the re-measurement ran {i} of {rounds} rounds ({len(labelled)} "
                    f"measurements a round, about {len(labelled) * left[1]:.0f} s) to fit the "
                    "time budget"
                )
                return True
            if not self._run_in_chunks(pending, "re-measure"):
                return False
        return True

    def _restore_keys_alone(
        self, settings: Mapping[str, fo.FlinkValue]
    ) -> dict[str, fo.FlinkValue] | None:
        """Under --objective recovery, the recommendation's restore keys on the reference, when
        it changes other keys too: re-measured beside it, so that a pick whose other keys cost
        more throughput than the floor allows can fall back to what changes restores only."""
        if self.config.objective != "recovery":
            return None
        restore = {k: v for k, v in settings.items() if k in fo.RESTORE_ONLY}
        reference = dict(self._reference()[-1][1])
        # Against what the reference is measured with: the workload's memory, then its own keys.
        others = (
            fo.changed_keys(settings, {**fo.memory_settings(self.workload.memory), **reference})
            - fo.RESTORE_ONLY
        )
        if not restore or not others:
            return None
        return {**reference, **restore}

    def _warm_start(self) -> None:
        """Tell the study what the baselines that are points of its space measured, once (a
        resumed run finds them in the study). A baseline that failed, or ran over the budget
        (the search would have skipped it), teaches the search nothing and is left out."""
        points, self._warm_left_out = warm_start(self.workload, self.config)
        told = {t.user_attrs.get(WARM_START_ATTR) for t in self.study.get_trials(deepcopy=False)}
        floor = self.floor()
        for r in self.records:
            c = r.candidate
            point = points.get(c.label)
            if c.kind != "baseline" or point is None:
                continue
            if not r.ok or "over_budget" in r.metrics:
                self._warm_left_out[c.label] = "failed" if not r.ok else "over the budget"
                continue
            values = _values(self.config, r.metrics)
            if not all(math.isfinite(v) for v in values):
                self._warm_left_out[c.label] = "no figure for the objective"
                continue
            self._warm.append(c.label)
            if c.label in told:
                continue
            attrs: dict[str, object] = {WARM_START_ATTR: c.label}
            if floor is not None:
                attrs[CONSTRAINT_ATTR] = floor - float(r.metrics.get(THROUGHPUT, 0.0))
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=dict(point.params),
                    distributions=dict(point.distributions),
                    values=values,
                    user_attrs=attrs,
                )
            )

    def _finished_trials(self) -> list[TrialRecord]:
        """Search trials whose measurement finished (ok or failed): what --trials counts.
        Skipped candidates and trials cut off by a killed process are not among them."""
        return [
            r for r in self.records if r.candidate.kind == "search" and r.status in ("ok", "failed")
        ]

    def _recover_running_trials(self) -> None:
        """Trials left RUNNING by a killed main process: complete them from their record when
        the measurement finished and was written, otherwise mark them failed."""
        by_number = {
            r.candidate.trial_number: r for r in self.records if r.candidate.kind == "search"
        }
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            rec = by_number.get(t.number)
            if rec is not None and rec.ok:
                self.study.tell(t.number, _values(self.config, rec.metrics))
                continue
            # Killed mid-measurement: nothing finished, so nothing is kept, and it does not
            # count towards the trials asked for (see _finished_trials).
            self.study.tell(t.number, state=TrialState.FAIL)

    def _search(self) -> bool:
        skips = 0
        while (done := len(self._finished_trials())) < self.config.trials:
            if self._should_stop():
                return False
            if self._out_of_time():
                self._time_budget_trials = done
                self._budget_cuts.append(
                    f"the search stopped after {done} of {self.config.trials} trials, to leave "
                    "time for the minimal recommendation, the re-measurements and the "
                    "confirmation"
                )
                log.info(  # the CLI says it with every other cut at the end
                    "time budget: search stopped after %d of %d trials, leaving %.0f s for "
                    "the measurements that follow",
                    done,
                    self.config.trials,
                    self._after_search((self._left() or (0.0, 0.0))[1]),
                )
                return True
            batch: list[tuple[optuna.trial.Trial, Candidate]] = []
            while len(batch) < min(self.config.jobs, self.config.trials - done):
                trial = self.study.ask()
                settings = space.suggest(
                    trial, self.workload.memory, self._timers, self.config.restore_search
                )
                cand = Candidate(f"trial-{trial.number}", "search", settings, trial.number)
                reason = self._skip_reason(cand)
                if reason is None:
                    batch.append((trial, cand))
                    continue
                self._record(
                    TrialRecord(len(self.records), cand, "skipped", reason, {}, 0.0, 0, time.time())
                )
                trial.set_user_attr("skipped", True)
                trial.set_user_attr("reason", reason)
                self.study.tell(trial, state=TrialState.PRUNED)
                skips += 1
                if skips > self.config.max_skips_per_trial * max(1, self.config.trials):
                    log.warning("search space mostly over budget; stopping the search early")
                    return True
            self._progress(f"trial {done + 1}/{self.config.trials}")
            for (trial, _), rec in zip(batch, self._run_batch([c for _, c in batch]), strict=True):
                if rec.ok:
                    floor = self.floor()
                    if floor is not None:
                        below = floor - float(rec.metrics.get(THROUGHPUT, 0.0))
                        trial.set_user_attr(CONSTRAINT_ATTR, below)
                    self.study.tell(trial, _values(self.config, rec.metrics))
                else:
                    trial.set_user_attr("reason", rec.reason)
                    self.study.tell(trial, state=TrialState.FAIL)
        return True

    def floor(self) -> float | None:
        """--objective checkpoint or recovery: the least throughput a candidate must keep
        (ops/s), from the reference's baseline measurement; None for other objectives or before
        it is measured."""
        if self.config.objective not in FLOORED:
            return None
        label = CURRENT_LABEL if self.config.current is not None else DEFAULT_LABEL
        for r in self.records:
            c = r.candidate
            if c.label == label and c.kind == "baseline" and r.ok and THROUGHPUT in r.metrics:
                return self.config.throughput_floor * float(r.metrics[THROUGHPUT])
        return None

    def _best_trial(self) -> tuple[int | None, dict[str, fo.FlinkValue] | None]:
        search = [r for r in self.records if r.candidate.kind == "search" and r.ok]
        if not search:
            return None, None
        if self.config.objective in FLOORED:
            best = pick_lowest(search, self.floor(), FLOORED[self.config.objective])
        elif self.config.objective == "throughput":
            best = max(search, key=lambda r: r.metrics[THROUGHPUT])
        else:
            best = pick_knee(search, self._default_metrics())
        return best.candidate.trial_number, dict(best.candidate.settings)

    def _default_metrics(self) -> Mapping[str, float] | None:
        for r in self.records:
            if r.candidate.label == DEFAULT_LABEL and r.candidate.kind == "baseline" and r.ok:
                return r.metrics
        return None

    def _outcome(self, *, interrupted: bool) -> StudyOutcome:
        number, settings = self._best_trial()
        front = pareto_front([r for r in self.records if r.candidate.kind == "search" and r.ok])
        refined = self._refined
        return StudyOutcome(
            self.records,
            number,
            settings,
            interrupted,
            [r.candidate.trial_number for r in front if r.candidate.trial_number is not None],
            recommended_settings=refined[0] if refined is not None else settings,
            refinement=refined[1] if refined is not None else None,
            time_budget_trials=self._time_budget_trials,
            budget_cuts=list(self._budget_cuts),
            warm_start=list(self._warm),
            warm_start_left_out=dict(self._warm_left_out),
        )


def pareto_front(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Records no other record beats on both throughput (higher) and read p99 (lower)."""
    usable = [
        r
        for r in records
        if THROUGHPUT in r.metrics and not math.isnan(r.metrics.get(READ_P99, math.nan))
    ]
    front = []
    for r in usable:
        t, p = r.metrics[THROUGHPUT], r.metrics[READ_P99]
        dominated = any(
            o.metrics[THROUGHPUT] >= t
            and o.metrics[READ_P99] <= p
            and (o.metrics[THROUGHPUT] > t or o.metrics[READ_P99] < p)
            for o in usable
        )
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: r.metrics[THROUGHPUT])


def pick_knee(records: Sequence[TrialRecord], default: Mapping[str, float] | None) -> TrialRecord:
    """From the Pareto front, the fastest candidate whose read p99 is no worse than the
    default's; the fastest on the front when none is (or the default was not measured)."""
    front = pareto_front(records) or list(records)
    if default is not None and READ_P99 in default:
        within = [r for r in front if r.metrics[READ_P99] <= default[READ_P99]]
        if within:
            return max(within, key=lambda r: r.metrics[THROUGHPUT])
    return max(front, key=lambda r: r.metrics[THROUGHPUT])


def pick_lowest(
    records: Sequence[TrialRecord], floor: float | None, metric: str = CHECKPOINT_BYTES
) -> TrialRecord:
    """--objective checkpoint or recovery: the lowest ``metric`` (the incremental checkpoint,
    the restore time) among candidates whose throughput keeps ``floor``; the fastest candidate
    when none does (or the floor is unknown and nothing has the figure)."""
    usable = [r for r in records if not math.isnan(r.metrics.get(metric, math.nan))]
    feasible = [r for r in usable if floor is None or r.metrics.get(THROUGHPUT, 0.0) >= floor]
    if feasible:
        return min(feasible, key=lambda r: (r.metrics[metric], -r.metrics[THROUGHPUT]))
    return max(records, key=lambda r: r.metrics.get(THROUGHPUT, 0.0))
