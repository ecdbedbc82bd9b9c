"""Replay vs Flink counters per configuration, per 1,000 state calls."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from tuner.search.study import Candidate, TrialRecord
from tuner.validate.counters import compare_counters, render_counters

from .test_run import make_run


def _rec(label: str, ops: float, misses: float, cpu: float) -> TrialRecord:
    return TrialRecord(
        seq=0,
        candidate=Candidate(label, "baseline", {}, None, 0),
        status="ok",
        reason="",
        metrics={"ops": ops, "block_cache_misses": misses, "block_cache_hits": 0.0, "cpu_s": cpu},
        wall_s=1.0,
        rss_peak_bytes=0,
        started_at=0.0,
    )


def test_counters_are_compared_per_thousand_calls_whatever_the_stream_length() -> None:
    counts = np.zeros((1, 11), dtype=np.int64)
    # The replay ran 100k calls with 5k misses; Flink ran 20k (--records) with 1.2k misses and
    # 0.5 s of task CPU: 50 vs 60 misses per 1k calls.
    run = replace(
        make_run("DEFAULT", 0, 1000.0, counts, measure_rows=20_000),
        tickers={"rocksdb.block.cache.miss": 1200.0, "rocksdb.block.cache.hit": 0.0},
        task_cpu_s=0.5,
    )
    rows = compare_counters([_rec("DEFAULT", 100_000, 5_000, 2.0)], [run])
    by = {r.counter: r for r in rows}
    misses = by["block-cache misses"]
    assert misses.replay_per_k == pytest.approx(50.0)
    assert misses.flink_per_k == pytest.approx(60.0)
    assert misses.ratio == pytest.approx(1.2) and not misses.agrees
    cpu = by["CPU s (replay process / Flink task thread)"]
    assert cpu.replay_per_k == pytest.approx(0.02) and cpu.flink_per_k == pytest.approx(0.025)
    assert by["block-cache hits"].agrees  # zero on both sides
    assert math.isnan(by["SST bytes read"].flink_per_k)  # a ticker Flink did not report
    text = "\n".join(render_counters(rows))
    assert "| DEFAULT | block-cache misses | 50 | 60 | 1.20 | no |" in text
