"""The workload model: one Flink job's keyed state as frozen dataclasses.

Sizes are integers in bytes and durations integers in milliseconds; "64 mb" and "10 s" are
parsed and formatted only at the file edge (:mod:`tuner.workload.load`, :mod:`.dump`).
:class:`Memory` lives beside Flink's memory model (:mod:`tuner.flink.memory`) and is re-exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from tuner.costmodel import DEFAULT_DISK, PRESETS, Disk
from tuner.flink import versions
from tuner.flink.memory import Memory

StateKind = Literal["value", "list", "map", "reducing", "aggregating"]
KeyType = Literal["long", "string"]
PopularityKind = Literal["uniform", "zipf", "hotset", "sequential", "latest"]
SizeDistKind = Literal["fixed", "uniform", "normal", "lognormal"]
WindowType = Literal["tumbling", "sliding"]
TimerDomain = Literal["event", "processing"]

# Operations a state kind accepts, as named in workload files and traces.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "value": ("read", "update", "read_update", "clear"),
    "reducing": ("read", "update", "read_update", "clear"),
    "aggregating": ("read", "update", "read_update", "clear"),
    "list": ("read", "append", "update", "clear"),
    "map": ("get", "put", "remove", "contains", "iterate", "clear"),
}


@dataclass(frozen=True)
class SizeDist:
    """A size in bytes: fixed, or drawn from a distribution (clipped to [min, max])."""

    kind: SizeDistKind = "fixed"
    value: int = 100  # fixed size, or the mean (uniform: the midpoint of min and max)
    min: int = 1
    max: int = 1 << 20
    sigma: float = 0.0  # normal: stddev in bytes; lognormal: sigma of the log


@dataclass(frozen=True)
class Popularity:
    """How keys are chosen for each access."""

    kind: PopularityKind = "uniform"
    exponent: float = 1.0  # zipf
    hot_fraction: float = 0.01  # hotset: share of keys that are hot
    hot_share: float = 0.9  # hotset: share of accesses that go to hot keys


@dataclass(frozen=True)
class Window:
    """Windows become namespaces (Flink's TimeWindow: start and end, 16 bytes)."""

    type: WindowType
    size_ms: int
    slide_ms: int  # equals size_ms for tumbling windows


@dataclass(frozen=True)
class Timers:
    """User timers registered per record and fired in timestamp order."""

    per_record: float  # expected registrations per record (a probability when < 1)
    delay_ms: int  # fires this long after the record's timestamp
    domain: TimerDomain = "event"


@dataclass(frozen=True)
class StateSpec:
    """One keyed state of the job (one column family in RocksDB)."""

    name: str
    kind: StateKind
    keys: int  # distinct keys that touch this state
    key_type: KeyType = "long"
    key_size: int = 8  # bytes of a string key (long keys are always 8)
    popularity: Popularity = field(default_factory=Popularity)
    value_size: SizeDist = field(default_factory=SizeDist)
    accesses_per_record: float = 1.0
    operations: tuple[tuple[str, float], ...] = (("read_update", 1.0),)  # op -> share, sum 1
    entries_per_key: int = 1  # map: distinct user keys per key
    user_key_size: int = 8  # map: bytes of a user key
    elements_per_key: int = 1  # list: typical elements per key before a clear
    window: Window | None = None
    ttl_ms: int | None = None
    timers: Timers | None = None


@dataclass(frozen=True)
class Replay:
    """How much to replay: initial state loaded first, then measured records."""

    records: int = 100_000
    preload_fraction: float = 1.0  # share of each state's keys written before measuring
    records_per_second: int = 10_000  # event-time rate: turns windows/TTL/timers into records


@dataclass(frozen=True)
class Checkpointing:
    """Incremental checkpoints: flush, then a RocksDB checkpoint, every interval."""

    interval_ms: int = 10_000
    incremental: bool = True


@dataclass(frozen=True)
class Workload:
    """A Flink job's keyed state, its memory budget and how to replay it."""

    name: str
    description: str
    flink_version: str  # "1.20" or "2.x" style ("2.0", "2.3")
    seed: int
    memory: Memory
    states: tuple[StateSpec, ...]
    replay: Replay = field(default_factory=Replay)
    checkpointing: Checkpointing = field(default_factory=Checkpointing)
    max_parallelism: int = 128
    # The disk the job's TaskManagers write to: prices the replay's counted I/O (tuner.costmodel).
    disk: Disk = field(default_factory=lambda: PRESETS[DEFAULT_DISK])
    trace: str | None = None  # absolute path of a recorded trace; replaces the generator
    # Raw over LZ4 bytes of the job's values and wide map user keys (the recorder measures it);
    # None: the replay's fixed payload (about 2.2x), or the recorded trace's own measure.
    compressibility: float | None = None
    source: str | None = None  # the file this was loaded from

    @property
    def flink_major(self) -> int:
        """1 for Flink 1.x, 2 for Flink 2.x."""
        return versions.major(self.flink_version)

    def state(self, name: str) -> StateSpec:
        """The state called ``name``."""
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)


# The size key each memory mode reads; any other size key is a mistake for that mode.
MEMORY_SIZE_KEY: dict[str, str] = {
    "managed": "managed_per_slot",
    "unmanaged": "managed_per_slot",
    "fixed-per-slot": "fixed_per_slot",
    "fixed-per-tm": "fixed_per_tm",
}

# "2" and "2.x" mean the newest Flink 2 the option catalogue knows; minors are kept as written.
# The short spellings; patch releases ("2.3.0") are accepted too (tuner.flink.versions).
SUPPORTED_FLINK_VERSIONS: tuple[str, ...] = versions.SPELLINGS


def timer_service(spec: StateSpec) -> str | None:
    """The timer service a state's operator registers in: ``window``, ``event`` or ``processing``
    (user timers by domain), or None.

    A window operator has no user timer service (triggers register in its window timers), which
    is why a windowed state may not declare ``timers``.
    """
    if spec.window is not None:
        return "window"
    if spec.timers is not None:
        return spec.timers.domain
    return None


def column_family_count(states: Sequence[StateSpec]) -> int:
    """Column families of the replayed RocksDB instance: one per state, one per timer service.

    With Flink's default timer store (state.backend.rocksdb.timer-service.factory: ROCKSDB)
    timers live in column families of their own (``_timer_state/...``). The replay runs every
    state in one instance, so timer services of one kind (window, event-time user timers,
    processing-time user timers) share one column family, as the generator lays them out.
    """
    services = {timer_service(s) for s in states} - {None}
    return len(states) + len(services)
