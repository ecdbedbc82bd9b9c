"""The CLI contract: commands, help, exit codes, and the files a run leaves behind."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tuner.cli import cli
from tuner.errors import TunerError, TunerRuntimeError
from tuner.flink.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "cli" / "tiny.yaml"
BAD_WORKLOADS = sorted((ROOT / "tests" / "data" / "workloads" / "bad").glob("*.yaml"))
RUN_FILES = (
    "config.yaml",
    "flink-conf.yaml",
    "flink-deployment.yaml",
    "rocksdb-options.ini",
    "trials.csv",
    "study.db",
    "workload.yaml",
    "report.md",
    "run.json",
    "recommendation.json",
)


def _commands() -> list[list[str]]:
    out = []
    for name, cmd in cli.commands.items():
        sub = getattr(cmd, "commands", None)
        if sub:
            out += [[name, s] for s in sub]
        else:
            out.append([name])
    return out


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_command_explains_itself_and_is_in_the_readme(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) > 4
    readme = (ROOT / "README.md").read_text()
    assert f"tuner {' '.join(command)}" in readme


def _assert_one_line_error(result: object, *fragments: str) -> None:
    out = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, out  # type: ignore[attr-defined]
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.mark.parametrize("bad", BAD_WORKLOADS, ids=lambda p: p.name)
def test_bad_workload_exits_2_with_one_line_and_no_run_dir(bad: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    result = CliRunner().invoke(cli, ["run", str(bad), "--results-dir", str(results)])
    _assert_one_line_error(result, bad.name)
    assert not results.exists() or not any(results.iterdir())


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "no/such/workload.yaml"], "no/such/workload.yaml"),
        (["report", "no/such/run"], "no/such/run"),
        (["run", "--resume", "no/such/run"], "no/such/run"),
        (["trace", "inspect", "no/such/trace.parquet"], "no/such/trace.parquet"),
        (["check-config", "no/such/config.yaml", "--flink-version", "2.x"], "config.yaml"),
        (["check-config", str(ROOT / "README.md"), "--flink-version", "0.9"], "0.9"),
    ],
)
def test_missing_inputs_exit_2(args: list[str], fragment: str) -> None:
    _assert_one_line_error(CliRunner().invoke(cli, args), fragment)


def test_truncated_trace_exits_2(tmp_path: Path) -> None:
    trace = tmp_path / "t.parquet"
    assert (
        CliRunner().invoke(cli, ["trace", "generate", str(TINY), "-o", str(trace)]).exit_code == 0
    )
    data = trace.read_bytes()
    trace.write_bytes(data[: len(data) // 2])
    _assert_one_line_error(CliRunner().invoke(cli, ["trace", "inspect", str(trace)]), "t.parquet")


def test_existing_output_directory_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "earlier-run"
    out.mkdir()
    (out / "trials.csv").write_text("precious\n")
    result = CliRunner().invoke(cli, ["run", str(TINY), "--out", str(out)])
    _assert_one_line_error(result, "earlier-run", "--resume")
    assert (out / "trials.csv").read_text() == "precious\n"
    assert sorted(p.name for p in out.iterdir()) == ["trials.csv"]


def test_unwritable_output_directory_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["run", str(TINY), "--out", str(blocker / "run")])
    _assert_one_line_error(result, "run")


def test_bad_flink_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    conf = tmp_path / "config.yaml"
    conf.write_text("state.backend.rocksdb.writebuffer.szie: 64 mb\n")
    result = CliRunner().invoke(cli, ["check-config", str(conf), "--flink-version", "2.x"])
    assert result.exit_code == 2
    assert "writebuffer.size" in result.output


def test_trace_generate_and_inspect(tmp_path: Path) -> None:
    trace = tmp_path / "t.parquet"
    r = CliRunner().invoke(cli, ["trace", "generate", str(TINY), "-o", str(trace)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["trace", "inspect", str(trace)])
    assert r.exit_code == 0, r.output
    for name in ("counts", "buffer", "per-window", "_timer_state/event_window-timers"):
        assert name in r.output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real study on real RocksDB: 4 baselines, 3 trials, 1 re-measurement pair."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    r = CliRunner().invoke(
        cli,
        [
            "run",
            str(TINY),
            "--trials",
            "3",
            "--repeats",
            "1",
            "--no-confirm",
            "--minimal-repeats",
            "0",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    return out


def test_the_files_and_the_report_say_what_to_watch_with_measured_figures(
    tiny_run: Path,
) -> None:
    """The metrics to watch are commented out in every emitted file (nothing switched on by
    pasting), with this run's figures for the emitted configuration, and in the report beside
    Flink's default."""
    from tuner.flink.watch import WATCHES

    for name in ("config.yaml", "flink-conf.yaml", "flink-deployment.yaml"):
        text = (tiny_run / name).read_text()
        for w in WATCHES:
            assert f"# {w.key}: " in text.replace("    # ", "# "), (name, w.key)
            assert f"\n{w.key}" not in text and f"    {w.key}" not in text
        flat = re.sub(r"\s*\n\s*#\s*", " ", text)  # the comments as one text, unwrapped
        assert "of block reads hit the cache" in flat
    report = (tiny_run / "report.md").read_text()
    section = report.split("## What to watch in production")[1].split("\n## ")[0]
    hit_row = next(ln for ln in section.splitlines() if ln.startswith("| `block-cache-hit`"))
    assert hit_row.count("of block reads hit the cache") == 2  # emitted and Flink's default


def test_run_writes_every_output(tiny_run: Path) -> None:
    for name in RUN_FILES:
        assert (tiny_run / name).is_file(), name
    rec = json.loads((tiny_run / "recommendation.json").read_text())
    assert rec["confirmation"]["status"] == "unconfirmed"
    assert "UNCONFIRMED" in rec["headline"] and "rocksdict replay" in rec["headline"]
    assert "**Unconfirmed.**" in (tiny_run / "report.md").read_text()
    meta = json.loads((tiny_run / "run.json").read_text())
    assert meta["status"] == "complete"
    # No --time-budget: the default 15 min, with nothing cut for this small job.
    assert meta["time_budget_s"] == meta["settings"]["time_budget_s"] == 900.0
    assert meta["time_budget_cuts"] == []
    report = (tiny_run / "report.md").read_text()
    assert "Time budget: 15 min; this run took " in report
    assert "Everything asked for fitted in it." in report
    assert not (tiny_run / ".work").exists()
    rows = list(csv.DictReader((tiny_run / "trials.csv").open()))
    # 4 baselines, 3 trials, 1 re-measurement pair; a candidate the search skipped unmeasured
    # (an impossible combination) is a row of its own and does not count as a trial.
    measured = [r for r in rows if r["status"] != "skipped"]
    assert len(measured) == 4 + 3 + 2


@pytest.fixture(scope="module")
def picked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the runner's own finish writes for a search pick that beat Flink's default in
    each of three re-measured pairs. Figures are given, not measured: on the tiny replay a pick
    no faster than the default in the re-measurement is not emitted (runner.finish), and its
    noise alone sometimes made it so (pairwise -32.6 .. +10.8 % in one of five runs)."""
    from dataclasses import replace

    from tests.report.fakerun import ops, rec
    from tuner.flink import options as fo
    from tuner.rundir import claim_run_dir
    from tuner.runner import RunSettings, finish
    from tuner.search.study import StudyConfig, StudyOutcome, create_study
    from tuner.workload import load_workload

    rd = claim_run_dir(tmp_path_factory.mktemp("runs") / "picked")
    pick: dict[str, fo.FlinkValue] = {
        fo.WRITE_BUFFER_SIZE: 32 << 20,
        fo.WRITE_BUFFER_RATIO: 0.7,
        fo.BLOCK_SIZE: 16 << 10,
        fo.USE_BLOOM_FILTER: True,
        fo.THREAD_NUM: 3,
    }
    records = [rec(0, "DEFAULT", "baseline", ops(1000)), rec(1, "trial-0", "search", ops(1300))]
    for r in range(3):
        records += [
            rec(2 + 2 * r, "DEFAULT", "remeasure", ops(1000), repeat=r),
            rec(3 + 2 * r, "recommended", "remeasure", ops(1300), repeat=r),
        ]
    records = [
        replace(x, candidate=replace(x.candidate, settings=pick))
        if x.candidate.label in ("trial-0", "recommended")
        else x
        for x in records
    ]
    records[1] = replace(records[1], candidate=replace(records[1].candidate, trial_number=0))
    study = create_study(rd.storage_url, "t", StudyConfig(trials=1))
    outcome = StudyOutcome(records, 0, dict(pick), recommended_settings=dict(pick))
    out = finish(
        load_workload(TINY), rd, study, outcome, ["v"], None, "", "rocksdict", RunSettings()
    )
    assert out is not None and fo.WRITE_BUFFER_SIZE in out.settings
    return rd.path


@pytest.mark.parametrize(
    ("filename", "version"), [("config.yaml", "2.x"), ("flink-conf.yaml", "1.20")]
)
def test_every_emitted_key_is_in_the_catalog(picked_run: Path, filename: str, version: str) -> None:
    catalog = load_catalog(version)
    text = (picked_run / filename).read_text()
    keys = [m.group(1) for m in re.finditer(r"^([a-z][\w.-]+): ", text, re.M)]
    assert "state.backend.rocksdb.writebuffer.size" in keys
    for key in keys:
        assert catalog.get(key) is not None, key
    r = CliRunner().invoke(
        cli, ["check-config", str(picked_run / filename), "--flink-version", version]
    )
    assert r.exit_code == 0, r.output


def test_deployment_is_a_flink_deployment(tiny_run: Path) -> None:
    doc = yaml.safe_load((tiny_run / "flink-deployment.yaml").read_text())
    assert doc["kind"] == "FlinkDeployment"
    conf = doc["spec"]["flinkConfiguration"]
    assert conf["state.backend.type"] == "rocksdb"
    assert all(isinstance(v, str) for v in conf.values())


def test_report_regenerates_and_rescores(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    r = CliRunner().invoke(cli, ["report", str(copy), "--disk", "hdd"])
    assert r.exit_code == 0, r.output
    report = (copy / "report.md").read_text()
    assert "Re-scored for `hdd`" in report


def test_resume_continues_with_earlier_trials_kept(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    before = (copy / "trials.csv").read_text().splitlines()
    r = CliRunner().invoke(
        cli, ["run", "--resume", str(copy), "--trials", "4", "--repeats", "1", "--no-confirm"]
    )
    assert r.exit_code == 0, r.output
    after = (copy / "trials.csv").read_text().splitlines()
    assert after[: len(before)] == before
    assert sum(",search,0,ok" in r or ",search," in r for r in after) > sum(
        ",search," in r for r in before
    )


def _tiny(out: Path, *extra: str) -> list[str]:
    """``tuner run`` of the tiny job with one trial and one repeat, into ``out``."""
    return ["run", str(TINY), "--trials", "1", "--repeats", "1", "--out", str(out), *extra]


def test_resume_keeps_how_the_run_was_measured(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _tiny(out, "--disk", "hdd", "--no-confirm", "--minimal-repeats", "0")
    assert CliRunner().invoke(cli, first).exit_code == 0
    r = CliRunner().invoke(
        cli, ["run", "--resume", str(out), "--trials", "2", "--repeats", "1", "--no-confirm"]
    )
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "run.json").read_text())
    assert (meta["disk"], meta["engine"], meta["objective"]) == ("hdd", "rocksdict", "throughput")


def test_a_run_in_which_every_measurement_fails_exits_1(tmp_path: Path) -> None:
    """A runtime failure, not an input mistake: the library raises TunerRuntimeError and marks
    the run failed (every trial stopped by a 1-byte memory watchdog, deterministically)."""
    from tuner.runner import RunSettings, run_study, start_run
    from tuner.workload import load_workload

    w = load_workload(TINY)
    rd, _ = start_run(w, tmp_path / "run", tmp_path)
    settings = RunSettings(
        trials=1, repeats=1, confirm=False, minimal=False, rss_margin=1 - w.memory.budget
    )
    with pytest.raises(TunerRuntimeError, match=r"every one of \d+ measurements failed"):
        run_study(w, rd, settings)
    assert json.loads((rd.path / "run.json").read_text())["status"] == "failed"


def test_a_runtime_failure_exits_1_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tuner.runner

    def broken(*_: object, **__: object) -> None:
        raise TunerRuntimeError("the Flink job failed (exit 1): boom")

    monkeypatch.setattr(tuner.runner, "_run_study", broken)
    r = CliRunner().invoke(cli, _tiny(tmp_path / "run"))
    assert r.exit_code == 1, r.output
    assert [ln for ln in r.output.splitlines() if ln.startswith("tuner: ")] == [
        "tuner: failed: the Flink job failed (exit 1): boom"
    ]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(("errno_", "code"), [(28, 1), (2, 2)])  # ENOSPC: runtime; ENOENT: input
def test_os_errors_exit_1_for_a_full_disk_and_2_for_a_bad_path(
    monkeypatch: pytest.MonkeyPatch, errno_: int, code: int
) -> None:
    import tuner.cli as tcli

    def boom(**_: object) -> None:
        raise OSError(errno_, os.strerror(errno_), "/some/file")

    monkeypatch.setattr(tcli.cli, "main", boom)
    with pytest.raises(SystemExit) as exc:
        tcli.main(["run", "x.yaml"])
    assert exc.value.code == code


def test_the_library_resume_rule_keeps_every_setting(tiny_run: Path) -> None:
    """An API user resuming gets the run's own settings, as the CLI does."""
    from tuner.runner import resume_run

    resumed = resume_run(tiny_run)
    assert (resumed.settings.trials, resumed.settings.repeats) == (3, 1)
    assert resumed.settings.engine == "rocksdict" and resumed.changed == ()
    assert {"trials", "repeats", "engine", "objective"} <= set(resumed.kept)
    changed = resume_run(tiny_run, {"trials": 5, "repeats": 1})
    assert changed.settings.trials == 5 and changed.changed == ("trials",)
    with pytest.raises(TunerError, match="unknown run settings"):
        resume_run(tiny_run, {"trails": 5})


def test_fixed_per_tm_shared_by_slots_is_listed_as_a_deviation(tmp_path: Path) -> None:
    from dataclasses import replace

    from tuner.flink.memory import Memory
    from tuner.runner import DEVIATIONS, shared_tm_deviation, start_run
    from tuner.workload import load_workload

    w = load_workload(TINY)
    shared = Memory(mode="fixed-per-tm", fixed_per_tm=128 << 20, slots_per_tm=4)
    assert shared_tm_deviation(w.memory) is None
    assert shared_tm_deviation(replace(shared, slots_per_tm=1)) is None
    why = shared_tm_deviation(shared)
    assert why is not None and "shared by 4 slots" in why and "1/4 share" in why
    # run.json carries it into every report of the run
    rd, _ = start_run(replace(w, memory=shared), tmp_path / "run", tmp_path)
    assert rd.read_meta()["deviations"] == [*DEVIATIONS, why]
    rd, _ = start_run(w, tmp_path / "managed", tmp_path)
    assert rd.read_meta()["deviations"] == list(DEVIATIONS)


def test_no_trial_runs_past_the_time_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from tuner import measuring, runner
    from tuner.costmodel import PRESETS
    from tuner.engine.base import Measurement
    from tuner.search.study import Candidate
    from tuner.workload import load_workload

    timeouts: list[float] = []

    def fake_isolated(*args: object, timeout_s: float, **kwargs: object) -> Measurement:
        timeouts.append(timeout_s)
        return Measurement("failed", "not measured here")

    monkeypatch.setattr(measuring, "measure_isolated", fake_isolated)
    w = load_workload(TINY)
    rd, _ = runner.start_run(w, tmp_path / "run", tmp_path)
    settings = runner.RunSettings(timeout_s=900.0)
    cand = Candidate("DEFAULT", "baseline", {"state.backend.rocksdb.predefined-options": "DEFAULT"})
    soon = time.monotonic() + 60
    measuring.measure_candidate(
        w, rd, tmp_path / "t", settings, PRESETS["local-nvme"], "fake", soon
    )(cand)
    late = time.monotonic() - 5
    measuring.measure_candidate(
        w, rd, tmp_path / "t", settings, PRESETS["local-nvme"], "fake", late
    )(cand)
    measuring.measure_candidate(w, rd, tmp_path / "t", settings, PRESETS["local-nvme"], "fake")(
        cand
    )
    assert 55 < timeouts[0] <= 60
    assert timeouts[1] == measuring.BUDGET_TIMEOUT_FLOOR_S
    assert timeouts[2] == 900.0

    # Once a trial took 2 s, a slow one is stopped at 10x that, 2 min at least, or under a
    # budget 30 s at least.
    def quick(*args: object, timeout_s: float, **kwargs: object) -> Measurement:
        timeouts.append(timeout_s)
        return Measurement("ok", "", {}, wall_s=2.0)

    monkeypatch.setattr(measuring, "measure_isolated", quick)
    far = time.monotonic() + 3600
    for deadline, floor in ((None, 120.0), (far, measuring.BUDGET_ADAPTIVE_FLOOR_S)):
        measure = measuring.measure_candidate(
            w, rd, tmp_path / "t", settings, PRESETS["local-nvme"], "fake", deadline
        )
        measure(cand)
        measure(cand)
        assert timeouts[-1] == floor


def test_a_run_in_which_most_measurements_failed_gives_no_advice() -> None:
    """The field case: 38 of 43 measurements killed by a memory limit, 2 finished. Such a run
    must fail and say why, not advise; a minority of failures is the study's business."""
    from tuner.runner import _mostly_failed
    from tuner.search.study import Candidate, TrialRecord

    def rec(i: int, status: str, reason: str = "") -> TrialRecord:
        cand = Candidate(f"trial {i}", "search", {}, trial_number=i)
        metrics = {"ops_per_s": 1.0} if status == "ok" else {}
        return TrialRecord(i, cand, status, reason, metrics, 1.0, 0, 0.0)  # type: ignore[arg-type]

    guard = "memory guard: RocksDB held 99 MiB (block cache 99 MiB), over the limit 96 MiB"
    records = [rec(i, "failed", guard) for i in range(3)] + [rec(3, "ok"), rec(4, "ok")]
    why = _mostly_failed(records)
    assert why.startswith("3 of 5 measurements failed (3 of them 'memory guard')")
    assert guard in why
    assert _mostly_failed(records[1:]) == ""  # 2 of 4: half is not most
    # Skipped candidates were never measured; an infeasible one with figures is a result.
    infeasible = TrialRecord(
        9, records[0].candidate, "failed", "over the disk budget", {"ops_per_s": 1.0}, 1, 0, 0
    )
    assert _mostly_failed([*records[3:], infeasible, rec(5, "skipped")]) == ""
    # A guard's partial figures (its peak) are no measurement: such a run failed (it once
    # reported "complete" with every measurement stopped by the guard).
    stopped = [
        TrialRecord(
            i,
            rec(i, "failed").candidate,
            "failed",
            guard,
            {"rocksdb_memory_peak_bytes": 9.0},
            1,
            0,
            0,
        )
        for i in range(2)
    ]
    assert _mostly_failed(stopped).startswith("every one of 2 measurements failed")


def test_a_run_whose_search_trials_all_failed_gives_no_advice() -> None:
    """Every search trial failed without figures (crashed, timed out, stopped by a guard):
    the run fails and says why, instead of ending "complete" with no recommendation."""
    from dataclasses import replace

    from tuner.runner import _no_search_result
    from tuner.search.study import Candidate, TrialRecord

    base = TrialRecord(
        0, Candidate("DEFAULT", "baseline", {}), "ok", "", {"ops_per_s": 1.0}, 1, 0, 0
    )
    rule = "at the job's size an SST's filter block would be about 636.2 MiB\nmore"
    failed = TrialRecord(
        1, Candidate("trial-2", "search", {}, trial_number=2), "failed", rule, {}, 1, 0, 0
    )
    skipped = TrialRecord(
        2, Candidate("trial-0", "search", {}, trial_number=0), "skipped", "a rule", {}, 0, 0, 0
    )
    why = _no_search_result([base, skipped, failed])
    assert why == (
        "no search trial succeeded (1 failed, 1 skipped as over the budget or against a rule); "
        "the first failure: at the job's size an SST's filter block would be about 636.2 MiB"
    )
    ok = replace(failed, status="ok", reason="", metrics={"ops_per_s": 2.0})
    assert _no_search_result([base, failed, ok]) == ""
    # Measured but infeasible (figures kept): a result that says nothing fits, not a failure.
    infeasible = replace(failed, reason="over the disk budget", metrics={"ops_per_s": 2.0})
    assert _no_search_result([base, infeasible]) == ""


def test_a_recording_too_big_for_its_budget_is_refused_with_the_smallest_that_would_do(
    tmp_path: Path,
) -> None:
    """A recorded trace's column families are known only from the trace: exit 2 before
    anything is measured, naming the field, why, and the least budget (whole MiB)."""
    trace = tmp_path / "t.parquet"
    assert (
        CliRunner().invoke(cli, ["trace", "generate", str(TINY), "-o", str(trace)]).exit_code == 0
    )
    small = tmp_path / "small.yaml"
    small.write_text(
        "name: small\nflink_version: '2.x'\nmemory: {mode: managed, managed_per_slot: 1 mb}\n"
        f"trace: {trace}\n"
    )
    r = CliRunner().invoke(cli, ["run", str(small), "--trials", "1", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("tuner: error:"))
    assert f"{small}: memory.managed_per_slot: 1 mb per slot is too small for the 4 column" in line
    assert "Flink's default: the arena block" in line
    least = re.search(r"the smallest budget that would do: (\d+) mb", line)
    assert least is not None, line
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"
    assert not (tmp_path / "r" / "trials.csv").exists()  # nothing was measured
    # The budget named is the least that passes.
    from tuner.flink import options as fo
    from tuner.flink.memory import with_budget
    from tuner.workload import load_workload

    w = load_workload(small)
    enough = with_budget(w.memory, int(least.group(1)) << 20)
    below = with_budget(w.memory, (int(least.group(1)) - 1) << 20)
    assert fo.invalid_reason({}, enough, 4, w.flink_version) is None
    assert fo.invalid_reason({}, below, 4, w.flink_version) is not None


def test_a_reference_the_memory_guard_always_stops_names_the_least_budget() -> None:
    from tuner.measuring import RunSettings
    from tuner.runner import _guard_refused_the_reference
    from tuner.search.study import Candidate, TrialRecord
    from tuner.workload import load_workload

    w = load_workload(TINY)
    guard = "MemoryBudgetExceeded: memory guard: RocksDB held 12 MiB (block cache 9 MiB, ...)"
    default = Candidate("DEFAULT", "baseline", {})
    peak = {"rocksdb_memory_peak_bytes": 12.0 * (1 << 20)}
    stopped = [TrialRecord(i, default, "failed", guard, peak, 1, 0, 0) for i in range(2)]
    why = _guard_refused_the_reference(w, RunSettings(), stopped)
    assert "every measurement of DEFAULT was stopped by the memory guard" in why
    assert why.endswith("give the slot at least 8 mb")  # 12 MiB / 1.5
    ok = TrialRecord(3, default, "ok", "", {"ops_per_s": 1.0}, 1, 0, 0)
    assert _guard_refused_the_reference(w, RunSettings(), [*stopped, ok]) == ""
