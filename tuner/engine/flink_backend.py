"""The flink-backend engine: the stream replayed on Flink's own keyed state backend.

A JVM (``tuner/validate/java/BackendHarness.java``) builds an ``EmbeddedRocksDBStateBackend``
from the candidate's Flink configuration, as a task would, and applies state calls through
Flink's state API; there is no job, no MiniCluster and no per-record job overhead. So FRocksDB,
ListState's merge operator, the TTL compaction filter, the memory controller (shared cache with
its high-priority pool, write buffer manager), the key layout and the timer queues are Flink's
own, not modelled. Needs the ``flink`` extra (apache-flink 2.x) and a JDK 17.

This side speaks the harness's command protocol over the JVM's stdin/stdout: each
:meth:`~FlinkBackendEngine.apply` sends the batch as 56-byte records (the stream format
``tuner validate`` writes, :mod:`tuner.validate.stream`) and waits for the JVM to finish it.
Counters keep the rocksdict engine's names: RocksDB's statistics as RocksDB prints them, and
``state.ops`` / ``state.calls.<op>`` for the state calls. ``cpu_time`` is the JVM's CPU time
(task thread and RocksDB's background threads), the quantity the cost model prices.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import psutil

from tuner.engine.base import CheckpointStats, Engine, EngineClosedError, RestoreStats
from tuner.engine.rocksdict_engine import parse_statistics
from tuner.errors import TunerError
from tuner.flink import memory as mem
from tuner.flink import options as fo
from tuner.flink.keys import payload_pool
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.flink.state_ops import DEFAULT_TIMER_CACHE_SIZE, ColumnOps, StateOpExecutor
from tuner.flink.versions import major
from tuner.rescale import NONE as NO_RESCALE
from tuner.rescale import rescale_label
from tuner.trace.ops import Op, OpBatch, StreamHeader

log = logging.getLogger(__name__)

HARNESS_CLASS = "BackendHarness"
REPLY_PREFIX = b"@@ "
# Heap for the backend's Java objects; RocksDB's memory is native and bounded by the budget.
# A fixed heap, touched at start, and Native Memory Tracking: the JVM's own memory is then all
# resident and known, so RSS less it is what FRocksDB and its allocator hold (the TaskManager's
# real memory beside the managed budget; :meth:`FlinkBackendEngine.memory_figures`).
DEFAULT_JVM_ARGS: tuple[str, ...] = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:+AlwaysPreTouch",
    "-XX:NativeMemoryTracking=summary",
)
# The allocator Flink's Docker image preloads (docker-entrypoint.sh, unless DISABLE_JEMALLOC):
# used where this machine has it (Debian: libjemalloc2), else glibc's, as the metrics say.
JEMALLOC: Path = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")


# HotSpot's JIT compiler threads (their names as /proc shows them, cut to 15 characters).
_JIT_THREADS: tuple[str, ...] = ("C1 CompilerThre", "C2 CompilerThre", "CompilerThread")
INSTALL_HINT = "pip install 'tuner[flink]' for apache-flink 2.x, and a JDK 17 with java and javac"


class HarnessError(RuntimeError):
    """The JVM failed a command, or died."""


def available(flink_version: str = "2.x") -> bool:
    """Whether the engine can run for a workload of ``flink_version``: a JDK, and Flink 2.x
    installed (the ``flink`` extra). A 1.20 workload runs on Flink 1.20: found here, or (with the
    extra installed) its jars fetched from PyPI on first use
    (tuner.validate.flink.find_or_install_flink)."""
    from tuner.validate.flink import find_flink

    if shutil.which("java") is None or shutil.which("javac") is None:
        return False
    if major(flink_version) == 1:
        with contextlib.suppress(TunerError):
            find_flink("1.20")
            return True
    try:
        flink = find_flink("2.x")
    except TunerError:
        return False
    return flink.version.startswith("2.")


LEVEL_READ_TICKERS = ("rocksdb.last.level.read.bytes", "rocksdb.non.last.level.read.bytes")


def storage_counters(statistics: str) -> dict[str, float]:
    """RocksDB's statistics dump as counters: tickers, and ``<histogram>.count``/``.sum``.

    FRocksDB 6.20 (Flink 1.20) has no per-level read tickers: the bytes read from SST files are
    then estimated as compaction input plus the bytes of every block inserted into the cache
    (uncompressed, so at most what the files gave), and ``sst_bytes_read_estimated`` says so.
    """
    tickers, hists = parse_statistics(statistics)
    out: dict[str, float] = dict(tickers)
    for name, h in hists.items():
        out[f"{name}.count"] = h["count"]
        out[f"{name}.sum"] = h["sum"]
    if tickers and not any(t in tickers for t in LEVEL_READ_TICKERS):
        out[LEVEL_READ_TICKERS[0]] = 0.0
        out[LEVEL_READ_TICKERS[1]] = tickers.get("rocksdb.compact.read.bytes", 0.0) + tickers.get(
            "rocksdb.block.cache.bytes.write", 0.0
        )
        out["sst_bytes_read_estimated"] = 1.0
    return out


def thread_cpu_s(task: Path) -> float:
    """CPU seconds of one thread, ``/proc/<pid>/task/<tid>``: its scheduler's run time in
    nanoseconds (``schedstat``), else its user and system time in clock ticks (``stat``). Ticks
    are 10 ms: a small model's measured phase of 0.14 s came out in steps of 7 % (Nexmark q15's
    confirmation: 0.14 to 0.19 s for every configuration, in 10 ms steps). Raises OSError when
    the thread has ended."""
    try:
        return int((task / "schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    stat = (task / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def model_arena_block_size(config: RocksDBConfig, flink_major: int) -> int:
    """The arena block to set on Flink's backend so it runs ``config`` as the replay does: the
    replay's own block where it is not the one FRocksDB derives from the write buffer (a scaled
    model's, :func:`tuner.scale.model_config`), else 0: RocksDB's own, as in the job."""
    arena = config.arena_block_size
    if arena <= 0 or arena == mem.arena_block_size(config.write_buffer_size, flink_major):
        return 0
    return arena


class FlinkBackendEngine(Engine):
    """Flink's RocksDB keyed state backend in a JVM, configured by Flink option keys.

    ``settings`` are the candidate's Flink options (typed, as :mod:`tuner.flink.options` holds
    them, or text); ``managed_bytes`` is the slot's managed memory (the workload's budget). The
    ``config`` handed to :meth:`open` is ignored: Flink derives its RocksDB options from
    ``settings`` itself, which is the point of this engine.
    """

    name = "flink-backend"

    def __init__(
        self,
        settings: Mapping[str, fo.FlinkValue] | None = None,
        *,
        managed_bytes: int = 256 << 20,
        incremental: bool = True,
        jvm_args: tuple[str, ...] = DEFAULT_JVM_ARGS,
        flink_line: str = "2.x",
        direct_reads: bool = False,
    ) -> None:
        super().__init__()
        self.settings = dict(settings or {})
        # Reads past the page cache (tools/disk_pricing/run.py: misses paid on this machine's disk).
        self.direct_reads = direct_reads
        # The workload's Flink line: its FRocksDB (6.20 for 1.20, 8.10 for 2.x) is the backend's.
        self.flink_line = flink_line
        self.managed_bytes = managed_bytes
        self.incremental = incremental
        self.jvm_args = jvm_args
        self._proc: subprocess.Popen[bytes] | None = None
        self.jemalloc = False
        self._ps: psutil.Process | None = None
        self._work: Path | None = None
        self.flink_version = ""
        # Flink's own figures for the last checkpoint: checkpointed_size (what it uploaded,
        # SST files and the private MANIFEST/OPTIONS files), state_size, sync_s, total_s.
        self.last_checkpoint: dict[str, Any] = {}

    # -- the JVM ------------------------------------------------------------------------------

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
        """Start the JVM and build the backend in ``path`` (see :meth:`Engine.open`); the
        settings' timer-service.factory chooses the timer store, so ``heap_timers`` needs no
        handling here."""
        from tuner.validate.flink import compile_java, find_or_install_flink, java_command
        from tuner.validate.job import harness_settings, settings_entries
        from tuner.validate.stream import state_entries, write_job_spec

        if self._proc is not None:
            raise RuntimeError(f"{self.name} engine is already open")
        names = [s.name for s in header.states]
        if len(set(names)) != len(names):
            raise ValueError(f"state names must be unique, got {names}")
        if sample_every < 1:
            raise ValueError(f"`sample_every >= 1` must hold, but got {sample_every=}")
        flink = find_or_install_flink(self.flink_line)
        classes = compile_java(flink, HARNESS_CLASS, with_sources=("ReplayJob", "StateCalls"))
        # Absolute: the JVM runs in this directory, so a relative spec path would point inside
        # it again (a run under the default relative results/ failed every confirmation).
        work = Path(path).absolute()
        work.mkdir(parents=True, exist_ok=True)
        payload = work / "payload.bin"
        # The replay's value bytes: the same compressibility, and the same bytes at each offset.
        payload.write_bytes(payload_pool(header.compressibility))
        base: dict[str, fo.FlinkValue] = {fo.TIMER_SERVICE_CACHE_SIZE: timer_cache_size}
        base.update(self.settings)
        text = {k: v for k, v in base.items() if isinstance(v, str)}
        typed = {k: v for k, v in base.items() if not isinstance(v, str)}
        entries: dict[str, str | int | bool] = {
            **state_entries(header),
            "payload.file": str(payload.resolve()),
            "work.dir": str(work.resolve()),
            "managed.bytes": self.managed_bytes,
            "sample.every": sample_every,
        }
        entries.update({f"base.{k}": v for k, v in settings_entries(typed).items()})
        entries.update({f"base.{k}": v for k, v in text.items()})
        harness = harness_settings(work, self.managed_bytes, self.incremental)
        arena = model_arena_block_size(config, major(self.flink_line))
        if self.direct_reads or arena:
            harness["state.backend.rocksdb.options-factory"] = f"{HARNESS_CLASS}$HarnessOptions"
            entries["direct.reads"] = self.direct_reads
            entries["arena.block.size"] = arena
        entries.update({f"conf.{k}": v for k, v in harness.items()})
        spec = work / "harness.properties"
        write_job_spec(spec, entries)
        cmd = java_command(flink, classes, HARNESS_CLASS, [str(spec)], work, self.jvm_args)
        self._stderr = open(work / "java.err", "wb")  # noqa: SIM115 - lives as long as the JVM
        env = dict(os.environ)
        self.jemalloc = JEMALLOC.is_file()
        if self.jemalloc:
            env["LD_PRELOAD"] = str(JEMALLOC)
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=work,
            env=env,
        )
        self._ps = psutil.Process(self._proc.pid)
        self._work = work
        try:
            ready = self._reply()
        except HarnessError:
            self._kill()
            raise
        self.flink_version = str(ready.get("flink_version", ""))
        self._header = header
        self._config = config
        self._calls_seen = np.zeros((len(header.states), len(Op)), dtype=np.int64)

    def _io(self) -> tuple[IO[bytes], IO[bytes]]:
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise EngineClosedError(f"{self.name} engine is not open")
        return self._proc.stdin, self._proc.stdout

    def _reply(self) -> dict[str, Any]:
        _, out = self._io()
        while True:
            line = out.readline()
            if not line:
                raise HarnessError(f"the Flink harness JVM exited: {self._stderr_tail()}")
            if line.startswith(REPLY_PREFIX):
                msg: dict[str, Any] = json.loads(line[len(REPLY_PREFIX) :])
                if "error" in msg:
                    raise HarnessError(str(msg["error"]))
                return msg
            log.debug("harness: %s", line.rstrip())

    def _stderr_tail(self) -> str:
        if self._work is None:
            return ""
        try:
            text = (self._work / "java.err").read_text(errors="replace").strip()
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return " | ".join(lines[-3:]) if lines else "no output"

    def _command(self, cmd: str, body: bytes = b"") -> dict[str, Any]:
        stdin, _ = self._io()
        try:
            stdin.write(cmd.encode() + b"\n" + body)
            stdin.flush()
        except BrokenPipeError as exc:
            raise HarnessError(f"the Flink harness JVM exited: {self._stderr_tail()}") from exc
        return self._reply()

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._ps = None
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()

    # -- the contract -------------------------------------------------------------------------

    @property
    def executor(self) -> StateOpExecutor:
        """This engine has no Python executor: Flink's backend carries out the calls."""
        self._io()
        raise NotImplementedError("the flink-backend engine runs state calls in Flink's backend")

    @property
    def header(self) -> StreamHeader:
        """The stream header the engine was opened with."""
        self._io()
        assert self._header is not None
        return self._header

    def apply(self, batch: OpBatch) -> None:
        """Carry out every state call of ``batch``, in order, in Flink's backend."""
        from tuner.validate.stream import encode_records

        self._io()
        if batch.states != self.header.names:
            raise ValueError(f"batch names states {batch.states}, header names {self.header.names}")
        self._check_calls(batch)
        if len(batch):
            self._command(f"A {len(batch)}", encode_records(batch, 1))

    def _check_calls(self, batch: OpBatch) -> None:
        # The same refusal as the executor's, before anything reaches the JVM.
        from tuner.flink.state_ops import ROCKSDB_CALLS

        for s, info in enumerate(self.header.states):
            ops = np.unique(batch.op[batch.state == s])
            for o in ops:
                if (info.kind, Op(int(o))) not in ROCKSDB_CALLS:
                    raise ValueError(
                        f"state {info.name!r} ({info.kind}) has no call {Op(int(o)).name}"
                    )

    def flush(self) -> None:
        """Flush memtables of every column family, waiting for the flush."""
        self._command("F")

    def _flush_storage(self) -> None:
        self._command("F")

    def flush_and_checkpoint(self, dest: Path) -> CheckpointStats:
        """Flink's own snapshot (incremental or full per the settings) into ``dest``."""
        self._io()
        dest = Path(dest)
        if dest.exists():
            raise FileExistsError(f"checkpoint directory {dest} already exists")
        t0 = time.perf_counter()
        res = self._command(f"C {dest.resolve()}")
        self.last_checkpoint = res
        # Heap timers: written whole into raw keyed state, in the synchronous phase.
        timers = int(res.get("raw_timer_bytes", 0))
        self._cp_timer_bytes_max = max(self._cp_timer_bytes_max, timers)
        sync = float(res["sync_s"])
        self._cp_sync_max_s = (
            sync if math.isnan(self._cp_sync_max_s) else max(self._cp_sync_max_s, sync)
        )
        return CheckpointStats(
            time.perf_counter() - t0,
            int(res["new_sst_bytes"]) + timers,
            int(res["total_sst_bytes"]),
        )

    def _checkpoint(self, dest: Path) -> tuple[int, int]:
        res = self._command(f"C {Path(dest).resolve()}")
        return int(res["new_sst_bytes"]), int(res["total_sst_bytes"])

    def _stats(self) -> dict[str, Any]:
        return self._command("S")

    def _storage_counters(self) -> dict[str, float]:
        return storage_counters(str(self._stats()["statistics"]))

    def snapshot_counters(self) -> dict[str, float]:
        """RocksDB's statistics plus ``state.ops`` and ``state.calls.<op>``."""
        res = self._stats()
        out = storage_counters(str(res["statistics"]))
        counts = np.asarray(res["counts"], dtype=np.int64)
        out["state.ops"] = float(res["ops"])
        for o in Op:
            out[f"state.calls.{o.name.lower()}"] = float(counts[:, int(o)].sum())
        out["state.timer_fires"] = float(res["timer_fires"])
        return out

    def take_latencies(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Sampled read and write state-call latencies (ns, timed in the JVM) since the last
        take."""
        res = self._command("L")
        return (
            np.asarray(res["read_ns"], dtype=np.int64),
            np.asarray(res["write_ns"], dtype=np.int64),
        )

    def cpu_time(self) -> float:
        """CPU seconds of the JVM so far: every thread (the state calls, RocksDB's flushes and
        compactions, garbage collection) except the JIT compilers, whose work is a warm-up cost
        a long-running TaskManager has paid long before (on a short replay it is a large share
        of the CPU). Falls back to the whole process where /proc is not readable."""
        if self._ps is None:
            raise EngineClosedError(f"{self.name} engine is not open")
        total = 0.0
        try:
            for task in Path(f"/proc/{self._ps.pid}/task").iterdir():
                try:
                    if (task / "comm").read_text().strip().startswith(_JIT_THREADS):
                        continue
                    total += thread_cpu_s(task)
                except OSError:
                    continue  # the thread ended
        except OSError:
            t = self._ps.cpu_times()
            return float(t.user + t.system)
        return total

    def restore_from(
        self, checkpoint: Path, into: Path, rescale: float = 1.0
    ) -> RestoreStats | None:
        """Flink's own restore of a second backend from the last checkpoint (``checkpoint``, the
        one :meth:`flush_and_checkpoint` just took), timed in the JVM, then disposed; after a
        change of parallelism (``rescale``, tuner.rescale) through Flink's rescaling restore:
        as subtask 0 of n after it grew n-fold, or from n handles after it shrank n-fold (the
        checkpoint split by key group as n old subtasks would have written it, untimed)."""
        try:
            res = self._command("R" if rescale == NO_RESCALE else f"R {rescale_label(rescale)}")
        except HarnessError as exc:  # a figure missing, not a failed measurement
            log.warning("flink-backend restore failed: %s", exc)
            return None

        def count(key: str) -> int | None:
            return int(res[key]) if key in res else None

        return RestoreStats(
            float(res["restore_s"]),
            int(res["restore_bytes"]),
            None,
            count("restore_entries_estimate"),
            count("restore_handles"),
            count("restore_handles_in_range"),
        )

    def memory_figures(self, rss_peak: int) -> dict[str, float]:
        """The TaskManager's real memory at the end of this measurement: ``native_bytes``, the
        JVM's anonymous resident memory (RSS less file-backed pages: the JVM's and FRocksDB's
        library code is shared and reclaimable) less what the JVM itself committed (Native
        Memory Tracking; its heap fixed and touched at start, so it is all resident): FRocksDB's
        memory with its allocator's overhead, to hold against the managed budget.
        ``native_allocator_jemalloc`` is 1 when jemalloc was preloaded as in Flink's Docker
        image; ``jvm_heap_live_bytes`` is the heap after a full collection (heap timers live
        there)."""
        assert self._ps is not None
        info = self._ps.memory_info()
        anon = int(info.rss - info.shared)
        res = self._command("M")
        committed = int(res.get("jvm_committed_bytes", -1))
        out = {
            "native_allocator_jemalloc": float(self.jemalloc),
            "jvm_heap_live_bytes": float(res.get("heap_used_bytes", math.nan)),
            "jvm_anon_bytes": float(anon),
        }
        if committed > 0:
            out["jvm_committed_bytes"] = float(committed)
            out["native_bytes"] = float(anon - committed)
        return out

    def rss_bytes(self) -> int:
        """Resident memory of the JVM (heap, FRocksDB's native memory)."""
        if self._ps is None:
            raise EngineClosedError(f"{self.name} engine is not open")
        return int(self._ps.memory_info().rss)

    def memory(self) -> dict[str, int]:
        """See :meth:`Engine.memory`; ``rss_bytes`` is the JVM's."""
        props = self._stats()["properties"]
        assert self._ps is not None
        return {
            "block_cache_usage": int(props["block_cache_usage"]),
            "block_cache_pinned_usage": int(props["block_cache_pinned_usage"]),
            "memtables_bytes": int(props["memtables_bytes"]),
            "table_readers_bytes": int(props["table_readers_bytes"]),
            "rss_bytes": int(self._ps.memory_info().rss),
        }

    def storage(self) -> dict[str, int]:
        """See :meth:`Engine.storage`."""
        props = self._stats()["properties"]
        return {
            k: int(props[k])
            for k in (
                "total_sst_bytes",
                "live_data_bytes",
                "compaction_pending",
                "running_compactions",
                "running_flushes",
            )
        }

    def _open_columns(
        self, config: RocksDBConfig, header: StreamHeader, path: Path
    ) -> dict[str, ColumnOps]:
        raise NotImplementedError("the flink-backend engine opens Flink's backend in a JVM")

    def _close_storage(self) -> None:
        self.close()

    def close(self) -> None:
        """Dispose of the backend and stop the JVM (idempotent)."""
        if self._proc is None:
            return
        try:
            if self._proc.poll() is None:
                self._command("Q")
                self._proc.wait(timeout=30)
        except (HarnessError, subprocess.TimeoutExpired, OSError, EngineClosedError) as exc:
            log.warning("flink-backend harness did not stop cleanly: %s", exc)
        finally:
            self._kill()
            self._header = None
