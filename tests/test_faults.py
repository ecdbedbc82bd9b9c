"""Faults on a real run: a trial killed with kill -9, the main process killed with kill -9."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from click.testing import CliRunner

from tuner.cli import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "cli" / "tiny.yaml"


def _rows(run: Path) -> list[dict[str, str]]:
    path = run / "trials.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _start(out: Path, trials: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "run",
            str(TINY),
            "--trials",
            str(trials),
            "--repeats",
            "1",
            "--no-confirm",
            "--minimal-repeats",
            "0",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for(predicate: object, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_trial_killed_with_sigkill_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(out, trials=2)
    main = psutil.Process(proc.pid)

    def trials() -> list[psutil.Process]:
        # Not multiprocessing's resource tracker: the spawned trial process.
        return [c for c in main.children() if "spawn_main" in " ".join(c.cmdline())]

    _wait_for(lambda: len(trials()) > 0)
    trials()[0].send_signal(signal.SIGKILL)
    assert proc.wait(timeout=300) == 0
    rows = _rows(out)
    assert rows[0]["status"] == "failed"
    assert "SIGKILL" in rows[0]["reason"]
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert (out / "config.yaml").exists()
    assert not (out / ".work").exists()


def _killed_after_the_first_trial(out: Path, trials: int) -> None:
    """A run started with ``trials``, killed with kill -9 (its whole group) once the baselines
    and at least one search trial are in trials.csv."""
    proc = _start(out, trials=trials)
    _wait_for(lambda: len(_rows(out)) >= 5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_main_process_killed_with_sigkill_resumes_keeping_every_trial(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _killed_after_the_first_trial(out, trials=4)
    kept = _rows(out)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    r = CliRunner().invoke(cli, ["run", "--resume", str(out), "--trials", "4", "--repeats", "1"])
    assert r.exit_code == 0, r.output
    after = _rows(out)
    # Every kept row as it was; a column a later trial added (a parameter the earlier ones did
    # not set) is empty for them.
    assert [{k: row[k] for k in kept[0]} for row in after[: len(kept)]] == kept
    assert all(row[k] == "" for row in after[: len(kept)] for k in set(row) - set(kept[0]))
    finished = [row for row in after if row["kind"] == "search" and row["status"] != "skipped"]
    assert len(finished) >= 4
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert not (out / ".work").exists()


def test_kill_9_of_the_main_process_takes_the_trial_and_its_database_with_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    proc = _start(out, trials=2)
    main = psutil.Process(proc.pid)

    def trial_dbs() -> list[Path]:
        work = out / ".work"
        return [p for p in work.iterdir() if any(p.rglob("CURRENT"))] if work.exists() else []

    _wait_for(lambda: len(trial_dbs()) > 0)
    children = [c for c in main.children() if "spawn_main" in " ".join(c.cmdline())]
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, not its group
    proc.wait(timeout=30)
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive
    assert trial_dbs() == []


def test_ctrl_c_stops_after_the_current_trial_and_leaves_a_resumable_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(out, trials=6)
    _wait_for(lambda: len(_rows(out)) >= 2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    assert proc.wait(timeout=120) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "incomplete"
    rows = _rows(out)
    assert all(row["status"] != "failed" for row in rows)  # the running trial was finished
    assert "tuner run --resume" in (out / "report.md").read_text()
    assert not (out / ".work").exists()


def test_resume_without_flags_keeps_the_trial_count_it_was_started_with(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _killed_after_the_first_trial(out, trials=3)
    r = CliRunner().invoke(cli, ["run", "--resume", str(out)])
    assert r.exit_code == 0, r.output
    assert "trials=3" in r.output and "repeats=1" in r.output
    finished = [
        row for row in _rows(out) if row["kind"] == "search" and row["status"] in ("ok", "failed")
    ]
    assert len(finished) == 3  # not the default 30
    assert json.loads((out / "run.json").read_text())["settings"]["trials"] == 3
