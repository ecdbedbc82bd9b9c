"""The operation stream: Flink state-API calls, in batches of columns.

One row is one call a Flink operator makes on keyed state (``ValueState.update``,
``ListState.add``, ``MapState.put``, a timer registration ...). What each call becomes in
RocksDB is decided downstream (``tuner.flink.state_ops``), never here.

Columns (all numpy arrays of one length):

==========  =======  ==========================================================================
column      dtype    meaning
==========  =======  ==========================================================================
ts          int64    event time of the input record, ms
state       int16    index into ``OpBatch.states`` (state names; timers: ``_timer_state/...``)
op          int8     an :class:`Op` code
key         int64    key id; serialized per the state's key type (long, or fixed-size string)
ns_start    int64    window start ms, or -1 for VoidNamespace
ns_end      int64    window end ms (exclusive), or -1 for VoidNamespace
user_key    int64    map state: user key id; -1 otherwise
value_size  int32    bytes of the serialized value written (0 for reads and deletes)
timer_ts    int64    timers: the timer's timestamp; -1 otherwise
==========  =======  ==========================================================================
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TIMER_STATE_PREFIX = "_timer_state/"
# The state column is int16: a stream names at most this many states (timer services included).
MAX_STATES = int(np.iinfo(np.int16).max)
STATE_KINDS = ("value", "list", "map", "reducing", "aggregating", "timers")
KEY_TYPES = ("long", "string")


class Op(enum.IntEnum):
    """State-API calls. Values are stable: they are stored in trace files."""

    GET = 0  # ValueState.value / ListState.get / Reducing,AggregatingState.get / MapState.get
    UPDATE = 1  # ValueState.update / ListState.update
    ADD = 2  # ListState.add (merge) / ReducingState.add, AggregatingState.add (get + put)
    CLEAR = 3  # State.clear (map: delete every entry of the key and namespace)
    PUT = 4  # MapState.put
    REMOVE = 5  # MapState.remove
    CONTAINS = 6  # MapState.contains
    ITERATE = 7  # MapState.entries()/iterator() read to the end
    REGISTER_TIMER = 8  # TimerService.register*Timer
    DELETE_TIMER = 9  # TimerService.delete*Timer
    FIRE_TIMER = 10  # the timer service polls the head timer once the watermark passes it


OP_NAMES: dict[Op, str] = {op: op.name.lower() for op in Op}
OP_BY_NAME: dict[str, Op] = {name: op for op, name in OP_NAMES.items()}

COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts", "int64"),
    ("state", "int16"),
    ("op", "int8"),
    ("key", "int64"),
    ("ns_start", "int64"),
    ("ns_end", "int64"),
    ("user_key", "int64"),
    ("value_size", "int32"),
    ("timer_ts", "int64"),
)


@dataclass(frozen=True)
class OpBatch:
    """A batch of state calls as columns; ``states`` names the state indices."""

    states: tuple[str, ...]
    ts: npt.NDArray[np.int64]
    state: npt.NDArray[np.int16]
    op: npt.NDArray[np.int8]
    key: npt.NDArray[np.int64]
    ns_start: npt.NDArray[np.int64]
    ns_end: npt.NDArray[np.int64]
    user_key: npt.NDArray[np.int64]
    value_size: npt.NDArray[np.int32]
    timer_ts: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def columns(self) -> dict[str, npt.NDArray[np.generic]]:
        """The columns by name, in :data:`COLUMNS` order."""
        return {name: getattr(self, name) for name, _ in COLUMNS}

    def rows(self) -> Iterator[tuple[int, int, int, int, int, int, int, int, int]]:
        """Rows as plain Python ints (what a replay loop wants: no numpy scalars)."""
        cols = [getattr(self, name).tolist() for name, _ in COLUMNS]
        return zip(*cols, strict=True)

    @staticmethod
    def from_columns(states: Sequence[str], columns: Mapping[str, npt.ArrayLike]) -> OpBatch:
        """Build a batch, casting each column to its dtype (lengths must agree)."""
        arrays = {name: np.asarray(columns[name], dtype=dtype) for name, dtype in COLUMNS}
        lengths = {a.shape[0] for a in arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal length: {sorted(lengths)}")
        return OpBatch(states=tuple(states), **arrays)

    @staticmethod
    def concat(batches: Sequence[OpBatch]) -> OpBatch:
        """Concatenate batches that share the same state table."""
        if not batches:
            raise ValueError("no batches to concatenate")
        states = batches[0].states
        if any(b.states != states for b in batches):
            raise ValueError("batches name different states")
        return OpBatch.from_columns(
            states,
            {name: np.concatenate([getattr(b, name) for b in batches]) for name, _ in COLUMNS},
        )


@dataclass(frozen=True)
class StateInfo:
    """What the replay must know of a state to lay out its bytes as Flink does.

    Stored in a trace file's metadata, so a trace replays without its workload's states.
    """

    name: str
    kind: str  # value | list | map | reducing | aggregating | timers
    key_type: str = "long"  # long | string
    key_size: int = 8  # string keys: characters (ASCII, one byte each)
    windowed: bool = False  # namespace is a TimeWindow (16 bytes) instead of VoidNamespace
    user_key_size: int = 8  # map state: bytes of a serialized user key
    ttl: bool = False  # values carry Flink's 8-byte TTL timestamp


# What a header's compressibility may be: LZ4 expands noise by under 1 % and shrinks a 4 KB
# block of one repeated byte about 150x, so anything outside this range was not measured.
COMPRESSIBILITY_RANGE = (0.5, 1000.0)


@dataclass(frozen=True)
class StreamHeader:
    """Everything about an operation stream except its rows."""

    states: tuple[StateInfo, ...]
    max_parallelism: int = 128
    # How the job's written values and map user keys compress (raw over LZ4 bytes in 4 KB
    # blocks, measured by the recorder); None: not measured, the replay's fixed payload pool.
    compressibility: float | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """State names in index order (``OpBatch.state`` indexes this)."""
        return tuple(s.name for s in self.states)
