"""One study, many workers: the search loop when trials are measured by any number of processes
on any number of machines, all sharing one Optuna study in a database.

Every fact a worker needs is in the database: the study's user attributes hold the
:class:`StudySpec` (the workload, the digest of its operation stream, the trial budget, how
to score), and each finished trial's user attribute ``record`` holds its whole
:class:`~tuner.search.study.TrialRecord`. The coordinator (``tuner run --storage``) measures
the baselines, searches like any worker, then rebuilds the search records from the database.

Counting: a trial counts when its record says ``ok`` or ``failed`` (as in a local run). A
trial whose worker died has no record: its heartbeat stops, it is failed and queued again with
the same parameters, and the re-run is what counts. Trials are only started while fewer than
``trials`` are finished or running, and a trial that finds ``trials`` trials numbered before it
(finished or running) gives way, so the budget is never exceeded even by workers that ask at
the same moment.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field
from typing import Any, Literal, cast

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.search import space
from tuner.search.storage import RERUN_OF, Heartbeat, Retry, fail_stale
from tuner.search.study import (
    READ_P99,
    THROUGHPUT,
    Candidate,
    Measure,
    Objective,
    StudyLoop,
    TrialRecord,
)
from tuner.trace.source import has_timers
from tuner.workload import Workload

log = logging.getLogger(__name__)

SPEC_FORMAT = "tuner-study"
SPEC_VERSION = 1
RECORD_ATTR = "record"
WORKER_ATTR = "worker"
POLL_S = 1.0
# A running trial no worker has marked after this long is an orphan (see _fail_orphans); far
# above the milliseconds between ask and mark, and above clock skew between machines.
ORPHAN_AFTER_S = 300.0


@dataclass(frozen=True)
class StudySpec:
    """What the coordinator stores with the study (Optuna study user attributes)."""

    run_id: str
    origin: str  # host:path of the coordinator's run directory, to name it in messages
    created_at: float
    workload_yaml: str  # the resolved workload, every default spelled out
    stream_sha256: str
    trials: int
    objective: Objective
    seed: int
    engine: str
    disk: str | None  # a cost-model preset; None: the workload's own disk
    trial_timeout_s: float
    heartbeat_s: int
    # A scaled model (tuner.scale): workers scale option values as the coordinator does.
    scale_factor: float = 1.0
    disk_budget: int | None = None

    def to_attrs(self) -> dict[str, Any]:
        """The study's user attributes, ``format`` last: they are written one by one, and a
        worker reads the spec only once ``format`` is there."""
        return {**asdict(self), "version": SPEC_VERSION, "format": SPEC_FORMAT}

    @staticmethod
    def from_attrs(attrs: Mapping[str, Any], name: str) -> StudySpec:
        """Read the spec back; a TunerError for a study tuner did not create (or a newer one)."""
        if attrs.get("format") != SPEC_FORMAT:
            raise TunerError(f"study {name!r} was not created by tuner run", where="--study")
        if int(attrs.get("version", 0)) > SPEC_VERSION:
            raise TunerError(
                f"study {name!r} has format version {attrs['version']}, newer than this tuner "
                f"reads ({SPEC_VERSION}); upgrade tuner on this machine",
                where="--study",
            )
        fields = StudySpec.__dataclass_fields__
        required = [k for k, f in fields.items() if f.default is MISSING]
        missing = [k for k in required if k not in attrs]
        if missing:
            raise TunerError(f"study {name!r} lacks {missing}", where="--study")
        return StudySpec(**{k: attrs[k] for k in fields if k in attrs})


def worker_id() -> str:
    """host:pid, to tell workers apart in the trials table."""
    return f"{socket.gethostname()}:{os.getpid()}"


def objective_values(objective: Objective, metrics: Mapping[str, float]) -> list[float]:
    """What Optuna is told for a measured trial."""
    if objective == "throughput":
        return [float(metrics[THROUGHPUT])]
    return [float(metrics[THROUGHPUT]), float(metrics[READ_P99])]


def record_attr(rec: TrialRecord, worker: str) -> dict[str, Any]:
    """A search record as a JSON-able trial attribute."""
    c = rec.candidate
    return {
        "label": c.label,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in c.settings.items()},
        "status": rec.status,
        "reason": rec.reason,
        "metrics": dict(rec.metrics),
        "wall_s": rec.wall_s,
        "rss_peak_bytes": rec.rss_peak_bytes,
        "started_at": rec.started_at,
        "worker": worker,
    }


def record_from_trial(trial: FrozenTrial, seq: int) -> TrialRecord | None:
    """The search record a worker stored with ``trial``; None when it has none (running,
    given way, or lost with its worker)."""
    raw = trial.user_attrs.get(RECORD_ATTR)
    if not isinstance(raw, dict):
        return None
    settings: dict[str, fo.FlinkValue] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in raw["settings"].items()
    }
    cand = Candidate(raw["label"], "search", settings, trial.number)
    return TrialRecord(
        seq,
        cand,
        cast(Literal["ok", "failed", "skipped"], raw["status"]),
        str(raw["reason"]),
        {k: float(v) for k, v in raw["metrics"].items()},
        float(raw["wall_s"]),
        int(raw["rss_peak_bytes"]),
        float(raw["started_at"]),
    )


def lost_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Trials failed because their worker went silent: each has a re-run, which counts instead
    (even when the lost one had stored its record before the worker died)."""
    return {int(t.user_attrs[RERUN_OF]) for t in trials if RERUN_OF in t.user_attrs}


def kept(trial: FrozenTrial, lost: set[int]) -> bool:
    """Whether the trial's record belongs in the results (finished, not lost)."""
    return (
        trial.state.is_finished()
        and isinstance(trial.user_attrs.get(RECORD_ATTR), dict)
        and trial.number not in lost
    )


def counts(trial: FrozenTrial, lost: set[int]) -> bool:
    """Whether the trial counts towards the study's trials: measured, ok or failed."""
    return kept(trial, lost) and trial.user_attrs[RECORD_ATTR].get("status") in ("ok", "failed")


@dataclass
class Tally:
    """Where the shared search stands."""

    finished: int  # trials that count (measured: ok or failed)
    running: int


@dataclass
class WorkerSummary:
    """What one worker did."""

    measured: int = 0
    skipped: int = 0
    gave_way: int = 0
    discarded: int = 0  # measured, but failed as stale meanwhile (re-run elsewhere)
    storage_s: list[float] = field(default_factory=list)  # per measured trial
    retries: int = 0


class SharedSearch:
    """The search as one worker runs it: ask, measure, store the record, tell; until the study
    has its trials (or ``max_trials`` were measured here, or ``should_stop``)."""

    def __init__(
        self,
        study: optuna.Study,
        storage: RDBStorage,
        spec: StudySpec,
        workload: Workload,
        measure: Measure,
        column_families: int,
        retry: Retry,
        *,
        max_trials: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_trial: Callable[[Tally], None] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.study = study
        self.storage = storage
        self.spec = spec
        self.workload = workload
        self._timers = has_timers(workload)
        self._measure = measure
        self._cfs = column_families
        self.retry = retry
        self.max_trials = max_trials
        self.should_stop = should_stop
        self.on_trial = on_trial
        self._poll_s = poll_s
        self.worker = worker_id()
        self.summary = WorkerSummary()

    def tally(self) -> Tally:
        """Fail stale trials, then count finished and running ones."""

        def count() -> Tally:
            fail_stale(self.study)
            trials = self.study.get_trials(deepcopy=False)
            self._fail_orphans(trials)
            lost = lost_numbers(trials)
            return Tally(
                sum(1 for t in trials if counts(t, lost)),
                sum(1 for t in trials if t.state == TrialState.RUNNING),
            )

        return self.retry("count trials", count)

    def _fail_orphans(self, trials: Sequence[FrozenTrial]) -> None:
        """Fail trials created by an ``ask`` whose worker never got to mark them (its answer was
        lost, or it died at once): they have no heartbeat, so the stale check never sees them,
        and counted as running they would hold the study's last trials for ever."""
        now = datetime.datetime.now()
        for t in trials:
            if (
                t.state == TrialState.RUNNING
                and WORKER_ATTR not in t.user_attrs
                and t.datetime_start is not None
                and (now - t.datetime_start).total_seconds() > ORPHAN_AFTER_S
            ):
                with contextlib.suppress(UpdateFinishedTrialError):
                    self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                log.warning("trial %d was never started by its worker; failed", t.number)

    def run(self) -> WorkerSummary:
        """Measure trials until the study needs no more from this worker."""
        while not self.should_stop():
            if self.max_trials is not None and self.summary.measured >= self.max_trials:
                break
            tally = self.tally()
            if self.on_trial is not None:
                self.on_trial(tally)
            if tally.finished >= self.spec.trials:
                break
            if tally.finished + tally.running >= self.spec.trials:
                time.sleep(self._poll_s)  # the rest is running elsewhere; wait for it to end
                continue
            before = self.retry.seconds
            if self._one_trial():
                self.summary.measured += 1
                # Every storage call of this trial: count, ask, mark, check, store.
                self.summary.storage_s.append(self.retry.seconds - before)
        self.summary.retries = self.retry.retries
        return self.summary

    def _ask(self) -> tuple[optuna.trial.Trial, Candidate]:
        def ask() -> tuple[optuna.trial.Trial, Candidate]:
            with warnings.catch_warnings():
                # Optuna expects heartbeats with Study.optimize; we beat ourselves (Heartbeat).
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                trial = self.study.ask()  # a queued re-run first, when there is one
            # A first heartbeat at once: should this worker die now, the trial goes stale.
            self.storage.record_heartbeat(trial._trial_id)
            settings = space.suggest(trial, self.workload.memory, self._timers)
            return trial, Candidate(f"trial-{trial.number}", "search", settings, trial.number)

        return self.retry("ask for a trial", ask)

    def _ahead(self, number: int) -> int:
        def count() -> int:
            trials = self.study.get_trials(deepcopy=False)
            lost = lost_numbers(trials)
            return sum(
                1
                for t in trials
                if t.number < number and (counts(t, lost) or t.state == TrialState.RUNNING)
            )

        return self.retry("count trials", count)

    def _tell(
        self,
        trial: optuna.trial.Trial,
        state: TrialState,
        values: Sequence[float] | None,
        attrs: Mapping[str, Any],
    ) -> bool:
        """Store attributes and finish the trial; False when it was failed as stale meanwhile."""

        def tell() -> bool:
            current = self.storage.get_trial(trial._trial_id)
            if current.state.is_finished():
                # Failed by another process while this one could not beat (a database outage
                # longer than the grace period): its re-run measures it; keeping this would
                # count it twice.
                return current.user_attrs.get(RECORD_ATTR) is not None
            for k, v in attrs.items():
                self.storage.set_trial_user_attr(trial._trial_id, k, v)
            try:
                self.study.tell(trial, values, state=state)
            except UpdateFinishedTrialError:
                return False
            return True

        return self.retry("store a trial", tell)

    def _one_trial(self) -> bool:
        """Ask for one trial and see it through; True when a measurement was kept."""
        try:
            trial, cand = self._ask()
        except UpdateFinishedTrialError:  # failed as an orphan before we suggested (clock skew)
            self.summary.gave_way += 1
            return False
        with Heartbeat(self.storage, trial._trial_id, self.spec.heartbeat_s, self.retry.scrub):
            try:
                self.retry("mark the worker", lambda: trial.set_user_attr(WORKER_ATTR, self.worker))
            except UpdateFinishedTrialError:
                self.summary.gave_way += 1
                return False
            if self._ahead(trial.number) >= self.spec.trials:
                # Another worker asked at the same moment and took the last trial.
                self._tell(trial, TrialState.FAIL, None, {"gave_way": True})
                self.summary.gave_way += 1
                return False
            reason = fo.invalid_reason(
                cand.settings, self.workload.memory, self._cfs, self.workload.flink_version
            )
            if reason is not None:
                rec = TrialRecord(0, cand, "skipped", reason, {}, 0.0, 0, time.time())
                attrs = {
                    RECORD_ATTR: record_attr(rec, self.worker),
                    "skipped": True,
                    "reason": reason,
                }
                self._tell(trial, TrialState.PRUNED, None, attrs)
                self.summary.skipped += 1
                return False
            started = time.time()
            m = self._measure(cand)
            rec = TrialRecord(
                0, cand, m.status, m.reason, dict(m.metrics), m.wall_s, m.rss_peak_bytes, started
            )
            attrs = {RECORD_ATTR: record_attr(rec, self.worker)}
            if rec.ok:
                values = objective_values(self.spec.objective, rec.metrics)
                kept = self._tell(trial, TrialState.COMPLETE, values, attrs)
            else:
                kept = self._tell(trial, TrialState.FAIL, None, {**attrs, "reason": rec.reason})
        if not kept:
            self.summary.discarded += 1
            log.warning(
                "trial %d was failed as stale while measured; its re-run counts", trial.number
            )
        return kept


def records_from_study(study: optuna.Study, have: set[int], first_seq: int) -> list[TrialRecord]:
    """Search records in the study for trial numbers not in ``have``, by trial number."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    lost = lost_numbers(trials)
    out: list[TrialRecord] = []
    for t in trials:
        if t.number in have or not kept(t, lost):
            continue
        rec = record_from_trial(t, first_seq + len(out))
        if rec is not None:
            out.append(rec)
    return out


class SharedStudyLoop(StudyLoop):
    """The coordinator's study loop: baselines and re-measurement as in a local run, the search
    shared with every worker through the database."""

    shared: SharedSearch

    def attach(self, search: SharedSearch) -> None:
        """The shared search this loop runs its search phase with."""
        self.shared = search

    def _recover_running_trials(self) -> None:
        # Trials another worker is measuring look just like trials a killed coordinator left:
        # heartbeats tell them apart (SharedSearch.tally fails the silent ones).
        return

    def _warm_start(self) -> None:
        # Workers count every finished trial of the shared study towards --trials, and the
        # coordinator reads each back as a search trial: baselines told to it would be both.
        return

    def _sync(self) -> None:
        have = {
            r.candidate.trial_number
            for r in self.records
            if r.candidate.kind == "search" and r.candidate.trial_number is not None
        }
        new = self.shared.retry(
            "read trials", lambda: records_from_study(self.study, have, len(self.records))
        )
        for rec in new:
            self._record(rec)

    def _search(self) -> bool:
        def on_trial(tally: Tally) -> None:
            self._sync()
            self._progress(
                f"trial {min(tally.finished + 1, self.config.trials)}/"
                f"{self.config.trials} ({tally.running} running)"
            )

        self.shared.on_trial = on_trial
        self.shared.should_stop = self._should_stop
        self.shared.run()
        self._sync()
        done = sum(
            1 for r in self.records if r.candidate.kind == "search" and r.status != "skipped"
        )
        return done >= self.config.trials or not self._should_stop()
