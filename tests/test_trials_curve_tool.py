"""tools/trials_curve.py: how it reads runs and what its tables say (no search: the benchmark
itself is run by hand, see docs/measurements/2026-12-02-trials-to-answer.md)."""

from __future__ import annotations

import csv
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool() -> ModuleType:
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module("trials_curve")


def _run(out: Path, start: str, trials: int, seed: int, ops: list[float | None]) -> None:
    path = out / start / "w" / f"t{trials}-s{seed}"
    path.mkdir(parents=True)
    with (path / "trials.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["kind", "label", "trial_number", "status", "ops_per_s", "settings"])
        w.writeheader()
        w.writerow(
            {"kind": "baseline", "label": "DEFAULT", "trial_number": "", "status": "ok",
             "ops_per_s": 1.0, "settings": "{}"}
        )  # fmt: skip
        for n, v in enumerate(ops, start=3):  # numbered after the 3 told option sets
            w.writerow(
                {"kind": "search", "label": f"trial-{n}", "trial_number": n,
                 "status": "skipped" if v is None else "ok", "ops_per_s": v or "",
                 "settings": json.dumps({"k": n})}
            )  # fmt: skip


def test_each_start_is_read_apart_and_skipped_candidates_are_no_trials(tmp_path: Path) -> None:
    tool = _tool()
    _run(tmp_path, "cold", 4, 1, [50.0, None, 80.0, 100.0, 90.0])
    _run(tmp_path, "warm", 4, 1, [96.0, 60.0, 70.0, 75.0])
    runs = tool.load(tmp_path)["w"]
    assert {(r.start, r.ops) for r in runs} == {
        ("cold", (50.0, 80.0, 100.0, 90.0)),
        ("warm", (96.0, 60.0, 70.0, 75.0)),
    }
    table = tool.render(tmp_path, short=4)
    assert "| cold, seed 1 | 50.0% | 80.0% | 100.0% | 3 |" in table
    assert "| **warm: median** | **96.0%** | **96.0%** | **96.0%** | 1 of 1 reached |" in table


def test_a_re_measured_reference_replaces_the_best_single_measurement(tmp_path: Path) -> None:
    tool = _tool()
    _run(tmp_path, "cold", 2, 1, [100.0, 80.0])
    top = tool._top_configurations(tmp_path, "w", 1)
    assert top == [(100.0, "cold/t2-s1 trial-3", json.dumps({"k": 3}))]
    (tmp_path / "reference-w.json").write_text(
        json.dumps({"repeats": 3, "configurations": [{"median": 90.0}, {"median": 85.0}]})
    )
    table = tool.render(tmp_path, short=2)
    assert "Reference: 90 ops/s, the best median of the top configurations measured again" in table
    assert "| cold, seed 1 | 111.1% | 111.1% | 1 |" in table
