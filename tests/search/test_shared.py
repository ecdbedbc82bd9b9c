"""The shared search's bookkeeping on a real (SQLite) Optuna storage, with an in-process fake
measurement: counting, lost trials, orphans, giving way. The same code on PostgreSQL with real
processes is tested in tests/remote."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tests.search.test_study import WORKLOAD, FakeMeasure
from tuner.search import shared, space
from tuner.search.shared import (
    RECORD_ATTR,
    WORKER_ATTR,
    SharedSearch,
    StudySpec,
    counts,
    lost_numbers,
    records_from_study,
)
from tuner.search.storage import RERUN_OF, Retry, Scrubber, open_storage
from tuner.search.study import StudyConfig, create_study
from tuner.workload import dump_workload

optuna.logging.set_verbosity(optuna.logging.WARNING)
# The tests ask for trials by hand, as a worker does; Optuna warns when heartbeats meet ask().
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")


def _spec(trials: int) -> StudySpec:
    return StudySpec(
        run_id="r",
        origin="test",
        created_at=0.0,
        workload_yaml=dump_workload(WORKLOAD),
        stream_sha256="",
        trials=trials,
        objective="throughput",
        seed=1,
        engine="fake",
        disk=None,
        trial_timeout_s=60.0,
        heartbeat_s=1,
    )


def _search(tmp_path: Path, trials: int, **kwargs: Any) -> SharedSearch:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    retry = Retry(Scrubber(url), url)
    storage = open_storage(url, heartbeat_s=1, retry=retry)
    study = create_study(storage, "s", StudyConfig(trials=trials, seed=3), constant_liar=True)
    return SharedSearch(
        study, storage, _spec(trials), WORKLOAD, FakeMeasure(), 1, retry, poll_s=0.05, **kwargs
    )


def _counted(search: SharedSearch) -> list[optuna.trial.FrozenTrial]:
    trials = search.study.get_trials(deepcopy=False)
    lost = lost_numbers(trials)
    return [t for t in trials if counts(t, lost)]


def test_workers_measure_exactly_the_trials_asked_for(tmp_path: Path) -> None:
    first = _search(tmp_path, 5, max_trials=3)
    assert first.run().measured == 3
    second = _search(tmp_path, 5)
    assert second.run().measured == 2  # the rest, no more
    assert _search(tmp_path, 5).run().measured == 0
    counted = _counted(second)
    assert len(counted) == 5
    assert all(t.state == TrialState.COMPLETE for t in counted)
    assert all(t.user_attrs[WORKER_ATTR] for t in counted)
    records = records_from_study(second.study, set(), 4)
    assert [r.seq for r in records] == list(range(4, 4 + len(records)))
    assert sorted(
        n for r in records if r.ok and (n := r.candidate.trial_number) is not None
    ) == sorted(t.number for t in counted)


def test_a_trial_whose_worker_died_is_rerun_and_only_the_rerun_counts(tmp_path: Path) -> None:
    search = _search(tmp_path, 1)
    # A worker that stored its record and died before telling Optuna.
    dead = search.study.ask()
    search.storage.record_heartbeat(dead._trial_id)
    space.suggest(dead, WORKLOAD.memory)
    dead.set_user_attr(WORKER_ATTR, "gone:1")
    dead.set_user_attr(RECORD_ATTR, {"status": "ok"})
    time.sleep(2.5)  # past the grace period (2 x heartbeat)
    assert search.run().measured == 1
    trials = search.study.get_trials(deepcopy=False)
    (rerun,) = [t for t in trials if t.user_attrs.get(RERUN_OF) == dead.number]
    assert rerun.params == search.study.trials[dead.number].params
    assert [t.number for t in _counted(search)] == [rerun.number]
    assert search.study.trials[dead.number].state == TrialState.FAIL


def test_a_trial_its_worker_never_marked_is_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    search = _search(tmp_path, 1)
    orphan = search.study.ask()  # no heartbeat, no worker mark: the stale check cannot see it
    monkeypatch.setattr(shared, "ORPHAN_AFTER_S", 0.0)
    tally = search.tally()
    assert tally.running == 1  # counted before it was failed; the next tally sees it gone
    assert search.study.trials[orphan.number].state == TrialState.FAIL
    assert search.tally().running == 0


def test_a_trial_that_finds_the_budget_taken_gives_way(tmp_path: Path) -> None:
    search = _search(tmp_path, 1)
    other = search.study.ask()  # another worker's trial, measuring
    search.storage.record_heartbeat(other._trial_id)
    other.set_user_attr(WORKER_ATTR, "other:1")
    assert search._one_trial() is False
    mine = search.study.trials[-1]
    assert mine.state == TrialState.FAIL
    assert mine.user_attrs["gave_way"] is True
    assert search.summary.gave_way == 1
