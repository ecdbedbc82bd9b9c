"""The report's Timers section: where the emitted configuration keeps the timers, its gain beside
what heap timers cost."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from tests.report.fakerun import ops, rec
from tuner.flink import options as fo
from tuner.report import timers
from tuner.results import Run, trials_frame

ROOT = Path(__file__).resolve().parents[2]
HEAP = {fo.TIMER_SERVICE_FACTORY: "HEAP"}


def _run(tmp_path: Path, workload: str) -> Run:
    shutil.copy(ROOT / "workloads" / workload, tmp_path / "workload.yaml")
    rocks = rec(0, "DEFAULT", "baseline", ops(100_000, heap_timers=0, checkpoint_timer_bytes=0))
    heap = rec(
        1, "trial-0", "search", ops(125_000, heap_timers=4000, checkpoint_timer_bytes=3 << 20)
    )
    heap = replace(heap, candidate=replace(heap.candidate, settings=HEAP))
    records = (rocks, heap)
    return Run(tmp_path, {"status": "complete"}, records, trials_frame(list(records)))


def test_a_job_with_timers_sees_the_heap_gain_beside_its_cost(tmp_path: Path) -> None:
    run = _run(tmp_path, "tumbling-window-timers.yaml")
    text = "\n".join(timers.section(run, {"settings": HEAP}))
    assert "keeps the job's timers in **HEAP**" in text
    assert "| emitted configuration | HEAP | 125,000 | 4,000 | 3.00 MiB |" in text
    assert "| emitted, timers in ROCKSDB | ROCKSDB | 100,000 | 0 | 0.00 MiB |" in text
    assert "measured +25.0% in state calls per second" in text
    # Emitted RocksDB timers: the heap alternative is the one compared.
    text = "\n".join(timers.section(run, {"settings": {}}))
    assert "in **ROCKSDB**" in text and "rather than HEAP measured -20.0%" in text


def test_a_job_without_timers_has_no_timers_section(tmp_path: Path) -> None:
    assert timers.section(_run(tmp_path, "quickstart.yaml"), {"settings": HEAP}) == []


def test_the_confirmations_sync_phase_and_heap_are_shown(tmp_path: Path) -> None:
    from tuner.confirm import CONFIRMATION_CSV
    from tuner.rundir import records_to_csv

    run = _run(tmp_path, "tumbling-window-timers.yaml")
    heap = rec(0, "recommended", "remeasure", ops(1, checkpoint_sync_max_s=0.0123))
    heap = replace(heap, candidate=replace(heap.candidate, settings=HEAP))
    heap = replace(heap, metrics={**heap.metrics, "jvm_heap_live_bytes": 48 * 2**20})
    (tmp_path / CONFIRMATION_CSV).write_text(records_to_csv([heap]))
    text = "\n".join(timers.section(run, {"settings": HEAP}))
    assert "| emitted configuration | HEAP | 12.3 ms | 48.0 MiB |" in text
