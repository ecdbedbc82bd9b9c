"""The study loop with a fake measurement (milliseconds per trial), on a real SQLite study."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from tests.factories import FAKE_WORKLOAD
from tuner.engine.base import Measurement
from tuner.flink import options as fo
from tuner.rundir import RunDir, claim_run_dir
from tuner.search.study import (
    BASELINES,
    Candidate,
    StudyConfig,
    StudyLoop,
    StudyProgress,
    TrialRecord,
    create_study,
    pareto_front,
    warm_start,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

WORKLOAD = FAKE_WORKLOAD


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
    study = create_study(rd.storage_url, "t", config, warm=len(warm_start(WORKLOAD, config)[0]))
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
        (r for r in outcome.records if r.candidate.kind == "search" and r.ok),
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
    # Search trials are numbered after the 3 option sets told to the study (a warm start).
    measure = FakeMeasure(fail_labels=("trial-4", "SPINNING_DISK_OPTIMIZED"))
    out = _loop(rd, measure, trials=4).run()
    failed = [r for r in out.records if r.status == "failed"]
    assert {r.candidate.label for r in failed} == {"trial-4", "SPINNING_DISK_OPTIMIZED"}
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


class Clock:
    """Seconds that pass only when a measurement takes them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TimedMeasure(FakeMeasure):
    """Every measurement takes ``seconds`` on ``clock``."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def __call__(self, c: Candidate) -> Measurement:
        self.calls.append(c)
        self.clock.now += self.seconds
        return Measurement("ok", "", fake_metrics(c.settings), self.seconds, 1)


class CountingRefine:
    """A Refine step that makes ``planned`` measurements, bounded by ``fit_to``."""

    def __init__(self, planned: int, least: int = 1) -> None:
        self.bound = planned
        self.floor = least
        self.fitted: list[int] = []

    def planned(self, best: Mapping[str, fo.FlinkValue] | None) -> int:
        return 0 if best is None else self.bound

    def least(self, best: Mapping[str, fo.FlinkValue] | None) -> int:
        return 0 if best is None else self.floor

    def fit_to(self, measurements: int) -> None:
        self.fitted.append(measurements)
        self.bound = min(self.bound, measurements)

    def __call__(self, best, records, run_batch, should_stop, room=None):  # type: ignore[no-untyped-def]
        run_batch(
            [Candidate(f"minimal-{i}", "ablation", dict(best), None, 0) for i in range(self.bound)]
        )
        return dict(best), None


def _timed_loop(
    rd: RunDir, clock: Clock, budget: float, refine: CountingRefine | None = None
) -> tuple[StudyLoop, TimedMeasure]:
    config = StudyConfig(trials=30, seed=3, repeats=2, deadline=clock() + budget, reserve_after=3)
    records: list[TrialRecord] = []
    measure = TimedMeasure(clock, 10.0)
    study = create_study(rd.storage_url, "t", config)
    loop = StudyLoop(WORKLOAD, study, config, measure, records.append, refine=refine, clock=clock)
    return loop, measure


def test_a_time_budget_ends_the_search_early_and_leaves_time_for_what_follows(
    tmp_path: Path,
) -> None:
    clock = Clock()
    start = clock()
    refine = CountingRefine(planned=6)
    loop, measure = _timed_loop(claim_run_dir(tmp_path / "run"), clock, 400.0, refine)
    outcome = loop.run()
    searched = [c for c in measure.calls if c.kind == "search"]
    assert not outcome.interrupted and outcome.best_settings is not None
    assert outcome.time_budget_trials == len(searched) < 30
    assert outcome.budget_cuts == [
        f"the search stopped after {len(searched)} of 30 trials, to leave time for the minimal "
        "recommendation, the re-measurements and the confirmation"
    ]
    # Everything after the search ran: the refine step, bounded to what was left (at least its
    # floor: the search reserved only that), and both re-measurement rounds.
    assert sum(c.kind == "ablation" for c in measure.calls) == min(6, refine.fitted[0]) >= 1
    assert sum(c.kind == "remeasure" for c in measure.calls) == 4
    # ...within the budget, less the 3 measurements reserved for the confirmation after it.
    assert clock() - start <= 400.0 - 3 * 10.0
    # One more trial would not have left the time: the search used what it could.
    assert clock() - start + 10.0 > 400.0 - 3 * 10.0


def test_a_budget_too_small_for_anything_still_measures_one_trial(tmp_path: Path) -> None:
    clock = Clock()
    refine = CountingRefine(planned=6)
    loop, measure = _timed_loop(claim_run_dir(tmp_path / "run"), clock, 20.0, refine)
    outcome = loop.run()
    assert outcome.time_budget_trials == 1 and outcome.best_settings is not None
    # No time is left for even the refine step's floor: it is skipped, and said so; one round
    # of the re-measurement still runs (the headline's gain needs it), the other is cut.
    assert refine.fitted == [] and not any(c.kind == "ablation" for c in measure.calls)
    assert outcome.refinement is None and outcome.recommended_settings == outcome.best_settings
    assert len(outcome.budget_cuts) == 3
    assert outcome.budget_cuts[1].startswith(
        "the minimal recommendation was skipped: it needs 1 measurements (about 10 s)"
    )
    assert outcome.budget_cuts[2] == (
        "the re-measurement ran 1 of 2 rounds (2 measurements a round, about 20 s) to fit the "
        "time budget"
    )
    assert [c.repeat for c in measure.calls if c.kind == "remeasure"] == [0, 0]


@pytest.mark.parametrize(("least", "trials", "kept_s"), [(0, 31, 0.0), (8, 23, 80.0)])
def test_a_confirmation_the_budget_cannot_hold_whole(
    tmp_path: Path, least: int, trials: int, kept_s: float
) -> None:
    clock = Clock()
    start = clock()
    config = StudyConfig(
        trials=50,
        seed=3,
        repeats=2,
        deadline=clock() + 400,
        reserve_after=35,
        reserve_after_least=least,
    )
    measure = TimedMeasure(clock, 10.0)
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    refine = CountingRefine(planned=1)
    loop = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, refine=refine, clock=clock)
    outcome = loop.run()
    # After 4 baselines and 1 trial, 35 measurements are left: one more trial, 4
    # re-measurements, the refine step's 1 and the whole confirmation's 35 cannot all fit.
    # Kept, that reserve would have stopped the search after its first trial. With no least
    # confirmation the search goes on until only the re-measurements and the refine step are
    # left (31 trials: 60 s left); with a least one of 8 it stops in time to leave that (23
    # trials: the run ends 80 s before the deadline).
    searched = sum(c.kind == "search" for c in measure.calls)
    assert outcome.time_budget_trials == searched == trials
    assert sum(c.kind in ("ablation", "remeasure") for c in measure.calls) == 1 + 4
    assert clock() - start <= 400 - kept_s


def test_a_refine_step_the_budget_cannot_hold_leaves_its_time_to_the_search(
    tmp_path: Path,
) -> None:
    clock = Clock()
    start = clock()
    config = StudyConfig(trials=50, seed=3, repeats=2, deadline=clock() + 200, reserve_after=0)
    measure = TimedMeasure(clock, 10.0)
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    refine = CountingRefine(planned=20, least=20)
    loop = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, refine=refine, clock=clock)
    outcome = loop.run()
    # After 4 baselines and 1 trial, 15 measurements are left: too few for one more trial, 4
    # re-measurements and the refine step's 20. The search runs while one more trial leaves the
    # 4 re-measurements (12 trials); the refine step is skipped, and said so.
    assert outcome.time_budget_trials == sum(c.kind == "search" for c in measure.calls) == 12
    assert not any(c.kind == "ablation" for c in measure.calls)
    assert any(
        cut.startswith("the minimal recommendation was skipped") for cut in outcome.budget_cuts
    )
    assert clock() - start <= 200


class FirstTrialFails(TimedMeasure):
    """The first search trial fails (a timeout); everything else is measured."""

    def __call__(self, c: Candidate) -> Measurement:
        if c.kind == "search" and not any(x.kind == "search" for x in self.calls):
            self.calls.append(c)
            self.clock.now += self.seconds
            return Measurement("failed", "timeout", {}, self.seconds, 1)
        return super().__call__(c)


def test_what_to_keep_time_for_is_decided_once_a_trial_succeeded(tmp_path: Path) -> None:
    clock = Clock()
    config = StudyConfig(trials=50, seed=3, repeats=2, deadline=clock() + 210, reserve_after=0)
    measure = FirstTrialFails(clock, 10.0)
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    refine = CountingRefine(planned=20, least=20)
    loop = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, refine=refine, clock=clock)
    outcome = loop.run()
    # Decided after the failed first trial (no winner, so a floor of 0), the refine step's 20
    # would have been kept and the search stopped at its first success; decided after that,
    # the 20 cannot fit and the search goes on.
    assert outcome.time_budget_trials == sum(c.kind == "search" for c in measure.calls) == 13


def test_a_failed_first_trial_does_not_end_the_search_with_nothing(tmp_path: Path) -> None:
    clock = Clock()
    config = StudyConfig(trials=50, seed=3, repeats=2, deadline=clock() + 400, reserve_after=35)
    measure = FirstTrialFails(clock, 10.0)
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    outcome = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, clock=clock).run()
    # The whole confirmation (35) never fit beside the search; kept for after a failed first
    # trial, it stopped the search with no winner. The search goes on to a successful trial and
    # beyond, and the run recommends.
    assert outcome.best_settings is not None
    assert sum(c.kind == "search" for c in measure.calls) > 2


class SlowDefault(TimedMeasure):
    """Flink's default takes twice as long as anything else (as on quickstart, where search
    trials with their small buffers replay faster than the default and the winner)."""

    def __call__(self, c: Candidate) -> Measurement:
        m = super().__call__(c)
        if c.label != "DEFAULT":
            return m
        self.clock.now += self.seconds
        return replace(m, wall_s=2 * self.seconds)


def test_the_time_after_the_search_is_estimated_from_what_it_measures(tmp_path: Path) -> None:
    clock = Clock()
    start = clock()
    config = StudyConfig(trials=50, seed=3, repeats=2, deadline=clock() + 400)
    measure = SlowDefault(clock, 10.0)
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    outcome = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, clock=clock).run()
    # At the median (10 s) the search would leave 4 x 10 s for the re-measurements, which take
    # 2 x (20 + 10) s: priced at the default's 20 s, both rounds fit inside the budget.
    assert [c.repeat for c in measure.calls if c.kind == "remeasure"] == [0, 0, 1, 1]
    assert outcome.budget_cuts[1:] == []
    assert clock() - start <= 400


class SlowKind(TimedMeasure):
    """Measurements of one kind take three times as long as the others: the refine step's
    (configurations between the winner and the default, slower than both: the 21M-call
    recording's case), or the re-measurements (a machine that got busier)."""

    def __init__(self, clock: Clock, seconds: float, kind: str) -> None:
        super().__init__(clock, seconds)
        self.kind = kind

    def __call__(self, c: Candidate) -> Measurement:
        m = super().__call__(c)
        if c.kind != self.kind:
            return m
        self.clock.now += 2 * self.seconds
        return replace(m, wall_s=3 * self.seconds)


def test_a_slow_minimal_recommendation_still_leaves_the_confirmation_its_time(
    tmp_path: Path,
) -> None:
    from tuner.search.ablation import Minimizer

    clock = Clock()
    start = clock()
    config = StudyConfig(trials=50, seed=3, repeats=1, deadline=clock() + 600, reserve_after=8)
    measure = SlowKind(clock, 10.0, "ablation")
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    refine = Minimizer(WORKLOAD, None, repeats=1)
    loop = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, refine=refine, clock=clock)
    outcome = loop.run()
    # Planned at the search's 10 s, the refine step's measurements took 30 s: it stopped trying
    # keys when the re-measurement and the 8 measurements kept for the confirmation would no
    # longer fit, and said so.
    assert any("the minimal recommendation kept" in cut for cut in outcome.budget_cuts)
    assert clock() - start <= 600 - 8 * 10.0


def test_a_re_measurement_round_starts_only_when_what_is_left_holds_it(tmp_path: Path) -> None:
    clock = Clock()
    start = clock()
    config = StudyConfig(trials=50, seed=3, repeats=3, deadline=clock() + 400)
    measure = SlowKind(clock, 10.0, "remeasure")
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    outcome = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, clock=clock).run()
    # The search left 60 s for 3 rounds of 2 at 10 s; the first round took all of it.
    assert [c.repeat for c in measure.calls if c.kind == "remeasure"] == [0, 0]
    assert outcome.budget_cuts[-1] == (
        "the re-measurement ran 1 of 3 rounds (2 measurements a round, about 60 s) to fit the "
        "time budget"
    )
    assert clock() - start <= 400


def test_without_a_budget_every_trial_runs(tmp_path: Path) -> None:
    clock = Clock()
    config = StudyConfig(trials=5, seed=3, repeats=1)
    records: list[TrialRecord] = []
    measure = TimedMeasure(clock, 1e6)
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    outcome = StudyLoop(WORKLOAD, study, config, measure, records.append, clock=clock).run()
    assert outcome.time_budget_trials is None and outcome.budget_cuts == []
    assert sum(c.kind == "search" for c in measure.calls) == 5


def _told(study: optuna.Study) -> dict[str, float]:
    return {
        t.user_attrs["warm_start"]: t.values[0]
        for t in study.get_trials()
        if "warm_start" in t.user_attrs
    }


def test_the_search_starts_from_what_flinks_option_sets_measured(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    loop = _loop(rd, FakeMeasure(), trials=4)
    out = loop.run()
    measured = {
        r.candidate.label: r.metrics["ops_per_s"]
        for r in out.records
        if r.candidate.kind == "baseline"
    }
    told = _told(loop.study)
    # SPINNING_DISK_OPTIMIZED_HIGH_MEM's 128 KiB blocks and merge of 3 memtables are no point.
    assert told == {k: v for k, v in measured.items() if k != "SPINNING_DISK_OPTIMIZED_HIGH_MEM"}
    assert out.warm_start == ["DEFAULT", "SPINNING_DISK_OPTIMIZED", "FLASH_SSD_OPTIMIZED"]
    assert out.warm_start_left_out == {
        "SPINNING_DISK_OPTIMIZED_HIGH_MEM": "outside the searched ranges "
        "(writebuffer.number-to-merge = 3, block.blocksize = 128 kb)"
    }
    # They stand beside the random start, not in place of it: 4 random trials still come.
    sampler = loop.study.sampler
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 4 + 3
    searched = [r for r in out.records if r.candidate.kind == "search"]
    assert min(r.candidate.trial_number or 0 for r in searched) == 3
    # Told once: a resumed run finds them in the study.
    again = _loop(rd, FakeMeasure(), trials=4)
    again.run()
    assert len([t for t in again.study.get_trials() if "warm_start" in t.user_attrs]) == 3


def test_a_failed_option_set_teaches_the_search_nothing(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    loop = _loop(rd, FakeMeasure(fail_labels=("SPINNING_DISK_OPTIMIZED",)), trials=2)
    out = loop.run()
    assert set(_told(loop.study)) == {"DEFAULT", "FLASH_SSD_OPTIMIZED"}
    assert out.warm_start_left_out["SPINNING_DISK_OPTIMIZED"] == "failed"


def test_no_warm_start_tells_the_search_nothing(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    config = StudyConfig(trials=2, seed=3, repeats=1, warm_start=False)
    study = create_study(rd.storage_url, "t", config, warm=len(warm_start(WORKLOAD, config)[0]))
    out = StudyLoop(WORKLOAD, study, config, FakeMeasure(), lambda r: None).run()
    assert _told(study) == {} and out.warm_start == [] and out.warm_start_left_out == {}
    assert min(t.number for t in study.get_trials()) == 0


def test_the_progress_lines_best_is_a_configuration_the_search_measured(tmp_path: Path) -> None:
    class RemeasuredFaster(FakeMeasure):
        # The re-measurement of the winner beats every search figure, as noise can make it.
        def __call__(self, c: Candidate) -> Measurement:
            m = super().__call__(c)
            if c.kind != "remeasure":
                return m
            return replace(m, metrics={**m.metrics, "ops_per_s": 10 * m.metrics["ops_per_s"]})

    rd = claim_run_dir(tmp_path / "run")
    config = StudyConfig(trials=3, seed=3, repeats=2)
    study = create_study(rd.storage_url, "t", config)
    seen: list[StudyProgress] = []
    StudyLoop(
        WORKLOAD, study, config, RemeasuredFaster(), lambda r: None, on_progress=seen.append
    ).run()
    labels = {p.best_label for p in seen if p.best_label is not None}
    assert labels and all(lb in BASELINES or lb.startswith("trial-") for lb in labels), labels


@pytest.mark.parametrize(
    ("price_s", "count", "trials"),
    [
        (None, None, 12),  # 10 search-trial lengths (100 s) kept
        (2.0, None, 20),  # priced at 2 s a measurement: 20 s kept
        (2.0, 5, 21),  # and only 5 measurements to confirm what the search has: 10 s kept
    ],
)
def test_the_confirmation_reserve_at_its_measured_price(
    tmp_path: Path, price_s: float | None, count: int | None, trials: int
) -> None:
    clock = Clock()
    start = clock()
    config = StudyConfig(
        trials=50,
        seed=3,
        repeats=2,
        deadline=clock() + 300,
        reserve_after=10,
        reserve_after_least=10,
        reserve_price_s=price_s,
        reserve_count=None if count is None else (lambda _records: count),
    )
    measure = TimedMeasure(clock, 10.0)
    study = create_study(claim_run_dir(tmp_path / "run").storage_url, "t", config)
    outcome = StudyLoop(WORKLOAD, study, config, measure, lambda _: None, clock=clock).run()
    # 4 baselines, the trials, 4 re-measurements at 10 s; what is kept for the confirmation
    # after them is what is left of the 300 s.
    searched = sum(c.kind == "search" for c in measure.calls)
    assert outcome.time_budget_trials == searched == trials
    kept = 10 * (10.0 if price_s is None else price_s) if count is None else count * 2.0
    assert clock() - start <= 300 - kept
    assert clock() - start + 10.0 > 300 - kept
