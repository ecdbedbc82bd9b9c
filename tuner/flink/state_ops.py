"""What each Flink state call becomes in RocksDB, and the executor that replays a batch of them.

The table :data:`ROCKSDB_CALLS` is the knowledge, as data (the README quotes it); the
:class:`StateOpExecutor` carries it out against any storage that offers the five primitives of
:class:`ColumnOps` (get, put, delete, an ordered scan, an atomic write batch). The real engine hands
it rocksdict column families, the fake engine Python dicts, so both replay the same Flink semantics.

Sources: flink-state-backends/flink-statebackend-rocksdb/.../state/rocksdb/RocksDB{Value,List,Map,
Reducing,Aggregating}State.java and RocksDBCachingPriorityQueueSet.java.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from tuner.flink.keys import KeyLayout, payload_pool, rows_to_bytes, value_headers
from tuner.trace.ops import Op, OpBatch, StateInfo, StreamHeader

# (state kind, call) -> the RocksDB calls Flink issues for it.
ROCKSDB_CALLS: dict[tuple[str, Op], str] = {
    ("value", Op.GET): "get(key|ns)",  # RocksDBValueState.value
    ("value", Op.UPDATE): "put(key|ns, value)",  # RocksDBValueState.update
    ("value", Op.CLEAR): "delete(key|ns)",  # AbstractRocksDBState.clear
    ("reducing", Op.GET): "get(key|ns)",  # RocksDBReducingState.get
    ("reducing", Op.ADD): "get(key|ns) + put(key|ns, reduced)",  # RocksDBReducingState.add
    ("reducing", Op.UPDATE): "put(key|ns, value)",  # AbstractRocksDBAppendingState.updateInternal
    ("reducing", Op.CLEAR): "delete(key|ns)",
    ("aggregating", Op.GET): "get(key|ns)",  # RocksDBAggregatingState.get
    ("aggregating", Op.ADD): "get(key|ns) + put(key|ns, acc)",  # RocksDBAggregatingState.add
    ("aggregating", Op.UPDATE): "put(key|ns, acc)",  # AbstractRocksDBAppendingState.updateInternal
    ("aggregating", Op.CLEAR): "delete(key|ns)",
    ("list", Op.GET): "get(key|ns): merge operands combined on read",  # RocksDBListState.get
    ("list", Op.ADD): "merge(key|ns, element)",  # RocksDBListState.add
    ("list", Op.UPDATE): "put(key|ns, all elements)",  # RocksDBListState.updateInternal
    ("list", Op.CLEAR): "delete(key|ns)",
    ("map", Op.GET): "get(key|ns|uk)",  # RocksDBMapState.get
    ("map", Op.PUT): "put(key|ns|uk, 0x00 + value)",  # RocksDBMapState.put
    ("map", Op.REMOVE): "delete(key|ns|uk)",  # RocksDBMapState.remove
    ("map", Op.CONTAINS): "get(key|ns|uk)",  # RocksDBMapState.contains
    # RocksDBMapState.RocksDBMapIterator.loadCache: a new iterator per 128 entries.
    ("map", Op.ITERATE): "seek(key|ns) + next...: batches of 128, a fresh iterator each",
    # RocksDBMapState.clear: one iterator over the prefix, every entry deleted through a batch.
    ("map", Op.CLEAR): "seek(key|ns) + next... (one iterator) + write batch of delete(key|ns|uk)",
    # RocksDBCachingPriorityQueueSet.add/remove/poll: write-through to a batched wrapper.
    ("timers", Op.REGISTER_TIMER): "batched put(kg|ts|key|ns, empty)",
    ("timers", Op.DELETE_TIMER): "batched delete(kg|ts|key|ns)",
    (
        "timers",
        Op.FIRE_TIMER,
    ): "poll the key group's cache (refill: seek + up to cache-size+1 next) + batched delete",
}

READ_OPS = frozenset({Op.GET, Op.CONTAINS, Op.ITERATE, Op.FIRE_TIMER})
_READ_CODES = frozenset(int(o) for o in READ_OPS)
_N_OPS = max(Op) + 1

# RocksDBMapState.RocksDBMapIterator.CACHE_SIZE_LIMIT
MAP_ITERATOR_BATCH = 128
# RocksDBWriteBatchWrapper.DEFAULT_CAPACITY: entries before the wrapper writes its batch.
WRITE_BATCH_CAPACITY = 500
# state.backend.rocksdb.timer-service.cache-size default
# (RocksDBOptions.ROCKSDB_TIMER_SERVICE_FACTORY_CACHE_SIZE)
DEFAULT_TIMER_CACHE_SIZE = 128

Entry = tuple[bytes, bytes]
WriteOp = tuple[bytes, bytes | None]  # value None: delete


@dataclass(frozen=True)
class ColumnOps:
    """The storage primitives of one column family, as plain callables (bound methods of the
    engine's column family, so the replay loop pays no extra indirection)."""

    # get(key, default): the value, or default when absent (rocksdict.Rdict.get's shape).
    get: Callable[[bytes, bytes | None], bytes | None]
    put: Callable[[bytes, bytes], None]
    delete: Callable[[bytes], None]
    # scan(start, prefix, limit): entries with key >= start that start with prefix, in key order,
    # at most limit (0: all), through one new iterator.
    scan: Callable[[bytes, bytes, int], list[Entry]]
    # One atomic write batch of puts and deletes (value None).
    write: Callable[[list[WriteOp]], None]


def _no_storage(*_: object) -> NoReturn:
    raise AssertionError("unreachable: heap timers have no column family")


# The column of a state with none (heap timers): every storage call is a bug.
_NO_COLUMN = ColumnOps(_no_storage, _no_storage, _no_storage, _no_storage, _no_storage)


class WriteBatchWrapper:
    """RocksDBWriteBatchWrapper: buffers puts and deletes, writes them as one batch when full or
    when flushed (before an iteration of the same column family, and at checkpoints)."""

    def __init__(self, column: ColumnOps, capacity: int = WRITE_BATCH_CAPACITY) -> None:
        self._column = column
        self._capacity = capacity
        self._ops: list[WriteOp] = []
        self.batches_written = 0

    def put(self, key: bytes, value: bytes) -> None:
        """Buffer a put."""
        self._ops.append((key, value))
        if len(self._ops) >= self._capacity:
            self.flush()

    def delete(self, key: bytes) -> None:
        """Buffer a delete."""
        self._ops.append((key, None))
        if len(self._ops) >= self._capacity:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        if self._ops:
            self._column.write(self._ops)
            self._ops = []
            self.batches_written += 1


class ListAppendModel:
    """ListState on a store without a merge operator: appends as blind writes, combined on read.

    Flink appends a list element with RocksDB ``merge`` (StringAppendTESTOperator, ',' between
    elements): one blind write of the element's bytes; ``get`` reads the base value and every merge
    operand under the list's key and combines them; compaction folds operands into one value.

    rocksdict has no merge operator, so this model writes each appended element blind under its
    own key, ``list key | 8-byte big-endian append sequence number``, and ``get`` reads the list
    with one prefix scan. Deviations from Flink's I/O, exactly:

    * ``add``: same write volume (one blind write of the element) plus 8 key bytes per element.
    * ``get``: an iterator seek plus one ``next`` per element instead of a point lookup that
      gathers merge operands. With a bloom filter configured the engine gives the list's column
      family a prefix extractor of exactly ``key|ns`` (tuner.engine.rocksdict_engine), so the
      seek probes the filter for the same key Flink's get would; the filter also holds every
      element's whole key (rocksdict cannot switch whole-key filtering off), so it is larger.
    * compaction never folds the elements into one value: a long-lived list stays one entry per
      element, where Flink's compaction would merge them (fewer, larger entries).
    * ``update``: a prefix scan, a delete per old element and one put of the whole new list,
      where Flink issues one put.
    * ``clear``: a prefix scan and a delete per element (in one write batch), where Flink issues
      one delete. Range deletes would be one write, but measured with rocksdict 0.3.29 an
      interleaved put/get/delete_range loop costs 5.6 ms per iteration against 11 us with point
      deletes (range tombstones in the memtable are re-fragmented on every read).

    Keep this model in this one class, so an engine with a merge operator can replace it.
    """

    SUFFIX_BYTES = 8

    def __init__(self, column: ColumnOps) -> None:
        self._column = column
        self._seq = 0

    def _element_key(self, list_key: bytes) -> bytes:
        self._seq += 1
        return list_key + self._seq.to_bytes(self.SUFFIX_BYTES, "big")

    def add(self, list_key: bytes, element: bytes) -> None:
        """Append one element (Flink: ``merge``)."""
        self._column.put(self._element_key(list_key), element)

    def get(self, list_key: bytes) -> list[bytes]:
        """All elements in append order (Flink: ``get`` combining merge operands)."""
        return [v for _, v in self._column.scan(list_key, list_key, 0)]

    def update(self, list_key: bytes, elements: bytes) -> int:
        """Replace the list by ``elements`` (already serialized as one value); returns the
        number of old elements deleted."""
        old = self._column.scan(list_key, list_key, 0)
        ops: list[WriteOp] = [(k, None) for k, _ in old]
        ops.append((self._element_key(list_key), elements))
        self._column.write(ops)
        return len(old)

    def clear(self, list_key: bytes) -> int:
        """Remove the list (Flink: one ``delete``); returns the number of elements deleted."""
        old = self._column.scan(list_key, list_key, 0)
        if old:
            self._column.write([(k, None) for k, _ in old])
        return len(old)


class _GroupQueue:
    """One key group's RocksDBCachingPriorityQueueSet: an ordered in-memory cache of the first
    serialized timers, written through to RocksDB."""

    __slots__ = ("all_in_cache", "cache", "prefix", "seek_hint")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.cache: list[bytes] = []  # sorted, like the TreeSet-based OrderedByteArraySetCache
        self.all_in_cache = False  # Flink starts with allElementsInCache = false
        self.seek_hint = prefix


class TimerQueueModel:
    """Flink's RocksDB timer service for one timer state: per key group a cache of up to
    ``cache_size`` timers (state.backend.rocksdb.timer-service.cache-size) in front of the timer
    column family; writes go through a RocksDBWriteBatchWrapper.

    When a key group's cache is empty and RocksDB may hold more of its timers, the next access
    refills it: flush the write batch, seek just after the last removed timer (the seek hint),
    read up to cache-size entries plus one to learn whether all are cached
    (RocksDBCachingPriorityQueueSet.checkRefillCacheFromStore).
    """

    def __init__(self, column: ColumnOps, prefix_bytes: int, cache_size: int) -> None:
        if cache_size < 1:
            raise ValueError(f"`cache_size >= 1` must hold, but got {cache_size=}")
        self._column = column
        self._prefix_bytes = prefix_bytes
        self._cache_size = cache_size
        self._groups: dict[int, _GroupQueue] = {}
        self.batch = WriteBatchWrapper(column)
        self.refills = 0
        self.refill_entries = 0
        self.polls = 0
        self.polls_empty = 0

    def _group(self, entry: bytes) -> _GroupQueue:
        kg = int.from_bytes(entry[: self._prefix_bytes], "big")
        q = self._groups.get(kg)
        if q is None:
            q = _GroupQueue(entry[: self._prefix_bytes])
            self._groups[kg] = q
        return q

    def _refill(self, q: _GroupQueue) -> None:
        if q.all_in_cache or q.cache:
            return
        self.batch.flush()
        # The iterator seeks to the seek hint plus one zero byte: the first possible key after it.
        entries = self._column.scan(q.seek_hint + b"\x00", q.prefix, self._cache_size + 1)
        self.refills += 1
        self.refill_entries += len(entries)
        q.cache = [k for k, _ in entries[: self._cache_size]]
        q.all_in_cache = len(entries) <= self._cache_size

    def add(self, entry: bytes) -> None:
        """Register a timer (RocksDBCachingPriorityQueueSet.add)."""
        q = self._group(entry)
        self._refill(q)
        cache = q.cache
        full = len(cache) >= self._cache_size
        if (not full and q.all_in_cache) or (cache and entry < cache[-1]):
            if full:
                cache.pop()
                q.all_in_cache = False
            i = bisect.bisect_left(cache, entry)
            if i == len(cache) or cache[i] != entry:
                cache.insert(i, entry)
                self.batch.put(entry, b"")
        else:
            self.batch.put(entry, b"")
            q.all_in_cache = False

    def remove(self, entry: bytes) -> None:
        """Delete a timer (RocksDBCachingPriorityQueueSet.remove)."""
        q = self._group(entry)
        self._refill(q)
        if not q.cache:
            return
        self.batch.delete(entry)
        i = bisect.bisect_left(q.cache, entry)
        if i < len(q.cache) and q.cache[i] == entry:
            del q.cache[i]
        if not q.cache:
            q.seek_hint = entry

    def poll(self, entry_of_group: bytes) -> bytes | None:
        """Fire the head timer of the key group ``entry_of_group`` belongs to
        (RocksDBCachingPriorityQueueSet.poll); returns it, or None if the group has none."""
        q = self._group(entry_of_group)
        self._refill(q)
        self.polls += 1
        if not q.cache:
            self.polls_empty += 1
            return None
        head = q.cache.pop(0)
        self.batch.delete(head)
        if not q.cache:
            q.seek_hint = head
        return head

    def pending(self) -> list[bytes]:
        """Every registered timer in RocksDB order (flushes the batch; for tests)."""
        self.batch.flush()
        out: list[bytes] = []
        for kg in sorted(self._groups):
            prefix = self._groups[kg].prefix
            out.extend(k for k, _ in self._column.scan(prefix, prefix, 0))
        return out


class HeapTimerModel:
    """Flink's heap timer service (state.backend.rocksdb.timer-service.factory: HEAP): a
    HeapPriorityQueueSet per key group on the JVM heap, outside managed memory; nothing reaches
    RocksDB. Counts what that costs where the replay cannot run a JVM: the live timers and their
    serialized bytes, which the heap holds and which every checkpoint writes in full, in its
    synchronous phase (raw keyed state: RocksDBKeyedStateBackend's
    requiresLegacySynchronousTimerSnapshots).

    The entry is the timer's RocksDB key (key group, timestamp, key, namespace), so the order
    and the set semantics are the RocksDB service's."""

    def __init__(self, prefix_bytes: int) -> None:
        self._prefix_bytes = prefix_bytes
        self._groups: dict[bytes, list[bytes]] = {}
        self.live = 0
        self.live_bytes = 0
        self.peak = 0
        self.polls = 0
        self.polls_empty = 0

    def _group(self, entry: bytes) -> list[bytes]:
        return self._groups.setdefault(entry[: self._prefix_bytes], [])

    def add(self, entry: bytes) -> None:
        """Register a timer (HeapPriorityQueueSet.add: a timer already there is kept once)."""
        queue = self._group(entry)
        i = bisect.bisect_left(queue, entry)
        if i == len(queue) or queue[i] != entry:
            queue.insert(i, entry)
            self.live += 1
            self.live_bytes += len(entry)
            self.peak = max(self.peak, self.live)

    def remove(self, entry: bytes) -> None:
        """Delete a timer (HeapPriorityQueueSet.remove)."""
        queue = self._group(entry)
        i = bisect.bisect_left(queue, entry)
        if i < len(queue) and queue[i] == entry:
            del queue[i]
            self.live -= 1
            self.live_bytes -= len(entry)

    def poll(self, entry_of_group: bytes) -> bytes | None:
        """Fire the head timer of the key group ``entry_of_group`` belongs to."""
        queue = self._group(entry_of_group)
        self.polls += 1
        if not queue:
            self.polls_empty += 1
            return None
        head = queue.pop(0)
        self.live -= 1
        self.live_bytes -= len(head)
        return head

    def pending(self) -> list[bytes]:
        """Every registered timer in key-group then timer order (for tests)."""
        return [e for g in sorted(self._groups) for e in self._groups[g]]


Handler = Callable[[bytes, bytes], None]


class _StateRunner:
    """Encodes one state's rows and holds its handlers per Op."""

    def __init__(
        self,
        info: StateInfo,
        layout: KeyLayout,
        column: ColumnOps | None,
        timer_cache_size: int,
    ) -> None:
        self.info = info
        self.layout = layout
        self.timers: TimerQueueModel | HeapTimerModel | None = None
        if info.kind == "timers" and column is None:
            self.timers = HeapTimerModel(layout.prefix_bytes)
        elif info.kind == "timers":
            assert column is not None
            self.timers = TimerQueueModel(column, layout.prefix_bytes, timer_cache_size)
        if column is None and info.kind != "timers":
            raise ValueError(f"no column family for state {info.name!r}")
        self.column: ColumnOps = column if column is not None else _NO_COLUMN
        self.lists = ListAppendModel(self.column) if info.kind == "list" else None
        self.map_batch = WriteBatchWrapper(self.column) if info.kind == "map" else None
        # Only what the batch's columns cannot tell: iterators opened, entries read through them,
        # entries deleted by clears and list updates.
        self.seeks = 0
        self.scanned = 0
        self.deletes = 0
        self.handlers: dict[int, Handler] = self._handlers()

    # -- key and value encoding --------------------------------------------------------------

    def encode(self, batch: OpBatch, rows: npt.NDArray[np.intp]) -> list[bytes]:
        """The RocksDB key of each selected row (timer entries for timer states)."""
        lay = self.layout
        keys = batch.key[rows]
        if self.info.kind == "timers":
            return rows_to_bytes(
                lay.timer_keys(keys, batch.timer_ts[rows], batch.ns_start[rows], batch.ns_end[rows])
            )
        user_keys = None
        if self.info.kind == "map":
            # ITERATE and CLEAR rows carry user_key -1; only their prefix is used.
            user_keys = np.maximum(batch.user_key[rows], 0)
        return rows_to_bytes(
            lay.entry_keys(keys, batch.ns_start[rows], batch.ns_end[rows], user_keys)
        )

    def headers(self, batch: OpBatch, rows: npt.NDArray[np.intp]) -> list[bytes] | None:
        """What precedes each payload (map null flag, TTL timestamp), or None if nothing."""
        map_value = self.info.kind == "map"
        if not (map_value or self.info.ttl):
            return None
        return rows_to_bytes(value_headers(batch.ts[rows], map_value=map_value, ttl=self.info.ttl))

    # -- handlers -----------------------------------------------------------------------------

    def _handlers(self) -> dict[int, Handler]:
        kind = self.info.kind
        col = self.column
        # A handler is called as handler(key, value). get(key, default) and put(key, value) take
        # that shape as they are, so point calls cost no wrapper (a read's value is b"", returned
        # as the default on a miss and ignored).
        get, put, delete = col.get, col.put, col.delete

        def do_delete(key: bytes, value: bytes) -> None:
            delete(key)

        def do_get_put(key: bytes, value: bytes) -> None:
            get(key, None)
            put(key, value)

        do_get: Handler = get  # type: ignore[assignment]  # returns a value nobody reads
        do_put: Handler = put

        if kind == "value":
            return {Op.GET: do_get, Op.UPDATE: do_put, Op.CLEAR: do_delete}
        if kind in ("reducing", "aggregating"):
            # UPDATE is updateInternal (a blind put): how the preload writes initial state and
            # how window merging stores a merged accumulator (AbstractRocksDBAppendingState).
            return {Op.GET: do_get, Op.ADD: do_get_put, Op.UPDATE: do_put, Op.CLEAR: do_delete}
        if kind == "list":
            lists = self.lists
            assert lists is not None

            def list_get(key: bytes, value: bytes) -> None:
                self.seeks += 1
                self.scanned += len(lists.get(key))

            def list_update(key: bytes, value: bytes) -> None:
                self.seeks += 1
                self.deletes += lists.update(key, value)

            def list_clear(key: bytes, value: bytes) -> None:
                self.seeks += 1
                self.deletes += lists.clear(key)

            return {
                Op.GET: list_get,
                Op.ADD: lists.add,
                Op.UPDATE: list_update,
                Op.CLEAR: list_clear,
            }
        if kind == "map":
            return self._map_handlers(do_get, do_put, do_delete)
        if kind == "timers":
            return self._timer_handlers()
        raise ValueError(
            f"state {self.info.name!r}: kind must be one of value, list, map, reducing, "
            f"aggregating, timers, but got {kind!r}"
        )

    def _map_handlers(
        self, do_get: Handler, do_put: Handler, do_delete: Handler
    ) -> dict[int, Handler]:
        col = self.column
        plen = self.layout.entry_prefix_bytes
        batch = self.map_batch
        assert batch is not None

        def iterate(prefix: bytes) -> list[Entry]:
            # RocksDBMapIterator: batches of 128 entries, each through a fresh iterator seeking to
            # the last entry returned (then stepping past it).
            out: list[Entry] = []
            start = prefix
            skip = 0
            while True:
                self.seeks += 1
                part = col.scan(start, prefix, MAP_ITERATOR_BATCH + skip)[skip:]
                out.extend(part)
                if len(part) < MAP_ITERATOR_BATCH:
                    break
                start, skip = part[-1][0], 1
            self.scanned += len(out)
            return out

        def map_iterate(key: bytes, value: bytes) -> None:
            iterate(key[:plen])

        def map_clear(key: bytes, value: bytes) -> None:
            # RocksDBMapState.clear: one iterator over the whole prefix (not the 128-entry
            # batches of RocksDBMapIterator), each entry deleted through a write-batch wrapper.
            self.seeks += 1
            entries = col.scan(key[:plen], key[:plen], 0)
            self.scanned += len(entries)
            for k, _ in entries:
                batch.delete(k)
            self.deletes += len(entries)
            batch.flush()

        return {
            Op.GET: do_get,
            Op.CONTAINS: do_get,
            Op.PUT: do_put,
            Op.REMOVE: do_delete,
            Op.ITERATE: map_iterate,
            Op.CLEAR: map_clear,
        }

    def _timer_handlers(self) -> dict[int, Handler]:
        timers = self.timers
        assert timers is not None

        def register(key: bytes, value: bytes) -> None:
            timers.add(key)

        def remove(key: bytes, value: bytes) -> None:
            timers.remove(key)

        def fire(key: bytes, value: bytes) -> None:
            timers.poll(key)

        return {Op.REGISTER_TIMER: register, Op.DELETE_TIMER: remove, Op.FIRE_TIMER: fire}

    def flush(self) -> None:
        """Write what the state's write-batch wrappers still hold."""
        if isinstance(self.timers, TimerQueueModel):
            self.timers.batch.flush()
        if self.map_batch is not None:
            self.map_batch.flush()

    def counters(self) -> dict[str, int]:
        """This state's counts beyond its calls."""
        out = {"seeks": self.seeks, "entries_scanned": self.scanned, "clear_deletes": self.deletes}
        if self.timers is not None:
            out["timer_polls"] = self.timers.polls
            out["timer_polls_empty"] = self.timers.polls_empty
        if isinstance(self.timers, TimerQueueModel):
            out["timer_refills"] = self.timers.refills
            out["timer_refill_entries"] = self.timers.refill_entries
        elif isinstance(self.timers, HeapTimerModel):
            out["heap_timers"] = self.timers.live
            out["heap_timers_peak"] = self.timers.peak
            out["heap_timer_bytes"] = self.timers.live_bytes
        return out


class StateOpExecutor:
    """Replays operation batches on column families, as Flink's RocksDB backend would.

    Every ``sample_every``-th call is timed with ``time.perf_counter_ns`` around the storage calls
    it makes, as Flink's state latency tracking samples one access in
    ``state.latency-track.sample-interval`` (LatencyTrackingStateConfig); the samples include the
    Python call overhead (about 0.35 us per call, shared/reference/rocksdict.md).
    """

    def __init__(
        self,
        header: StreamHeader,
        columns: dict[str, ColumnOps],
        *,
        timer_cache_size: int = DEFAULT_TIMER_CACHE_SIZE,
        sample_every: int = 16,
        heap_timers: bool = False,
    ) -> None:
        if sample_every < 1:
            raise ValueError(f"`sample_every >= 1` must hold, but got {sample_every=}")
        self.header = header
        self._sample_every = sample_every
        self._runners: list[_StateRunner] = []
        for info in header.states:
            if info.name not in columns and not (heap_timers and info.kind == "timers"):
                raise ValueError(f"no column family for state {info.name!r}")
            layout = KeyLayout.for_state(info, header.max_parallelism, header.compressibility)
            column = None if heap_timers and info.kind == "timers" else columns[info.name]
            self._runners.append(_StateRunner(info, layout, column, timer_cache_size))
        self._row_counter = 0
        self.ops = 0
        self._calls = np.zeros(_N_OPS, dtype=np.int64)
        missing = self._missing_call
        self._flat_handlers: list[Handler] = [
            r.handlers.get(o, missing) for r in self._runners for o in range(_N_OPS)
        ]
        self.read_latency_ns: list[int] = []
        self.write_latency_ns: list[int] = []

    @staticmethod
    def _missing_call(key: bytes, value: bytes) -> None:
        raise AssertionError("unreachable: _check rejects calls a state does not have")

    def _check(self, batch: OpBatch) -> None:
        if batch.states != self.header.names:
            raise ValueError(
                f"batch names states {batch.states}, but the stream header has {self.header.names}"
            )
        states = batch.state.astype(np.int64)
        ops = batch.op.astype(np.int64)
        if states.min() < 0 or ops.min() < 0 or ops.max() >= _N_OPS:
            raise ValueError(
                f"state indices must be >= 0 and op codes in 0..{_N_OPS - 1}, but got states "
                f"[{states.min()}, {states.max()}] and ops [{ops.min()}, {ops.max()}]"
            )
        # bincount over the (state, op) codes: linear, where a 2-D np.unique sorts.
        present = np.flatnonzero(np.bincount(states * _N_OPS + ops)).tolist()
        for s, o in (divmod(code, _N_OPS) for code in present):
            if not 0 <= s < len(self._runners):
                raise ValueError(f"state index {s} out of range 0..{len(self._runners) - 1}")
            runner = self._runners[s]
            if o not in runner.handlers:
                raise ValueError(
                    f"state {runner.info.name!r} ({runner.info.kind}) has no call "
                    f"{Op(o).name}; allowed: {sorted(Op(x).name for x in runner.handlers)}"
                )

    def _values(self, batch: OpBatch) -> list[bytes]:
        n = len(batch)
        sizes = batch.value_size.astype(np.int64)
        pool = payload_pool(self.header.compressibility)
        if n and (sizes.min() < 0 or sizes.max() > len(pool) // 2):
            raise ValueError(
                f"`0 <= value_size <= {len(pool) // 2}` must hold, but got "
                f"[{sizes.min()}, {sizes.max()}]"
            )
        # Offsets spread over the pool so neighbouring values differ (a prime stride); reads
        # (size 0) share one empty value.
        writes = np.flatnonzero(sizes)
        base = self._row_counter + writes
        offsets = ((base * 7919) % (len(pool) - sizes[writes])).tolist()
        values: list[bytes] = [b""] * n
        for i, o, s in zip(writes.tolist(), offsets, sizes[writes].tolist(), strict=True):
            values[i] = pool[o : o + s]
        return values

    def apply(self, batch: OpBatch) -> None:
        """Carry out every call of ``batch`` in order."""
        n = len(batch)
        if n == 0:
            return
        self._check(batch)
        state_col = batch.state
        op_col = batch.op
        values = self._values(batch)
        present = np.flatnonzero(np.bincount(state_col.astype(np.int64))).tolist()
        keys: list[bytes]
        if len(present) == 1:
            runner = self._runners[present[0]]
            rows = np.arange(n)
            keys = runner.encode(batch, rows)
            hdrs = runner.headers(batch, rows)
            if hdrs is not None:
                values = [h + v for h, v in zip(hdrs, values, strict=True)]
        else:
            key_arr = np.empty(n, dtype=object)
            val_arr = np.empty(n, dtype=object)
            val_arr[:] = values
            for s in present:
                runner = self._runners[s]
                rows = np.flatnonzero(state_col == s)
                key_arr[rows] = runner.encode(batch, rows)
                hdrs = runner.headers(batch, rows)
                if hdrs is not None:
                    val_arr[rows] = [
                        h + v for h, v in zip(hdrs, val_arr[rows].tolist(), strict=True)
                    ]
            keys = key_arr.tolist()
            values = val_arr.tolist()
        codes = (state_col.astype(np.int64) * _N_OPS + op_col).tolist()
        self._calls += np.bincount(op_col.astype(np.int64), minlength=_N_OPS)
        # itemgetter builds the per-row handler sequence in C.
        handlers = (
            operator.itemgetter(*codes)(self._flat_handlers)
            if n > 1
            else (self._flat_handlers[codes[0]],)
        )
        ops = op_col.tolist()
        every = self._sample_every
        clock = time.perf_counter_ns
        rows_iter = zip(handlers, keys, values, strict=True)
        i = 0
        while i < n:
            # One timed call, then every-1 untimed ones.
            h, k, v = next(rows_iter)
            t0 = clock()
            h(k, v)
            dt = clock() - t0
            (self.read_latency_ns if ops[i] in _READ_CODES else self.write_latency_ns).append(dt)
            for h, k, v in itertools.islice(rows_iter, every - 1):
                h(k, v)
            i += every
        self._row_counter += n
        self.ops += n

    def flush(self) -> None:
        """Write out batched writes (timers, map clears); call before a checkpoint."""
        for r in self._runners:
            r.flush()

    def heap_timer_bytes(self) -> int:
        """Serialized bytes of the heap timers now (0 with RocksDB timers): what a checkpoint
        writes of them, in full, in its synchronous phase (:class:`HeapTimerModel`)."""
        return sum(
            r.timers.live_bytes for r in self._runners if isinstance(r.timers, HeapTimerModel)
        )

    def take_latencies(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Sampled read and write call latencies (ns) since the last take, then forget them."""
        reads = np.asarray(self.read_latency_ns, dtype=np.int64)
        writes = np.asarray(self.write_latency_ns, dtype=np.int64)
        self.read_latency_ns = []
        self.write_latency_ns = []
        return reads, writes

    def counters(self) -> dict[str, int]:
        """Cumulative call counts, summed over states (``ops`` counts state calls)."""
        total: dict[str, int] = {"ops": self.ops}
        for o in Op:
            total[f"calls.{o.name.lower()}"] = int(self._calls[o])
        # Heap timers live and their bytes, 0 with RocksDB timers: what the JVM heap holds.
        total.update(heap_timers=0, heap_timer_bytes=0)
        for r in self._runners:
            for k, v in r.counters().items():
                total[k] = total.get(k, 0) + v
        return total

    # -- inspection (tests, debugging) -------------------------------------------------------

    def _runner(self, state: str) -> _StateRunner:
        for r in self._runners:
            if r.info.name == state:
                return r
        raise KeyError(f"no state {state!r}; states: {[r.info.name for r in self._runners]}")

    def read_value(self, state: str, key: int, ns: tuple[int, int] = (-1, -1)) -> bytes | None:
        """The stored bytes of a value, reducing or aggregating state entry (None if absent)."""
        r = self._runner(state)
        k = rows_to_bytes(r.layout.entry_keys([key], [ns[0]], [ns[1]]))[0]
        return r.column.get(k, None)

    def read_list(self, state: str, key: int, ns: tuple[int, int] = (-1, -1)) -> list[bytes]:
        """The elements of a list state entry, in append order."""
        r = self._runner(state)
        assert r.lists is not None, f"state {state!r} is not a list state"
        k = rows_to_bytes(r.layout.entry_keys([key], [ns[0]], [ns[1]]))[0]
        return r.lists.get(k)

    def read_map(self, state: str, key: int, ns: tuple[int, int] = (-1, -1)) -> dict[int, bytes]:
        """The entries of a map state entry: user key id -> stored value."""
        r = self._runner(state)
        prefix = rows_to_bytes(r.layout.entry_keys([key], [ns[0]], [ns[1]]))[0]
        r.flush()
        return {
            int.from_bytes(k[len(prefix) :], "big"): v for k, v in r.column.scan(prefix, prefix, 0)
        }

    def pending_timers(self, state: str) -> list[bytes]:
        """Every registered timer entry of a timer state, in RocksDB order."""
        r = self._runner(state)
        assert r.timers is not None, f"state {state!r} is not a timer state"
        return r.timers.pending()
