"""The run's workload and the settings its files emitted: what the sections about the emitted
configuration (what to watch, timers, real memory) start from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.flink.baseline import settings_from_json
from tuner.results import Run
from tuner.workload import Workload, load_workload

__all__ = ["emitted"]


def emitted(
    run: Run, rec: Mapping[str, Any] | None
) -> tuple[Workload, dict[str, fo.FlinkValue]] | None:
    """The workload the run replayed and the emitted settings (recommendation.json), or None
    when the run emitted nothing or its directory comes from an older tuner."""
    path = run.path / "workload.yaml"
    if rec is None or not path.is_file():
        return None
    try:
        return load_workload(path), settings_from_json(rec.get("settings") or {})
    except (TunerError, ValueError, TypeError, OSError):
        return None
