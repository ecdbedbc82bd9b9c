"""The report's "What to watch in production": the RocksDB metrics the emitted files carry
commented out, with the value each had for the emitted configuration and for Flink's default in
this run's measurements, so the user knows what healthy looks like for this job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.config_files import measured_as_emitted
from tuner.errors import TunerError
from tuner.flink.watch import WATCHES, measured_figures
from tuner.report.emitted import emitted
from tuner.results import Run

_NOT_MEASURED = "not measured"


def section(run: Run, rec: Mapping[str, Any] | None) -> list[str]:
    """The section, or nothing when the run emitted no configuration."""
    found = emitted(run, rec)
    if found is None:
        return []
    workload, settings = found
    try:
        scale = float(run.meta.get("scale") or 1.0)
        ours = measured_figures(measured_as_emitted(run.records, settings, workload), scale)
        default = measured_figures(measured_as_emitted(run.records, {}, workload), scale)
    except (TunerError, ValueError, TypeError):  # a run directory from an older tuner
        return []
    lines = [
        "## What to watch in production",
        "",
        "config.yaml, flink-conf.yaml and flink-deployment.yaml carry these keys commented out: "
        "uncomment one to switch its metric on (the hit, miss and stall metrics make Flink "
        "enable RocksDB statistics, which costs some throughput). The figures are this run's "
        "replay (medians of its measurements"
        + (f", byte figures in production units of the {scale:g} model" if scale != 1 else "")
        + "): what healthy looks like for this job.",
        "",
        "| metric (`state.backend.rocksdb.metrics.`…) | reports | emitted configuration "
        "| Flink's default | tune again when |",
        "|---|---|---|---|---|",
    ]
    for w in WATCHES:
        lines.append(
            f"| `{w.name}` | {w.reports} | {ours.get(w.name, _NOT_MEASURED)} "
            f"| {default.get(w.name, _NOT_MEASURED)} | {w.rerun_when} |"
        )
    return lines


__all__ = ["section"]
