"""Import a recording (the recorder's files of one job) into a trace file.

Rules, so a recorded trace means the same thing as a generated one:

* **Timestamps.** A state backend never sees a record's event time, so ``ts`` is the processing
  time of the call (ms, the recorder's clock at the record's key switch), minus the earliest
  call of the recording: the trace starts at 0. Files (subtasks, restart attempts) are merged by
  that time, in file order within a millisecond. Window namespaces and timer timestamps are
  kept as the job set them (event time); they never mix with ``ts``.
* **Keys** are SipHash values; each distinct hash becomes a dense id (0, 1, ... in order of
  first appearance), and so does each map user key. The key type is ``long`` when the job's
  keys serialize to 8 bytes, else ``string`` of the serialized length less one
  (StringSerializer's length byte).
* **Sizes.** Only writes carry a size. A TTL state's sizes lose TTL's 8-byte timestamp (the
  replay adds it back). An aggregating ``add`` whose size was not read (the recorder reads one
  accumulator in 16) gets its state's median measured size.
* **Phases.** Every row is measured (phase 1): the recording starts where the job was; state
  restored from a checkpoint is not in it.
* Namespaces other than TimeWindow and VoidNamespace (e.g. GlobalWindow) are replayed as
  VoidNamespace; the count is reported.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tuner.errors import TunerError
from tuner.flink.keys import COMPRESS_BLOCK_BYTES
from tuner.recorder.format import (
    FLAG_NS_OTHER,
    FLAG_NS_WINDOW,
    FLAG_SIZE_UNKNOWN,
    Recording,
    read_recording,
    recording_files,
)
from tuner.trace.ops import (
    COLUMNS,
    COMPRESSIBILITY_RANGE,
    MAX_STATES,
    TIMER_STATE_PREFIX,
    Op,
    OpBatch,
    StateInfo,
    StreamHeader,
)
from tuner.trace.parquet import write_trace

__all__ = [
    "ImportStats",
    "StateTimeShare",
    "import_recording",
    "recorded_compressibility",
    "state_time_share",
]

BATCH_ROWS = 1 << 20


def _op_table(*ops: Op) -> npt.NDArray[np.bool_]:
    """A lookup table over all 256 op codes: ``table[op]`` is a vectorised membership test."""
    table = np.zeros(256, dtype=bool)
    table[[int(o) for o in ops]] = True
    return table


_WRITES = _op_table(Op.UPDATE, Op.ADD, Op.PUT)
_MAP_KEYED = _op_table(Op.GET, Op.PUT, Op.REMOVE, Op.CONTAINS)
_TIMER_OPS = _op_table(Op.REGISTER_TIMER, Op.DELETE_TIMER, Op.FIRE_TIMER)
_SUBTASK_SUFFIX = re.compile(r"_?\(\d+/\d+\)$")
# A timed call this long may have been preempted (or met a GC pause): its wall time is not
# trusted; its thread CPU time is, where the recorder kept it (else it is left out).
PREEMPTED_NS = 1 << 20
TTL_BYTES = 8  # TtlValue: the value plus an 8-byte last-access timestamp (TtlStateFactory.java)


@dataclass(frozen=True)
class StateTimeShare:
    """The recorder's sampled timing: how much of the task threads' CPU went to state calls."""

    state_calls: int
    estimated_state_cpu_s: float
    task_cpu_s: float
    # Whether every recording timed the entries its map iterations read (recorders before
    # issue 16 timed only the call that started an iteration).
    iterations_timed: bool = True
    # The job's recorded time: the longest span from first to last state call of any operator
    # subtask (0: not recorded).
    job_wall_s: float = 0.0
    # The estimated state time of the most state-bound operator subtask: each subtask is a
    # thread of the pipeline, and the job runs at the pace of its slowest one.
    pace_state_s: float = 0.0

    @property
    def denominator_s(self) -> float:
        """What the state time is a share of: the job's recorded wall time, which its
        throughput is, where recorded; else the state-calling threads' CPU time.

        Measured on Nexmark q5 (1M events, 64 mb): the threads' CPU time made the share 88.6 %,
        the wall time 57 %, and the job's own runs on the hashmap and RocksDB backends 42 %
        (other operators and the source run beside the state-calling thread)."""
        return self.job_wall_s if self.job_wall_s > 0 else self.task_cpu_s

    @property
    def numerator_s(self) -> float:
        """The state time the share counts: over the job's recorded wall time, the
        pace-setting subtask's (the sum over subtasks running side by side would count the
        same seconds of the job several times); over CPU time, all of it.

        Measured (job on hashmap vs RocksDB, 1 - t_heap / t_rocks): the demo job at
        parallelism 1 (two state-calling operators, 100k records) summed to 108 % of the
        wall, its pace-setting operator 66 %, the heap 65.6 %; Nexmark q5 66.7 / 63.4 / 47.2 %,
        q8 20.5 / 7.9 / 18.0 %, q16 62.5 / 60.9 / 58.7 % (sum / pace / heap)."""
        if self.job_wall_s > 0 and self.pace_state_s > 0:
            return self.pace_state_s
        return self.estimated_state_cpu_s

    @property
    def share(self) -> float | None:
        """Estimated state-call time (:attr:`numerator_s`) over :attr:`denominator_s`
        (None when not measured)."""
        if self.denominator_s <= 0:
            return None
        return min(1.0, self.numerator_s / self.denominator_s)

    def doubt(self, iterations: int) -> str:
        """Why the share cannot be trusted to turn a state-call gain into a job gain, or "".
        ``iterations``: the recorded map iterations."""
        if self.share is None:
            return "the recording measured no task time"
        if self.numerator_s > self.denominator_s:
            # Seen on a GROUP BY job whose hashmap run showed state at most half its time.
            if self.job_wall_s > 0 and self.pace_state_s > 0:
                what = "one subtask's timed state calls outlast the job's recorded time"
            elif self.job_wall_s > 0:
                what = "the timed state calls add up to more than the job's recorded time"
            else:
                what = "the timed state calls add up to more than the threads' CPU time"
            return f"{what} (calls waiting on I/O or preempted), so the share is not measured"
        if iterations and not self.iterations_timed:
            # Seen on a Nexmark join: 4.2 % recorded where RocksDB took about 96 % of the time.
            return (
                f"the job iterates map state ({iterations} recorded iterations, as joins do): "
                "this recorder timed the start of an iteration, not the entries it read, so "
                "the share would be far too low (record again with today's recorder)"
            )
        return ""


@dataclass(frozen=True)
class ImportStats:
    """What an import read and wrote."""

    files: int
    events: int
    states: tuple[StateInfo, ...]
    seconds: float
    dropped_events: int
    stopped: dict[str, int] = field(default_factory=dict)
    other_namespaces: int = 0
    time_share: StateTimeShare | None = None
    iterations: int = 0  # recorded map iterations (the share cannot see their entries)
    max_parallelisms: tuple[int, ...] = ()  # of the operators recorded; the trace has the largest
    compressibility: float | None = None  # written values and wide user keys, LZ4 in 4 KB blocks
    compressibility_bytes: int = 0  # how many bytes that ratio was measured on

    @property
    def events_per_s(self) -> float:
        """Import speed, events per second of wall time (read, convert, write)."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


# The least sample a compressibility is believed on: 16 blocks of 4 KB.
MIN_COMPRESSIBILITY_SAMPLE = 16 * COMPRESS_BLOCK_BYTES


def recorded_compressibility(recordings: Sequence[Recording]) -> tuple[float | None, int]:
    """Raw over LZ4-compressed bytes of the values and wide map user keys the recorder
    sampled (in 4 KB blocks, as RocksDB compresses its data blocks), summed over the files,
    and the raw bytes it rests on; None below :data:`MIN_COMPRESSIBILITY_SAMPLE` (too few
    writes, or a recorder or Flink that did not measure)."""
    raw = sum(int(r.footer.get("payload_raw_bytes", 0)) for r in recordings)
    packed = sum(int(r.footer.get("payload_lz4_bytes", 0)) for r in recordings)
    if raw < MIN_COMPRESSIBILITY_SAMPLE or packed <= 0:
        return None, raw
    lo, hi = COMPRESSIBILITY_RANGE
    return min(hi, max(lo, raw / packed)), raw


def state_time_share(recordings: Sequence[Recording]) -> StateTimeShare:
    """Sum the footers' sampled timing: per subtask, the mean timed call (wall clock, less the
    clock's own cost; calls of ``PREEMPTED_NS`` or more at their thread CPU time where the
    recording has it, else left out as preempted) times all its calls; the pace-setting
    subtask's over the job's recorded wall time
    (:attr:`StateTimeShare.numerator_s`, :attr:`StateTimeShare.denominator_s`)."""
    calls = 0
    est = 0.0
    pace = 0.0
    cpu = 0.0
    wall = 0.0
    iterations_timed = True
    for r in recordings:
        f = r.footer
        iterations_timed = iterations_timed and "timed_iter_ns" in f
        wall = max(wall, float(f.get("wall_ns", 0)) / 1e9)
        task = int(f.get("task_cpu_ns", -1))
        n = int(f.get("state_calls", 0))
        hist = {int(k): v for k, v in dict(f.get("timed_log2_ns", {})).items()}
        kept = [(int(c), float(s)) for b, (c, s) in hist.items() if (1 << b) < PREEMPTED_NS]
        timed = sum(c for c, _ in kept)
        spent = sum(s for _, s in kept) - timed * float(f.get("timer_cost_ns", 0))
        # Calls of PREEMPTED_NS or more count with their thread CPU time where the recorder
        # kept it: a wall time that long mixes work with preemption, the CPU time is the work.
        # Nexmark q20 (a join, 500k events): 428 timed map reads of 1.6 ms each held 90 % of
        # the timed time; left out, the share was 16.8 % of a thread 90 % busy.
        if "long_calls" in f:
            timed += int(f["long_calls"])
            spent += float(f.get("long_cpu_ns", 0))
        if timed <= 0 or task <= 0:
            continue
        # The entries a timed iteration read, paid after the call that started it.
        spent += float(f.get("timed_iter_ns", 0))
        calls += n
        mine = max(0.0, spent) / timed * n / 1e9
        est += mine
        pace = max(pace, mine)
        cpu += task / 1e9
    return StateTimeShare(calls, est, cpu, iterations_timed, wall, pace)


def _operator_base(operator: str) -> str:
    return _SUBTASK_SUFFIX.sub("", operator)


# The recorder's length histograms are exact up to 64 bytes; 65 counts every longer one.
_LONG = 65
# The longest key or map user key the replay lays out: a batch holds every row's key as one
# matrix row, and a user key's bytes past its id are cut from a 1 MiB payload pool.
MAX_REPLAYED_KEY_BYTES = 1 << 16


def _modal(histogram: dict[str, int], default: int, long_bytes: int = 0) -> int:
    """The most frequent length; where that is the recorder's bucket of longer ones, their
    mean length (from the bytes the recorder summed for them), so a 120-byte row is replayed
    as 120 bytes, not 65."""
    if not histogram:
        return default
    modal = int(max(histogram.items(), key=lambda kv: (kv[1], -int(kv[0])))[0])
    longer = int(histogram.get(str(_LONG), 0))
    if modal == _LONG and longer > 0 and long_bytes > 0:
        return max(_LONG, round(long_bytes / longer))
    return modal


@dataclass
class _GlobalState:
    name: str
    kind: str
    windowed: bool
    ttl: bool
    key_len: int
    user_key_len: int = 8


def _state_table(
    recs: Sequence[Recording],
) -> tuple[list[_GlobalState], list[npt.NDArray[np.int16]]]:
    """One table for all files; per file a map from its state ids to the table's indices."""
    # Which operators define each name: a name defined by two operators is prefixed by them
    # (timer services are shared column families in the replay, so they merge by name).
    owners: dict[str, set[str]] = {}
    for r in recs:
        for s in r.states:
            owners.setdefault(s["name"], set()).add(_operator_base(r.operator))
    table: list[_GlobalState] = []
    index: dict[str, int] = {}
    maps: list[npt.NDArray[np.int16]] = []
    for r in recs:
        key_len = _modal(
            {k: int(v) for k, v in r.footer.get("key_lengths", {}).items()},
            8,
            int(r.footer.get("key_long_bytes", 0)),
        )
        local = np.zeros(max(1, len(r.states)), dtype=np.int16)
        for s in r.states:
            name = str(s["name"])
            if s["kind"] != "timers" and len(owners[name]) > 1:
                name = f"{_operator_base(r.operator)}/{name}"
            if name not in index:
                if len(table) == MAX_STATES:
                    raise TunerError(
                        f"more than {MAX_STATES:,} states in the recording: more than a trace "
                        "holds",
                        file=str(r.path),
                    )
                index[name] = len(table)
                table.append(
                    _GlobalState(
                        name=name,
                        kind=str(s["kind"]),
                        windowed=s.get("namespace") == "window",
                        ttl=bool(s.get("ttl", False)),
                        key_len=key_len,
                    )
                )
            g = table[index[name]]
            if g.kind != s["kind"]:
                raise TunerError(
                    f"state {name!r} is a {g.kind} state in one file and a {s['kind']} state "
                    "in another",
                    file=str(r.path),
                )
            uk = r.footer.get("user_key_lengths", {}).get(str(s["id"]))
            if uk:
                long_bytes = int(r.footer.get("user_key_long_bytes", {}).get(str(s["id"]), 0))
                g.user_key_len = _modal({k: int(v) for k, v in uk.items()}, 8, long_bytes)
            local[int(s["id"])] = index[name]
        maps.append(local)
    return table, maps


def _dense(values: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Dense ids 0, 1, ... in order of first appearance (a hash table: no sort)."""
    codes, _ = pd.factorize(values)
    out: npt.NDArray[np.int64] = np.asarray(codes, dtype=np.int64)
    return out


def _key_info(g: _GlobalState, n_keys: int) -> tuple[str, int]:
    if g.key_len == 8:
        return "long", 8
    digits = len(str(max(0, n_keys - 1)))
    return "string", max(g.key_len - 1, digits, 1)


def import_recording(
    directory: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    subtask: int | None = None,
) -> ImportStats:
    """Convert the recording under ``directory`` into the trace file ``output`` (see module
    docstring for the rules). ``subtask`` keeps one subtask index of each operator (one slot's
    share); default: all subtasks."""
    started = time.perf_counter()
    recs = [read_recording(f) for f in recording_files(directory)]
    jobs = {str(r.header.get("job_id")) for r in recs}
    if len(jobs) > 1:
        raise TunerError(
            f"recordings of {len(jobs)} jobs ({', '.join(sorted(jobs))}); point at one job's "
            "directory",
            file=str(directory),
        )
    if subtask is not None:
        recs = [r for r in recs if r.subtask == subtask]
        if not recs:
            raise TunerError(f"no recording of subtask {subtask}", file=str(directory))
    # A job's operators can differ: a non-parallel one (a global aggregate, as Nexmark's q5
    # has) runs with max parallelism 1. The trace has one; the largest is taken. It moves keys
    # between key groups but not the key's length while every operator's prefix is one byte
    # (max parallelism up to 128; KeyGroupRangeAssignment.computeKeyGroupPrefixBytes).
    parallelisms = {int(r.header.get("max_parallelism", 128)) for r in recs}
    max_parallelism = max(parallelisms)
    table, maps = _state_table(recs)
    for g in table:
        longest = max(g.key_len, g.user_key_len if g.kind == "map" else 0)
        if longest > MAX_REPLAYED_KEY_BYTES:
            raise TunerError(
                f"state {g.name!r} has keys or map user keys of {longest:,} bytes on average; "
                f"the replay lays out at most {MAX_REPLAYED_KEY_BYTES:,} bytes",
                file=str(directory),
            )

    def column(name: str) -> npt.NDArray[Any]:
        return np.concatenate([r.events[name] for r in recs])

    ts = column("ts")
    state = np.concatenate([m[r.events["state"]] for r, m in zip(recs, maps, strict=True)])
    n = ts.shape[0]
    # Merge files by processing time; a stable sort keeps file order within a millisecond.
    order = None if n == 0 or bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable")

    def ordered(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return values if order is None else values[order]

    ts = ordered(ts)
    ts = ts - (ts[0] if n else 0)
    state = ordered(state).astype(np.int16, copy=False)
    op = ordered(column("op"))
    flags = ordered(column("flags"))
    key = _dense(ordered(column("key")))
    n_keys = int(key.max()) + 1 if n else 0

    is_map = np.array([g.kind == "map" for g in table] or [False])[state]
    map_keyed = is_map & _MAP_KEYED[op]
    aux = ordered(column("aux"))
    user_key = np.full(n, -1, dtype=np.int64)
    if map_keyed.any():
        user_key[map_keyed] = _dense(aux[map_keyed])
    timer_ts = np.where(_TIMER_OPS[op], aux, -1)
    window = (flags & FLAG_NS_WINDOW) != 0
    ns_start = np.where(window, ordered(column("ns_a")), -1)
    ns_end = np.where(window, ordered(column("ns_b")), -1)
    timer_tables = [i for i, g in enumerate(table) if g.kind == "timers"]
    if timer_tables and window.any():
        windowed_states = np.unique(state[window])
        for i in timer_tables:
            if i in windowed_states:
                table[i].windowed = True

    size = ordered(column("size")).astype(np.int32, copy=False)
    writes = _WRITES[op]
    unknown = writes & (((flags & FLAG_SIZE_UNKNOWN) != 0) | (size < 0))
    ttl = np.array([g.ttl for g in table] or [False])[state]
    size = np.where(ttl & (size >= TTL_BYTES), size - TTL_BYTES, size)
    if unknown.any():
        for i in np.unique(state[unknown]).tolist():
            of_state = state == i
            known = writes & ~unknown & of_state
            fill = int(np.median(size[known])) if known.any() else 8
            size[unknown & of_state] = fill
    size = np.where(writes, size, 0).astype(np.int32)

    infos = []
    for g in table:
        key_type, key_size = _key_info(g, n_keys)
        infos.append(
            StateInfo(
                name=g.name,
                kind=g.kind,
                key_type=key_type,
                key_size=key_size,
                windowed=g.windowed,
                user_key_size=g.user_key_len if g.kind == "map" else 8,
                ttl=g.ttl,
            )
        )
    names = [s.name for s in infos]
    for s in infos:
        if s.kind == "timers" and not s.name.startswith(TIMER_STATE_PREFIX):
            raise TunerError(f"timer service {s.name!r} lacks the {TIMER_STATE_PREFIX} prefix")
    compressibility, sampled_bytes = recorded_compressibility(recs)
    header = StreamHeader(
        states=tuple(infos), max_parallelism=max_parallelism, compressibility=compressibility
    )
    columns = {
        "ts": ts,
        "state": state,
        "op": op.astype(np.int8),
        "key": key,
        "ns_start": ns_start,
        "ns_end": ns_end,
        "user_key": user_key,
        "value_size": size,
        "timer_ts": timer_ts,
    }
    assert set(columns) == {c for c, _ in COLUMNS}

    def batches() -> Any:
        for lo in range(0, n, BATCH_ROWS):
            yield OpBatch.from_columns(
                names, {k: v[lo : lo + BATCH_ROWS] for k, v in columns.items()}
            )

    # Records per operator: its key switches less its timer fires (InternalTimerServiceImpl.java
    # sets the timer's key before each fire); the busiest operator stands for the job's input.
    per_op: Counter[str] = Counter()
    for r in recs:
        fires = int((r.events["op"] == int(Op.FIRE_TIMER)).sum())
        per_op[_operator_base(r.operator)] += int(r.footer.get("sampled_key_switches", 0)) - fires
    share = state_time_share(recs)
    iterations = int((op == int(Op.ITERATE)).sum())
    recording = {
        "records": max(per_op.values(), default=0),
        "records_per_operator": dict(per_op),
        "duration_ms": int(ts[-1]) if n else 0,
        "sample": min(float(r.header.get("sample", 1.0)) for r in recs),
        "state_cpu_share": share.share,
        "state_cpu_share_doubt": share.doubt(iterations),
        "flink_version": str(recs[0].header.get("flink_version", "")),
    }
    write_trace(
        Path(output), header, [], batches(), extra_metadata={"recording": json.dumps(recording)}
    )
    stopped = Counter(str(r.footer["stopped"]) for r in recs if r.footer.get("stopped"))
    return ImportStats(
        files=len(recs),
        events=n,
        states=header.states,
        seconds=time.perf_counter() - started,
        dropped_events=sum(int(r.footer.get("dropped_events", 0)) for r in recs),
        stopped=dict(stopped),
        other_namespaces=int(((flags & FLAG_NS_OTHER) != 0).sum()),
        iterations=iterations,
        time_share=share,
        max_parallelisms=tuple(sorted(parallelisms)),
        compressibility=compressibility,
        compressibility_bytes=sampled_bytes,
    )
