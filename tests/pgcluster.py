"""A throw-away PostgreSQL cluster for tests and benchmarks: Debian's `postgresql` binaries,
initdb in a temporary directory as a non-root user, a free localhost port, password
authentication over TCP, stopped and removed at the end.

PostgreSQL refuses to run as root, and CI runs as root: the cluster then runs as the `postgres`
user (created by the Debian package) or `nobody`, through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "tuner_admin"


class ClusterUnavailable(RuntimeError):
    """PostgreSQL is not installed here or would not start."""


def bindir() -> Path:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        raise ClusterUnavailable(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
            "install Debian's `postgresql` package"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    """The user to run the server as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ClusterUnavailable("running as root and neither `postgres` nor `nobody` exists")


@dataclass
class Cluster:
    """A running cluster: connect as ``SUPERUSER`` with ``password`` on 127.0.0.1:``port``."""

    root: Path
    port: int
    password: str
    user: str | None
    bin: Path

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        log = str(self.root / "server.log")
        r = subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if r.returncode != 0:
            tail = (self.root / "server.log").read_text()[-2000:] if Path(log).exists() else ""
            raise ClusterUnavailable(f"pg_ctl {args[0]} failed: {r.stderr.strip()}\n{tail}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would)."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        """Stop and start again: every open connection is cut."""
        self.stop("fast")
        self.start()

    def url(self, database: str, *, password: bool = True) -> str:
        """A SQLAlchemy URL for ``database`` (with or without the password in it)."""
        auth = f"{SUPERUSER}:{self.password}" if password else SUPERUSER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL (password included)."""
        import psycopg

        conn = psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname="postgres",
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


def start_cluster() -> Cluster:
    """initdb in a fresh temporary directory and start the server on a free port."""
    bin_ = bindir()
    user = _run_as()
    # Not under pytest's tmp_path: that is private to root, and the server runs as `user`.
    root = Path(tempfile.mkdtemp(prefix="tuner-pg-"))
    password = secrets.token_urlsafe(16)
    cluster = Cluster(root, _free_port(), password, user, bin_)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    r = subprocess.run(
        cluster._cmd(
            "initdb",
            "-D",
            str(cluster.data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    pwfile.unlink()
    if r.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(f"initdb failed: {r.stderr.strip()}")
    with (cluster.data / "postgresql.conf").open("a") as f:
        f.write(
            f"\nport = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{root}'\nfsync = off\nmax_connections = 100\n"
        )
    try:
        cluster.start()
    except ClusterUnavailable:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster


def remove_cluster(cluster: Cluster) -> None:
    """Stop the server (if running) and delete its files."""
    with contextlib.suppress(ClusterUnavailable, subprocess.TimeoutExpired):
        cluster.stop("immediate")
    shutil.rmtree(cluster.root, ignore_errors=True)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A cluster for the duration of a with-block."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        remove_cluster(cluster)


def wait_until_up(cluster: Cluster, timeout: float = 30) -> None:
    """Wait until the server accepts a connection again."""
    import psycopg

    end = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(
                host="127.0.0.1",
                port=cluster.port,
                user=SUPERUSER,
                password=cluster.password,
                dbname="postgres",
            ).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)
