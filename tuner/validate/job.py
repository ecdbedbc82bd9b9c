"""One measurement on real Flink: an operation stream, a configuration, one JVM run.

:func:`prepare_stream` writes what every run of a validation shares (the binary stream, the
replay's payload pool, the per-state call counts to check the job against); :func:`run_config`
runs the job once under one Flink configuration and returns a :class:`FlinkRun`.

How a configuration reaches Flink (three layers, later wins):

1. the workload's facts: its memory mode keys (``tuner.flink.options.memory_settings``);
2. the configuration under test: a Flink 2.x ``config.yaml`` read by Flink's own loader
   (``GlobalConfiguration.loadConfiguration``), or none for Flink's defaults;
3. the harness (:func:`harness_settings`): RocksDB backend, incremental checkpoints into the work
   directory, the RocksDB local and log directories, managed memory equal to the workload's
   budget on one slot, RocksDB statistics on, periodic checkpoints off (the job triggers them by
   event time instead, as the replay does).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tuner.errors import TunerRuntimeError
from tuner.flink.catalog import load_catalog
from tuner.flink.keys import payload_pool
from tuner.flink.options import MEMORY_FIXED_PER_TM, FlinkValue
from tuner.trace.ops import Op, OpBatch, StreamHeader
from tuner.validate.flink import FlinkInstall, run_job
from tuner.validate.stream import (
    HEADER_BYTES,
    RECORD_DTYPE,
    OpsFileInfo,
    state_entries,
    write_job_spec,
    write_ops_file,
)

__all__ = [
    "FlinkRun",
    "PreparedStream",
    "count_mismatches",
    "harness_settings",
    "parse_rocksdb_log",
    "prepare_stream",
    "run_config",
    "settings_entries",
]

N_OPS = max(Op) + 1
# The RocksDB statistics Flink's native metrics can switch on; enabling any of them makes Flink
# create the Statistics object the job reads (RocksDBResourceContainer, enableStatistics).
STATISTICS_KEYS: tuple[str, ...] = (
    "state.backend.rocksdb.metrics.block-cache-hit",
    "state.backend.rocksdb.metrics.block-cache-miss",
    "state.backend.rocksdb.metrics.bytes-read",
    "state.backend.rocksdb.metrics.bytes-written",
    "state.backend.rocksdb.metrics.compaction-read-bytes",
    "state.backend.rocksdb.metrics.compaction-write-bytes",
    "state.backend.rocksdb.metrics.stall-micros",
)
# Removed from the configuration: without an interval Flink schedules no periodic checkpoint,
# and the job triggers its own by event time (a config under test may set one).
UNSET_KEYS: tuple[str, ...] = ("execution.checkpointing.interval",)


@dataclass(frozen=True)
class PreparedStream:
    """The files every run of one validation reads, and the stream's own call counts."""

    header: StreamHeader
    ops: OpsFileInfo
    payload: Path
    counts: npt.NDArray[np.int64]  # [state, op]: calls in the whole stream (both phases)


def prepare_stream(
    header: StreamHeader,
    preload: Iterable[OpBatch],
    measure: Iterable[OpBatch],
    workdir: Path,
) -> PreparedStream:
    """Write the binary stream and the payload pool into ``workdir``; count calls on the way."""
    counts = np.zeros((len(header.states), N_OPS), dtype=np.int64)

    def counted(batches: Iterable[OpBatch]) -> Iterable[OpBatch]:
        for b in batches:
            flat = b.state.astype(np.int64) * N_OPS + b.op.astype(np.int64)
            counts.ravel()[:] += np.bincount(flat, minlength=counts.size)
            yield b

    workdir.mkdir(parents=True, exist_ok=True)
    info = write_ops_file(workdir / "ops.bin", header, counted(preload), counted(measure))
    payload = workdir / "payload.bin"
    # The replay's own value bytes, so compression sees the same data (keys.payload_pool).
    payload.write_bytes(payload_pool(header.compressibility))
    return PreparedStream(header=header, ops=info, payload=payload, counts=counts)


def settings_entries(settings: Mapping[str, FlinkValue], version: str = "2.3") -> dict[str, str]:
    """Typed Flink settings as the text Flink parses (the catalog's formatting)."""
    catalog = load_catalog(version)
    return {k: catalog.format_value(k, v) for k, v in settings.items()}


def harness_settings(workdir: Path, budget_bytes: int, incremental: bool = True) -> dict[str, str]:
    """What the harness sets on top of any configuration under test (Flink 2.x keys)."""
    out = {
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": "true" if incremental else "false",
        "execution.checkpointing.storage": "filesystem",
        "execution.checkpointing.dir": (workdir / "checkpoints").resolve().as_uri(),
        # A bounded job would otherwise wait for one more (periodic) checkpoint before ending.
        "execution.checkpointing.checkpoints-after-tasks-finish": "false",
        "web.checkpoints.history": "100000",
        "state.backend.rocksdb.localdir": str((workdir / "rocksdb").resolve()),
        "state.backend.rocksdb.log.dir": str((workdir / "rocksdb-log").resolve()),
        # One slot whose managed memory is the workload's RocksDB budget: the keyed operator is
        # the slot's only managed-memory consumer, so RocksDB gets all of it.
        "taskmanager.memory.managed.size": f"{budget_bytes}b",
        "taskmanager.numberOfTaskSlots": "1",
        "parallelism.default": "1",
        "rest.bind-port": "0",
    }
    out.update({k: "true" for k in STATISTICS_KEYS})
    return out


@dataclass(frozen=True)
class FlinkRun:
    """One run of the job under one configuration."""

    label: str
    repeat: int
    records_per_s: float  # measured rows / the job's own time for them
    measure_s: float
    measure_rows: int
    settled: bool
    settle_s: float
    preload_s: float  # the job's time for the preload rows (before the flush and settle)
    wall_s: float  # the whole JVM: start, cluster, preload, measure, shutdown
    startup_s: float  # JVM start to job submission (JVM + MiniCluster start)
    rss_peak_bytes: int
    checkpoints: list[dict[str, Any]]
    tickers: dict[str, float]
    properties: dict[str, float]
    counts: npt.NDArray[np.int64]  # [state, op] executed by the job
    timer_fires_event: int
    timer_fires_after_end: int
    rocksdb_log: dict[str, str] = field(default_factory=dict)
    task_cpu_s: float = math.nan  # the operator thread's CPU time over the measured phase
    process_cpu_s: float = math.nan  # the whole JVM's (RocksDB background threads included)
    restore: RealRestore | None = None  # measured when the run was asked to (--restore)

    def row(self) -> dict[str, Any]:
        """One flat row for validation.csv."""
        done = [c for c in self.checkpoints if c.get("status") == "COMPLETED"]
        durations = [float(c["end_to_end_ms"]) / 1000.0 for c in done]
        sizes = [float(c["checkpointed_size"]) for c in done]
        lags = [float(c["lag_rows"]) for c in done if c.get("lag_rows") is not None]
        t = self.tickers
        hits, misses = t.get("rocksdb.block.cache.hit", 0.0), t.get("rocksdb.block.cache.miss", 0.0)
        row: dict[str, Any] = {
            "label": self.label,
            "repeat": self.repeat,
            "records_per_s": self.records_per_s,
            "measure_s": self.measure_s,
            "measure_rows": self.measure_rows,
            "settled": self.settled,
            "settle_s": self.settle_s,
            "preload_s": self.preload_s,
            "wall_s": self.wall_s,
            "startup_s": self.startup_s,
            "rss_peak_bytes": self.rss_peak_bytes,
            "checkpoint_count": len(done),
            "checkpoint_failed": len(self.checkpoints) - len(done),
            "checkpoint_p50_s": statistics.median(durations) if durations else math.nan,
            "checkpoint_max_s": max(durations) if durations else math.nan,
            "checkpoint_sync_max_ms": max((float(c["sync_ms"]) for c in done), default=math.nan),
            "checkpoint_async_max_ms": max((float(c["async_ms"]) for c in done), default=math.nan),
            "checkpoint_incremental_bytes_mean": statistics.fmean(sizes) if sizes else math.nan,
            "checkpoint_full_bytes_last": float(done[-1]["state_size"]) if done else math.nan,
            "checkpoint_lag_rows_mean": statistics.fmean(lags) if lags else math.nan,
            "block_cache_hit_ratio": hits / (hits + misses) if hits + misses else math.nan,
            "timer_fires": self.timer_fires_event,
            "task_cpu_s": self.task_cpu_s,
            "process_cpu_s": self.process_cpu_s,
        }
        row.update({k.replace(".", "_").replace("-", "_"): v for k, v in t.items()})
        row.update({k.replace(".", "_").replace("-", "_"): v for k, v in self.properties.items()})
        row.update({f"log_{k}": v for k, v in self.rocksdb_log.items()})
        if self.restore is not None:
            row.update(self.restore.row())
        return row


@dataclass(frozen=True)
class RealRestore:
    """A real Flink job restored from the checkpoint of the state at the end of the measured
    phase: how long its keyed operator's subtask was INITIALIZING (Flink builds the RocksDB
    backend from the checkpoint then), by Flink's own execution-state timestamps."""

    initializing_s: float
    submit_to_running_s: float  # submission to the operator running (scheduling included)
    # Of the initializing time, the RocksDB backend's restore by Flink's own log (its restore
    # operation starting to the backend built); nan when the log does not say.
    rocksdb_s: float = math.nan

    @classmethod
    def from_result(cls, res: Mapping[str, Any], log_text: str = "") -> RealRestore:
        """From the job result's ``restore`` entry and the run's flink.log."""
        return cls(
            initializing_s=float(res["initializing_ms"]) / 1000.0,
            submit_to_running_s=float(res["submit_to_running_s"]),
            rocksdb_s=rocksdb_restore_seconds(log_text),
        )

    def row(self) -> dict[str, float]:
        """The validation.csv columns."""
        return {
            "restore_s": self.initializing_s,
            "restore_rocksdb_s": self.rocksdb_s,
            "restore_submit_to_running_s": self.submit_to_running_s,
        }


_LOG_TIME = r"^(\d\d):(\d\d):(\d\d),(\d{3}) INFO\s+"
_RESTORE_STARTED = re.compile(
    _LOG_TIME + r"RocksDBIncrementalRestoreOperation - Starting RocksDB incremental recovery", re.M
)
_BACKEND_BUILT = re.compile(
    _LOG_TIME + r"RocksDBKeyedStateBackendBuilder - Finished building RocksDB keyed state-backend",
    re.M,
)


def _log_seconds(m: re.Match[str]) -> float:
    h, mi, s, ms = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000.0


def rocksdb_restore_seconds(log_text: str) -> float:
    """The last incremental restore in a flink.log: from the restore operation starting to the
    keyed backend built (Flink's own log lines, millisecond stamps); nan when absent."""
    starts = list(_RESTORE_STARTED.finditer(log_text))
    if not starts:
        return math.nan
    start = starts[-1]
    built = _BACKEND_BUILT.search(log_text, start.end())
    if built is None:
        return math.nan
    # Stamps are a time of day: a restore across midnight wraps.
    return (_log_seconds(built) - _log_seconds(start)) % 86400.0


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def count_mismatches(stream: PreparedStream, counts: npt.NDArray[np.int64]) -> list[str]:
    """Where the job's executed calls differ from the stream's, one line each (empty: equal)."""
    out = []
    for s, info in enumerate(stream.header.states):
        for o in range(N_OPS):
            want, got = int(stream.counts[s, o]), int(counts[s, o])
            if want != got:
                out.append(f"{info.name}: {Op(o).name} stream={want} flink={got}")
    return out


_LOG_OPTIONS = {
    "version": re.compile(r"RocksDB version: (\S+)"),
    "write_buffer_size": re.compile(r"Options\.write_buffer_size: (\d+)"),
    "max_write_buffer_number": re.compile(r"Options\.max_write_buffer_number: (\d+)"),
    "compression": re.compile(r"Options\.compression: (\S+)"),
    "block_size": re.compile(r"^\s*block_size: (\d+)", re.M),
    "block_cache_capacity": re.compile(r"capacity\s*: (\d+)"),
    "max_background_jobs": re.compile(r"Options\.max_background_jobs: (\d+)"),
    "compaction_style": re.compile(r"Options\.compaction_style: (\S+)"),
}


def parse_rocksdb_log(log_dir: Path) -> dict[str, str]:
    """The options RocksDB says it opened with (first LOG in ``log_dir``), as text.

    Column families may differ; each option lists its distinct values joined by ``|``.
    """
    logs = sorted(p for p in log_dir.glob("*LOG*") if p.is_file()) if log_dir.is_dir() else []
    if not logs:
        return {}
    text = logs[0].read_text(errors="replace")
    out = {}
    for name, rx in _LOG_OPTIONS.items():
        values = list(dict.fromkeys(rx.findall(text)))
        if values:
            out[name] = "|".join(values)
    return out


def _with_lag(
    stream: PreparedStream, checkpoints: list[dict[str, Any]], requests: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Add to each checkpoint the row where the replay would have taken it (the first measured
    row at or after the requested event time) and how many rows later Flink's barrier came."""
    done = [r for r in requests if r.get("ok")]
    if not done:
        return checkpoints
    records = np.memmap(
        stream.ops.path, dtype=RECORD_DTYPE, mode="r", offset=HEADER_BYTES, shape=(stream.ops.rows,)
    )
    ts = np.asarray(records["ts"][stream.ops.preload_rows :])
    out = []
    for cp, req in zip(checkpoints, done, strict=False):
        want = stream.ops.preload_rows + int(np.searchsorted(ts, int(req["requested_at_ts"])))
        lag = int(cp.get("at_row", -1)) - want if int(cp.get("at_row", -1)) >= 0 else None
        out.append({**cp, "requested_row": want, "lag_rows": lag})
    out += checkpoints[len(out) :]
    return out


def run_config(
    flink: FlinkInstall,
    classes: Path,
    stream: PreparedStream,
    label: str,
    repeat: int,
    config_yaml: str | None,
    base: Mapping[str, str],
    *,
    budget_bytes: int,
    checkpoint_interval_ms: int,
    incremental: bool,
    workdir: Path,
    timeout_s: float = 1800.0,
    measure_restore: bool = False,
) -> FlinkRun:
    """Run the job once under ``config_yaml`` (None: Flink's defaults) and read its result.

    ``measure_restore``: then restore the same job from a checkpoint of the state at the end of
    the measured phase and keep Flink's figures of that restore (``FlinkRun.restore``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    conf_dir = workdir / "conf"
    conf_dir.mkdir(exist_ok=True)
    if config_yaml is not None:
        (conf_dir / "config.yaml").write_text(config_yaml)
    result_path = workdir / "result.json"
    entries: dict[str, str | int | bool] = {
        "ops.file": str(stream.ops.path.resolve()),
        "payload.file": str(stream.payload.resolve()),
        "result.file": str(result_path.resolve()),
        "config.dir": str(conf_dir.resolve()) if config_yaml is not None else "",
        "checkpoint.interval_ms": checkpoint_interval_ms,
        "restore.measure": measure_restore,
        **state_entries(stream.header),
    }
    entries.update({f"base.{k}": v for k, v in base.items()})
    harness = harness_settings(workdir, budget_bytes, incremental)
    if MEMORY_FIXED_PER_TM in base:
        # The configuration under test (a config.yaml) names the whole TaskManager's memory;
        # this one-slot run gets the slot's share (tuner.flink.options.one_slot_memory_settings).
        harness[MEMORY_FIXED_PER_TM] = base[MEMORY_FIXED_PER_TM]
    entries.update({f"conf.{k}": v for k, v in harness.items()})
    entries.update({f"unset.{k}": True for k in UNSET_KEYS})
    spec = workdir / "job.properties"
    write_job_spec(spec, entries)
    outcome = run_job(flink, classes, spec, result_path, workdir, timeout_s=timeout_s)
    res = outcome.result
    op = res["operator"]
    counts = np.zeros((len(stream.header.states), N_OPS), dtype=np.int64)
    names = stream.header.names
    for entry in op["counts"]:
        if entry["state"] not in names:
            raise TunerRuntimeError(f"the job reported an unknown state {entry['state']!r}")
        counts[names.index(entry["state"])] = np.asarray(entry["ops"], dtype=np.int64)
    checkpoints = _with_lag(
        stream, list(res.get("checkpoints", [])), list(res.get("checkpoint_requests", []))
    )
    measure_s = float(op["measure_s"])
    rows = int(op["measure_rows"])
    return FlinkRun(
        label=label,
        repeat=repeat,
        records_per_s=rows / measure_s if measure_s > 0 else math.nan,
        measure_s=measure_s,
        measure_rows=rows,
        settled=bool(op["settled"]),
        settle_s=float(op["settle_s"]),
        preload_s=float(op.get("preload_s", math.nan)),
        wall_s=outcome.wall_s,
        startup_s=float(res.get("jvm_to_main_s", 0.0)) + float(res.get("cluster_start_s", 0.0)),
        rss_peak_bytes=outcome.rss_peak_bytes,
        checkpoints=checkpoints,
        tickers={k: float(v) for k, v in op.get("tickers", {}).items()},
        properties={k: float(v) for k, v in op.get("properties", {}).items()},
        counts=counts,
        timer_fires_event=int(op.get("timer_fires_event", 0)),
        timer_fires_after_end=int(op.get("timer_fires_after_end", 0)),
        rocksdb_log=parse_rocksdb_log(workdir / "rocksdb-log"),
        task_cpu_s=float(op.get("task_cpu_s", math.nan)),
        process_cpu_s=float(op.get("process_cpu_s", math.nan)),
        restore=RealRestore.from_result(res["restore"], _read(workdir / "flink.log"))
        if measure_restore
        else None,
    )
