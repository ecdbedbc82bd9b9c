"""The storage password on a real PostgreSQL: kept off the command line (PGPASSWORD,
TUNER_STORAGE, ~/.pgpass, a service file), out of every output, and storage errors that no
retry cures reported at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from tests.pgcluster import SUPERUSER, Cluster
from tests.remote.test_shared_study import ROOT, _coordinator, _finish
from tuner.cli import cli


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without any libpq or tuner setting of the caller's, plus ``extra``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "TUNER_STORAGE"}
    return {**keep, "PYTHONPATH": str(ROOT), **extra}


def _pgpass(cluster: Cluster, path: Path) -> Path:
    path.write_text(f"127.0.0.1:{cluster.port}:*:{SUPERUSER}:{cluster.password}\n")
    path.chmod(0o600)
    return path


def _cmdlines(pid: int) -> list[bytes]:
    """The command lines of a process and its children, as `ps` and /proc show them."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    lines = []
    for p in procs:
        try:
            lines.append(Path(f"/proc/{p.pid}/cmdline").read_bytes())
        except FileNotFoundError:  # a child that just ended
            continue
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, check=True)
    return [*lines, ps.stdout]


@pytest.mark.parametrize("source", ["PGPASSWORD", "TUNER_STORAGE", "pgpass", "service"])
def test_a_worker_with_its_password_from_the_environment_shows_none_in_ps(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path, source: str
) -> None:
    password = pg_cluster.password
    database = pg_url.rsplit("/", 1)[1]
    public = pg_cluster.url(database, password=False)
    args = ["--storage", public]
    if source == "PGPASSWORD":
        env = _clean_env(PGPASSWORD=password)
    elif source == "TUNER_STORAGE":
        env, args = _clean_env(TUNER_STORAGE=pg_url), []
    elif source == "pgpass":
        env = _clean_env(PGPASSFILE=str(_pgpass(pg_cluster, tmp_path / "pgpass")))
    else:
        services = tmp_path / "services"
        services.write_text(
            f"[studies]\nhost=127.0.0.1\nport={pg_cluster.port}\nuser={SUPERUSER}\n"
            f"dbname={database}\n"
        )
        env = _clean_env(
            PGSERVICEFILE=str(services),
            PGPASSFILE=str(_pgpass(pg_cluster, tmp_path / "pgpass")),
        )
        args = ["--storage", "postgresql://?service=studies"]
    log = tmp_path / "worker.log"
    with log.open("wb") as f:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tuner.cli", "-v", "worker", *args, "--study", "later"],
            cwd=ROOT,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        # It logs this once it is connected (the password was accepted) and polls for the study.
        end = time.monotonic() + 120
        while "waiting for study later" not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < end, log.read_text()
            time.sleep(0.1)
        for line in _cmdlines(worker.pid):
            assert password.encode() not in line
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert password not in log.read_text()


def test_resume_with_the_same_storage_is_not_a_change_and_shows_no_password(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    """One run resumed with its storage spelled three ways (one study: a run of its own for
    each would take minutes), then with TUNER_STORAGE naming another database."""
    password = pg_cluster.password
    public = pg_cluster.url(pg_url.rsplit("/", 1)[1], password=False)
    out = tmp_path / "run"
    first = _coordinator(pg_url, "resumed", out, tmp_path / "c.log", trials=2, minimal=False)
    _finish([first], [tmp_path / "c.log"])

    for args, env in [
        (["--storage", pg_url], {}),
        (["--storage", f"{public}?password={password}"], {}),
        ([], {"TUNER_STORAGE": pg_url}),
        # Another database in the environment: the run stays on its own (password from libpq).
        ([], {"TUNER_STORAGE": pg_cluster.create_database("t_other"), "PGPASSWORD": password}),
    ]:
        r = CliRunner().invoke(cli, ["run", "--resume", str(out), *args], env=env)
        assert r.exit_code == 0, r.output
        assert "changed on the command line" not in r.output
        assert f"tuner worker --storage {public} --study resumed" in r.output
        assert password not in r.output
        assert json.loads((out / "run.json").read_text())["storage"] == public
    for path in out.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://{user}:Wr0ngSecret!@127.0.0.1:{port}/postgres", "password authentication"),
        ("postgresql://{user}:{password}@127.0.0.1:{port}/no_such_db", "does not exist"),
        ("postgresql://{user}:{password}@127.0.0.1:{port}/postgres?sslmode=bogus", "sslmode"),
        ("postgresql://{user}:{password}@127.0.0.1:{port}/postgres?bogus=1", "bogus"),
        ("postgresql://{user}:{password}@127.0.0.1:{port}/postgres?sslmode=require", "SSL"),
    ],
)
def test_a_storage_error_no_retry_cures_ends_at_once_in_one_line(
    pg_cluster: Cluster, url: str, message: str
) -> None:
    url = url.format(user=SUPERUSER, password=pg_cluster.password, port=pg_cluster.port)
    started = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "worker", "--storage", url, "--study", "x"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        # Retried as a transient error, it would go on for 10 minutes.
        timeout=120,
        check=False,
    )
    assert time.monotonic() - started < 60
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    for secret in (pg_cluster.password, "Wr0ngSecret"):
        assert secret not in r.stderr + r.stdout


@pytest.mark.parametrize("command", ["run", "worker"])
def test_help_says_how_to_keep_the_password_off_the_command_line(command: str) -> None:
    text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
    for where in ("PGPASSWORD", "~/.pgpass", "service", "TUNER_STORAGE"):
        assert where in text, where
