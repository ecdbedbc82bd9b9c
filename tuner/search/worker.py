"""Run one measurement in its own process, so a crash, a hang or a memory blow-up of one trial
is recorded as that trial's failure and the study goes on.

The child is started with the ``spawn`` method: ``fork`` deadlocks once a RocksDB instance was
opened in the parent (shared/reference/rocksdict.md). The parent watches the child's wall time and
resident memory and removes the trial's temporary database whatever happened.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing as mp
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal

import psutil

log = logging.getLogger(__name__)

Status = Literal["ok", "failed"]
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class Measurement:
    """What one isolated measurement produced."""

    status: Status
    reason: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    rss_peak_bytes: int = 0


def _die_with_parent(workdir: Path) -> None:
    """If the parent is killed (even with kill -9), remove this trial's database and exit:
    Linux sends us SIGTERM when the parent dies (PR_SET_PDEATHSIG). The signal follows the
    thread that started us; run_isolated waits for the child, so that thread outlives it."""

    def on_term(signum: int, frame: object) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's finally-cleanup still applies
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
    peak = 0
    result: Measurement | None = None
    try:
        _start_shielded(proc)
        child_conn.close()
        ps = psutil.Process(proc.pid)
        while True:
            if parent_conn.poll(poll_s):
                try:
                    status, reason, metrics = parent_conn.recv()
                except EOFError:
                    proc.join(5)
                    result = Measurement("failed", _death_reason(proc.exitcode))
                    break
                proc.join(30)
                if status == "ok":
                    result = Measurement("ok", "", metrics)
                else:
                    log.debug("trial failed in child:\n%s", metrics.get("traceback", ""))
                    result = Measurement("failed", reason)
                break
            if not proc.is_alive():
                result = Measurement("failed", _death_reason(proc.exitcode))
                break
            try:
                rss = ps.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            peak = max(peak, rss)
            elapsed = time.monotonic() - start
            if rss_limit_bytes is not None and rss > rss_limit_bytes:
                result = Measurement(
                    "failed",
                    f"memory watchdog: RSS {rss >> 20} MiB exceeded the limit "
                    f"{rss_limit_bytes >> 20} MiB (budget plus margin)",
                )
                break
            if elapsed > timeout_s:
                result = Measurement("failed", f"timeout: still running after {timeout_s:.0f} s")
                break
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(10)
        parent_conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - start
    return Measurement(result.status, result.reason, result.metrics, wall, peak)


def _start_shielded(proc: BaseProcess) -> None:
    """Start ``proc`` out of reach of the terminal's Ctrl-C, which must stop the study after
    the running trial, not kill the trial: SIGINT is ignored while it starts (the ignore is
    inherited, and Python keeps it), and it gets a process group of its own."""
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        proc.start()
    finally:
        if in_main:
            signal.signal(signal.SIGINT, old)
    with contextlib.suppress(OSError):  # already exited, or not permitted: nothing to shield
        os.setpgid(proc.pid, proc.pid)  # type: ignore[arg-type]


def _death_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "crashed: no exit code"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory or kill -9)" if name == "SIGKILL" else ""
        return f"crashed: {name}{hint}"
    return f"crashed: exit code {exitcode}"
