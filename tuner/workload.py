"""Workload: one Flink job's keyed state, as frozen dataclasses.

A workload file (YAML) is validated against ``workloads/schema.json`` and turned into a
:class:`Workload` by :func:`load_workload`. Sizes are integers in bytes and durations integers
in milliseconds inside the library; "64 mb" / "10 s" are parsed only at this edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StateKind = Literal["value", "list", "map", "reducing", "aggregating"]
KeyType = Literal["long", "string"]
PopularityKind = Literal["uniform", "zipf", "hotset", "sequential", "latest"]
SizeDistKind = Literal["fixed", "uniform", "normal", "lognormal"]
MemoryMode = Literal["managed", "fixed-per-slot", "fixed-per-tm", "unmanaged"]
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
    value: int = 100  # fixed size, or mean for normal/lognormal
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
class Memory:
    """RocksDB memory as Flink sees it for one slot (one replayed RocksDB instance)."""

    mode: MemoryMode = "managed"
    managed_per_slot: int = 256 << 20  # bytes of managed memory of one slot (mode managed)
    fixed_per_slot: int | None = None
    fixed_per_tm: int | None = None
    slots_per_tm: int = 1
    write_buffer_ratio: float = 0.5
    high_prio_pool_ratio: float = 0.1

    @property
    def budget(self) -> int:
        """Bytes the RocksDB instance of one slot may use, as Flink sizes its shared cache."""
        if self.mode == "fixed-per-slot" and self.fixed_per_slot is not None:
            return self.fixed_per_slot
        if self.mode == "fixed-per-tm" and self.fixed_per_tm is not None:
            # Shared by every slot of the TM; the replay models one slot's share.
            return self.fixed_per_tm // self.slots_per_tm
        return self.managed_per_slot


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
    trace: str | None = None  # absolute path of a recorded trace; replaces the generator
    source: str | None = None  # the file this was loaded from

    @property
    def flink_major(self) -> int:
        """1 for Flink 1.x, 2 for Flink 2.x."""
        return int(self.flink_version.split(".")[0])

    def state(self, name: str) -> StateSpec:
        """The state called ``name``."""
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)
