"""One study on a real PostgreSQL, trials from several processes: the coordinator
(``tuner run --storage``) and ``tuner worker``s, each its own process as on separate machines.

The coordination tests replay on the fake engine (deterministic, fast); one test runs the real
rocksdict replay end to end through the CLI.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import psutil
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from tests.pgcluster import Cluster
from tuner.cli import cli
from tuner.rundir import FIXED_COLUMNS
from tuner.runner import RunSettings, run_study, start_run
from tuner.search.shared import WORKER_ATTR, StudySpec, counts, lost_numbers
from tuner.search.storage import RERUN_OF, driver_url
from tuner.workload import dump_workload, load_workload

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "cli" / "tiny.yaml"
TRIALS = 6


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _worker(url: str, study: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tuner.cli",
                "worker",
                "--storage",
                url,
                "--study",
                study,
                *extra,
            ],
            cwd=ROOT,
            env=_env(),
            stdout=f,
            stderr=subprocess.STDOUT,
        )


def _coordinator(
    url: str, study: str, out: Path, log: Path, trials: int = TRIALS, *, minimal: bool = True
) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.remote._coordinator",
                str(TINY),
                str(out),
                url,
                study,
                str(trials),
                "fake",
                *([] if minimal else ["no-minimal"]),
            ],
            cwd=ROOT,
            env=_env(),
            stdout=f,
            stderr=subprocess.STDOUT,
        )


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open() as f:
        return list(csv.DictReader(f))


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(driver_url(url))
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


def _counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    lost = lost_numbers(trials)
    return [t for t in trials if counts(t, lost)]


def _wait_for(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _finish(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    for p, log in zip(procs, logs, strict=True):
        assert p.wait(timeout=300) == 0, log.read_text()[-3000:]


def _search_rows(out: Path) -> list[dict[str, str]]:
    return [r for r in _rows(out) if r["kind"] == "search" and r["status"] in ("ok", "failed")]


def _form(run: Path) -> dict[str, object]:
    """What a run directory looks like, without its numbers or the searched settings."""
    with (run / "trials.csv").open() as f:
        header = next(csv.reader(f))
    metrics = [c for c in header if c not in FIXED_COLUMNS and not c.startswith("state.backend")]
    return {
        "files": sorted(p.name for p in run.iterdir() if p.name != "study.db"),
        "plots": sorted(p.name for p in (run / "plots").iterdir()),
        "fixed": header[: len(FIXED_COLUMNS)],
        "metrics": metrics,
        "headings": [
            line for line in (run / "report.md").read_text().splitlines() if line.startswith("#")
        ],
        "kinds": sorted({r["kind"] for r in _rows(run)}),
    }


def test_one_coordinator_and_two_workers_count_every_trial_once(
    pg_url: str, tmp_path: Path
) -> None:
    logs = [tmp_path / "w1.log", tmp_path / "w2.log", tmp_path / "coordinator.log"]
    workers = [_worker(pg_url, "s", logs[0]), _worker(pg_url, "s", logs[1])]
    out = tmp_path / "run"
    coordinator = _coordinator(pg_url, "s", out, logs[2])
    _finish([*workers, coordinator], logs)

    counted = _counted(_trials(pg_url, "s"))
    assert len(counted) == TRIALS
    by = {t.user_attrs[WORKER_ATTR].rsplit(":", 1)[1] for t in counted}
    assert {str(w.pid) for w in workers} <= by  # both workers measured trials
    rows = _search_rows(out)
    assert sorted(int(r["trial_number"]) for r in rows) == sorted(t.number for t in counted)
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "complete"
    assert meta["study_name"] == "s"

    # The same job run locally: the run directory and report have the same form.
    local = tmp_path / "local"
    w = load_workload(TINY)
    run_study(
        w,
        start_run(w, local, tmp_path)[0],
        RunSettings(
            trials=TRIALS,
            repeats=1,
            engine="fake",
            confirm=False,
            minimal_repeats=1,
            minimal_max_measurements=4,
        ),
    )
    assert _form(out) == _form(local)


def test_a_worker_killed_mid_trial_loses_nothing_and_counts_nothing_twice(
    pg_url: str, tmp_path: Path
) -> None:
    logs = [tmp_path / "victim.log", tmp_path / "other.log", tmp_path / "coordinator.log"]
    victim = _worker(pg_url, "k", logs[0])
    other = _worker(pg_url, "k", logs[1])
    out = tmp_path / "run"
    coordinator = _coordinator(pg_url, "k", out, logs[2], minimal=False)

    def victim_mid_trial() -> bool:
        assert victim.poll() is None, logs[0].read_text()
        return _measuring(victim, pg_url, "k")

    _wait_for(victim_mid_trial)
    running = [
        t.number
        for t in _trials(pg_url, "k")
        if t.state == TrialState.RUNNING
        and t.user_attrs.get(WORKER_ATTR, "").endswith(f":{victim.pid}")
    ]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    _finish([other, coordinator], logs[1:])

    trials = _trials(pg_url, "k")
    (lost,) = running
    lost_trial = next(t for t in trials if t.number == lost)
    assert lost_trial.state == TrialState.FAIL  # failed once its heartbeat stopped
    (rerun,) = [t for t in trials if t.user_attrs.get(RERUN_OF) == lost]
    assert rerun.params == lost_trial.params  # the same candidate, measured again
    counted = _counted(trials)
    assert rerun in counted and lost_trial not in counted
    assert len(counted) == TRIALS
    rows = _search_rows(out)
    assert sorted(int(r["trial_number"]) for r in rows) == sorted(t.number for t in counted)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_a_database_restart_during_the_study_is_ridden_out(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    logs = [tmp_path / "w.log", tmp_path / "coordinator.log"]
    worker = _worker(pg_url, "r", logs[0])
    out = tmp_path / "run"
    coordinator = _coordinator(pg_url, "r", out, logs[1], trials=4, minimal=False)
    _wait_for(lambda: len(_counted(_trials_or_empty(pg_url, "r"))) >= 1)
    _wait_for(lambda: _measuring(worker, pg_url, "r"))  # its heartbeat must meet the outage
    pg_cluster.stop("fast")  # every connection is cut
    time.sleep(3)  # longer than the grace period: running trials may be failed and re-run
    pg_cluster.start()
    _finish([worker, coordinator], logs)
    assert len(_counted(_trials(pg_url, "r"))) == 4
    assert len(_search_rows(out)) == 4
    text = logs[0].read_text() + logs[1].read_text()
    assert "storage unavailable" in text or "heartbeat not recorded" in text


def test_a_coordinator_killed_mid_study_resumes_its_own_study(pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _coordinator(pg_url, "c", out, tmp_path / "c1.log", trials=4, minimal=False)
    _wait_for(lambda: len(_counted(_trials_or_empty(pg_url, "c"))) >= 2)
    _wait_for(lambda: _measuring(first, pg_url, "c"))
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    # `tuner run --resume DIR`: the same study (by run id), the password again from the URL.
    again = _coordinator(pg_url, "-", out, tmp_path / "c2.log", trials=4, minimal=False)
    _finish([again], [tmp_path / "c2.log"])
    trials = _trials(pg_url, "c")
    assert len(_counted(trials)) == 4
    assert lost_numbers(trials)  # the trial it was measuring was failed and re-run
    rows = _search_rows(out)
    assert sorted(int(r["trial_number"]) for r in rows) == sorted(
        t.number for t in _counted(trials)
    )
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def _measuring(worker: subprocess.Popen[bytes], url: str, study: str) -> bool:
    """Whether ``worker`` is measuring a trial right now (its trial process is alive)."""
    assert worker.poll() is None
    try:
        cmdlines = [" ".join(c.cmdline()) for c in psutil.Process(worker.pid).children()]
    except psutil.NoSuchProcess:  # a trial process that just ended
        return False
    if not any("spawn_main" in c for c in cmdlines):
        return False
    return any(
        t.state == TrialState.RUNNING
        and t.user_attrs.get(WORKER_ATTR, "").endswith(f":{worker.pid}")
        for t in _trials_or_empty(url, study)
    )


def _trials_or_empty(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return _trials(url, study)
    except KeyError:
        return []


def _make_study(url: str, name: str, **attrs: object) -> None:
    storage = optuna.storages.RDBStorage(driver_url(url))
    study = optuna.create_study(study_name=name, storage=storage)
    for k, v in attrs.items():
        study.set_user_attr(k, v)
    storage.engine.dispose()


def _spec(**over: object) -> dict[str, object]:
    spec = StudySpec(
        run_id="r1",
        origin="elsewhere:/runs/x",
        created_at=0.0,
        workload_yaml=dump_workload(load_workload(TINY)),
        stream_sha256="0" * 64,
        trials=2,
        objective="throughput",
        seed=1,
        engine="fake",
        disk=None,
        trial_timeout_s=60.0,
        heartbeat_s=1,
    ).to_attrs()
    return {**spec, **over}


def test_a_study_name_is_never_shared_silently(pg_url: str, tmp_path: Path) -> None:
    _make_study(pg_url, "taken", **_spec())
    r = CliRunner().invoke(
        cli,
        ["run", str(TINY), "--storage", pg_url, "--study", "taken", "--out", str(tmp_path / "x")],
    )
    assert r.exit_code == 2
    assert "study 'taken' already exists" in r.output
    assert "elsewhere:/runs/x" in r.output


def test_worker_refuses_a_stream_that_differs_from_the_coordinators(pg_url: str) -> None:
    _make_study(pg_url, "drift", **_spec())
    r = CliRunner().invoke(cli, ["worker", "--storage", pg_url, "--study", "drift"])
    assert r.exit_code == 1
    assert "differs from the coordinator's" in r.output


@pytest.mark.parametrize(
    ("name", "attrs", "message"),
    [
        ("missing", None, "no study 'missing'"),
        ("foreign", {}, "was not created by tuner run"),
    ],
)
def test_worker_refuses_a_study_it_cannot_join(
    pg_url: str, name: str, attrs: dict[str, object] | None, message: str
) -> None:
    if attrs is not None:
        _make_study(pg_url, name, **attrs)
    r = CliRunner().invoke(cli, ["worker", "--storage", pg_url, "--study", name, "--wait", "0"])
    assert r.exit_code == 2
    assert message in r.output


def test_real_replay_with_a_worker_and_no_password_anywhere(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    """The CLI end to end on rocksdict: the password is in the URL given to both commands, and
    in no file, log line or message; the report is rendered again from PGPASSWORD/.pgpass."""
    password = pg_cluster.password
    out = tmp_path / "run"
    wlog, clog = tmp_path / "w.log", tmp_path / "c.log"
    worker = _worker(pg_url, "real", wlog, "--trials", "1")
    with clog.open("wb") as f:
        coordinator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tuner.cli",
                "-v",
                "run",
                str(TINY),
                "--trials",
                "2",
                "--repeats",
                "1",
                "--out",
                str(out),
                "--storage",
                pg_url,
                "--study",
                "real",
                # What is checked is the storage and the password: no confirmation on Flink's
                # backend, no minimal recommendation (tested elsewhere, slow here).
                "--no-confirm",
                "--minimal-repeats",
                "0",
            ],
            cwd=ROOT,
            env=_env(),
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    _finish([worker, coordinator], [wlog, clog])
    assert len(_counted(_trials(pg_url, "real"))) == 2
    meta = json.loads((out / "run.json").read_text())
    assert meta["storage"] == pg_cluster.url(pg_url.rsplit("/", 1)[1], password=False)
    assert "real" in clog.read_text() and "1 trials measured here" in wlog.read_text()
    for path in [wlog, clog, *out.rglob("*")]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path

    def report(**env: str) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in _env(**env).items() if k not in ("PGPASSWORD", "PGPASSFILE")}
        return subprocess.run(
            [sys.executable, "-m", "tuner.cli", "report", str(out)],
            cwd=ROOT,
            env={**base, **env},
            capture_output=True,
            text=True,
            check=False,
        )

    assert report(PGPASSWORD=password).returncode == 0
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_cluster.port}:*:*:{password}\n")
    pgpass.chmod(0o600)
    assert report(PGPASSFILE=str(pgpass)).returncode == 0
    no_password = report(PGPASSFILE=str(tmp_path / "none"))
    assert no_password.returncode == 2, no_password.stderr
    assert "no password supplied" in no_password.stderr


def test_a_wrong_password_is_one_line_without_the_password(pg_cluster: Cluster) -> None:
    url = f"postgresql://tuner_admin:Wr0ngSecret!@127.0.0.1:{pg_cluster.port}/postgres"
    r = CliRunner().invoke(cli, ["worker", "--storage", url, "--study", "x", "--wait", "0"])
    assert r.exit_code == 2
    assert "password authentication failed" in r.output
    assert "Wr0ngSecret" not in r.output
