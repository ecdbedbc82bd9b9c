"""What an operation stream looks like: calls per state, key cardinality and skew, value sizes.

:func:`summarize` is pure (batches in, DataFrames out) and streams, so it works on traces larger
than memory; :func:`render_text` formats the result for ``tuner trace inspect FILE``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from tuner.trace.ops import OP_NAMES, Op, OpBatch, StreamHeader

__all__ = ["TOP_FRACTION", "TraceSummary", "render_text", "summarize"]

TOP_FRACTION = 0.01  # skew is reported as the share of calls that go to the top 1% of keys
_WRITE_OPS = (int(Op.UPDATE), int(Op.ADD), int(Op.PUT))


class _Counter:
    """Occurrences of int64 values, merged lazily so that memory follows distinct values."""

    def __init__(self) -> None:
        self._values: list[npt.NDArray[np.int64]] = []
        self._counts: list[npt.NDArray[np.int64]] = []
        self._held = 0
        self._merged = 0

    def add(self, values: npt.NDArray[np.int64]) -> None:
        if values.shape[0] == 0:
            return
        v, c = np.unique(values, return_counts=True)
        self._values.append(v)
        self._counts.append(c.astype(np.int64))
        self._held += v.shape[0]
        # Merging on every batch would cost O(distinct) per batch; merge when the held partial
        # counts have doubled since the last merge instead.
        if self._held > 2 * max(self._merged, 1 << 16):
            self._merge()

    def _merge(self) -> None:
        if len(self._values) > 1:
            values = np.concatenate(self._values)
            counts = np.concatenate(self._counts)
            v, inverse = np.unique(values, return_inverse=True)
            self._values = [v]
            self._counts = [np.bincount(inverse, weights=counts).astype(np.int64)]
        self._merged = self._held = self._values[0].shape[0] if self._values else 0

    def result(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Distinct values (ascending) and how often each occurred."""
        self._merge()
        if not self._values:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return self._values[0], self._counts[0]


def _quantile(values: npt.NDArray[np.int64], counts: npt.NDArray[np.int64], q: float) -> int:
    """The smallest value with at least ``q`` of the weight at or below it (values ascending)."""
    cum = np.cumsum(counts)
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return int(values[min(idx, values.shape[0] - 1)])


@dataclass(frozen=True)
class TraceSummary:
    """A stream's shape as tables; every table has one row per state (``ops``: per state, op)."""

    ops: pd.DataFrame  # state, op, calls
    keys: pd.DataFrame  # state, kind, calls, distinct_keys, top1pct_share, top_key_share
    sizes: pd.DataFrame  # state, writes, mean, p50, p99, max (bytes of written values)
    rows: int
    ts_min: int | None
    ts_max: int | None

    @property
    def span_ms(self) -> int:
        """Event time covered by the stream, ms (0 for an empty stream)."""
        if self.ts_min is None or self.ts_max is None:
            return 0
        return self.ts_max - self.ts_min


def summarize(header: StreamHeader, batches: Iterable[OpBatch]) -> TraceSummary:
    """Summarize a stream (one phase, or several chained) read batch by batch."""
    names = header.names
    n_states, n_ops = len(names), len(Op)
    op_counts = np.zeros(n_states * n_ops, dtype=np.int64)
    keys = [_Counter() for _ in names]
    sizes = [_Counter() for _ in names]
    rows = 0
    ts_min: int | None = None
    ts_max: int | None = None
    for b in batches:
        if len(b) == 0:
            continue
        rows += len(b)
        lo, hi = int(b.ts.min()), int(b.ts.max())
        ts_min = lo if ts_min is None else min(ts_min, lo)
        ts_max = hi if ts_max is None else max(ts_max, hi)
        state = b.state.astype(np.int64)
        op_counts += np.bincount(state * n_ops + b.op, minlength=n_states * n_ops)
        is_write = np.isin(b.op, _WRITE_OPS)
        order = np.argsort(state, kind="stable")
        bounds = np.searchsorted(state[order], np.arange(n_states + 1))
        for s in range(n_states):
            sel = order[bounds[s] : bounds[s + 1]]
            if sel.shape[0] == 0:
                continue
            keys[s].add(b.key[sel])
            written = sel[is_write[sel]]
            sizes[s].add(b.value_size[written].astype(np.int64))

    counts = op_counts.reshape(n_states, n_ops)
    ops = pd.DataFrame(
        [
            {"state": names[s], "op": OP_NAMES[Op(o)], "calls": int(counts[s, o])}
            for s in range(n_states)
            for o in range(n_ops)
            if counts[s, o]
        ],
        columns=["state", "op", "calls"],
    )
    key_rows = []
    size_rows = []
    for s, info in enumerate(header.states):
        _, c = keys[s].result()
        calls = int(c.sum())
        top = np.sort(c)[::-1]
        n_top = max(1, math.ceil(TOP_FRACTION * top.shape[0])) if top.shape[0] else 0
        key_rows.append(
            {
                "state": info.name,
                "kind": info.kind,
                "calls": calls,
                "distinct_keys": int(c.shape[0]),
                "top1pct_share": float(top[:n_top].sum() / calls) if calls else math.nan,
                "top_key_share": float(top[0] / calls) if calls else math.nan,
            }
        )
        v, w = sizes[s].result()
        writes = int(w.sum())
        size_rows.append(
            {
                "state": info.name,
                "writes": writes,
                "mean": float((v * w).sum() / writes) if writes else math.nan,
                "p50": _quantile(v, w, 0.5) if writes else None,
                "p99": _quantile(v, w, 0.99) if writes else None,
                "max": int(v[-1]) if writes else None,
            }
        )
    return TraceSummary(
        ops=ops,
        keys=pd.DataFrame(key_rows),
        sizes=pd.DataFrame(size_rows).astype({"p50": "Int64", "p99": "Int64", "max": "Int64"}),
        rows=rows,
        ts_min=ts_min,
        ts_max=ts_max,
    )


def render_text(summary: TraceSummary) -> str:
    """The summary as plain text tables, for a terminal."""
    span = f"{summary.ts_min} .. {summary.ts_max} ms ({summary.span_ms / 1000:g} s)"
    if summary.ts_min is None:
        span = "empty"
    calls = (
        summary.ops.pivot(index="state", columns="op", values="calls")
        .reindex(index=summary.keys["state"], columns=list(OP_NAMES.values()))
        .dropna(axis=1, how="all")
        .fillna(0)
        .astype("int64")
        if len(summary.ops)
        else summary.ops
    )
    keys = summary.keys.assign(
        top1pct_share=summary.keys["top1pct_share"].map(lambda x: f"{x:.1%}"),
        top_key_share=summary.keys["top_key_share"].map(lambda x: f"{x:.2%}"),
    )
    sizes = summary.sizes.assign(mean=summary.sizes["mean"].round(1))
    return "\n".join(
        [
            f"rows: {summary.rows}",
            f"event time: {span}",
            "",
            "calls by state and op:",
            calls.to_string(),
            "",
            "keys (top1pct_share: share of calls to the top 1% of keys):",
            keys.to_string(index=False),
            "",
            "written value sizes, bytes:",
            sizes.to_string(index=False),
            "",
        ]
    )
