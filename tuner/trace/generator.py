"""The generator: a :class:`~tuner.workload.Workload` becomes a stream of state calls.

Two phases, each deterministic from ``workload.seed`` with seeds derived independently (so a
change of ``replay.records`` leaves the preload untouched):

``preload``
    The state the job has built before we start measuring: ``preload_fraction`` of each state's
    keys, written in random key order (Flink state grows in input order, not key order; for
    ``sequential``/``latest`` popularity the input order *is* id order). Value, reducing and
    aggregating states get one UPDATE per key, lists ``elements_per_key`` ADDs, maps
    ``entries_per_key`` PUTs. Windowed states get the windows that contain time 0 (the ones in
    flight when measuring starts) and their window timers. Preload rows carry negative times, as
    if the keys had arrived at ``records_per_second`` before time 0, so TTL expiry is staggered.

``measure``
    ``replay.records`` input records; record ``i`` has event time
    ``i * 1000 // records_per_second``.
    Each state sees ``accesses_per_record`` calls per record, each with an operation drawn by the
    ``operations`` shares and a key drawn by ``popularity``. On top of that, what Flink itself does:
    window namespaces and window timers, TTL cleanup on read, user timers, and the job's own
    cleanup of lists that reached ``elements_per_key`` elements.

Modelling choices (what a reader of a replay result should know):

* The watermark is ``ts - 1`` of the current record (in-order input, zero out-of-orderness), so a
  timer at ``T`` fires just before the first record with ``ts > T``. Processing-time timers use the
  same clock. Timers still pending when the measure phase ends are not fired.
* Every access to a window registers its timer twice, as WindowOperator does per element (the
  trigger's timer and the cleanup timer, equal with zero allowed lateness); only the first
  registration of a (key, window) adds a timer that will fire. A fire is followed by the
  window's GET and CLEAR and the DELETE_TIMER of Trigger.clear. The preload writes the state
  this leaves (one timer per window in flight), not the calls that built it. Each windowed
  state behaves as its own window operator (its own timers), all sharing one
  ``_timer_state/event_window-timers`` column family.
* TTL is tracked per key (not per map entry or list element) and only on non-windowed states;
  windowed states are cleaned by their window timers. An expired GET is followed by a CLEAR.
* A list whose key reached ``elements_per_key`` appends is cleared right after that append.
  Preloaded lists hold ``elements_per_key`` elements, but their append counters start at a random
  point of the cycle (a running job's lists are not all due for cleanup at once).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from tuner.errors import TunerError
from tuner.trace.ops import COLUMNS, TIMER_STATE_PREFIX, Op, OpBatch, StateInfo, StreamHeader
from tuner.workload import OPERATIONS, SizeDist, StateSpec, Workload, timer_service

__all__ = [
    "PROCESSING_USER_TIMERS",
    "USER_TIMERS",
    "WINDOW_TIMERS",
    "Phase",
    "generate",
    "stream_header",
]

Phase = Literal["preload", "measure"]

# Timer column families: InternalTimeServiceManagerImpl.java prefixes "_timer_state/event_" or
# "_timer_state/processing_" to the service name; WindowOperator.java names its service
# "window-timers", KeyedProcessOperator.java "user-timers".
WINDOW_TIMERS = f"{TIMER_STATE_PREFIX}event_window-timers"
USER_TIMERS = f"{TIMER_STATE_PREFIX}event_user-timers"
PROCESSING_USER_TIMERS = f"{TIMER_STATE_PREFIX}processing_user-timers"

I64 = npt.NDArray[np.int64]
_ABSENT = np.iinfo(np.int64).min  # "no live value" in the last-write table
_WRITES = (int(Op.UPDATE), int(Op.ADD), int(Op.PUT))
_PER_ENTRY = (
    int(Op.GET),
    int(Op.PUT),
    int(Op.REMOVE),
    int(Op.CONTAINS),
)  # map calls on one user key

# Sub-streams of the seed: each purpose gets its own generator so that adding draws to one never
# shifts another (the preload's key order must not depend on how many records are measured).
# Rows generated per internal chunk. Fixed, not the caller's batch size, so that the stream does
# not depend on how it is cut into batches.
_CHUNK_ROWS = 50_000

_PRELOAD_ORDER, _PRELOAD_VALUES, _KEYSPACE, _MEASURE, _LIST_PHASE = 1, 2, 3, 4, 5


def _rng(seed: int, purpose: int, state: int) -> np.random.Generator:
    ss = np.random.SeedSequence([seed % (1 << 64), purpose, state])
    return np.random.Generator(np.random.PCG64(ss))


# --------------------------------------------------------------------------------------------
# Header


_TIMER_COLUMN_FAMILIES = {
    "window": WINDOW_TIMERS,
    "event": USER_TIMERS,
    "processing": PROCESSING_USER_TIMERS,
}


def _timer_state(spec: StateSpec) -> str | None:
    service = timer_service(spec)
    return None if service is None else _TIMER_COLUMN_FAMILIES[service]


def stream_header(workload: Workload) -> StreamHeader:
    """The state table of ``workload``'s stream: its states, then one entry per timer service.

    Timer states take the key type of the first state that uses them (one job has one key type).
    A state with both a window and user timers registers window timers only: Flink's
    WindowOperator has no user timer service.
    """
    infos = [
        StateInfo(
            name=s.name,
            kind=s.kind,
            key_type=s.key_type,
            key_size=8 if s.key_type == "long" else s.key_size,
            windowed=s.window is not None,
            user_key_size=s.user_key_size,
            ttl=s.ttl_ms is not None,
        )
        for s in workload.states
    ]
    seen: set[str] = set()
    for s in workload.states:
        name = _timer_state(s)
        if name is None or name in seen:
            continue
        seen.add(name)
        infos.append(
            StateInfo(
                name=name,
                kind="timers",
                key_type=s.key_type,
                key_size=8 if s.key_type == "long" else s.key_size,
                windowed=name == WINDOW_TIMERS,
            )
        )
    return StreamHeader(
        states=tuple(infos),
        max_parallelism=workload.max_parallelism,
        compressibility=workload.compressibility,
    )


# --------------------------------------------------------------------------------------------
# Draws: keys, operations, sizes


def _op_sequences(kind: str) -> dict[str, tuple[Op, ...]]:
    """Workload operation names -> the state calls each makes."""
    if kind == "list":
        return {
            "read": (Op.GET,),
            "append": (Op.ADD,),
            "update": (Op.UPDATE,),
            "clear": (Op.CLEAR,),
        }
    if kind == "map":
        return {
            "get": (Op.GET,),
            "put": (Op.PUT,),
            "remove": (Op.REMOVE,),
            "contains": (Op.CONTAINS,),
            "iterate": (Op.ITERATE,),
            "clear": (Op.CLEAR,),
        }
    # ValueState.update vs ReducingState/AggregatingState.add: the latter merges into the value.
    write = Op.UPDATE if kind == "value" else Op.ADD
    return {
        "read": (Op.GET,),
        "update": (write,),
        "read_update": (Op.GET, write),
        "clear": (Op.CLEAR,),
    }


def draw_sizes(rng: np.random.Generator, dist: SizeDist, n: int) -> npt.NDArray[np.int32]:
    """``n`` value sizes in bytes from ``dist``, clipped to ``[dist.min, dist.max]``.

    fixed: ``value``; uniform: integers in ``[min, max]``; normal: mean ``value``, stddev
    ``sigma`` bytes; lognormal: mean ``value``, ``sigma`` of the log.
    """
    if dist.kind == "fixed":
        raw = np.full(n, dist.value, dtype=np.float64)
    elif dist.kind == "uniform":
        return rng.integers(dist.min, dist.max, size=n, endpoint=True).astype(np.int32)
    elif dist.kind == "normal":
        raw = rng.normal(dist.value, dist.sigma, size=n)
    else:
        # mu chosen so that the mean of the distribution is `value`, not its median.
        mu = math.log(max(dist.value, 1)) - dist.sigma**2 / 2
        raw = rng.lognormal(mu, dist.sigma, size=n)
    return np.clip(np.rint(raw), dist.min, dist.max).astype(np.int32)


@dataclass
class _KeyChooser:
    """Draws key ids for one state by its popularity."""

    spec: StateSpec
    first_new: int  # sequential/latest: the id of the first key not written by the preload
    perm: I64 | None = None  # rank -> key id, so that hot ranks are scattered over the ids
    cdf: npt.NDArray[np.float64] | None = None  # zipf/latest: over ranks 0..keys-1

    @staticmethod
    def build(spec: StateSpec, seed: int, index: int, first_new: int) -> _KeyChooser:
        pop = spec.popularity
        chooser = _KeyChooser(spec, first_new)
        if pop.kind in ("zipf", "hotset"):
            chooser.perm = _rng(seed, _KEYSPACE, index).permutation(spec.keys).astype(np.int64)
        if pop.kind in ("zipf", "latest"):
            weights = np.arange(1, spec.keys + 1, dtype=np.float64) ** -pop.exponent
            cdf = np.cumsum(weights)
            chooser.cdf = cdf / cdf[-1]
        return chooser

    def _zipf_ranks(self, rng: np.random.Generator, n: int) -> I64:
        assert self.cdf is not None
        ranks = np.searchsorted(self.cdf, rng.random(n), side="right")
        return np.minimum(ranks, self.spec.keys - 1).astype(np.int64)

    def draw(self, rng: np.random.Generator, rec: I64) -> I64:
        """Key ids for accesses made by records ``rec`` (sequential/latest depend on it)."""
        n, keys, pop = rec.shape[0], self.spec.keys, self.spec.popularity
        if pop.kind == "uniform":
            return np.asarray(rng.integers(0, keys, size=n), dtype=np.int64)
        if pop.kind == "sequential":
            return np.asarray((rec + self.first_new) % keys, dtype=np.int64)
        if pop.kind == "latest":
            # YCSB's "latest": zipf over age, the newest id being the record's own.
            age = self._zipf_ranks(rng, n)
            return np.asarray((rec + self.first_new - age) % keys, dtype=np.int64)
        assert self.perm is not None
        if pop.kind == "zipf":
            return np.asarray(self.perm[self._zipf_ranks(rng, n)], dtype=np.int64)
        hot = min(keys - 1, max(1, round(pop.hot_fraction * keys)))
        if hot < 1:  # a single key: nothing to split
            return np.zeros(n, dtype=np.int64)
        is_hot = rng.random(n) < pop.hot_share
        ranks = np.where(is_hot, rng.integers(0, hot, size=n), rng.integers(hot, keys, size=n))
        return np.asarray(self.perm[ranks], dtype=np.int64)


def _windows_of(ts: I64, size: int, slide: int) -> tuple[I64, I64]:
    """(index into ts, window start) for every window containing each ts, latest start first."""
    # SlidingEventTimeWindows.assignWindows: start = ts - ts % slide, then down by slide while
    # start > ts - size (TumblingEventTimeWindows is the slide == size case).
    last = ts - np.mod(ts, slide)
    count = (last - (ts - size) - 1) // slide + 1
    src = np.repeat(np.arange(ts.shape[0]), count)
    offsets = np.arange(src.shape[0]) - np.repeat(np.cumsum(count) - count, count)
    return src, last[src] - offsets * slide


# --------------------------------------------------------------------------------------------
# Rows under construction: the OpBatch columns plus the keys that order them


_SORT = ("rec", "group", "sub", "owner", "seq")


@dataclass
class _Rows:
    cols: dict[str, npt.NDArray[np.generic]]

    @staticmethod
    def make(n: int, **given: npt.ArrayLike) -> _Rows:
        defaults = {"ns_start": -1, "ns_end": -1, "user_key": -1, "value_size": 0, "timer_ts": -1}
        cols: dict[str, npt.NDArray[np.generic]] = {}
        for name, dtype in (*COLUMNS, *((s, "int64") for s in _SORT)):
            value = given.get(name, defaults.get(name, 0))
            cols[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,))
        return _Rows(cols)

    @staticmethod
    def concat(parts: Sequence[_Rows]) -> _Rows:
        return _Rows({k: np.concatenate([p.cols[k] for p in parts]) for k in parts[0].cols})

    def __len__(self) -> int:
        return int(self.cols["ts"].shape[0])

    def take(self, index: npt.NDArray[np.intp] | slice) -> _Rows:
        return _Rows({k: v[index] for k, v in self.cols.items()})

    def ordered(self) -> _Rows:
        order = np.lexsort(tuple(self.cols[k] for k in reversed(_SORT)))
        return self.take(order)


def _batches(chunks: Iterator[_Rows], names: tuple[str, ...], size: int) -> Iterator[OpBatch]:
    """Cut a stream of row chunks into batches of exactly ``size`` rows (the last may be short)."""
    pending: list[_Rows] = []
    held = 0
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        pending.append(chunk)
        held += len(chunk)
        if held < size:
            continue
        rows = _Rows.concat(pending)
        cut = len(rows) - len(rows) % size
        for start in range(0, cut, size):
            part = rows.take(slice(start, start + size))
            yield OpBatch.from_columns(names, dict(part.cols))
        pending = [rows.take(slice(cut, None))]
        held = len(rows) - cut
    if held:
        yield OpBatch.from_columns(names, dict(_Rows.concat(pending).cols))


# --------------------------------------------------------------------------------------------
# Per-state plan shared by both phases


@dataclass
class _StatePlan:
    index: int
    spec: StateSpec
    timer_index: int  # index of its timer state in the header, or -1
    preload_keys: I64  # key ids in preload order
    preload_ts: I64  # the time each preloaded key was written

    @property
    def cap(self) -> int:
        """Elements after which the job clears a list (0: no such cleanup)."""
        if self.spec.kind == "list" and self.spec.window is None:
            return max(1, self.spec.elements_per_key)
        return 0

    def preload_windows(self) -> I64:
        """Starts of the windows in flight at time 0 (those that contain it)."""
        w = self.spec.window
        if w is None:
            return np.full(1, -1, dtype=np.int64)
        return _windows_of(np.zeros(1, dtype=np.int64), w.size_ms, w.slide_ms)[1]


def _plans(workload: Workload, header: StreamHeader) -> list[_StatePlan]:
    names = header.names
    counts = [round(workload.replay.preload_fraction * s.keys) for s in workload.states]
    # Preloaded keys arrive at the input rate and end at time 0; the largest state sets the span.
    span = max(1, max(counts, default=0) * 1000 // max(1, workload.replay.records_per_second))
    plans = []
    for i, (spec, n) in enumerate(zip(workload.states, counts, strict=True)):
        if spec.popularity.kind in ("sequential", "latest"):
            keys = np.arange(n, dtype=np.int64)
        else:
            keys = (
                _rng(workload.seed, _PRELOAD_ORDER, i).permutation(spec.keys)[:n].astype(np.int64)
            )
        ts = -((n - np.arange(n, dtype=np.int64)) * span // max(n, 1))
        timer = _timer_state(spec)
        plans.append(_StatePlan(i, spec, names.index(timer) if timer else -1, keys, ts))
    return plans


# Key ids are int64, and a timer's code is ``end_ts * keys + key``: this many keys keep it exact.
MAX_KEYS = (1 << 31) - 1


def _key_table_bytes(spec: StateSpec) -> int:
    """The generator's peak memory per key of a state: the preload's permutation (and its
    int64 copy); zipf and hotset a rank permutation; zipf and latest weights, their sums and
    the CDF; a window's per-key arrays."""
    per_key = 16
    if spec.popularity.kind in ("zipf", "hotset"):
        per_key += 16
    if spec.popularity.kind in ("zipf", "latest"):
        per_key += 24
    if spec.window is not None:
        per_key += 16
    return per_key * spec.keys


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that says
        return None


def _check_keys(workload: Workload) -> None:
    """Refuse key counts the generator cannot hold before it allocates its per-key tables."""
    for i, s in enumerate(workload.states):
        if s.keys > MAX_KEYS:
            raise TunerError(
                f"`keys <= {MAX_KEYS:,}` must hold for the generator, but got keys={s.keys:,}; "
                "replay a scaled model (scale: 1/100)",
                file=workload.source,
                where=f"states[{i}].keys",
            )
    need = sum(_key_table_bytes(s) for s in workload.states)
    memory = _physical_memory()
    if memory is not None and need > memory:
        biggest = max(range(len(workload.states)), key=lambda i: workload.states[i].keys)
        raise TunerError(
            f"the generator's key tables need {need / (1 << 30):,.1f} GiB, more than this "
            f"machine's {memory / (1 << 30):,.1f} GiB of memory; replay a scaled model "
            "(scale: 1/100)",
            file=workload.source,
            where=f"states[{biggest}].keys",
        )


def _check(workload: Workload) -> None:
    for i, s in enumerate(workload.states):
        where = f"states[{i}]"
        if s.keys < 1:
            raise TunerError(f"`keys >= 1` must hold, but got keys={s.keys}", where=where)
        known = OPERATIONS.get(s.kind, ())
        for name, share in s.operations:
            if name not in known:
                raise TunerError(
                    f"{s.kind} state has no operation {name!r} (known: {', '.join(known)})",
                    where=f"{where}.operations",
                )
            if share < 0:
                raise TunerError(f"`share >= 0` must hold, but got {name}: {share}", where=where)
        if sum(share for _, share in s.operations) <= 0:
            raise TunerError(
                "operation shares must sum to more than 0", where=f"{where}.operations"
            )
        if s.window is not None and (s.window.size_ms < 1 or s.window.slide_ms < 1):
            raise TunerError("window size and slide must be at least 1 ms", where=f"{where}.window")
    if workload.replay.records_per_second < 1:
        raise TunerError("`records_per_second >= 1` must hold", where="replay.records_per_second")
    _check_keys(workload)


# --------------------------------------------------------------------------------------------
# Preload


def _preload_chunks(workload: Workload, plans: list[_StatePlan]) -> Iterator[_Rows]:
    per_key = []
    for p in plans:
        width = {"list": p.spec.elements_per_key, "map": p.spec.entries_per_key}.get(p.spec.kind, 1)
        per_key.append(max(1, width))
    total = sum(
        len(p.preload_keys) * w * (p.preload_windows().shape[0] + 1)
        for p, w in zip(plans, per_key, strict=True)
    )
    n_chunks = max(1, -(-total // _CHUNK_ROWS))
    rngs = [_rng(workload.seed, _PRELOAD_VALUES, p.index) for p in plans]
    for c in range(n_chunks):
        parts = []
        for p, width, rng in zip(plans, per_key, rngs, strict=True):
            n = len(p.preload_keys)
            lo, hi = c * n // n_chunks, (c + 1) * n // n_chunks
            if hi > lo:
                parts.append(_preload_rows(p, width, rng, lo, hi))
        if parts:
            yield _Rows.concat(parts).ordered()


def _preload_rows(p: _StatePlan, width: int, rng: np.random.Generator, lo: int, hi: int) -> _Rows:
    spec = p.spec
    keys, ts = p.preload_keys[lo:hi], p.preload_ts[lo:hi]
    starts = p.preload_windows()
    n_win = starts.shape[0]
    # One unit per (key, window); each unit writes `width` rows then, if windowed, its timer.
    unit_key = np.repeat(keys, n_win)
    unit_start = np.tile(starts, keys.shape[0])
    unit_pos = np.repeat(np.arange(lo, hi, dtype=np.int64), n_win)
    unit_ts = np.repeat(ts, n_win)
    windowed = spec.window is not None
    size_ms = spec.window.size_ms if spec.window is not None else 0
    if windowed:
        unit_ts = np.maximum(unit_ts, unit_start)  # a window holds no element from before it
    n_units = unit_key.shape[0]
    unit_order = unit_pos * n_win + np.tile(np.arange(n_win), keys.shape[0])
    op = {"list": Op.ADD, "map": Op.PUT}.get(spec.kind, Op.UPDATE)
    rows = n_units * width
    idx = np.repeat(np.arange(n_units), width)
    writes = _Rows.make(
        rows,
        ts=unit_ts[idx],
        state=p.index,
        op=int(op),
        key=unit_key[idx],
        ns_start=unit_start[idx] if windowed else -1,
        ns_end=unit_start[idx] + size_ms if windowed else -1,
        user_key=np.tile(np.arange(width), n_units) if spec.kind == "map" else -1,
        value_size=draw_sizes(rng, spec.value_size, rows),
        rec=unit_ts[idx],
        owner=p.index,
        sub=unit_order[idx],
        seq=np.tile(np.arange(width), n_units),
    )
    if not windowed:
        return writes
    timers = _Rows.make(
        n_units,
        ts=unit_ts,
        state=p.timer_index,
        op=int(Op.REGISTER_TIMER),
        key=unit_key,
        ns_start=unit_start,
        ns_end=unit_start + size_ms,
        timer_ts=unit_start + size_ms - 1,
        rec=unit_ts,
        owner=p.index,
        sub=unit_order,
        seq=width,
    )
    # `sub` + `seq` keep each key's rows together and its timer after its writes.
    return _Rows.concat([writes, timers])


# --------------------------------------------------------------------------------------------
# Measure


@dataclass
class _Timers:
    """Registered timers not yet fired, as columns (one owner state each)."""

    ts: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    key: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    ns_start: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    code: I64 = field(default_factory=lambda: np.empty(0, np.int64))

    def add(self, ts: I64, key: I64, ns_start: I64, code: I64) -> None:
        self.ts = np.concatenate([self.ts, ts])
        self.key = np.concatenate([self.key, key])
        self.ns_start = np.concatenate([self.ns_start, ns_start])
        self.code = np.concatenate([self.code, code])

    def pop_due(self, before: int) -> tuple[I64, I64, I64]:
        """Remove and return (ts, key, ns_start) of timers with ``ts < before``, in fire order."""
        due = self.ts < before
        out = self.ts[due], self.key[due], self.ns_start[due]
        keep = ~due
        self.ts, self.key = self.ts[keep], self.key[keep]
        self.ns_start, self.code = self.ns_start[keep], self.code[keep]
        order = np.lexsort((out[2], out[1], out[0]))
        return out[0][order], out[1][order], out[2][order]


def _new_codes(code: I64, pending: I64) -> npt.NDArray[np.bool_]:
    """True where ``code`` appears for the first time and is not pending (a timer set's add)."""
    _, first = np.unique(code, return_index=True)
    fresh = np.zeros(code.shape[0], dtype=bool)
    fresh[first] = True
    return fresh & ~np.isin(code, pending)


@dataclass
class _Measure:
    """One state's mutable measure-phase state: what Flink keeps between records."""

    plan: _StatePlan
    chooser: _KeyChooser
    rng: np.random.Generator
    op_table: npt.NDArray[np.int8]  # [operation index, step] -> Op code
    op_len: I64
    op_cdf: npt.NDArray[np.float64]
    last_write: I64 | None  # TTL: last write time per key, _ABSENT when no live value
    count: I64 | None  # list cleanup: elements per key
    timers: _Timers


def _measure_states(workload: Workload, plans: list[_StatePlan]) -> list[_Measure]:
    out = []
    for p in plans:
        spec = p.spec
        seqs = _op_sequences(spec.kind)
        names = [n for n, _ in spec.operations]
        shares = np.array([s for _, s in spec.operations], dtype=np.float64)
        width = max(len(seqs[n]) for n in names)
        table = np.zeros((len(names), width), dtype=np.int8)
        for r, n in enumerate(names):
            table[r, : len(seqs[n])] = [int(o) for o in seqs[n]]
        n_pre = len(p.preload_keys)
        last = count = None
        if spec.ttl_ms is not None and spec.window is None:
            last = np.full(spec.keys, _ABSENT, dtype=np.int64)
            last[p.preload_keys] = p.preload_ts
        if p.cap:
            count = np.zeros(spec.keys, dtype=np.int64)
            # A random phase of the cleanup cycle: starting every preloaded list full would clear
            # them all on their first append, a burst no running job shows.
            phase = _rng(workload.seed, _LIST_PHASE, p.index).integers(0, p.cap, size=n_pre)
            count[p.preload_keys] = phase
        timers = _Timers()
        if spec.window is not None and n_pre:
            starts = p.preload_windows()
            key = np.repeat(p.preload_keys, starts.shape[0])
            start = np.tile(starts, n_pre)
            end_ts = start + spec.window.size_ms - 1
            timers.add(end_ts, key, start, end_ts * spec.keys + key)
        out.append(
            _Measure(
                plan=p,
                chooser=_KeyChooser.build(spec, workload.seed, p.index, n_pre % spec.keys),
                rng=_rng(workload.seed, _MEASURE, p.index),
                op_table=table,
                op_len=np.array([len(seqs[n]) for n in names], dtype=np.int64),
                op_cdf=np.cumsum(shares) / shares.sum(),
                last_write=last,
                count=count,
                timers=timers,
            )
        )
    return out


def _self_clears(m: _Measure, op: I64, key: I64, ts: I64) -> list[int]:
    """Rows after which Flink (TTL) or the job (full list) clears the key; updates the tables.

    A Python loop because each row depends on the ones before it for the same key.
    """
    last, count, cap = m.last_write, m.count, m.plan.cap
    ttl = m.plan.spec.ttl_ms
    get, add, update, clear = int(Op.GET), int(Op.ADD), int(Op.UPDATE), int(Op.CLEAR)
    after: list[int] = []
    for i, (o, k, t) in enumerate(zip(op.tolist(), key.tolist(), ts.tolist(), strict=True)):
        if o == get:
            if last is not None and ttl is not None:
                lw = last.item(k)
                # AbstractTtlDecorator.getWithTtlCheckAndUpdate: expired (last + ttl <= now) ->
                # stateClear, then the read returns nothing.
                if lw != _ABSENT and lw + ttl <= t:
                    after.append(i)
                    last[k] = _ABSENT
                    if count is not None:
                        count[k] = 0
        elif o == clear:
            if last is not None:
                last[k] = _ABSENT
            if count is not None:
                count[k] = 0
        elif o in _WRITES:
            if count is not None and o == add:
                c = count.item(k) + 1
                if c >= cap:
                    after.append(i)
                    count[k] = 0
                    if last is not None:
                        last[k] = _ABSENT
                    continue
                count[k] = c
            elif count is not None and o == update:
                count[k] = 1
            if last is not None:
                last[k] = t
    return after


def _access_rows(m: _Measure, rec: I64, rec_ts: I64, r0: int) -> tuple[_Rows, I64]:
    """This state's calls for records ``rec`` (sorted); also each record's first key (or -1)."""
    spec, p, rng = m.plan.spec, m.plan, m.rng
    n_rec = rec.shape[0]
    whole = int(spec.accesses_per_record)
    frac = spec.accesses_per_record - whole
    per_rec = np.full(n_rec, whole, dtype=np.int64)
    if frac > 0:
        per_rec += rng.random(n_rec) < frac
    a_rec = np.repeat(rec, per_rec)
    a_key = m.chooser.draw(rng, a_rec)
    a_name = np.searchsorted(m.op_cdf, rng.random(a_rec.shape[0]), side="right")
    a_name = np.minimum(a_name, m.op_cdf.shape[0] - 1)
    a_ts = rec_ts[a_rec - r0]
    first_key = np.full(n_rec, -1, dtype=np.int64)
    has = per_rec > 0
    first_key[has] = a_key[(np.cumsum(per_rec) - per_rec)[has]]

    # Windows: each access goes to every window containing its time (WindowOperator.java).
    if spec.window is not None:
        src, a_start = _windows_of(a_ts, spec.window.size_ms, spec.window.slide_ms)
        a_rec, a_key, a_name, a_ts = a_rec[src], a_key[src], a_name[src], a_ts[src]
        a_end = a_start + spec.window.size_ms
    else:
        a_start = a_end = np.full(a_rec.shape[0], -1, dtype=np.int64)

    # Expand each access into its calls (read_update is a GET then an UPDATE/ADD).
    n_ops = m.op_len[a_name]
    src = np.repeat(np.arange(a_rec.shape[0]), n_ops)
    step = np.arange(src.shape[0]) - np.repeat(np.cumsum(n_ops) - n_ops, n_ops)
    op = m.op_table[a_name[src], step].astype(np.int64)
    is_write = np.isin(op, _WRITES)
    sizes = np.where(is_write, draw_sizes(rng, spec.value_size, src.shape[0]), 0)
    user_key = np.full(src.shape[0], -1, dtype=np.int64)
    if spec.kind == "map":
        per_entry = np.isin(op, _PER_ENTRY)
        drawn = rng.integers(0, max(1, spec.entries_per_key), size=a_rec.shape[0])[src]
        user_key[per_entry] = drawn[per_entry]
    rows = _Rows.make(
        src.shape[0],
        ts=a_ts[src],
        state=p.index,
        op=op,
        key=a_key[src],
        ns_start=a_start[src],
        ns_end=a_end[src],
        user_key=user_key,
        value_size=sizes,
        rec=a_rec[src],
        group=1,
        owner=p.index,
    )

    if m.last_write is not None or m.count is not None:
        after = _self_clears(m, op, a_key[src], a_ts[src])
        if after:
            at = np.asarray(after, dtype=np.intp)
            clears = rows.take(at)
            clears.cols["op"] = np.full(at.shape[0], int(Op.CLEAR), dtype=np.int8)
            clears.cols["value_size"] = np.zeros(at.shape[0], dtype=np.int32)
            rows = _Rows({k: np.insert(v, at + 1, clears.cols[k]) for k, v in rows.cols.items()})

    if spec.window is not None and len(rows):
        # WindowOperator.processElement, per element and window: windowState.add, then
        # EventTimeTrigger.onElement registers a timer at window.maxTimestamp() (TimeWindow.java:
        # end - 1), then registerCleanupTimer registers maxTimestamp + allowedLateness (0 here):
        # the same timer twice. The timer queue is a set, so only a new one will fire; the
        # repeats still reach RocksDBCachingPriorityQueueSet.add, where those its key-group cache
        # does not absorb become batched puts.
        end_ts = a_end - 1
        code = end_ts * spec.keys + a_key
        fresh = _new_codes(code, m.timers.code)
        m.timers.add(end_ts[fresh], a_key[fresh], a_start[fresh], code[fresh])
        unit_last = np.cumsum(n_ops) - 1
        twice = np.repeat(np.arange(unit_last.shape[0]), 2)
        at = unit_last[twice]
        regs = rows.take(at)
        regs.cols.update(
            state=np.full(at.shape[0], p.timer_index, dtype=np.int16),
            op=np.full(at.shape[0], int(Op.REGISTER_TIMER), dtype=np.int8),
            user_key=np.full(at.shape[0], -1, dtype=np.int64),
            value_size=np.zeros(at.shape[0], dtype=np.int32),
            timer_ts=end_ts[twice],
        )
        rows = _Rows({k: np.insert(v, at + 1, regs.cols[k]) for k, v in rows.cols.items()})
    rows.cols["seq"] = np.arange(len(rows), dtype=np.int64)
    return rows, first_key


def _user_timer_rows(m: _Measure, rec: I64, rec_ts: I64, first_key: I64, seq0: int) -> _Rows:
    spec = m.plan.spec
    assert spec.timers is not None
    rng = m.rng
    whole = int(spec.timers.per_record)
    frac = spec.timers.per_record - whole
    n = np.full(rec.shape[0], whole, dtype=np.int64)
    if frac > 0:
        n += rng.random(rec.shape[0]) < frac
    t_rec = np.repeat(rec, n)
    key = np.repeat(first_key, n)
    absent = key < 0  # the record made no access to this state: the key is still its own
    if absent.any():
        key[absent] = m.chooser.draw(rng, t_rec[absent])
    t_ts = rec_ts[t_rec - rec[0]] + spec.timers.delay_ms
    code = t_ts * spec.keys + key
    fresh = _new_codes(code, m.timers.code)
    m.timers.add(t_ts[fresh], key[fresh], np.full(int(fresh.sum()), -1, np.int64), code[fresh])
    return _Rows.make(
        t_rec.shape[0],
        ts=rec_ts[t_rec - rec[0]],
        state=m.plan.timer_index,
        op=int(Op.REGISTER_TIMER),
        key=key,
        timer_ts=t_ts,
        rec=t_rec,
        group=1,
        owner=m.plan.index,
        seq=seq0 + np.arange(t_rec.shape[0]),
    )


def _fire_rows(m: _Measure, r1: int, rps: int) -> _Rows:
    """Timers due before record ``r1``, fired in timestamp order; windows also emit and clear."""
    # A timer at T fires before the first record with ts > T (watermark = ts - 1, as
    # BoundedOutOfOrdernessWatermarks.java emits with zero out-of-orderness): that record is
    # ceil((T + 1) * rps / 1000), and it comes before r1 exactly when T < ts(r1 - 1).
    t, key, start = m.timers.pop_due((r1 - 1) * 1000 // rps)
    n = t.shape[0]
    fire_rec = -(-(t + 1) * rps // 1000)
    spec, p = m.plan.spec, m.plan
    size_ms = spec.window.size_ms if spec.window is not None else 0
    calls = [(p.timer_index, Op.FIRE_TIMER)]
    if spec.window is not None:
        # WindowOperator.onEventTime: FIRE emits windowState.get(), then clearAllState clears
        # the window state and calls Trigger.clear, whose EventTimeTrigger.clear deletes the
        # (already fired) timer: a batched delete in RocksDBCachingPriorityQueueSet.remove.
        calls += [(p.index, Op.GET), (p.index, Op.CLEAR), (p.timer_index, Op.DELETE_TIMER)]
    steps = len(calls)
    parts = [
        _Rows.make(
            n,
            ts=fire_rec * 1000 // rps,
            state=state,
            op=int(op),
            key=key,
            ns_start=start,
            ns_end=start + size_ms if spec.window is not None else -1,
            timer_ts=t if op in (Op.FIRE_TIMER, Op.DELETE_TIMER) else -1,
            rec=fire_rec,
            group=0,
            sub=t,
            owner=p.index,
            seq=np.arange(n) * steps + step,
        )
        for step, (state, op) in enumerate(calls)
    ]
    return _Rows.concat(parts)


def _measure_chunks(workload: Workload, plans: list[_StatePlan]) -> Iterator[_Rows]:
    rps = workload.replay.records_per_second
    records = workload.replay.records
    states = _measure_states(workload, plans)
    per_record = 0.0
    for s in workload.states:
        n_win = -(-s.window.size_ms // s.window.slide_ms) if s.window else 1
        per_record += s.accesses_per_record * n_win * 1.5 + (s.timers.per_record if s.timers else 0)
    step = max(1, int(_CHUNK_ROWS / max(per_record, 1e-3)))
    for r0 in range(0, records, step):
        r1 = min(records, r0 + step)
        rec = np.arange(r0, r1, dtype=np.int64)
        rec_ts = rec * 1000 // rps
        parts = []
        for m in states:
            rows, first_key = _access_rows(m, rec, rec_ts, r0)
            parts.append(rows)
            if m.plan.spec.timers is not None and m.plan.spec.window is None:
                parts.append(_user_timer_rows(m, rec, rec_ts, first_key, len(rows)))
            # Fires after registration: a timer registered in this chunk may be due in it too.
            if m.plan.timer_index >= 0:
                parts.append(_fire_rows(m, r1, rps))
        yield _Rows.concat(parts).ordered()


def generate(workload: Workload, phase: Phase, batch_size: int = 50_000) -> Iterator[OpBatch]:
    """The state calls of one phase of ``workload``, in batches of ``batch_size`` rows.

    Deterministic from ``workload.seed``; the two phases draw from independent seeds. Batches
    name their states by :func:`stream_header`.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size >= 1` must hold, but got {batch_size=}")
    if phase not in ("preload", "measure"):
        raise ValueError(f"phase must be 'preload' or 'measure', got {phase!r}")
    _check(workload)
    header = stream_header(workload)
    plans = _plans(workload, header)
    chunks = (
        _preload_chunks(workload, plans) if phase == "preload" else _measure_chunks(workload, plans)
    )
    yield from _batches(chunks, header.names, batch_size)
