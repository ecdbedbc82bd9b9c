"""Shared builders for tests: one place for the operation streams several test modules replay,
and the workload of the studies run with a made-up measurement."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tuner.trace.ops import Op, OpBatch, StateInfo, StreamHeader
from tuner.workload import Memory, StateSpec, Workload

# The workload of the studies run with a made-up measurement (tests/search): one value state,
# 128 MiB of managed memory; only its memory and state count matter there.
FAKE_WORKLOAD = Workload(
    name="fake",
    description="",
    flink_version="2.3",
    seed=7,
    memory=Memory(managed_per_slot=128 << 20),
    states=(StateSpec(name="s", kind="value", keys=1000),),
)

# A value state read and rewritten, and a list state appended to: the two commonest kinds.
VALUE_AND_LIST = StreamHeader(states=(StateInfo("counts", "value"), StateInfo("events", "list")))


def value_and_list_calls(
    start_ts: int,
    n: int,
    keys: int,
    seed: int,
    *,
    add_share: float = 0.8,
    value_size: int = 120,
) -> OpBatch:
    """``n`` calls of :data:`VALUE_AND_LIST`, two a record: value gets and updates half and half,
    list appends (``add_share`` of the list calls) and reads, over ``keys`` uniform keys."""
    rng = np.random.default_rng(seed)
    state = rng.integers(0, 2, size=n)
    op = np.where(
        state == 0,
        np.where(rng.random(n) < 0.5, Op.GET, Op.UPDATE),
        np.where(rng.random(n) < add_share, Op.ADD, Op.GET),
    )
    writes = (op == Op.UPDATE) | (op == Op.ADD)
    return OpBatch.from_columns(
        VALUE_AND_LIST.names,
        {
            "ts": start_ts + np.arange(n) // 2,
            "state": state,
            "op": op,
            "key": rng.integers(0, keys, size=n),
            "ns_start": np.full(n, -1),
            "ns_end": np.full(n, -1),
            "user_key": np.full(n, -1),
            "value_size": np.where(writes, value_size, 0),
            "timer_ts": np.full(n, -1),
        },
    )


def recorded_workload_file(tmp_path: Path, trace: Path, managed: str) -> Path:
    """A workload file that replays the recording ``trace`` under ``managed`` per slot."""
    path = tmp_path / "recorded.yaml"
    path.write_text(
        f"name: recorded\nflink_version: '2.x'\nmemory: {{managed_per_slot: {managed}}}\n"
        f"trace: {trace}\n"
    )
    return path
