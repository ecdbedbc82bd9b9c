"""Workloads built directly as dataclasses (the YAML loader is tested elsewhere)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tuner.trace.generator import Phase, generate
from tuner.trace.ops import OpBatch
from tuner.workload import Memory, Replay, StateSpec, Workload


def workload(
    *states: StateSpec, records: int = 20_000, rps: int = 1_000, **replay: Any
) -> Workload:
    """A workload of ``states`` with a small replay."""
    return Workload(
        name="test",
        description="",
        flink_version="1.20",
        seed=42,
        memory=Memory(),
        states=states,
        replay=Replay(records=records, records_per_second=rps, **replay),
    )


def state(name: str = "s", kind: str = "value", keys: int = 1_000, **kw: Any) -> StateSpec:
    """A state with defaults suited to tests (operations that its kind accepts)."""
    default_ops = {"list": (("append", 0.7), ("read", 0.3)), "map": (("get", 0.5), ("put", 0.5))}
    if kind in default_ops:
        kw.setdefault("operations", default_ops[kind])
    return StateSpec(name=name, kind=kind, keys=keys, **kw)  # type: ignore[arg-type]


def stream(w: Workload, phase: Phase, batch_size: int = 50_000) -> OpBatch:
    """One phase as a single batch."""
    return OpBatch.concat(list(generate(w, phase, batch_size)))


def with_replay(w: Workload, **changes: Any) -> Workload:
    """``w`` with replay fields changed."""
    return dataclasses.replace(w, replay=dataclasses.replace(w.replay, **changes))


def same(a: OpBatch, b: OpBatch) -> bool:
    """Whether two batches hold exactly the same rows."""
    return a.states == b.states and all(
        np.array_equal(x, y)
        for x, y in zip(a.columns().values(), b.columns().values(), strict=True)
    )
