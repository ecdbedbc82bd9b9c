"""One measurement: open a fresh RocksDB instance with a candidate's options, as Flink would
open it, replay the run's operation stream on it, return the counted and timed figures.

Runs inside the isolated trial process (tuner.search.isolation), so it may crash or be killed
without harming the study.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from tuner.engine.base import Engine, Measurement
from tuner.engine.replay import replay
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.flink import options as fo
from tuner.flink.memory import GUARD_FACTOR
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.scale import model_config, model_settings, model_timer_cache_size
from tuner.search.isolation import run_isolated
from tuner.trace.parquet import read_trace
from tuner.workload import Workload

# Share of the measured stream replayed before counting starts: the job has been running, so its
# cache is warm (steady state, tuner.engine.replay).
WARMUP_FRACTION = 0.2

# Names the worker already records around the whole trial; the replay's own (measured phase
# only) are kept under these names instead.
_RENAMED = {"wall_s": "replay_wall_s", "rss_peak_bytes": "replay_rss_peak_bytes"}


ENGINES: tuple[str, ...] = ("rocksdict", "flink-backend")

# The replay process's own memory beyond the budget (Python, the RocksDB library, Arrow, a slice
# of the stream): the process watchdog's margin, a net that protects the machine. What the
# budget covers is watched by the memory guard on RocksDB's own figures (tuner.engine.replay).
PROCESS_ALLOWANCE = 1 << 30


def make_engine(
    name: str,
    workload: Workload,
    settings: Mapping[str, fo.FlinkValue],
    *,
    direct_reads: bool = False,
    scale: float = 1.0,
) -> Engine:
    """A closed engine of kind ``name`` for a candidate's ``settings``: rocksdict (the model),
    or flink-backend (Flink's own backend in a JVM, configured by the same Flink keys, their
    sizes scaled to a model at ``scale``: tuner.scale.model_settings).
    ``direct_reads``: SST reads bypass the page cache (real engines only)."""
    if name == "rocksdict":
        return RocksdictEngine(direct_reads=direct_reads)
    if name == "fake":  # deterministic, for tests of the machinery around a trial
        from tuner.engine.fake import FakeEngine

        return FakeEngine()
    if name == "flink-backend":
        from tuner.engine.flink_backend import FlinkBackendEngine

        return FlinkBackendEngine(
            {**fo.one_slot_memory_settings(workload.memory), **model_settings(settings, scale)},
            managed_bytes=workload.memory.budget,
            incremental=workload.checkpointing.incremental,
            flink_line=workload.flink_version,
            direct_reads=direct_reads,
        )
    raise ValueError(f"unknown engine {name!r}; expected one of {ENGINES}")


def guard_limit(workload: Workload, config: RocksDBConfig) -> int | None:
    """The memory guard's limit for one measurement: the slot's budget with Flink's own
    overshoot (:data:`tuner.flink.memory.GUARD_FACTOR`), under Flink's shared memory; None where
    Flink bounds nothing (``unmanaged``: the configuration's own sizes are the memory)."""
    if not config.shared_memory:
        return None
    return int(workload.memory.budget * GUARD_FACTOR)


def measure_settings(
    workload: Workload,
    trace_path: str,
    settings: Mapping[str, fo.FlinkValue],
    workdir: str,
    engine_name: str = "rocksdict",
    scale: float = 1.0,
    warmup_fraction: float = WARMUP_FRACTION,
    direct_reads: bool = False,
    rescale: float = 1.0,
) -> dict[str, float]:
    """Replay the trace under ``settings`` and return the trial's metrics (``engine_name``
    ``fake``: the deterministic fake engine, for tests of the machinery around a trial).

    ``workload`` is the replayed model (tuner.scale.model_workload); ``settings`` are in
    production units and scaled to the model here (tuner.scale.model_config).
    """
    config, clamped = model_config(
        fo.resolve(settings, workload.memory, workload.flink_version), scale
    )
    values = fo.effective(settings)
    cache_size = values[fo.TIMER_SERVICE_CACHE_SIZE]
    assert isinstance(cache_size, int)
    cache_size = model_timer_cache_size(cache_size, scale)
    trace = read_trace(Path(trace_path))
    root = Path(workdir)
    engine = make_engine(engine_name, workload, settings, direct_reads=direct_reads, scale=scale)
    heap_timers = values[fo.TIMER_SERVICE_FACTORY] == "HEAP"
    engine.open(
        config, trace.header, root / "db", timer_cache_size=cache_size, heap_timers=heap_timers
    )
    try:
        result = replay(
            engine,
            trace.header,
            trace.batches("preload"),
            trace.batches("measure"),
            workload.checkpointing.interval_ms,
            root,
            warmup_ops=int(trace.phase_rows.get("measure", 0) * warmup_fraction),
            memory_limit_bytes=guard_limit(workload, config),
            rescale=rescale,
        )
    finally:
        engine.close()
    metrics = result.as_dict()
    metrics["scale"] = scale
    metrics["direct_reads"] = float(direct_reads)
    metrics["model_clamped"] = float(clamped)
    return {_RENAMED.get(k, k): v for k, v in metrics.items()}


def measure_isolated(
    workload: Workload,
    trace_path: Path,
    settings: Mapping[str, fo.FlinkValue],
    workdir: Path,
    *,
    timeout_s: float,
    rss_margin: int = PROCESS_ALLOWANCE,
    engine_name: str = "rocksdict",
    scale: float = 1.0,
    direct_reads: bool = False,
    rescale: float = 1.0,
) -> Measurement:
    """:func:`measure_settings` in its own process, watched for time and for the process's
    memory (the budget plus ``rss_margin``: a net for the machine, the budget itself being
    guarded inside on RocksDB's own figures); ``workdir`` is removed afterwards whatever
    happened. On the flink-backend engine the watched process is the Python side; the JVM's peak
    RSS is the metric ``replay_rss_peak_bytes``."""
    m = run_isolated(
        measure_settings,
        {
            "workload": workload,
            "trace_path": str(trace_path),
            "settings": dict(settings),
            "workdir": str(workdir),
            "engine_name": engine_name,
            "scale": scale,
            "direct_reads": direct_reads,
            "rescale": rescale,
        },
        workdir=workdir,
        timeout_s=timeout_s,
        rss_limit_bytes=workload.memory.budget + rss_margin,
    )
    hint = fo.known_hang(settings)
    if m.status != "ok" and m.reason.startswith("timeout") and hint:
        return replace(m, reason=f"{m.reason}; {hint}")
    return m
