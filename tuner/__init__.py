"""tuner: a RocksDB state-backend tuning advisor for Apache Flink.

The public API, imported lazily so that ``tuner --help`` stays fast::

    from tuner import load_workload, RunSettings, start_run, run_study, load_run

    w = load_workload("workloads/quickstart.yaml")
    rd = start_run(w, out=None, results_root=Path("results"))
    summary = run_study(w, rd, RunSettings(trials=12))
    run = load_run(summary.run_dir)          # pandas DataFrames for notebooks
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "TunerError": "tuner.errors",
    "Workload": "tuner.workload",
    "StateSpec": "tuner.workload",
    "load_workload": "tuner.workload",
    "RunSettings": "tuner.runner",
    "RunSummary": "tuner.runner",
    "start_run": "tuner.runner",
    "run_study": "tuner.runner",
    "resume_run": "tuner.runner",
    "Recommendation": "tuner.recommend",
    "load_run": "tuner.results",
    "list_runs": "tuner.results",
    "render_report": "tuner.report",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
