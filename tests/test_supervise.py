"""The process supervisor: children die with tuner, and are stopped past their limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tuner.supervise import dying_with_parent, exit_reason, watch

# A parent that starts a long child through the supervisor's wrapper, prints its pid, and
# sleeps until it is killed with kill -9.
_PARENT = """
import subprocess, sys, time
from tuner.supervise import dying_with_parent
child = subprocess.Popen(dying_with_parent([sys.executable, "-c", "import time; time.sleep(600)"]),
                         process_group=0)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_wrapped_child_dies_when_its_parent_is_killed_with_sigkill() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 30

    def before_exec() -> bool:
        try:
            cmd = child.cmdline()
        except psutil.NoSuchProcess:
            return False
        return not cmd or "setpriv" in cmd[0]

    while before_exec() and time.monotonic() < deadline:
        time.sleep(0.02)  # the death signal is set once setpriv has run, just before its exec
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    def dead() -> bool:
        try:
            return bool(
                child.status() == psutil.STATUS_ZOMBIE
            )  # killed; reaping is init's business
        except psutil.NoSuchProcess:
            return True

    while not dead() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dead(), "the child outlived its parent"


def _exited(proc: subprocess.Popen[bytes]) -> Callable[[float], bool]:
    def finished(wait_s: float) -> bool:
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    return finished


def test_watch_stops_a_child_past_its_time() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0)
    started = time.monotonic()
    seen = watch(
        proc.pid,
        _exited(proc),
        timeout_s=0.5,
    )
    proc.wait(10)
    assert seen.stopped == "timeout"
    assert seen.reason.startswith("timeout:")
    assert time.monotonic() - started < 10
    assert proc.returncode == -signal.SIGKILL


def test_watch_stops_a_child_past_its_memory_and_reports_the_peak() -> None:
    grow = "b = bytearray(300 << 20); import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", grow], process_group=0)
    seen = watch(
        proc.pid,
        _exited(proc),
        timeout_s=30,
        rss_limit_bytes=100 << 20,
    )
    proc.wait(10)
    assert seen.stopped == "memory"
    assert seen.rss_peak_bytes > 100 << 20
    assert "memory watchdog" in seen.reason


def test_exit_reasons_name_the_signal() -> None:
    assert exit_reason(-9) == "crashed: SIGKILL (killed: out of memory or kill -9)"
    assert exit_reason(3) == "crashed: exit code 3"
    assert exit_reason(None) == "crashed: no exit code"


def test_dying_with_parent_keeps_the_command() -> None:
    cmd = ["java", "-version"]
    assert dying_with_parent(cmd)[-2:] == cmd
    assert Path(dying_with_parent(cmd)[0]).name in ("setpriv", "java")
