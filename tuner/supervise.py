"""The one process supervisor: every child tuner starts (an isolated trial, a Flink JVM) is
watched here for wall time and resident memory, and dies with tuner.

- **Parent death**: a child asks Linux to signal it when its parent dies
  (``PR_SET_PDEATHSIG``), so ``kill -9`` of tuner leaves no trial or JVM running. The signal
  follows the thread that started the child; the supervising thread waits for the child, so it
  outlives it.
- **Process group**: a child gets a group of its own, out of reach of the terminal's Ctrl-C,
  which must stop a study after the running trial, not kill the trial.
- **Watch**: the parent samples the child's RSS (the peak is what a container limit would see)
  and stops it past a time or memory limit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import psutil

log = logging.getLogger(__name__)

__all__ = ["Watch", "die_with_parent", "dying_with_parent", "exit_reason", "watch"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where unsupported.

    Called in the child: from a Python child at start, from a JVM's ``preexec_fn`` before exec.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, sig) == 0)
    except (OSError, AttributeError):  # not Linux: the parent's own cleanup still applies
        return False


def dying_with_parent(cmd: Sequence[str]) -> list[str]:
    """``cmd`` (a JVM) wrapped so that Linux kills it when tuner dies: util-linux's
    ``setpriv --pdeathsig KILL`` sets the signal and execs ``cmd`` (the setting survives exec).

    Safe where tuner starts children from several threads, unlike a ``preexec_fn``. Without
    setpriv the command runs unwrapped and only the parent's own cleanup applies. Start it with
    ``process_group=0`` so it also has a group of its own.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.debug("setpriv not found: %s will not die with its parent", cmd[0])
        return list(cmd)
    return [setpriv, "--pdeathsig", "KILL", *cmd]


@dataclass(frozen=True)
class Watch:
    """What watching a child saw: ``stopped`` says why the supervisor stopped it, if it did."""

    elapsed_s: float
    rss_peak_bytes: int
    stopped: Literal["timeout", "memory"] | None = None
    reason: str = ""


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def watch(
    pid: int,
    finished: Callable[[float], bool],
    *,
    timeout_s: float,
    rss_limit_bytes: int | None = None,
    poll_s: float = 0.05,
    what: str = "the child",
) -> Watch:
    """Watch process ``pid`` until ``finished(poll_s)`` (which may block up to ``poll_s``)
    says it is done, or until it passes ``timeout_s`` or ``rss_limit_bytes``; then it is
    killed (its whole group). The caller reaps the child and reads its result."""
    started = time.monotonic()
    ps = psutil.Process(pid)
    peak = 0
    while not finished(poll_s):
        rss = _rss(ps)
        peak = max(peak, rss)
        elapsed = time.monotonic() - started
        if rss_limit_bytes is not None and rss > rss_limit_bytes:
            _kill(ps)
            return Watch(
                elapsed,
                peak,
                "memory",
                f"memory watchdog: RSS {rss >> 20} MiB exceeded the limit "
                f"{rss_limit_bytes >> 20} MiB (budget plus margin)",
            )
        if elapsed > timeout_s:
            _kill(ps)
            return Watch(
                elapsed,
                peak,
                "timeout",
                f"timeout: {what} still running after {timeout_s:.0f} s; stopped",
            )
    return Watch(time.monotonic() - started, peak)


def _kill(ps: psutil.Process) -> None:
    try:
        pgid = os.getpgid(ps.pid)
        if pgid == ps.pid:  # a group of its own: take its children (JVM helpers) too
            os.killpg(pgid, signal.SIGKILL)
        else:
            ps.kill()
    except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
        pass


def exit_reason(exitcode: int | None) -> str:
    """A child's end in words: ``crashed: SIGKILL (killed: out of memory or kill -9)``."""
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
