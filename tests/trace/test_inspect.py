from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tests.trace._workloads import state, stream, workload
from tuner.trace.generator import generate, stream_header
from tuner.trace.inspect import _Counter, render_text, summarize
from tuner.trace.ops import COLUMNS, OpBatch, StateInfo, StreamHeader
from tuner.workload import Popularity, SizeDist, Timers


def cell(frame: pd.DataFrame, row: Any, column: str) -> float:
    """One number of a summary table (pandas-stubs types ``.loc`` as any scalar)."""
    value: Any = frame.loc[row, column]
    return math.nan if pd.isna(value) else float(value)


def test_zipf_is_skewed_uniform_is_not() -> None:
    w = workload(
        state("hot", keys=10_000, popularity=Popularity("zipf", 1.0)),
        state("flat", keys=10_000),
        records=40_000,
    )
    s = summarize(stream_header(w), generate(w, "measure", batch_size=3_000))
    keys = s.keys.set_index("state")
    assert cell(keys, "hot", "top1pct_share") > 0.4
    assert cell(keys, "flat", "top1pct_share") < 0.03
    assert cell(keys, "hot", "top_key_share") > 10 * cell(keys, "flat", "top_key_share")
    # 40k uniform draws over 10k keys see 10k * (1 - e^-4) ≈ 9817 of them.
    assert abs(cell(keys, "flat", "distinct_keys") - 9_817) < 60
    assert cell(keys, "hot", "distinct_keys") < cell(keys, "flat", "distinct_keys")


def test_counts_sizes_and_span_match_the_stream() -> None:
    w = workload(
        state(
            "v",
            operations=(("read", 0.5), ("update", 0.5)),
            value_size=SizeDist("uniform", 0, 1, 100),
        ),
        state("t", timers=Timers(per_record=0.5, delay_ms=100)),
        records=20_000,
        rps=500,
    )
    b = stream(w, "measure")
    s = summarize(stream_header(w), [b])
    assert s.rows == len(b) and int(s.ops["calls"].sum()) == len(b)
    calls = s.ops.set_index(["state", "op"])["calls"]
    assert calls[("v", "get")] == np.count_nonzero((b.state == 0) & (b.op == 0))
    assert s.ts_min == 0 and s.ts_max == 19_999 * 1000 // 500 and s.span_ms == s.ts_max
    sizes = s.sizes.set_index("state")
    written = b.value_size[(b.state == 0) & (b.op == 1)]
    assert cell(sizes, "v", "writes") == written.shape[0]
    assert abs(cell(sizes, "v", "mean") - written.mean()) < 1e-9
    assert cell(sizes, "v", "p50") == int(np.quantile(written, 0.5, method="inverted_cdf"))
    assert cell(sizes, "v", "p99") == int(np.quantile(written, 0.99, method="inverted_cdf"))
    assert cell(sizes, "v", "max") == written.max()
    assert cell(sizes, "_timer_state/event_user-timers", "writes") == 0
    assert math.isnan(cell(sizes, "_timer_state/event_user-timers", "p50"))


def test_counter_merges_across_many_batches_exactly() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.integers(0, 300_000, size=20_000) for _ in range(40)]
    c = _Counter()
    for p in parts:
        c.add(p)
    values, counts = c.result()
    want_v, want_c = np.unique(np.concatenate(parts), return_counts=True)
    assert np.array_equal(values, want_v) and np.array_equal(counts, want_c)


def test_empty_stream() -> None:
    header = StreamHeader(states=(StateInfo("a", "value"),))
    empty = OpBatch.from_columns(header.names, {n: np.zeros(0, d) for n, d in COLUMNS})
    s = summarize(header, [empty])
    assert s.rows == 0 and s.span_ms == 0 and cell(s.keys, 0, "distinct_keys") == 0
    assert "event time: empty" in render_text(s)


def test_render_text_names_states_ops_and_numbers() -> None:
    w = workload(state("counts", keys=100, popularity=Popularity("zipf", 1.2)), records=2_000)
    text = render_text(summarize(stream_header(w), generate(w, "measure")))
    assert "counts" in text and "get" in text and "update" in text
    assert "rows: 4000" in text and "event time: 0 .. 1999 ms" in text
    assert "%" in text
