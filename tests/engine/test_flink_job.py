"""`tuner run --engine flink`: a candidate measured by the real Flink job."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tuner.engine.flink_job import FlinkMeasure
from tuner.flink import options as fo
from tuner.search.study import Candidate
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import write_trace
from tuner.validate.flink import FlinkInstall
from tuner.workload import load_workload

TINY = Path(__file__).resolve().parents[1] / "data" / "cli" / "tiny.yaml"


@pytest.mark.slow
def test_flink_measures_a_candidate_and_a_failed_run_fails_only_its_trial(
    flink2: FlinkInstall, tmp_path: Path
) -> None:
    w = load_workload(TINY)
    trace = tmp_path / "trace.parquet"
    write_trace(trace, stream_header(w), generate(w, "preload"), generate(w, "measure"))
    measure = FlinkMeasure(w, trace, tmp_path / "work", timeout_s=300)
    m = measure(
        Candidate("FLASH_SSD_OPTIMIZED", "baseline", {fo.PREDEFINED_OPTIONS: "FLASH_SSD_OPTIMIZED"})
    )
    assert m.status == "ok", m.reason
    assert m.metrics["ops_per_s"] > 0
    assert m.metrics["ops"] > 0
    assert math.isnan(m.metrics["read_p99_us"])
    assert m.rss_peak_bytes > 0
    # A run that cannot finish (here: out of time) fails this trial only, with its reason.
    measure.timeout_s = 0.5
    bad = measure(Candidate("trial-0", "search", {fo.WRITE_BUFFER_SIZE: 8 << 20}))
    assert bad.status == "failed"
    assert bad.reason.startswith("flink:")
    assert not any(p.name.startswith("flink-") for p in (tmp_path / "work").iterdir())
