"""Small workloads and hand-built batches for the validation tests."""

from __future__ import annotations

import numpy.typing as npt

from tuner.trace.ops import OpBatch, StateInfo, StreamHeader
from tuner.workload import (
    Checkpointing,
    Memory,
    Popularity,
    Replay,
    SizeDist,
    StateSpec,
    Timers,
    Window,
    Workload,
)


def mixed_workload(records: int = 3_000) -> Workload:
    """Value (TTL, event timers), list, map, windowed aggregating state and processing timers:
    every kind of call the Flink job executes, in a stream of a few thousand rows."""
    return Workload(
        name="validate-mixed",
        description="",
        flink_version="2.3",
        seed=11,
        memory=Memory(managed_per_slot=32 << 20),
        states=(
            StateSpec(
                name="profile",
                kind="value",
                keys=300,
                popularity=Popularity(kind="zipf", exponent=1.1),
                value_size=SizeDist(kind="uniform", value=60, min=20, max=100),
                operations=(("read", 0.3), ("read_update", 0.6), ("clear", 0.1)),
                ttl_ms=800,
                timers=Timers(per_record=0.5, delay_ms=400, domain="event"),
            ),
            StateSpec(
                name="recent",
                kind="list",
                keys=200,
                value_size=SizeDist(kind="fixed", value=32),
                operations=(("append", 0.6), ("read", 0.2), ("update", 0.1), ("clear", 0.1)),
                elements_per_key=5,
            ),
            StateSpec(
                name="sessions",
                kind="map",
                keys=150,
                entries_per_key=6,
                value_size=SizeDist(kind="fixed", value=40),
                operations=(
                    ("get", 0.3),
                    ("put", 0.3),
                    ("remove", 0.1),
                    ("contains", 0.1),
                    ("iterate", 0.1),
                    ("clear", 0.1),
                ),
            ),
            StateSpec(
                name="per-second",
                kind="aggregating",
                keys=100,
                value_size=SizeDist(kind="fixed", value=24),
                operations=(("read_update", 0.9), ("read", 0.1)),
                window=Window(type="tumbling", size_ms=500, slide_ms=500),
            ),
            StateSpec(
                name="idle",
                kind="reducing",
                keys=100,
                value_size=SizeDist(kind="fixed", value=16),
                operations=(("read_update", 1.0),),
                timers=Timers(per_record=0.3, delay_ms=300, domain="processing"),
            ),
        ),
        replay=Replay(records=records, preload_fraction=0.5, records_per_second=1_000),
        checkpointing=Checkpointing(interval_ms=1_000, incremental=True),
    )


def tiny_header() -> StreamHeader:
    """Two states: a long-keyed value state and a windowed list state."""
    return StreamHeader(
        states=(
            StateInfo(name="v", kind="value"),
            StateInfo(name="w", kind="list", windowed=True, ttl=True),
        ),
        max_parallelism=128,
    )


def batch(header: StreamHeader, rows: list[tuple[int, ...]]) -> OpBatch:
    """A batch from rows of (ts, state, op, key, ns_start, ns_end, user_key, value_size,
    timer_ts)."""
    names = ("ts", "state", "op", "key", "ns_start", "ns_end", "user_key", "value_size", "timer_ts")
    cols: dict[str, npt.ArrayLike] = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    return OpBatch.from_columns(header.names, cols)
