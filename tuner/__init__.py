"""tuner: a RocksDB state-backend tuning advisor for Apache Flink.

The public API, imported lazily so that ``tuner --help`` stays fast::

    from tuner import load_workload, RunSettings, start_run, run_study, load_run

    w = load_workload("workloads/quickstart.yaml")
    rd, w = start_run(w, out=None, results_root=Path("results"))
    summary = run_study(w, rd, RunSettings(trials=12))
    run = load_run(summary.run_dir)          # pandas DataFrames for notebooks

Type checkers see the names through the ``TYPE_CHECKING`` imports below; at run time each is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.errors import TunerError, TunerRuntimeError
    from tuner.recommend import Recommendation
    from tuner.report import render_report
    from tuner.results import list_runs, load_run
    from tuner.runner import ResumedRun, RunSettings, RunSummary, resume_run, run_study, start_run
    from tuner.workload import StateSpec, Workload, load_workload

__version__ = "0.1.0"

_EXPORTS = {
    "TunerError": "tuner.errors",
    "TunerRuntimeError": "tuner.errors",
    "Workload": "tuner.workload",
    "StateSpec": "tuner.workload",
    "load_workload": "tuner.workload",
    "RunSettings": "tuner.runner",
    "RunSummary": "tuner.runner",
    "ResumedRun": "tuner.runner",
    "start_run": "tuner.runner",
    "run_study": "tuner.runner",
    "resume_run": "tuner.runner",
    "Recommendation": "tuner.recommend",
    "load_run": "tuner.results",
    "list_runs": "tuner.results",
    "render_report": "tuner.report",
}

__all__ = [
    "Recommendation",
    "ResumedRun",
    "RunSettings",
    "RunSummary",
    "StateSpec",
    "TunerError",
    "TunerRuntimeError",
    "Workload",
    "__version__",
    "list_runs",
    "load_run",
    "load_workload",
    "render_report",
    "resume_run",
    "run_study",
    "start_run",
]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'tuner' has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)
