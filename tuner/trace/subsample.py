"""A key sample of a recorded trace: a model of that share of the job, small enough to measure.

A recording of a busy subtask holds tens of millions of state calls. The replay runs at about
150-200k calls per second on this project's 2-core machine (a 21M-call recording of the demo
job did not finish one measurement in 112 s), so replayed whole, one measurement would eat the
run's time budget. ``tuner run`` therefore replays a sample of the recording's keys, as the
recorder's own ``--sample`` does: every call of a kept key stays, in order, so each key's access
pattern is the job's; the model then runs under that share of the memory budget with the size
options scaled alike (:mod:`tuner.scale`), so its keys meet the cache the job's keys meet.

What does not transfer is said where it is used: a very hot key is either in the sample or not,
so a trace whose load sits on a handful of keys makes a noisier model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq

from tuner.trace.ops import OpBatch
from tuner.trace.parquet import read_trace, recording_meta, write_trace

__all__ = [
    "CALLS_PER_BUDGET_SECOND",
    "LARGER_MODEL_STRETCH",
    "MIN_SAMPLED_KEYS",
    "KeySample",
    "kept_keys",
    "key_sample_to_fit",
    "sample_trace",
    "trace_size",
]

# Calls a model may hold per second of the run's time budget: 2,500 gives 2.25M calls for the
# default 15 minutes, about 12-15 s a measurement at the replay's 150-200k calls/s, so that the
# search, the minimal recommendation and the confirmation (about 50 measurements) fit.
CALLS_PER_BUDGET_SECOND = 2_500
# A sample keeps at least this many keys (or all of them): fewer keys than Flink's key groups
# would leave key groups empty, and a handful of keys is not a workload.
MIN_SAMPLED_KEYS = 1_000
# How far past the budget's calls a run may go to replay a model large enough to trust
# (:func:`key_sample_to_fit`'s ``least_keep``): twice the calls, about 25-30 s a measurement,
# still some 30 measurements in the default 15 minutes, each of them worth more than two of a
# model that ranks configurations unlike the job.
LARGER_MODEL_STRETCH = 2.0


@dataclass(frozen=True)
class KeySample:
    """How much of a recording to keep: ``keep`` of its keys (1: all)."""

    keep: float
    calls: int  # the recording's calls, both phases
    keys: int  # distinct keys of the recording
    # The share the budget alone would have kept, when the run keeps more (a larger model).
    budget_keep: float | None = None

    @property
    def label(self) -> str:
        """The kept share as a fraction, e.g. ``1/10``."""
        return f"1/{round(1 / self.keep)}"


def trace_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Calls and distinct keys of a trace, from its Parquet metadata alone (keys are dense ids
    0..n-1 in an imported recording, so the largest id says how many)."""
    meta = pq.ParquetFile(Path(path)).metadata
    column = meta.schema.to_arrow_schema().get_field_index("key")
    top = -1
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics
        if stats is not None and stats.has_min_max:
            top = max(top, int(stats.max))
    return meta.num_rows, top + 1


def key_sample_to_fit(
    path: str | os.PathLike[str], budget_s: float | None, least_keep: float = 0.0
) -> KeySample:
    """The key sample of the trace at ``path`` whose calls fit ``budget_s`` seconds of run
    (:data:`CALLS_PER_BUDGET_SECOND`), as ``1/n``; all keys when it fits whole, when there is no
    budget, or when the sample would keep fewer than :data:`MIN_SAMPLED_KEYS` keys.

    ``least_keep`` is the smallest share whose model is trusted to rank configurations as the
    job does: when the budget's sample is smaller, the largest ``1/m`` at or above it is kept
    instead, as long as its calls stay within :data:`LARGER_MODEL_STRETCH` times the budget's
    (the run then measures fewer candidates, each on a model worth measuring)."""
    calls, keys = trace_size(path)
    fits = None if budget_s is None else budget_s * CALLS_PER_BUDGET_SECOND
    if fits is None or calls <= fits:
        return KeySample(1.0, calls, keys)
    n = math.ceil(calls / fits)
    n = min(n, max(1, keys // MIN_SAMPLED_KEYS))
    if least_keep > 1.0 / n:
        m = max(1, math.floor(1.0 / min(1.0, least_keep) + 1e-9))
        if m < n and calls / m <= LARGER_MODEL_STRETCH * fits:
            return KeySample(1.0 / m, calls, keys, budget_keep=1.0 / n)
    return KeySample(1.0 / n, calls, keys)


def kept_keys(key: npt.NDArray[np.int64], keep: float) -> npt.NDArray[np.bool_]:
    """Which of ``key`` a sample of ``keep`` holds: a fixed mix of the key id (splitmix64's
    finaliser), so a key is kept or not in every phase and state, whatever its position."""
    if keep >= 1:
        return np.ones(key.shape, dtype=bool)
    z = key.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    mask: npt.NDArray[np.bool_] = (z >> np.uint64(11)).astype(np.float64) < keep * float(1 << 53)
    return mask


def _kept(batches: Iterator[OpBatch], keep: float) -> Iterator[OpBatch]:
    for b in batches:
        rows = np.flatnonzero(kept_keys(b.key, keep))
        yield OpBatch.from_columns(b.states, {k: v[rows] for k, v in b.columns().items()})


def sample_trace(src: str | os.PathLike[str], dst: str | os.PathLike[str], keep: float) -> int:
    """Write the calls of ``keep`` of ``src``'s keys to ``dst`` (atomically) and return how many
    calls it holds. The recording's metadata goes along with its ``sample`` multiplied by
    ``keep``: the sample is what the model is a model of (:func:`tuner.scale.recorded_sample`)."""
    trace = read_trace(src)
    meta = recording_meta(src)
    meta["sample"] = float(meta.get("sample", 1.0)) * keep
    meta["key_sample_of"] = {"trace": str(src), "keep": keep}
    written = 0

    def counted(batches: Iterator[OpBatch]) -> Iterator[OpBatch]:
        nonlocal written
        for b in batches:
            written += len(b)
            yield b

    write_trace(
        dst,
        trace.header,
        counted(_kept(trace.batches("preload"), keep)),
        counted(_kept(trace.batches("measure"), keep)),
        extra_metadata={"recording": json.dumps(meta)},
    )
    return written
