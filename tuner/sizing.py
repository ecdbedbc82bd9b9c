"""``tuner size``: how much managed memory a job's RocksDB really needs.

Throughput (the cost model's counted ``ops_per_s``) is measured against the memory per slot,
from about a quarter to twice the workload's budget, for Flink's default and for the
recommendation (or a given config), interleaved, each measurement in its own process. The advice
is the smallest measured size whose median throughput stays within ``tolerance`` (5 %) of the
budget's, and stays so at every measured size up to the budget (one lucky point does not count),
as the Flink keys that set it, and what that saves per TaskManager.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from tuner.compare import Contender, contender, recommendation_contender
from tuner.costmodel import Disk, score
from tuner.engine.base import Measurement
from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.flink.memory import with_budget
from tuner.scale import ScaleSpec, model_workload
from tuner.search.measure import PROCESS_ALLOWANCE, measure_isolated
from tuner.trace.parquet import read_trace
from tuner.trace.source import trace_file
from tuner.units import MIB, format_memory_size, parse_memory_size
from tuner.workload import Workload

__all__ = [
    "FACTORS",
    "JVM_OVERHEAD_MIN",
    "MANAGED_SIZE",
    "ContainerAdvice",
    "SizeAdvice",
    "SizePoint",
    "SizingResult",
    "advise",
    "check_one_target",
    "parse_factors",
    "parse_total_memory",
    "recommendation_contender",
    "scaled",
    "size_memory",
    "sizing_contenders",
]

FACTORS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
THROUGHPUT = "ops_per_s"
# TaskManagerOptions.MANAGED_MEMORY_SIZE / MANAGED_MEMORY_FRACTION (flink-core).
MANAGED_SIZE = "taskmanager.memory.managed.size"
MANAGED_FRACTION = "taskmanager.memory.managed.fraction"
# TaskManagerOptions.JVM_OVERHEAD_MIN and its default: the JVM overhead holds thread stacks, the
# code cache and GC structures, and whatever native memory passes Flink's accounts (RocksDB
# beyond its managed budget), up to jvm-overhead.max (1 gb by default).
JVM_OVERHEAD_MIN = "taskmanager.memory.jvm-overhead.min"
DEFAULT_JVM_OVERHEAD_MIN = 192 * MIB

MeasureFn = Callable[[Workload, Mapping[str, fo.FlinkValue], Path], Measurement]


def scaled(workload: Workload, budget: int) -> Workload:
    """``workload`` with ``budget`` bytes of RocksDB memory per slot, in its own memory mode."""
    if workload.memory.mode not in ("managed", "fixed-per-slot", "fixed-per-tm"):
        raise TunerError(
            "tuner size needs managed or fixed RocksDB memory; with memory.managed: false the "
            "cache and write buffers are sized by block.cache-size and writebuffer.* instead",
            where="memory.mode",
        )
    return replace(workload, memory=with_budget(workload.memory, budget))


def flink_keys(workload: Workload, budget: int, total_flink_memory: int | None) -> dict[str, str]:
    """The Flink keys that give each slot ``budget`` bytes of RocksDB memory."""
    m = workload.memory
    if m.mode == "fixed-per-slot":
        return {fo.MEMORY_FIXED_PER_SLOT: format_memory_size(budget)}
    if m.mode == "fixed-per-tm":
        return {fo.MEMORY_FIXED_PER_TM: format_memory_size(budget * m.slots_per_tm)}
    # A TaskManager's managed memory is split equally between its slots
    # (TaskExecutorResourceUtils.generateDefaultSlotResourceProfile).
    total = budget * m.slots_per_tm
    out = {MANAGED_SIZE: format_memory_size(total)}
    if total_flink_memory:
        out[MANAGED_FRACTION] = f"{total / total_flink_memory:.3f}"
    return out


@dataclass(frozen=True)
class SizePoint:
    """One configuration at one memory size."""

    config: str
    factor: float
    budget: int  # bytes per slot
    values: tuple[float, ...]  # ops/s of each finished repeat
    failures: tuple[str, ...]
    not_run: str  # why it was not measured ("" when it was)

    @property
    def median(self) -> float:
        """Median ops/s, NaN when nothing finished."""
        return statistics.median(self.values) if self.values else math.nan

    @property
    def low(self) -> float:
        """Smallest ops/s."""
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        """Largest ops/s."""
        return max(self.values) if self.values else math.nan

    @property
    def cv(self) -> float:
        """stddev / mean over the repeats (NaN with fewer than 2)."""
        if len(self.values) < 2:
            return math.nan
        return statistics.stdev(self.values) / statistics.fmean(self.values)


@dataclass(frozen=True)
class SizeAdvice:
    """The smallest memory per slot within tolerance of the budget's throughput."""

    config: str
    budget: int
    recommended: int
    factor: float
    budget_ops: float
    recommended_ops: float
    tolerance: float
    keys: Mapping[str, str]
    saves_per_tm: int

    def describe(self) -> str:
        """One paragraph for the terminal and sizing.md."""
        keys = ", ".join(f"{k}: {v}" for k, v in self.keys.items())
        if self.recommended >= self.budget:
            return (
                f"{self.config}: keep {format_memory_size(self.budget)} per slot; no smaller "
                f"measured size stays within {self.tolerance:.0%} of its throughput "
                f"({self.budget_ops:,.0f} ops/s). Keys: {keys}."
            )
        return (
            f"{self.config}: {format_memory_size(self.recommended)} per slot "
            f"({self.factor:g}x the budget) keeps {self.recommended_ops:,.0f} ops/s, "
            f"{self.recommended_ops / self.budget_ops - 1:+.1%} against "
            f"{self.budget_ops:,.0f} ops/s at {format_memory_size(self.budget)} (tolerance "
            f"{self.tolerance:.0%}). Set {keys}. Saves {format_memory_size(self.saves_per_tm)} "
            "of managed memory per TaskManager."
        )


def advise(
    points: Sequence[SizePoint],
    config: str,
    workload: Workload,
    tolerance: float,
    total_flink_memory: int | None = None,
) -> SizeAdvice | None:
    """The advice for ``config`` from its points; None when the budget itself was not measured.

    The smallest size whose median is within ``tolerance`` of the budget's median, and every
    measured size between it and the budget too.
    """
    budget = workload.memory.budget
    mine = sorted((p for p in points if p.config == config), key=lambda p: p.budget)
    at_budget = [p for p in mine if p.budget == budget and p.values]
    if not at_budget:
        return None
    ref = at_budget[0].median
    chosen = at_budget[0]
    for p in reversed([p for p in mine if p.budget < budget]):
        if not p.values or p.median < (1 - tolerance) * ref:
            break
        chosen = p
    saves = (budget - chosen.budget) * workload.memory.slots_per_tm
    return SizeAdvice(
        config,
        budget,
        chosen.budget,
        chosen.factor,
        ref,
        chosen.median,
        tolerance,
        flink_keys(workload, chosen.budget, total_flink_memory),
        saves,
    )


@dataclass(frozen=True)
class ContainerAdvice:
    """What the TaskManager's container needs beyond its managed memory: the native memory
    measured on Flink's own backend (the run's confirmation), as a share of the budget it ran
    under, applied to the advised memory per slot."""

    native_share: float  # measured native memory / the budget (median): 1.3 is 30 % over
    per_slot: int  # the managed memory per slot advised
    slots: int

    @property
    def overshoot_per_tm(self) -> int:
        """Native memory beyond managed memory, per TaskManager (bytes; 0 when it fits)."""
        return max(0, math.ceil((self.native_share - 1) * self.per_slot)) * self.slots

    @property
    def jvm_overhead_min(self) -> int:
        """Flink's JVM-overhead floor plus the overshoot, rounded up to a MiB."""
        return math.ceil((DEFAULT_JVM_OVERHEAD_MIN + self.overshoot_per_tm) / MIB) * MIB

    def describe(self) -> str:
        """One paragraph for the terminal and sizing.md."""
        measured = (
            f"RocksDB's native memory measured {self.native_share:.0%} of its budget on Flink's "
            "own backend (the run's confirmation)"
        )
        if not self.overshoot_per_tm:
            return (
                f"Container: {measured}, within managed memory; a container sized by Flink's "
                "memory model holds it (no JVM-overhead change)."
            )
        return (
            f"Container: {measured}. At {format_memory_size(self.per_slot)} per slot that is "
            f"about {format_memory_size(self.overshoot_per_tm)} per TaskManager beyond managed "
            "memory, which only the JVM overhead can hold: set "
            f"{JVM_OVERHEAD_MIN}: {format_memory_size(self.jvm_overhead_min)} (Flink's "
            f"{format_memory_size(DEFAULT_JVM_OVERHEAD_MIN)} plus it), or the container kills the "
            "TaskManager for memory that managed memory never showed. The share was measured "
            "at the budget; at another size it is an estimate."
        )


@dataclass(frozen=True)
class SizingResult:
    """Every point measured, and the advice."""

    workload: str
    budget: int
    contenders: tuple[Contender, ...]
    points: tuple[SizePoint, ...]
    advice: SizeAdvice | None
    repeats: int
    disk: str
    container: ContainerAdvice | None = None

    def frame(self) -> pd.DataFrame:
        """One row per configuration and size: median, min, max, CV, n, not_run."""
        rows = [
            {
                "config": p.config,
                "factor": p.factor,
                "memory_per_slot_bytes": p.budget,
                "n": len(p.values),
                "ops_per_s": p.median,
                "ops_per_s_min": p.low,
                "ops_per_s_max": p.high,
                "cv": p.cv,
                "failed": len(p.failures),
                "not_run": p.not_run,
            }
            for p in self.points
        ]
        return pd.DataFrame(rows)

    def render(self) -> str:
        """The table for the terminal."""
        lines = [
            f"{'configuration':<28}{'per slot':>10}{'n':>3}{'median ops/s':>14}"
            f"{'min–max':>22}{'CV':>7}{'vs budget':>11}"
        ]
        ref = {p.config: p.median for p in self.points if p.budget == self.budget}
        for p in sorted(self.points, key=lambda p: (p.config, p.budget)):
            size = format_memory_size(p.budget)
            if p.not_run:
                lines.append(f"{p.config[:27]:<28}{size:>10}   not run: {p.not_run}")
                continue
            if not p.values:
                lines.append(f"{p.config[:27]:<28}{size:>10}   every measurement failed")
                continue
            cv = "–" if math.isnan(p.cv) else f"{p.cv:.1%}"
            r = ref.get(p.config, math.nan)
            rel = f"{p.median / r - 1:+.1%}" if r == r and r else "–"
            lines.append(
                f"{p.config[:27]:<28}{size:>10}{len(p.values):>3}{p.median:>14,.0f}"
                f"{f'{p.low:,.0f}–{p.high:,.0f}':>22}{cv:>7}{rel:>11}"
            )
        if self.advice is not None:
            lines += ["", self.advice.describe()]
        if self.container is not None:
            lines += ["", self.container.describe()]
        return "\n".join(lines)


def parse_factors(text: str, where: str = "--factors") -> list[float]:
    """Memory factors from a comma-separated list (``0.5,1,2``); each must be > 0."""
    try:
        steps = [float(f) for f in text.split(",") if f.strip()]
    except ValueError:
        raise TunerError(f"not a list of numbers: {text!r}", where=where) from None
    if not steps or any(f <= 0 for f in steps):
        raise TunerError(f"factors must be > 0, got {text!r}", where=where)
    return steps


def parse_total_memory(text: str | None, where: str = "--total-flink-memory") -> int | None:
    """taskmanager.memory.flink.size in bytes (None when not given)."""
    if text is None:
        return None
    try:
        return parse_memory_size(text)
    except ValueError as exc:
        raise TunerError(str(exc), where=where) from None


def check_one_target(run_dir: Path | None, config_file: Path | None) -> None:
    """What to size for is a run's recommendation or a config file, not both."""
    if run_dir is not None and config_file is not None:
        raise TunerError("give --run or --config, not both", where="--config")


def sizing_contenders(
    flink_version: str, run_dir: Path | None = None, config_file: Path | None = None
) -> list[Contender]:
    """Flink's default, then what to size for: a run's recommendation or a config file."""
    check_one_target(run_dir, config_file)
    contenders = [contender("DEFAULT", flink_version)]
    if run_dir is not None:
        contenders.append(recommendation_contender(run_dir))
    elif config_file is not None:
        contenders.append(contender(str(config_file), flink_version))
    return contenders


def size_memory(
    workload: Workload,
    contenders: Sequence[Contender],
    *,
    factors: Sequence[float] = FACTORS,
    repeats: int = 2,
    disk: Disk,
    tolerance: float = 0.05,
    total_flink_memory: int | None = None,
    timeout_s: float = 900.0,
    rss_margin: int = PROCESS_ALLOWANCE,
    on_measure: Callable[[int, int, str], None] | None = None,
    measure: MeasureFn | None = None,
    scale: ScaleSpec | None = None,
) -> SizingResult:
    """Measure every contender at every size (interleaved per repeat) and advise for the last
    contender (the recommendation or the given config; Flink's default when it is alone).

    ``workload`` is in production units; with a ``scale`` (the workload's ``scale:``) each size
    is replayed on its scaled model, and the sizes and the advice stay in production units."""
    spec = scale or ScaleSpec()
    scaled(workload, workload.memory.budget)  # refuses unmanaged memory before measuring
    budget = workload.memory.budget
    sizes = sorted({max(MIB, round(f * budget / MIB) * MIB) for f in factors} | {budget})
    values: dict[tuple[str, int], list[float]] = {}
    failures: dict[tuple[str, int], list[str]] = {}
    not_run: dict[tuple[str, int], str] = {}
    with tempfile.TemporaryDirectory(prefix="tuner-size-") as tmp:
        root = Path(tmp)
        trace = trace_file(model_workload(workload, spec), root / "trace.parquet")
        cfs = len(read_trace(trace).header.names)

        durations: list[float] = []

        def isolated(w: Workload, settings: Mapping[str, fo.FlinkValue], wd: Path) -> Measurement:
            # As the study does: once measurements finished, a much slower one (a size so small
            # that RocksDB flushes on nearly every write) stops at 10x their median, 2 min at
            # least, and is recorded as failed instead of holding the sizing for --timeout.
            limit = timeout_s
            if durations:
                limit = min(timeout_s, max(120.0, 10 * statistics.median(durations)))
            m = measure_isolated(
                w, trace, settings, wd, timeout_s=limit, rss_margin=rss_margin, scale=spec.factor
            )
            if m.status == "ok":
                durations.append(m.wall_s)
            return m

        run = measure or isolated
        plan = []
        # The budget first: it is the reference, and it sets the adaptive timeout.
        for size in sorted(sizes, key=lambda b: (b != budget, b)):
            w = scaled(workload, size)
            for c in contenders:
                reason = fo.invalid_reason(c.settings, w.memory, cfs, w.flink_version)
                if reason is not None:
                    not_run[(c.name, size)] = reason
                else:
                    plan.append((size, w, c))
        total, done = repeats * len(plan), 0
        for r in range(repeats):
            for size, w, c in plan:
                if on_measure is not None:
                    on_measure(done, total, f"{c.name} at {format_memory_size(size)}")
                m = run(model_workload(w, spec), c.settings, root / f"m-{r}-{done}")
                done += 1
                if m.status == "ok":
                    scored = score(m.metrics, disk)
                    values.setdefault((c.name, size), []).append(float(scored[THROUGHPUT]))
                else:
                    failures.setdefault((c.name, size), []).append(m.reason)
    points = tuple(
        SizePoint(
            c.name,
            size / budget,
            size,
            tuple(values.get((c.name, size), [])),
            tuple(failures.get((c.name, size), [])),
            not_run.get((c.name, size), ""),
        )
        for c in contenders
        for size in sizes
    )
    advice = advise(points, contenders[-1].name, workload, tolerance, total_flink_memory)
    return SizingResult(
        workload.name, budget, tuple(contenders), points, advice, repeats, disk.name
    )
