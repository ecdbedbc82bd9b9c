"""tools/validation_matrix.py: the table keeps rows that miss the goal, with their reason."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from .test_run import make_run

TOOL = Path(__file__).resolve().parents[2] / "tools" / "validation_matrix.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validation_matrix", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["validation_matrix"] = module
    spec.loader.exec_module(module)
    return module


def test_rows_that_miss_the_goal_stay_in_the_table_with_their_reason() -> None:
    tool = _tool()
    good = {
        "workload": "quickstart",
        "workload_flink": "2.x",
        "validated_on": "2.3",
        "configs": 6,
        "repeats": 3,
        "spearman": 0.94,
        "spearman_cpu": 1.0,
        "predicted_gain": 0.2,
        "real_gain": 0.19,
        "real_gain_low": 0.15,
        "real_gain_high": 0.22,
        "real_over_predicted": 0.95,
        "resolution": 0.04,
        "goal_met": "yes",
        "reason": "",
    }
    bad = {
        **good,
        "workload": "dedup-ttl",
        "spearman": 0.1,
        "goal_met": "no",
        "reason": "Spearman +0.10 < 0.9",
    }
    text = tool.render([good, bad], ["session-map-state"], "python tools/validation_matrix.py")
    assert "| quickstart | 2.x | 2.3 | 6 × 3 | +0.94 |" in text
    assert "| dedup-ttl |" in text
    assert "- **dedup-ttl**: Spearman +0.10 < 0.9" in text
    assert "Not measured: session-map-state" in text


def test_resolution_is_the_median_spread_of_a_configurations_repeats() -> None:
    tool = _tool()
    counts = np.zeros((1, 11), dtype=np.int64)
    runs = (
        make_run("DEFAULT", 0, 100.0, counts, 10),
        make_run("DEFAULT", 1, 110.0, counts, 10),  # spread 10 / 105
        make_run("other", 0, 200.0, counts, 10),
        make_run("other", 1, 200.0, counts, 10),  # spread 0
        make_run("third", 0, 100.0, counts, 10),
        make_run("third", 1, 120.0, counts, 10),  # spread 20 / 110
    )
    assert abs(tool.resolution(runs) - 10 / 105) < 1e-9
