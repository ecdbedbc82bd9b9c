"""Where a workload's operation stream comes from, in one place: the workload's recorded trace,
or the generator (header, then the preload phase, then the measured phase).

Every consumer (``tuner run``, ``tuner noise``, ``tuner trace generate``, ``tuner validate``)
asks here, so they all replay the same stream for the same workload.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tuner.trace.generator import generate, stream_header
from tuner.trace.ops import OpBatch, StreamHeader
from tuner.trace.parquet import read_trace, write_trace
from tuner.workload import Workload, timer_service

__all__ = ["OperationStream", "has_timers", "operation_stream", "trace_file"]


@dataclass(frozen=True)
class OperationStream:
    """A stream to replay: its state table and the two phases, as batches."""

    header: StreamHeader
    preload: Iterable[OpBatch]
    measure: Iterable[OpBatch]


def operation_stream(workload: Workload, trace: Path | None = None) -> OperationStream:
    """The stream of ``workload``: the trace file ``trace`` when given and present (a run's
    ``trace.parquet``), else the workload's recorded trace, else the generator's stream."""
    path = trace if trace is not None and trace.exists() else None
    if path is None and workload.trace is not None:
        path = Path(workload.trace)
    if path is not None:
        recorded = read_trace(path)
        header = recorded.header
        if workload.compressibility is not None:  # the workload's word over the recording's
            header = dataclasses.replace(header, compressibility=workload.compressibility)
        return OperationStream(header, recorded.batches("preload"), recorded.batches("measure"))
    return OperationStream(
        stream_header(workload), generate(workload, "preload"), generate(workload, "measure")
    )


def trace_file(workload: Workload, path: Path) -> Path:
    """A trace file holding ``workload``'s stream: its recorded trace as it is, else the
    generator's stream written to ``path`` once (atomically; an existing file is kept)."""
    if workload.trace is not None:
        return Path(workload.trace)
    if not path.exists():
        stream = operation_stream(workload)
        write_trace(path, stream.header, stream.preload, stream.measure)
    return path


def has_timers(workload: Workload) -> bool:
    """Whether ``workload``'s operators register timers (a timer state in its recorded trace,
    or a state with a timer service): then where timers live is a choice worth searching."""
    if workload.trace is not None:
        return any(s.kind == "timers" for s in read_trace(Path(workload.trace)).header.states)
    return any(timer_service(s) is not None for s in workload.states)
