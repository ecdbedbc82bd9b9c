"""Flink's RocksDB memory model: one LRU cache shared by block cache and write buffers.

Formulas from flink-state-backends/flink-statebackend-rocksdb/.../RocksDBMemoryControllerUtils.java.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

MemoryMode = Literal["managed", "fixed-per-slot", "fixed-per-tm", "unmanaged"]


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


def with_budget(memory: Memory, budget: int) -> Memory:
    """``memory`` with ``budget`` bytes of RocksDB memory per slot, in its own mode (a
    fixed-per-tm budget is the TaskManager's: ``budget`` times its slots)."""
    if memory.mode == "fixed-per-slot":
        return replace(memory, fixed_per_slot=budget)
    if memory.mode == "fixed-per-tm":
        return replace(memory, fixed_per_tm=budget * memory.slots_per_tm)
    return replace(memory, managed_per_slot=budget)


# Smallest write buffer the search tries; also the floor a budget must afford per column family.
MIN_WRITE_BUFFER_SIZE = 2 << 20


def cache_capacity(total: int, write_buffer_ratio: float) -> int:
    """Capacity of the shared LRU cache (RocksDBMemoryControllerUtils.calculateActualCacheCapacity).

    The cache is larger than ``total * (1 - ratio)`` because the write buffer manager's
    memtables are charged to it, and Flink budgets for them overshooting by half.
    """
    return int((3 - write_buffer_ratio) * total / 3)


def write_buffer_manager_capacity(total: int, write_buffer_ratio: float) -> int:
    """Capacity of the WriteBufferManager (calculateWriteBufferManagerCapacity)."""
    return int(2 * total * write_buffer_ratio / 3)


def ratios_accepted(write_buffer_ratio: float, high_prio_pool_ratio: float) -> bool:
    """Whether Flink accepts this write-buffer-ratio / high-prio-pool-ratio pair.

    RocksDBMemoryConfiguration.validate: the write buffer manager's share of the cache,
    ``2r / (3 - r)``, plus the high-priority pool must stay below the whole cache.
    """
    r, hp = write_buffer_ratio, high_prio_pool_ratio
    return 0 < r < 1 and 0 <= hp < 1 and 2 * r / (3 - r) + hp < 1.0


def max_write_buffer_ratio(high_prio_pool_ratio: float, step: float = 0.05) -> float:
    """The largest write-buffer-ratio on a ``step`` grid that Flink accepts beside
    ``high_prio_pool_ratio`` (see :func:`ratios_accepted`); 0.0 when none is."""
    n = 0
    while ratios_accepted(round((n + 1) * step, 10), high_prio_pool_ratio):
        n += 1
    return round(n * step, 10)


def default_arena_block_size(write_buffer_size: int) -> int:
    """Flink's own estimate of RocksDB's default arena block: write_buffer_size / 8, aligned up
    to 4 KiB (RocksDBMemoryControllerUtils.calculateRocksDBDefaultArenaBlockSize, which Flink
    only uses for a warning). FRocksDB 6.20 (Flink 1.20) really uses it; FRocksDB 8.10 does
    not (see :func:`arena_block_size`)."""
    align = 4 * 1024
    return ((write_buffer_size // 8 + align - 1) // align) * align


# FRocksDB 8.10's db/column_family.cc SanitizeOptions caps the default arena block at 1 MiB.
_ARENA_CAP_8_10 = 1 << 20


def arena_block_size(write_buffer_size: int, flink_major: int = 2) -> int:
    """The arena block RocksDB really uses when none is set, for the FRocksDB of a Flink major.

    db/column_family.cc SanitizeOptions: FRocksDB 8.10 (Flink 2.x) takes
    ``min(1 MiB, write_buffer_size / 8)``, FRocksDB 6.20 (Flink 1.x) ``write_buffer_size / 8``;
    both align up to 4 KiB.
    """
    raw = write_buffer_size // 8
    if flink_major >= 2:
        raw = min(_ARENA_CAP_8_10, raw)
    align = 4 * 1024
    return ((raw + align - 1) // align) * align


def mutable_limit(write_buffer_manager_bytes: int) -> int:
    """The write buffer manager's mutable limit: 7/8 of its capacity
    (calculateRocksDBMutableLimit)."""
    return write_buffer_manager_bytes * 7 // 8


def arena_block_fits(
    write_buffer_size: int, write_buffer_manager_bytes: int, flink_major: int = 2
) -> bool:
    """False when RocksDB would flush constantly: arena block larger than the mutable limit
    (validateArenaBlockSize; Flink only logs a warning, we refuse to run such a candidate).

    The arena block is the one the Flink major's FRocksDB really allocates
    (:func:`arena_block_size`), not Flink's ``size / 8`` estimate, which for Flink 2.x would
    wrongly refuse large write buffers on small budgets.
    """
    arena = arena_block_size(write_buffer_size, flink_major)
    return arena <= mutable_limit(write_buffer_manager_bytes)


@dataclass(frozen=True)
class MemoryPlan:
    """How a budget is split, and what the candidate may use at most (modelled)."""

    budget: int
    shared: bool  # one cache + write buffer manager for the whole instance (Flink's managed mode)
    cache_bytes: int  # shared cache, or the sum of per-column-family caches
    write_buffer_manager_bytes: int | None
    memtable_bytes_max: int  # memtables at most (unmanaged: count * size * column families)
    modelled_peak: int  # what the instance may hold at most, by Flink's own accounting

    @property
    def fits(self) -> bool:
        """Whether the modelled peak stays within the budget."""
        return self.modelled_peak <= self.budget


def plan_shared(budget: int, write_buffer_ratio: float) -> MemoryPlan:
    """Managed or fixed-per-slot/tm memory: Flink sizes cache and write buffer manager from it.

    The write buffer manager's memory is charged into the cache, and by Flink's derivation the
    cache plus the memtables' overshoot (half the manager's capacity) equals the budget.
    """
    cache = cache_capacity(budget, write_buffer_ratio)
    wbm = write_buffer_manager_capacity(budget, write_buffer_ratio)
    return MemoryPlan(
        budget=budget,
        shared=True,
        cache_bytes=cache,
        write_buffer_manager_bytes=wbm,
        memtable_bytes_max=wbm + wbm // 2,
        modelled_peak=cache + wbm // 2,
    )


def plan_unmanaged(
    budget: int,
    column_families: int,
    block_cache_size: int,
    write_buffer_size: int,
    max_write_buffer_number: int,
) -> MemoryPlan:
    """state.backend.rocksdb.memory.managed: false: every column family gets its own block cache
    of block.cache-size and up to writebuffer.count memtables of writebuffer.size."""
    memtables = column_families * write_buffer_size * max_write_buffer_number
    caches = column_families * block_cache_size
    return MemoryPlan(
        budget=budget,
        shared=False,
        cache_bytes=caches,
        write_buffer_manager_bytes=None,
        memtable_bytes_max=memtables,
        modelled_peak=caches + memtables,
    )


def minimum_budget(column_families: int, write_buffer_ratio: float) -> int:
    """The smallest shared budget whose write buffer manager holds one minimal memtable per
    column family; below it RocksDB would flush on nearly every write."""
    need = column_families * MIN_WRITE_BUFFER_SIZE
    return int(need * 3 / (2 * write_buffer_ratio)) + 1


# How far RocksDB's own figure may pass the slot's budget before a measurement is stopped.
# Flink's plan lets it pass: the cache is created without a strict capacity limit and the write
# buffer manager without stalls (RocksDBMemoryControllerUtils.allocateRocksDBSharedResources), so
# pinned blocks and memtables being flushed sit on top of a full cache. Measured peaks of the
# bundled workloads under Flink's default and predefined sets: docs/measurements (memory guard).
GUARD_FACTOR = 1.5


def covered_bytes(memory: dict[str, int], *, shared: bool, index_in_cache: bool) -> int:
    """RocksDB's memory that the slot's budget covers, from what RocksDB itself reports
    (:meth:`tuner.engine.base.Engine.memory`): the replay process's own buffers are not in it.

    Under Flink's shared memory the block cache's usage already holds the memtables (the write
    buffer manager charges them to the cache) and, with ``cache_index_and_filter_blocks``, the
    index and filter blocks; what is outside the cache is added.
    """
    total = memory["block_cache_usage"]
    if not shared:
        total += memory["memtables_bytes"]
    if not index_in_cache:
        total += memory["table_readers_bytes"]
    return total
