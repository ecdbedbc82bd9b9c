"""The report's "Real memory": what the TaskManager's process held beside the managed budget in
the confirmation on Flink's own state backend. A TaskManager is killed for its container's RSS,
not for its managed memory, and FRocksDB's memory outside Flink's account (allocator arenas,
pinned blocks, iterators, the table readers of an uncached index) is what pushes it over."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from tuner.config_files import records_as_emitted
from tuner.confirm import CONFIRMATION_CSV
from tuner.errors import TunerError
from tuner.flink.options import FlinkValue
from tuner.report.emitted import emitted
from tuner.results import Run
from tuner.rundir import records_from_csv
from tuner.search.study import TrialRecord
from tuner.units import MIB
from tuner.workload import Workload

__all__ = ["OVER_BUDGET", "native_share", "section"]

# A configuration whose native memory passes the budget by more than this share is flagged:
# Flink's plan keeps RocksDB's own accounting under the budget, so what exceeds it by a fifth is
# memory the container must hold beyond managed memory.
OVER_BUDGET = 0.20


def _native(records: list[TrialRecord]) -> list[float]:
    return [
        float(r.metrics["native_bytes"]) for r in records if r.ok and "native_bytes" in r.metrics
    ]


def _confirmed(
    run: Run, rec: Mapping[str, Any] | None
) -> tuple[Workload, Mapping[str, FlinkValue], list[TrialRecord], float] | None:
    """The emitted configuration (its workload and settings), the confirmation's records and
    the budget its JVM ran under (the model's); None when the run was not confirmed."""
    path = run.path / CONFIRMATION_CSV
    found = emitted(run, rec)
    if found is None or not path.is_file():
        return None
    workload, settings = found
    try:
        records = records_from_csv(path.read_text(), str(path))
    except (TunerError, ValueError, OSError):
        return None
    scale = float(run.meta.get("scale") or 1.0)
    return workload, settings, records, workload.memory.budget * scale


def native_share(run: Run, rec: Mapping[str, Any] | None) -> float | None:
    """The emitted configuration's native memory against the budget it ran under (median of
    the confirmation's measurements on Flink's own backend; 1.3 is 30 % over), or None when
    it was not measured."""
    confirmed = _confirmed(run, rec)
    if confirmed is None:
        return None
    workload, settings, records, budget = confirmed
    values = _native(records_as_emitted(records, settings, workload))
    return statistics.median(values) / budget if values else None


def section(run: Run, rec: Mapping[str, Any] | None) -> list[str]:
    """The section, or nothing when the run was not confirmed on Flink's own backend (or by an
    older tuner that did not measure native memory)."""
    confirmed = _confirmed(run, rec)
    if confirmed is None:
        return []
    workload, settings, records, budget = confirmed
    scale = float(run.meta.get("scale") or 1.0)
    rows = []
    for label, chosen in (("emitted configuration", settings), ("Flink's default", {})):
        mine = records_as_emitted(records, chosen, workload)
        if mine:
            jemalloc = any(r.metrics.get("native_allocator_jemalloc") for r in mine)
            rows.append((label, _native(mine), jemalloc))
    if not any(values for _, values, _ in rows):
        return []
    allocator = (
        "jemalloc, as Flink's Docker image"
        if any(a for _, _, a in rows)
        else (
            "glibc malloc (jemalloc, which Flink's Docker image preloads, is not installed here: "
            "`apt-get install libjemalloc2`)"
        )
    )
    units = f" (the {scale:g} model's budget)" if scale != 1 else ""
    lines = [
        "## Real memory",
        "",
        "What the TaskManager held beside its managed memory, in the confirmation on Flink's "
        "own state backend: the JVM's anonymous resident memory at the end of a measurement "
        "(RSS less the libraries' file-backed pages) less what the JVM itself committed (heap, "
        "metaspace, code and threads, from Native Memory Tracking), so FRocksDB's memory with "
        f"its allocator's overhead, against the budget of {budget / MIB:,.0f} MiB{units}. "
        f"Allocator: {allocator}. A container sized at the managed budget alone is killed "
        f"when this passes it; more than {OVER_BUDGET:.0%} over is flagged.",
        "",
        "| configuration | native memory (median, range) | of the budget | |",
        "|---|---|---|---|",
    ]
    for label, values, _ in rows:
        if not values:
            lines.append(f"| {label} | not measured | | |")
            continue
        mid = statistics.median(values)
        share = mid / budget
        flag = f"**over the budget by {share - 1:.0%}**" if share > 1 + OVER_BUDGET else "fits"
        lines.append(
            f"| {label} | {mid / MIB:,.0f} MiB ({min(values) / MIB:,.0f} .. "
            f"{max(values) / MIB:,.0f}, {len(values)} runs) | {share:.0%} | {flag} |"
        )
    return lines
