"""The replay engine contract: open an instance with a config, apply state calls, checkpoint, read
counters. Every engine passes the shared suite in tests/engine/test_contract.py.

An engine owns the storage (column families) and hands it to a
:class:`~tuner.flink.state_ops.StateOpExecutor`, which turns state calls into storage calls as
Flink does; so engines differ only in where bytes go and what they can count.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np
import numpy.typing as npt
import psutil

from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.flink.state_ops import DEFAULT_TIMER_CACHE_SIZE, ColumnOps, StateOpExecutor
from tuner.trace.ops import OpBatch, StreamHeader

Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class Measurement:
    """What one measurement produced: by an engine in this process, or one isolated in its own
    (tuner.search.isolation)."""

    status: Status
    reason: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    rss_peak_bytes: int = 0


@dataclass(frozen=True)
class CheckpointStats:
    """One checkpoint: how long flush + checkpoint took and what an incremental checkpoint would
    upload (SST files new since the previous checkpoint)."""

    duration_s: float
    new_sst_bytes: int
    total_sst_bytes: int


@dataclass(frozen=True)
class RestoreStats:
    """One restore from a checkpoint into a new instance: how long it took (wall clock) and what
    it copied (bytes, SST files)."""

    duration_s: float
    bytes: int
    sst_files: int | None  # None where the engine does not count them
    # RocksDB's estimate of the entries the restored instance holds (None: not told); a check
    # that a restore brought the state back, not a figure to optimise.
    entries: int | None = None
    # After a scale-in (Flink's backend): of the old subtasks' handles, how many Flink's own
    # range check finds wholly inside their key groups, so that ingest mode imports them.
    handles: int | None = None
    handles_in_range: int | None = None


class EngineClosedError(RuntimeError):
    """An engine was used before ``open`` or after ``close``."""


class Engine(ABC):
    """A store that replays a Flink job's keyed-state calls.

    Life cycle: ``open`` once, then ``apply`` batches, ``flush_and_checkpoint`` now and then,
    read ``snapshot_counters`` / ``memory`` / ``storage`` at any time, ``close`` once (or use the
    engine as a context manager after ``open``).

    Counters are cumulative since ``open``; callers take deltas. Names follow RocksDB's statistics
    tickers (``rocksdb.bytes.written``, ...) for storage-level counts and ``state.*`` for the
    executor's call counts, so a fake engine can model the same names.
    """

    name: str = "engine"

    def __init__(self) -> None:
        self._executor: StateOpExecutor | None = None
        self._header: StreamHeader | None = None
        self._config: RocksDBConfig | None = None
        # The most serialized heap-timer bytes any checkpoint wrote (HeapTimerModel), and the
        # longest synchronous phase where the engine can time it apart.
        self._cp_timer_bytes_max = 0
        self._cp_sync_max_s = math.nan

    # -- to implement -------------------------------------------------------------------------

    @abstractmethod
    def _open_columns(
        self, config: RocksDBConfig, header: StreamHeader, path: Path
    ) -> dict[str, ColumnOps]:
        """Open the storage at ``path``: one column family per state of ``header``."""

    @abstractmethod
    def _flush_storage(self) -> None:
        """Flush memtables (or their model) of every column family, waiting for the flush."""

    @abstractmethod
    def _checkpoint(self, dest: Path) -> tuple[int, int]:
        """Create a checkpoint in the new directory ``dest``; return (new SST bytes since the
        previous checkpoint, total SST bytes in this one)."""

    @abstractmethod
    def _storage_counters(self) -> dict[str, float]:
        """Cumulative storage counters (RocksDB ticker names)."""

    @abstractmethod
    def memory(self) -> dict[str, int]:
        """Memory now: ``block_cache_usage``, ``block_cache_pinned_usage``, ``memtables_bytes``,
        ``table_readers_bytes``, ``rss_bytes``."""

    @abstractmethod
    def storage(self) -> dict[str, int]:
        """Storage now: ``total_sst_bytes``, ``live_data_bytes``, ``compaction_pending``,
        ``running_compactions``, ``running_flushes``."""

    @abstractmethod
    def _close_storage(self) -> None:
        """Release the storage."""

    # -- optional (engines that cannot tell return the neutral answer) ---------------------------

    def lsm_shape(self) -> dict[str, int]:
        """The LSM's debt now: ``pending_compaction_bytes`` (RocksDB's estimate of the bytes
        compaction must still rewrite to bring every level within its target) and
        ``l0_files`` (the most L0 files of any column family). An engine without an LSM owes
        nothing."""
        return {"pending_compaction_bytes": 0, "l0_files": 0}

    def live_bytes(self) -> int | None:
        """Key and value bytes of every live entry (what a full scan returns: the data the
        stream wrote and did not delete), or None when the engine cannot tell."""
        return None

    # -- the contract -------------------------------------------------------------------------

    def open(
        self,
        config: RocksDBConfig,
        header: StreamHeader,
        path: Path,
        *,
        timer_cache_size: int = DEFAULT_TIMER_CACHE_SIZE,
        sample_every: int = 16,
        heap_timers: bool = False,
    ) -> None:
        """Open a fresh instance at ``path`` (created if missing).

        ``timer_cache_size`` is state.backend.rocksdb.timer-service.cache-size; one call in
        ``sample_every`` is timed (see :class:`StateOpExecutor`). ``heap_timers``
        (timer-service.factory: HEAP): timer states get no column family and live in the
        executor's :class:`~tuner.flink.state_ops.HeapTimerModel`.
        """
        if self._executor is not None:
            raise RuntimeError(f"{self.name} engine is already open")
        names = [s.name for s in header.states]
        if len(set(names)) != len(names):
            raise ValueError(f"state names must be unique, got {names}")
        stored = header
        if heap_timers:
            kept = tuple(s for s in header.states if s.kind != "timers")
            stored = replace(header, states=kept)
        columns = self._open_columns(config, stored, Path(path))
        self._executor = StateOpExecutor(
            header,
            columns,
            timer_cache_size=timer_cache_size,
            sample_every=sample_every,
            heap_timers=heap_timers,
        )
        self._header = header
        self._config = config

    @property
    def executor(self) -> StateOpExecutor:
        """The state-call executor (inspection methods for tests live there)."""
        if self._executor is None:
            raise EngineClosedError(f"{self.name} engine is not open")
        return self._executor

    @property
    def config(self) -> RocksDBConfig:
        """The options the engine was opened with."""
        if self._config is None:
            raise EngineClosedError(f"{self.name} engine is not open")
        return self._config

    @property
    def header(self) -> StreamHeader:
        """The stream header the engine was opened with."""
        if self._header is None:
            raise EngineClosedError(f"{self.name} engine is not open")
        return self._header

    def apply(self, batch: OpBatch) -> None:
        """Carry out every state call of ``batch``, in order."""
        self.executor.apply(batch)

    def flush(self) -> None:
        """Write out batched writes and flush memtables."""
        self.executor.flush()
        self._flush_storage()

    def wait_for_background(self, timeout_s: float, quiet_s: float = 1.0) -> bool:
        """Wait until compaction has caught up: no flush or compaction running, and none pending
        or nothing started for ``quiet_s`` (RocksDB can report a compaction as pending that its
        picker will never run: universal compaction does, with its sorted runs at the limit).
        False on timeout."""
        deadline = time.monotonic() + timeout_s
        idle_since: float | None = None
        while True:
            s = self.storage()
            now = time.monotonic()
            if s["running_compactions"] or s["running_flushes"]:
                idle_since = None
            elif not s["compaction_pending"]:
                return True
            else:
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= quiet_s:
                    return True
            if now >= deadline:
                return False
            time.sleep(0.02)

    def flush_and_checkpoint(self, dest: Path) -> CheckpointStats:
        """Flush, then checkpoint into the new directory ``dest``, timing both."""
        self.executor  # noqa: B018 - raises if closed
        dest = Path(dest)
        if dest.exists():
            raise FileExistsError(f"checkpoint directory {dest} already exists")
        t0 = time.perf_counter()
        self.flush()
        new_bytes, total = self._checkpoint(dest)
        # Heap timers go into every checkpoint whole, beside the SST files (HeapTimerModel).
        timers = self.executor.heap_timer_bytes()
        self._cp_timer_bytes_max = max(self._cp_timer_bytes_max, timers)
        return CheckpointStats(time.perf_counter() - t0, new_bytes + timers, total)

    def table_blocks(self) -> dict[str, float]:
        """What the largest column family's SST files are made of, from RocksDB's table
        properties: ``largest_cf_sst_bytes``, ``largest_cf_entries``, ``largest_cf_raw_bytes``
        (keys and values as written), ``largest_cf_data_bytes`` (as stored, compressed),
        ``largest_cf_data_blocks``, ``largest_cf_index_bytes``; nothing where the engine cannot
        tell."""
        return {}

    def restore_from(
        self, checkpoint: Path, into: Path, rescale: float = 1.0
    ) -> RestoreStats | None:
        """Restore a new instance from ``checkpoint`` (a directory :meth:`flush_and_checkpoint`
        wrote) into ``into``, as a task restoring after a failure does, and close it again;
        None where the engine cannot. ``rescale`` (tuner.rescale) n > 1: as subtask 0 after
        the job's parallelism grew n-fold (it owns the first 1/n of this instance's key
        groups); 1/n: as the one subtask left after it shrank n-fold, from n old subtasks'
        checkpoints holding this instance's key groups between them."""
        return None

    def memory_figures(self, rss_peak: int) -> dict[str, float]:
        """The process's real memory beside the budget, where the engine can tell it apart from
        its own runtime's (Flink's backend in a JVM); nothing for an in-process replay, whose
        RSS holds Python and the stream."""
        return {}

    def checkpoint_figures(self) -> dict[str, float]:
        """What the checkpoints cost beyond their duration and bytes: ``checkpoint_timer_bytes``
        (the most heap-timer bytes one wrote in full; 0 with RocksDB timers) and
        ``checkpoint_sync_max_s`` (the longest synchronous phase; NaN where the engine cannot
        time it apart from the rest)."""
        return {
            "checkpoint_timer_bytes": float(self._cp_timer_bytes_max),
            "checkpoint_sync_max_s": self._cp_sync_max_s,
        }

    def snapshot_counters(self) -> dict[str, float]:
        """Cumulative counters: storage tickers plus ``state.*`` call counts."""
        out = dict(self._storage_counters())
        for k, v in self.executor.counters().items():
            out[f"state.{k}"] = float(v)
        return out

    def take_latencies(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Sampled read and write state-call latencies (ns) since the last take."""
        return self.executor.take_latencies()

    def cpu_time(self) -> float:
        """CPU seconds the engine has used so far: this process's for an in-process engine (the
        operator thread and RocksDB's background threads)."""
        return time.process_time()

    def rss_bytes(self) -> int:
        """Resident memory of the process holding the store."""
        return int(psutil.Process().memory_info().rss)

    def close(self) -> None:
        """Flush batched writes and release the instance (idempotent)."""
        if self._executor is None:
            return
        try:
            self._executor.flush()
        finally:
            self._executor = None
            self._close_storage()

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
