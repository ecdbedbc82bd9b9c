"""The report's "Timers": for a job with timers, where the emitted configuration keeps them
(state.backend.rocksdb.timer-service.factory), the gain of that choice beside what it costs:
heap timers live on the JVM heap, outside the managed memory tuner budgets, and every checkpoint
writes them in full, in its synchronous phase."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.config_files import measured_as_emitted
from tuner.confirm import CONFIRMATION_CSV
from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.report.emitted import emitted
from tuner.results import Run
from tuner.rundir import records_from_csv
from tuner.search.study import THROUGHPUT
from tuner.trace.source import has_timers
from tuner.units import MIB
from tuner.workload import Workload

__all__ = ["section"]

_NOT_MEASURED = "not measured"


def _row(label: str, service: str, figures: Mapping[str, float], scale: float) -> str:
    if not figures:
        return f"| {label} | {service} | {_NOT_MEASURED} | | |"
    heap = figures.get("heap_timers", 0.0) / scale
    written = figures.get("checkpoint_timer_bytes", 0.0) / scale / MIB
    ops = figures.get(THROUGHPUT)
    shown = _NOT_MEASURED if ops is None or ops != ops else f"{ops:,.0f}"  # no NaN in a report
    return f"| {label} | {service} | {shown} | {heap:,.0f} | {written:,.2f} MiB |"


def section(run: Run, rec: Mapping[str, Any] | None) -> list[str]:
    """The section, or nothing for a job without timers or a run that emitted nothing."""
    found = emitted(run, rec)
    if found is None:
        return []
    workload, settings = found
    try:
        if not has_timers(workload):
            return []
        scale = float(run.meta.get("scale") or 1.0)
        service = str(fo.effective(settings)[fo.TIMER_SERVICE_FACTORY])
        other = "ROCKSDB" if service == "HEAP" else "HEAP"
        rows = [
            ("emitted configuration", service, settings),
            (f"emitted, timers in {other}", other, {**settings, fo.TIMER_SERVICE_FACTORY: other}),
            ("Flink's default", "ROCKSDB", {}),
        ]
        measured = [
            (lbl, svc, measured_as_emitted(run.records, s, workload)) for lbl, svc, s in rows
        ]
    except (TunerError, ValueError, TypeError, OSError):  # a run directory from an older tuner
        return []
    units = f" (production units of the {scale:g} model)" if scale != 1 else ""
    lines = [
        "## Timers",
        "",
        f"The emitted configuration keeps the job's timers in **{service}** "
        f"(`{fo.TIMER_SERVICE_FACTORY}`). Heap timers do not touch RocksDB, but they live on the "
        "JVM heap, outside the managed memory this run budgets (size the TaskManager's heap for "
        "them), and every checkpoint writes all of them, in its synchronous phase, while the "
        "task waits. RocksDB timers are written incrementally with the other state. The figures "
        f"are medians of this run's replay measurements{units}; the replay prices a heap timer "
        "at its own cost of a sorted insert, not the JVM's.",
        "",
        "| configuration | timers in | state calls/s | live heap timers at the end "
        "| timer bytes each checkpoint writes in full |",
        "|---|---|---|---|---|",
        *(_row(label, svc, figures, scale) for label, svc, figures in measured),
    ]
    lines += _on_flinks_backend(run, workload, settings, service)
    ours, flipped = measured[0][2], measured[1][2]
    if ours and flipped and flipped.get(THROUGHPUT):
        gain = ours[THROUGHPUT] / flipped[THROUGHPUT] - 1
        lines += [
            "",
            f"Keeping the timers in {service} rather than {other} measured {gain:+.1%} in state "
            "calls per second, in the replay.",
        ]
    return lines


def _on_flinks_backend(
    run: Run, workload: Workload, emitted: Mapping[str, fo.FlinkValue], service: str
) -> list[str]:
    """What the confirmation on Flink's own backend measured of the timers' cost: the longest
    synchronous checkpoint phase and the heap in use after a full collection."""
    path = run.path / CONFIRMATION_CSV
    if not path.is_file():
        return []
    try:
        records = records_from_csv(path.read_text(), str(path))
    except (TunerError, ValueError):
        return []
    rows = []
    for label, timers_in, settings in (
        ("emitted configuration", service, emitted),
        ("Flink's default", "ROCKSDB", {}),
    ):
        m = measured_as_emitted(records, settings, workload)
        sync, heap = m.get("checkpoint_sync_max_s"), m.get("jvm_heap_live_bytes")
        if sync is None and heap is None:
            continue
        rows.append(
            f"| {label} | {timers_in} | "
            + ("–" if sync is None or sync != sync else f"{sync * 1000:,.1f} ms")
            + " | "
            + ("–" if heap is None or heap != heap else f"{heap / MIB:,.1f} MiB")
            + " |"
        )
    if not rows:
        return []
    return [
        "",
        "Measured on Flink's own state backend (the confirmation, medians; the model's sizes "
        "where the run replays a model):",
        "",
        "| configuration | timers in | longest synchronous checkpoint phase "
        "| JVM heap in use after a full collection |",
        "|---|---|---|---|",
        *rows,
    ]
