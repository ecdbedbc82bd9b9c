"""The study loop with a fake measurement (milliseconds per trial), on a real SQLite study."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import optuna
import pytest

from tuner.flink import options as fo
from tuner.rundir import RunDir, claim_run_dir
from tuner.search.study import (
    BASELINES,
    Candidate,
    StudyConfig,
    StudyLoop,
    TrialRecord,
    create_study,
    pareto_front,
)
from tuner.search.worker import Measurement
from tuner.workload import Memory, StateSpec, Workload

optuna.logging.set_verbosity(optuna.logging.WARNING)

WORKLOAD = Workload(
    name="fake",
    description="",
    flink_version="2.3",
    seed=7,
    memory=Memory(managed_per_slot=128 << 20),
    states=(StateSpec(name="s", kind="value", keys=1000),),
)


def fake_metrics(settings: Mapping[str, fo.FlinkValue]) -> dict[str, float]:
    """A smooth made-up response: bigger write buffers and a bloom filter help."""
    values = fo.effective(settings)
    wb = float(values[fo.WRITE_BUFFER_SIZE])  # type: ignore[arg-type]
    bloom = 1.2 if values[fo.USE_BLOOM_FILTER] else 1.0
    ops = 50_000 * bloom * (1 + math.log2(wb / (1 << 20)) / 10)
    return {"ops_per_s": ops, "read_p99_us": 1e6 / ops * (2 - bloom)}


class FakeMeasure:
    def __init__(self, fail_labels: tuple[str, ...] = ()) -> None:
        self.calls: list[Candidate] = []
        self.fail_labels = fail_labels

    def __call__(self, c: Candidate) -> Measurement:
        self.calls.append(c)
        if c.label in self.fail_labels:
            return Measurement("failed", "crashed: SIGKILL")
        return Measurement("ok", "", fake_metrics(c.settings), 0.01, 1)


def _loop(
    rd: RunDir,
    measure: FakeMeasure,
    trials: int,
    stop_after: int | None = None,
    objective: str = "throughput",
) -> StudyLoop:
    config = StudyConfig(
        trials=trials,
        seed=3,
        repeats=2,
        objective="pareto" if objective == "pareto" else "throughput",
    )
    study = create_study(rd.storage_url, "t", config)
    earlier = rd.read_records()
    records: list[TrialRecord] = list(earlier)

    def sink(r: TrialRecord) -> None:
        records.append(r)
        rd.write_records(records)

    def stop() -> bool:
        return stop_after is not None and len(measure.calls) >= stop_after

    return StudyLoop(WORKLOAD, study, config, measure, sink, earlier=earlier, should_stop=stop)


def test_full_study_measures_baselines_trials_and_repeats(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    measure = FakeMeasure()
    outcome = _loop(rd, measure, trials=6).run()
    kinds = [c.kind for c in measure.calls]
    assert kinds[:4] == ["baseline"] * 4
    assert [c.label for c in measure.calls[:4]] == list(BASELINES)
    assert kinds.count("search") == 6
    remeasure = [c for c in measure.calls if c.kind == "remeasure"]
    # Interleaved: default, recommended, default, recommended.
    assert [c.label for c in remeasure] == ["DEFAULT", "recommended"] * 2
    assert outcome.best_settings is not None and not outcome.interrupted
    best = max(
        (r for r in outcome.records if r.candidate.kind == "search"),
        key=lambda r: r.metrics["ops_per_s"],
    )
    assert outcome.best_trial_number == best.candidate.trial_number
    assert len(rd.read_records()) == len(outcome.records)


def test_stop_then_resume_keeps_every_finished_trial(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    first = FakeMeasure()
    out1 = _loop(rd, first, trials=5, stop_after=6).run()
    assert out1.interrupted
    kept = rd.read_records()
    assert len(kept) >= 6
    second = FakeMeasure()
    out2 = _loop(rd, second, trials=5).run()
    assert not out2.interrupted
    # Nothing measured twice: baselines and finished trials are not repeated.
    assert all(c.kind != "baseline" for c in second.calls)
    assert (
        sum(1 for r in out2.records if r.candidate.kind == "search" and r.status != "skipped") == 5
    )
    assert [r.seq for r in rd.read_records()][: len(kept)] == [r.seq for r in kept]


def test_main_process_killed_mid_trial_is_recovered(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    loop = _loop(rd, FakeMeasure(), trials=3)
    loop.study.ask()  # what a killed process leaves behind: a RUNNING trial, no record
    out = _loop(rd, FakeMeasure(), trials=3).run()
    states = [t.state for t in loop.study.get_trials()]
    assert optuna.trial.TrialState.RUNNING not in states
    assert not out.interrupted


def test_failed_trial_does_not_stop_the_study(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    measure = FakeMeasure(fail_labels=("trial-1", "SPINNING_DISK_OPTIMIZED"))
    out = _loop(rd, measure, trials=4).run()
    failed = [r for r in out.records if r.status == "failed"]
    assert {r.candidate.label for r in failed} == {"trial-1", "SPINNING_DISK_OPTIMIZED"}
    assert all(r.reason == "crashed: SIGKILL" for r in failed)
    assert out.best_settings is not None


def test_over_budget_candidates_are_never_run(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    measure = FakeMeasure()
    out = _loop(rd, measure, trials=8).run()
    for c in measure.calls:
        if c.kind == "search":
            assert fo.invalid_reason(c.settings, WORKLOAD.memory, 1) is None
    assert all(r.reason for r in out.records if r.status == "skipped")


def test_pareto_mode_recommends_from_the_front(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    out = _loop(rd, FakeMeasure(), trials=6, objective="pareto").run()
    front = pareto_front([r for r in out.records if r.candidate.kind == "search" and r.ok])
    assert out.best_trial_number in {r.candidate.trial_number for r in front}


@pytest.mark.parametrize("n", [0, 1, 5])
def test_records_round_trip_through_trials_csv(tmp_path: Path, n: int) -> None:
    rd = claim_run_dir(tmp_path / "run")
    out = _loop(rd, FakeMeasure(), trials=max(1, n)).run()
    again = rd.read_records()
    assert [(r.candidate, r.status, dict(r.metrics)) for r in again] == [
        (r.candidate, r.status, dict(r.metrics)) for r in out.records
    ]


def test_suggested_ratios_are_clean_decimals(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    out = _loop(rd, FakeMeasure(), trials=12).run()
    for r in out.records:
        ratio = r.candidate.settings.get(fo.WRITE_BUFFER_RATIO)
        if ratio is not None:
            assert ratio == round(float(ratio), 2), ratio  # type: ignore[arg-type]
