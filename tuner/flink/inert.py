"""Options that do nothing under other settings, as data: one rule per line, each with the
condition that makes its keys inert and why. A recommendation never emits an inert key, and the
minimal recommendation never spends a measurement on one.

(The advisor's lesson: knowledge as data, so every dropped key can be traced to its rule.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from tuner.flink import options as fo
from tuner.flink.memory import Memory

__all__ = ["INERT_RULES", "MEMORY_MODE", "InertRule", "inert_keys", "without_inert"]

# Not a Flink key: the workload's memory mode, so rules can depend on it like on any option.
MEMORY_MODE: Final = "tuner.memory-mode"


@dataclass(frozen=True)
class InertRule:
    """``keys`` do nothing while ``when`` has one of ``values``."""

    keys: tuple[str, ...]
    when: str
    values: tuple[fo.FlinkValue, ...]
    why: str


INERT_RULES: Final[tuple[InertRule, ...]] = (
    # Flink groups them as compaction.level.* (RocksDBConfigurableOptions.java); RocksDB sizes
    # levels and cuts output files by them only under level compaction (universal compaction
    # writes each sorted run as a whole, FIFO never compacts into levels).
    InertRule(
        (fo.MAX_SIZE_LEVEL_BASE, fo.USE_DYNAMIC_LEVEL_SIZE, fo.TARGET_FILE_SIZE_BASE),
        fo.COMPACTION_STYLE,
        ("UNIVERSAL", "FIFO"),
        "a level-compaction option; compaction.style is not LEVEL",
    ),
    # RocksDBResourceContainer.getColumnOptions only installs a filter when use-bloom-filter is on.
    InertRule(
        (fo.BLOOM_FILTER_BITS_PER_KEY, fo.BLOOM_FILTER_BLOCK_BASED_MODE),
        fo.USE_BLOOM_FILTER,
        (False,),
        "a bloom filter option; use-bloom-filter is false",
    ),
    # With managed or fixed memory one shared cache sized from the budget replaces the
    # per-column-family block cache (RocksDBMemoryControllerUtils / RocksDBResourceContainer).
    InertRule(
        (fo.BLOCK_CACHE_SIZE,),
        MEMORY_MODE,
        ("managed", "fixed-per-slot", "fixed-per-tm"),
        "RocksDB memory is shared (managed or fixed): the cache is sized from the budget",
    ),
    # The ratios and partitioning configure the shared cache and write buffer manager, which
    # only exist under managed or fixed memory (tuner.flink.options.resolve, as Flink).
    InertRule(
        (fo.WRITE_BUFFER_RATIO, fo.HIGH_PRIO_POOL_RATIO, fo.PARTITIONED_INDEX_FILTERS),
        MEMORY_MODE,
        ("unmanaged",),
        "a shared-memory option; memory.managed is false and no fixed memory is set",
    ),
    # RocksDBPriorityQueueSetFactory's cache; the heap factory (HeapPriorityQueueSetFactory)
    # keeps every timer on the heap and has no cache to size.
    InertRule(
        (fo.TIMER_SERVICE_CACHE_SIZE,),
        fo.TIMER_SERVICE_FACTORY,
        ("HEAP",),
        "a RocksDB timer-service option; timer-service.factory is HEAP",
    ),
)


def inert_keys(settings: fo.FlinkSettings, memory: Memory) -> dict[str, str]:
    """Keys of ``settings`` that do nothing under the effective values, with the reason."""
    values: dict[str, fo.FlinkValue] = fo.effective({**fo.memory_settings(memory), **settings})
    values[MEMORY_MODE] = memory.mode
    out: dict[str, str] = {}
    for rule in INERT_RULES:
        if values.get(rule.when) in rule.values:
            out.update({k: rule.why for k in rule.keys if k in settings})
    return out


def without_inert(
    settings: Mapping[str, fo.FlinkValue], memory: Memory
) -> dict[str, fo.FlinkValue]:
    """``settings`` without the keys that do nothing under them."""
    dead = inert_keys(settings, memory)
    return {k: v for k, v in settings.items() if k not in dead}
