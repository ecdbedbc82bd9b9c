"""Run one measurement in its own process, so a crash, a hang or a memory blow-up of one trial
is recorded as that trial's failure and the study goes on.

The child is started with the ``spawn`` method: ``fork`` deadlocks once a RocksDB instance was
opened in the parent (shared/reference/rocksdict.md). The parent watches the child's wall time and
resident memory and removes the trial's temporary database whatever happened.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from tuner.engine.base import Measurement
from tuner.supervise import Watch, die_with_parent, exit_reason, watch

log = logging.getLogger(__name__)


def _die_with_parent(workdir: Path) -> None:
    """If the parent is killed (even with kill -9), remove this trial's database and exit:
    Linux sends us SIGTERM when the parent dies (tuner.supervise.die_with_parent)."""

    def on_term(signum: int, frame: object) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    if not die_with_parent(signal.SIGTERM):
        log.debug("PR_SET_PDEATHSIG unavailable")
    if os.getppid() == 1:  # the parent died before prctl took effect
        on_term(signal.SIGTERM, None)


def _child(
    conn: Connection,
    fn: Callable[..., Mapping[str, float]],
    kwargs: dict[str, Any],
    workdir: Path,
) -> None:
    # Ctrl-C reaches the whole process group; the parent decides to stop after this trial.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(workdir)
    try:
        metrics = fn(**kwargs)
        conn.send(("ok", "", dict(metrics)))
    except BaseException as exc:  # the parent records any failure as the trial's reason
        tb = traceback.format_exc(limit=3)
        conn.send(("failed", f"{type(exc).__name__}: {exc}", {"traceback": tb}))
    finally:
        conn.close()


def run_isolated(
    fn: Callable[..., Mapping[str, float]],
    kwargs: dict[str, Any],
    *,
    workdir: Path,
    timeout_s: float,
    rss_limit_bytes: int | None,
    poll_s: float = 0.05,
) -> Measurement:
    """Call ``fn(**kwargs)`` in a spawned process; ``fn`` must be importable at module level.

    Stops the child when it runs longer than ``timeout_s`` or its RSS exceeds
    ``rss_limit_bytes``; a child that dies (segfault, SIGKILL, OOM) is reported with its exit
    code. ``workdir`` (the trial's temporary database) is removed in every case.
    """
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child_conn, fn, kwargs, workdir), daemon=True)
    start = time.monotonic()
    seen = Watch(0.0, 0)
    try:
        _start_shielded(proc)
        child_conn.close()

        def finished(wait_s: float) -> bool:
            return bool(parent_conn.poll(wait_s)) or not proc.is_alive()

        seen = watch(
            proc.pid,  # type: ignore[arg-type]
            finished,
            timeout_s=timeout_s,
            rss_limit_bytes=rss_limit_bytes,
            poll_s=poll_s,
            what="the trial",
        )
        result = _outcome(seen, parent_conn, proc)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(10)
        parent_conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - start
    return Measurement(result.status, result.reason, result.metrics, wall, seen.rss_peak_bytes)


def _outcome(seen: Watch, conn: Connection, proc: BaseProcess) -> Measurement:
    """The trial's result from what the supervisor saw and what the child sent."""
    if seen.stopped is not None:
        return Measurement("failed", seen.reason)
    if not conn.poll():
        proc.join(5)
        return Measurement("failed", exit_reason(proc.exitcode))
    try:
        status, reason, metrics = conn.recv()
    except EOFError:
        proc.join(5)
        return Measurement("failed", exit_reason(proc.exitcode))
    proc.join(30)
    if status == "ok":
        return Measurement("ok", "", metrics)
    log.debug("trial failed in child:\n%s", metrics.get("traceback", ""))
    return Measurement("failed", reason)


def _start_shielded(proc: BaseProcess) -> None:
    """Start ``proc`` out of reach of the terminal's Ctrl-C, which must stop the study after
    the running trial, not kill the trial: SIGINT is blocked while it starts (the child
    inherits the blocked mask and then ignores SIGINT for good), and it gets a process group of
    its own. Blocking, not ignoring, in the parent: a Ctrl-C that lands while the child starts
    stays pending and reaches the study's handler afterwards instead of being lost."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    with contextlib.suppress(OSError):  # already exited, or not permitted: nothing to shield
        os.setpgid(proc.pid, proc.pid)  # type: ignore[arg-type]
