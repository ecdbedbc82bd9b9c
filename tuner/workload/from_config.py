"""A workload from the job's own Flink configuration: its memory section, or (with a recorded
trace) a whole workload that replays the trace under the job's memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tuner.flink.memory_config import memory_from_config
from tuner.workload.load import parse_workload


def workload_from_config(
    flink_conf: Path,
    trace_file: Path | None = None,
    flink_version: str = "2.x",
    target: Path = Path("workload.yaml"),
) -> str:
    """The YAML text, commented with how each memory figure was derived from ``flink_conf``.

    Without ``trace_file``: the ``memory:`` section alone. With it: a workload replaying the
    trace, checked as ``tuner run`` will read it from ``target`` (errors name that file)."""
    found = memory_from_config(flink_conf)
    data: dict[str, Any] = {"memory": found.memory}
    if trace_file is not None:
        data = {
            "name": "".join(c if c.isalnum() or c in "-_" else "-" for c in trace_file.stem),
            "description": f"Recorded trace {trace_file.name}, memory from {flink_conf.name}",
            "flink_version": flink_version,
            "memory": found.memory,
            "trace": str(trace_file.resolve()),
        }
        parse_workload(data, str(target))
    text = "".join(f"# {line}\n" for line in found.derivation)
    return text + yaml.safe_dump(data, sort_keys=False)
