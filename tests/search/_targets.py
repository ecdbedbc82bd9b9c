"""Functions the isolated-trial tests run in a spawned child (must be importable)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping


def ok(value: float) -> Mapping[str, float]:
    return {"ops_per_s": value}


def raises(message: str) -> Mapping[str, float]:
    raise RuntimeError(message)


def killed() -> Mapping[str, float]:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)
    return {}


def segfault() -> Mapping[str, float]:
    import ctypes

    ctypes.string_at(0)
    return {}


def sleeps(seconds: float) -> Mapping[str, float]:
    time.sleep(seconds)
    return {"slept": seconds}


def hogs_memory(mib: int) -> Mapping[str, float]:
    block = bytearray(mib << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(5)
    return {"held": float(len(block))}
