"""tuner run's time budget: the default, `none`, resume, bad values, the trial timeout's cap and
the confirmation fitted to what is left."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest
from click.testing import CliRunner

from tuner import measuring, runner
from tuner.cli import cli
from tuner.confirm import ConfirmTarget, complete_rounds, decide, select_targets
from tuner.costmodel import PRESETS
from tuner.engine import flink_backend
from tuner.engine.base import Measurement
from tuner.errors import TunerError, TunerRuntimeError
from tuner.flink import options as fo
from tuner.rundir import RunDir
from tuner.search.study import Candidate, StudyConfig, TrialRecord
from tuner.workload import load_workload

TINY = Path(__file__).resolve().parent / "data" / "cli" / "tiny.yaml"
DEFAULT = {fo.PREDEFINED_OPTIONS: "DEFAULT"}


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[runner.RunSettings]:
    """The settings `tuner run` hands to the library; the run itself stops there (exit 1)."""
    seen: list[runner.RunSettings] = []

    def stop(_w: object, _rd: object, settings: runner.RunSettings, **_: object) -> None:
        seen.append(settings)
        raise TunerRuntimeError("stopped by the test")

    monkeypatch.setattr(runner, "run_study", stop)
    return seen


def test_a_run_gets_15_minutes_unless_told_and_says_so(
    tmp_path: Path, captured: list[runner.RunSettings]
) -> None:
    r = CliRunner().invoke(cli, ["run", str(TINY), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1, r.output
    assert captured[0].time_budget_s == 900.0
    assert "time budget: 15 min (the default; --time-budget DURATION or none changes it)" in (
        r.output
    )


def test_none_lifts_the_budget(tmp_path: Path, captured: list[runner.RunSettings]) -> None:
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", str(TINY), "--time-budget", "None", "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert captured[0].time_budget_s is None
    assert "time budget: none (--time-budget)" in r.output


def test_a_resumed_run_keeps_its_budget_unless_given_again(
    tmp_path: Path, captured: list[runner.RunSettings]
) -> None:
    w = load_workload(TINY)
    rd, _ = runner.start_run(w, tmp_path / "run", tmp_path)
    stored = runner.RunSettings(time_budget_s=None)
    rd.set_status("incomplete", settings=runner._settings_record(stored))
    r = CliRunner().invoke(cli, ["run", "--resume", str(rd.path)])
    assert r.exit_code == 1, r.output
    assert captured[-1].time_budget_s is None  # not the CLI's 15 min default
    assert "time budget: none (kept from the run; --time-budget changes it)" in r.output
    r = CliRunner().invoke(cli, ["run", "--resume", str(rd.path), "--time-budget", "10 min"])
    assert r.exit_code == 1, r.output
    assert captured[-1].time_budget_s == 600.0
    assert "changed on the command line: time_budget_s=600.0" in r.output


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("90", "give a unit, e.g. `90 min`"),
        ("ten min", "expected a duration such as `15 min`"),
        ("15 parsecs", "unknown time unit 'parsecs'"),
        ("", "expected a duration such as `15 min`, `900 s` or `1 h`, or `none`"),
        ("10 ms", "at least 1 s"),
    ],
)
def test_an_unparseable_budget_exits_2_naming_the_flag(
    value: str, fragment: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", str(TINY), "--time-budget", value, "--out", str(out)])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert lines[0].startswith("tuner: error: --time-budget: ") and fragment in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "least"),
    [
        # (4 predefined sets + 1 trial + 3 rounds x (default, recommended)) x 5 s + 10 s
        ((), "65 s"),
        # (4 + 1 + 1 x 2) x 5 s + 10 s
        (("--repeats", "1"), "45 s"),
    ],
)
def test_a_budget_too_small_for_one_trial_exits_2_with_the_smallest_that_works(
    extra: tuple[str, ...], least: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["run", str(TINY), "--time-budget", "30 s", "--out", str(out), *extra]
    r = CliRunner().invoke(cli, args)
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert lines[0].startswith("tuner: error: --time-budget: 30 s is too short")
    assert f"give at least {least} (" in lines[0]
    assert not out.exists()


def test_the_smallest_budget_is_accepted_and_one_second_less_is_not() -> None:
    settings = runner.RunSettings(baseline={fo.WRITE_BUFFER_SIZE: 1 << 20})
    least = measuring.least_time_budget(settings)
    # With --baseline: 5 sets, 1 trial, 3 rounds x (default, current, recommended).
    assert least == (5 + 1 + 9) * measuring.MEASUREMENT_FLOOR_S + measuring.FINISH_RESERVE_S
    measuring.check_time_budget(runner.RunSettings(baseline=settings.baseline, time_budget_s=least))
    measuring.check_time_budget(runner.RunSettings(time_budget_s=None))
    with pytest.raises(TunerError, match="give at least 85 s "):
        measuring.check_time_budget(
            runner.RunSettings(baseline=settings.baseline, time_budget_s=least - 1)
        )


def test_the_help_states_the_smallest_budget_at_the_defaults() -> None:
    r = CliRunner().invoke(cli, ["run", "--help"])
    least = measuring.least_time_budget(runner.RunSettings())
    assert f"{least:g} s at the defaults" in " ".join(r.output.split())
    assert "[default: 15 min]" in r.output


def _timeouts(
    monkeypatch: pytest.MonkeyPatch, reason: str = "timeout: the trial still running after 1 s"
) -> list[float]:
    """measure_isolated replaced by one that records its timeout and fails as a timeout."""
    seen: list[float] = []

    def timed_out(*_: object, timeout_s: float, **__: object) -> Measurement:
        seen.append(timeout_s)
        return Measurement("failed", reason)

    monkeypatch.setattr(measuring, "measure_isolated", timed_out)
    return seen


def test_a_slow_trial_is_capped_at_an_eighth_of_the_budget_and_trials_csv_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts = _timeouts(monkeypatch)
    w = load_workload(TINY)
    rd, _ = runner.start_run(w, tmp_path / "run", tmp_path)
    settings = runner.RunSettings(timeout_s=900.0, time_budget_s=960.0)
    cand = Candidate("trial-0", "search", DEFAULT, 0)
    nvme = PRESETS["local-nvme"]
    far = time.monotonic() + 960
    m = measuring.measure_candidate(w, rd, tmp_path / "t", settings, nvme, "fake", far)(cand)
    assert timeouts == [120.0]  # 960 s / 8, not --trial-timeout's 900 s
    assert m.reason.endswith("(the trial timeout is capped at 1/8 of the 16 min time budget)")
    rd.write_records([TrialRecord(0, cand, "failed", m.reason, {}, 120.0, 0, 0.0)])
    assert "capped at 1/8 of the 16 min time budget" in rd.trials_csv.read_text()
    # Near the end of the budget the time left caps it instead.
    near = time.monotonic() + 40
    m = measuring.measure_candidate(w, rd, tmp_path / "t", settings, nvme, "fake", near)(cand)
    assert 35 < timeouts[-1] <= 40
    assert m.reason.endswith("(the trial timeout is capped at the time left in the time budget)")
    # A shorter --trial-timeout stays the limit, and a failure that is not a timeout is left as
    # it is.
    short = runner.RunSettings(timeout_s=60.0, time_budget_s=960.0)
    m = measuring.measure_candidate(w, rd, tmp_path / "t", short, nvme, "fake", far)(cand)
    assert timeouts[-1] == 60.0 and "capped" not in m.reason
    _timeouts(monkeypatch, "memory watchdog: RSS 900 MiB exceeded the limit")
    m = measuring.measure_candidate(w, rd, tmp_path / "t", settings, nvme, "fake", far)(cand)
    assert "capped" not in m.reason


def _search_records(wall_s: float) -> list[TrialRecord]:
    """Flink's default, the best other predefined set and three distinct search trials."""
    out = [
        TrialRecord(0, Candidate("DEFAULT", "baseline", DEFAULT), "ok", "", {"ops_per_s": 100.0},
                    wall_s, 0, 0.0),
        TrialRecord(1, Candidate("FLASH_SSD_OPTIMIZED", "baseline",
                                 {fo.PREDEFINED_OPTIONS: "FLASH_SSD_OPTIMIZED"}), "ok", "",
                    {"ops_per_s": 110.0}, wall_s, 0, 0.0),
    ]  # fmt: skip
    for i in range(3):
        cand = Candidate(f"trial-{i}", "search", {fo.WRITE_BUFFER_SIZE: (i + 1) << 20}, i)
        out.append(TrialRecord(2 + i, cand, "ok", "", {"ops_per_s": 120.0 + i}, wall_s, 0, 0.0))
    return out


def _targets_for(records: list[TrialRecord]) -> Any:
    def targets_for(top: int) -> list[ConfirmTarget]:
        return select_targets(records, top)

    return targets_for


@pytest.mark.parametrize(
    ("left_s", "shape"),
    [
        (30.0, (5, 3)),  # default, 3 trials, FLASH_SSD x 3 rounds x 2 s
        (29.0, (4, 3)),  # one search candidate fewer
        (18.0, (3, 3)),  # down to one search candidate
        (17.0, (3, 2)),  # then fewer rounds
        (12.0, (3, 2)),
        (11.0, None),  # not even 3 configurations in 2 rounds: skipped
    ],
)
def test_the_confirmation_is_shortened_to_what_is_left(
    left_s: float, shape: tuple[int, int] | None
) -> None:
    fit = runner._fit_confirmation(_targets_for(_search_records(1.0)), 3, 3, 2.0, left_s, set())
    assert (None if fit is None else (len(fit[0]), fit[1])) == shape


def test_measurements_already_made_cost_nothing_when_fitting() -> None:
    done = {(label, i) for label in ("DEFAULT", "trial-2", "FLASH_SSD_OPTIMIZED") for i in range(3)}
    fit = runner._fit_confirmation(_targets_for(_search_records(1.0)), 3, 3, 2.0, 12.0, done)
    assert fit is not None and (len(fit[0]), fit[1]) == (5, 3)


@pytest.fixture
def confirmable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flink-backend engine reported installed (nothing here starts it)."""
    monkeypatch.setattr(flink_backend, "available", lambda _line: True)


@pytest.mark.usefixtures("confirmable")
def test_with_no_time_left_the_confirmation_is_skipped_and_said_so(tmp_path: Path) -> None:
    w = load_workload(TINY)
    rd, _ = runner.start_run(w, tmp_path / "run", tmp_path)
    cuts: list[str] = []
    confirmation, note, complete = runner._confirm(
        w, rd, tmp_path / "t", runner.RunSettings(time_budget_s=60.0), PRESETS["local-nvme"],
        _search_records(4.0), lambda: False, deadline=time.monotonic() + 5, cuts=cuts,
    )  # fmt: skip
    assert confirmation is None and complete
    assert note.startswith(
        "the confirmation on Flink's own backend was skipped: the time budget had 5 s left "
        "and it needs at least 6 measurements of about 8 s"
    )
    assert cuts == [note]
    assert not (rd.path / "confirmation.csv").exists()


def _cut_confirmation(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cut_at: int,
    ops: Callable[[Candidate], float] = lambda _c: 100.0,
) -> tuple[RunDir, Any, str, bool, list[str], list[float | None]]:
    """_confirm with a 2 s budget that ends during measurement ``cut_at`` (counted from 1; it
    fails as the budget's kill would); every other measurement reads ``ops``. Returns the run
    directory, _confirm's answer, the cuts and the deadline each measure_candidate got."""
    deadlines: list[float | None] = []
    calls: list[Candidate] = []

    def measure_candidate(*args: Any) -> Any:
        deadlines.append(args[-1])

        def measure(c: Candidate) -> Measurement:
            calls.append(c)
            if len(calls) == cut_at:
                time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)
                return Measurement("failed", "timeout: stopped", {}, 0.01, 1)
            return Measurement("ok", "", {"ops_per_s": ops(c)}, 0.01, 1)

        return measure

    monkeypatch.setattr(runner, "measure_candidate", measure_candidate)
    w = load_workload(TINY)
    rd, _ = runner.start_run(w, tmp_path / "run", tmp_path)
    cuts: list[str] = []
    deadline = time.monotonic() + 2.0
    confirmation, note, complete = runner._confirm(
        w, rd, tmp_path / "t", runner.RunSettings(time_budget_s=60.0), PRESETS["local-nvme"],
        _search_records(0.01), lambda: False, deadline=deadline, cuts=cuts,
    )  # fmt: skip
    assert deadlines == [deadline]  # each measurement is bounded by the budget too
    return rd, confirmation, note, complete, cuts, deadlines


@pytest.mark.usefixtures("confirmable")
def test_a_budget_that_runs_out_during_the_confirmation_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd, confirmation, note, complete, cuts, _ = _cut_confirmation(tmp_path, monkeypatch, 3)
    assert confirmation is None and complete  # the budget's end is not an interruption
    assert note == (
        "the time budget ran out during the confirmation on Flink's own backend, after 3 of 15 "
        "measurements: not confirmed"
    )
    assert cuts == [note]
    assert len((rd.path / "confirmation.csv").read_text().splitlines()) == 1 + 3


@pytest.mark.usefixtures("confirmable")
def test_a_confirmation_cut_in_its_last_round_is_decided_on_its_whole_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second measurement of round 3 ends past the budget; candidates run twice as fast.
    rd, confirmation, note, complete, cuts, _ = _cut_confirmation(
        tmp_path, monkeypatch, 12, lambda c: 100.0 + c.repeat if c.label == "DEFAULT" else 200.0
    )
    assert complete and note == ""
    assert confirmation is not None and confirmation.rounds == 2 and not confirmation.keep
    assert all(len(c.values) == 2 for c in confirmation.configs)
    assert cuts == [
        "the time budget ran out during the confirmation on Flink's own backend, after 12 of 15 "
        "measurements: decided on its 2 whole rounds of 3"
    ]
    # A report re-rendered from confirmation.csv decides the same way.
    again = decide(rd.read_confirmation_records())
    assert (again.chosen, again.rounds, again.baseline) == (
        confirmation.chosen,
        2,
        confirmation.baseline,
    )


def test_only_whole_rounds_decide() -> None:
    def rec(label: str, repeat: int, ops: float) -> TrialRecord:
        cand = Candidate(label, "remeasure", {}, None, repeat)
        return TrialRecord(0, cand, "ok", "", {"ops_per_s": ops}, 1.0, 0, 0.0)

    # Round 2 holds a lucky figure for "b" and none for "a": it must not count for either.
    records = [rec("DEFAULT", i, 100.0) for i in range(3)]
    records += [rec("a", 0, 150.0), rec("a", 1, 150.0), rec("b", 0, 90.0), rec("b", 1, 90.0)]
    records += [rec("b", 2, 1000.0)]
    assert [r.candidate.repeat for r in complete_rounds(records)] == [0, 1, 0, 1, 0, 1]
    decision = decide(records)
    assert decision.rounds == 2 and decision.chosen == "a"
    assert {c.label: c.values for c in decision.configs} == {"a": (150.0, 150.0), "b": (90.0, 90.0)}


def test_the_confirmation_reserve_counts_the_configurations_the_search_has() -> None:
    records = _search_records(1.0)
    settings = runner.RunSettings(confirm_top=3, repeats=3)
    count = runner._confirmation_count(settings, 1)
    # After one search trial: Flink's default, that trial, FLASH_SSD and the minimal
    # recommendation, 3 rounds each; after three, the top 3 (the cap, runner._confirmation_cost).
    assert count(records[:3]) == 4 * 3
    assert count(records) == 6 * 3
    assert runner._confirmation_count(settings, 2)(records[:3]) == 2 * 4 * 3


def test_a_priced_reserve_weighs_each_configuration_by_its_replay_time() -> None:
    # Flink's default took 4 s on the replay; the trials and FLASH_SSD 2 s (half of it): priced
    # per measurement of the default, each of them costs half of one.
    records = _search_records(2.0)
    records[0] = replace(records[0], wall_s=4.0)
    settings = runner.RunSettings(confirm_top=3, repeats=3)
    weighted = runner._confirmation_count(settings, 1, priced=True)(records)
    assert weighted == (1 + 4 * 0.5 + 1) * 3  # the default, 3 trials + FLASH_SSD, minimal
    assert runner._confirmation_count(settings, 1)(records) == 6 * 3  # unpriced: a count
    # Bounded: a candidate 20x faster than the default still costs half a measurement of it,
    # one 10x slower four.
    cost = runner._relative_cost([replace(records[0], wall_s=40.0), *records[1:]])
    assert cost("trial-0") == 0.5 and cost("minimal") == 1.0 and cost("DEFAULT") == 1.0
    assert runner._relative_cost([replace(records[0], wall_s=0.2), *records[1:]])("trial-1") == 4.0


def test_a_weighted_fit_keeps_more_of_the_confirmation() -> None:
    # 5 configurations x 3 rounds at 2 s is 30 s; with the candidates at half the default's
    # cost, (1 + 4 x 0.5) x 3 x 2 s = 18 s fits the whole confirmation.
    targets_for = _targets_for(_search_records(1.0))
    flat = runner._fit_confirmation(targets_for, 3, 3, 2.0, 18.0, set())
    assert flat is not None and (len(flat[0]), flat[1]) == (3, 3)
    fit = runner._fit_confirmation(
        targets_for, 3, 3, 2.0, 18.0, set(), lambda label: 1.0 if label == "DEFAULT" else 0.5
    )
    assert fit is not None and (len(fit[0]), fit[1]) == (5, 3)


def _priced(
    monkeypatch: pytest.MonkeyPatch, status: Literal["ok", "failed"], *seconds: float
) -> list[Candidate]:
    """measure_candidate replaced by one taking ``seconds`` (in turn, the last repeated) with
    ``status``; the calls made."""
    calls: list[Candidate] = []

    def make(*args: Any) -> Any:
        assert args[5] == "flink-backend"

        def measure(c: Candidate) -> Measurement:
            calls.append(c)
            took = seconds[min(len(calls), len(seconds)) - 1]
            time.sleep(took)
            return Measurement(status, "", {"ops_per_s": 1.0} if status == "ok" else {}, took, 1)

        return measure

    monkeypatch.setattr(runner, "measure_candidate", make)
    return calls


@pytest.mark.usefixtures("confirmable")
def test_the_confirmation_is_priced_on_its_own_engine_by_the_faster_of_two_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _priced(monkeypatch, "ok", 0.8, 0.2)  # a slow first run, as Flink's default has
    w = load_workload(TINY)
    rd, _ = runner.start_run(w, tmp_path / "run", tmp_path)
    settings = runner.RunSettings(time_budget_s=60.0)
    config = StudyConfig(deadline=time.monotonic() + 60)
    nvme = PRESETS["local-nvme"]
    price = runner._price_confirmation(w, w, rd, tmp_path / "t", settings, nvme, config, None)
    # Flink's default, twice, the faster kept; in run.json, so a resume does not measure it
    # again.
    assert [c.settings for c in calls] == [DEFAULT, DEFAULT]
    assert price is not None and 0.2 <= price < 0.8
    assert rd.read_meta()["confirm_price_s"] == price
    again = runner._price_confirmation(w, w, rd, tmp_path / "t", settings, nvme, config, None)
    assert again == price and len(calls) == 2
    # Without a budget there is nothing to price.
    bare = StudyConfig()
    assert runner._price_confirmation(w, w, rd, tmp_path / "t", settings, nvme, bare, None) is None
    # The confirmation fits itself to the measured price, not to 2 search-trial lengths.
    cuts: list[str] = []
    _, note, _ = runner._confirm(
        w, rd, tmp_path / "t", settings, nvme, _search_records(40.0), lambda: False,
        deadline=time.monotonic() + 0.05, cuts=cuts,
    )  # fmt: skip
    assert f"needs at least 6 measurements of about {price:.0f} s" in note


@pytest.mark.usefixtures("confirmable")
def test_a_failed_pricing_leaves_the_guess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _priced(monkeypatch, "failed", 0.0)
    w = load_workload(TINY)
    rd, _ = runner.start_run(w, tmp_path / "run", tmp_path)
    config = StudyConfig(deadline=time.monotonic() + 60)
    settings = runner.RunSettings(time_budget_s=60.0)
    nvme = PRESETS["local-nvme"]
    priced = runner._price_confirmation(w, w, rd, tmp_path / "t", settings, nvme, config, None)
    assert priced is None
    assert "confirm_price_s" not in rd.read_meta()


@pytest.mark.usefixtures("confirmable")
def test_the_confirmation_is_counted_in_measurements() -> None:
    w = load_workload(TINY)
    settings = runner.RunSettings(repeats=3, confirm_top=3)
    # Flink's default, the minimal recommendation, 3 search candidates and the best other
    # predefined set, 3 rounds each; the least: 1 search candidate in 2 rounds.
    assert runner._confirmation_cost(w, settings) == 6 * 3
    assert runner._confirmation_cost(w, settings, least=True) == 4 * 2
    assert runner._confirmation_cost(w, runner.RunSettings(confirm=False)) == 0
