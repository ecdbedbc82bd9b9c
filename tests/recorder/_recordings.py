"""Synthetic recordings written in the recorder's format (as the Java recorder writes them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tuner.recorder.format import EVENT_DTYPE, FLAG_NS_WINDOW, FLAG_SIZE_UNKNOWN, write_recording
from tuner.trace.ops import Op

STATES: list[dict[str, Any]] = [
    {"id": 0, "name": "count", "kind": "value", "namespace": "void", "ttl": True},
    {"id": 1, "name": "recent", "kind": "map", "namespace": "void", "ttl": False},
    {
        "id": 2,
        "name": "_timer_state/event_user-timers",
        "kind": "timers",
        "namespace": "timer",
        "ttl": False,
    },
    {"id": 3, "name": "agg", "kind": "aggregating", "namespace": "window", "ttl": False},
]


def header(subtask: int = 0, job: str = "job1", operator: str = "Op_abc_(1/2)") -> dict[str, Any]:
    return {
        "format": "tuner-recording",
        "job_id": job,
        "operator": operator,
        "subtask": subtask,
        "attempt": 0,
        "max_parallelism": 128,
        "sample": 1.0,
    }


def footer(events: int) -> dict[str, Any]:
    return {
        "events": events,
        "dropped_events": 0,
        "stopped": None,
        "state_calls": events,
        "timed_calls": max(1, events // 64),
        "timed_ns": 1000 * max(1, events // 64),
        "timer_cost_ns": 200,
        "timed_log2_ns": {
            "10": [max(1, events // 64), 1200 * max(1, events // 64)],
            "24": [1, 1 << 24],
        },
        "task_cpu_ns": 10_000 * events,
        "key_lengths": {"8": events},
        "user_key_lengths": {"1": {"8": events}},
    }


def events(n: int, seed: int = 0, t0: int = 1_000_000) -> npt.NDArray[np.void]:
    """``n`` events over the four states above, in call order (ts non-decreasing)."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["ts"] = t0 + np.sort(rng.integers(0, 10 * n, n))
    ev["key"] = rng.integers(0, 50, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    state = rng.integers(0, 4, n)
    ev["state"] = state
    op = np.where(state == 0, rng.choice([int(Op.GET), int(Op.UPDATE)], n), 0)
    op = np.where(state == 1, rng.choice([int(Op.GET), int(Op.PUT), int(Op.REMOVE)], n), op)
    op = np.where(state == 2, rng.choice([8, 9, 10], n), op)
    op = np.where(state == 3, int(Op.ADD), op)
    ev["op"] = op
    ev["ns_a"] = np.where(state == 3, 60_000 * (ev["ts"] // 60_000), -1)
    ev["ns_b"] = np.where(state == 3, ev["ns_a"] + 60_000, -1)
    ev["flags"] = np.where(state == 3, FLAG_NS_WINDOW, 0)
    ev["aux"] = np.where(state == 1, rng.integers(0, 5, n) * 7919, -1)
    ev["aux"] = np.where(state == 2, ev["ts"] + 500, ev["aux"])
    writes = np.isin(op, [int(Op.UPDATE), int(Op.PUT), int(Op.ADD)])
    ev["size"] = np.where(writes, 8 + 8 * (state == 0), 0)  # TTL'd value: 8 + TTL's 8 bytes
    unknown = (state == 3) & (np.arange(n) % 16 != 0)
    ev["size"] = np.where(unknown, -1, np.where(state == 3, 24, ev["size"]))
    ev["flags"] = ev["flags"] | np.where(unknown, FLAG_SIZE_UNKNOWN, 0)
    return ev


def write_dir(root: Path, n: int = 2000, files: int = 2) -> Path:
    """A recording directory of one job: ``files`` subtasks of one operator."""
    job = root / "rec" / "job1"
    job.mkdir(parents=True)
    for i in range(files):
        ev = events(n, seed=i, t0=1_000_000 + i)
        write_recording(job / f"Op_abc.{i}.0.1.tunerrec", header(i), STATES, ev, footer(n))
    return root / "rec"
