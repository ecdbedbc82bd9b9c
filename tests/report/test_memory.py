"""The report's Real memory section: the TaskManager's native memory against the budget, from
the confirmation on Flink's own backend."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from tests.report.fakerun import ops, rec
from tuner.confirm import CONFIRMATION_CSV
from tuner.flink import options as fo
from tuner.report import memory
from tuner.results import Run, trials_frame
from tuner.rundir import records_to_csv
from tuner.search.study import TrialRecord
from tuner.units import MIB

ROOT = Path(__file__).resolve().parents[2]
BLOOM = {fo.USE_BLOOM_FILTER: True}


def _run(tmp_path: Path, native: dict[str, list[float]]) -> Run:
    shutil.copy(ROOT / "workloads" / "quickstart.yaml", tmp_path / "workload.yaml")
    records: list[TrialRecord] = []
    for label, settings in (("DEFAULT", {}), ("recommended", BLOOM)):
        for i, n in enumerate(native[label]):
            r = rec(len(records), label, "remeasure", ops(1000, native_bytes=n), repeat=i)
            records.append(replace(r, candidate=replace(r.candidate, settings=settings)))
    (tmp_path / CONFIRMATION_CSV).write_text(records_to_csv(records))
    return Run(tmp_path, {"status": "complete"}, (), trials_frame([]))


def test_native_memory_over_the_budget_is_flagged(tmp_path: Path) -> None:
    # quickstart.yaml: 32 mb of managed memory per slot.
    run = _run(tmp_path, {"DEFAULT": [30 * MIB, 28 * MIB], "recommended": [40 * MIB, 44 * MIB]})
    text = "\n".join(memory.section(run, {"settings": BLOOM}))
    assert "budget of 32 MiB" in text
    assert (
        "| emitted configuration | 42 MiB (40 .. 44, 2 runs) | 131% | **over the budget by 31%** |"
        in text
    )
    assert "| Flink's default | 29 MiB (28 .. 30, 2 runs) | 91% | fits |" in text
    assert "glibc malloc" in text


def test_no_section_without_a_confirmation(tmp_path: Path) -> None:
    run = _run(tmp_path, {"DEFAULT": [], "recommended": []})
    assert memory.section(run, {"settings": BLOOM}) == []
    (tmp_path / CONFIRMATION_CSV).unlink()
    assert memory.section(run, {"settings": BLOOM}) == []


def test_the_native_share_is_the_emitted_configurations_median_over_the_budget(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path, {"DEFAULT": [30 * MIB], "recommended": [40 * MIB, 44 * MIB]})
    assert memory.native_share(run, {"settings": BLOOM}) == 42 / 32
    assert memory.native_share(run, {"settings": {fo.BLOCK_SIZE: 8192}}) is None
