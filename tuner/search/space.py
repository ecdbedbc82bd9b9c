"""The search space: Flink options that matter, as Optuna distributions.

Parameter names are the Flink keys themselves, so a trial's params are Flink settings and
``trials.csv`` columns need no translation table. Sizes are searched on a log scale in powers of
two (what people actually configure), expressed in bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final, Literal, Protocol

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tuner.flink import options as fo
from tuner.flink.catalog import load_catalog
from tuner.flink.memory import MIN_WRITE_BUFFER_SIZE, Memory, max_write_buffer_ratio
from tuner.units import KIB, MIB

# Compression layouts worth trying, as Flink's compression.per.level lists. The last entry
# applies to every deeper level (RocksDB's compression_per_level rule).
COMPRESSION_LAYOUTS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "snappy": ("SNAPPY_COMPRESSION",),
        "none": ("NO_COMPRESSION",),
        "lz4": ("LZ4_COMPRESSION",),
        "none-none-snappy": ("NO_COMPRESSION", "NO_COMPRESSION", "SNAPPY_COMPRESSION"),
        "none-none-lz4": ("NO_COMPRESSION", "NO_COMPRESSION", "LZ4_COMPRESSION"),
        "none-lz4-zstd": ("NO_COMPRESSION", "LZ4_COMPRESSION", "ZSTD_COMPRESSION"),
    }
)
COMPRESSION_PARAM: Final = "compression-layout"
# The user attribute of a study trial told from a baseline's measurement (a warm start): its label.
WARM_START_ATTR: Final = "warm_start"
# Which restore options a search draws: none, the transfer threads, or those and the rescaling
# ones (tuner.search.study.StudyConfig.restore_search).
RestoreSearch = Literal["none", "restore", "rescale"]
# Flink's rescaling restore options, searched with --rescale (the transfer threads always).
RESCALE_OPTIONS: Final = (
    fo.RESTORE_OVERLAP_FRACTION,
    fo.DELETE_FILES_IN_RANGE,
    fo.INGEST_DB_RESTORE,
)


class TrialLike(Protocol):
    """The part of ``optuna.Trial`` the space uses (keeps this module testable without a study)."""

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = ...) -> int: ...
    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = ...
    ) -> float: ...
    def suggest_categorical(self, name: str, choices: list[str]) -> str: ...


def _pow2(trial: TrialLike, name: str, low: int, high: int) -> int:
    """A power-of-two size between low and high (bytes), searched by its exponent."""
    lo, hi = low.bit_length() - 1, high.bit_length() - 1
    return 1 << trial.suggest_int(name + ".log2", lo, hi)


def suggest(
    trial: TrialLike, memory: Memory, timers: bool = False, restore: RestoreSearch = "none"
) -> dict[str, fo.FlinkValue]:
    """Draw one candidate's Flink settings from the trial; ``timers``: the job has timers, so
    where they live (timer-service.factory: RocksDB column families or the JVM heap) is
    searched too. ``restore``: how a restore runs is searched too (--objective recovery on
    Flink's own backend, where those options act): the transfer threads, and with
    ``"rescale"`` Flink's rescaling options."""
    s: dict[str, fo.FlinkValue] = {}
    if memory.mode != "unmanaged":
        # Rounded: a float step gives 0.7000000000000001, which would reach the emitted config.
        # Flink refuses a ratio whose write buffer share crowds out the high-priority pool.
        top = min(0.8, max_write_buffer_ratio(memory.high_prio_pool_ratio))
        if top >= 0.1:
            s[fo.WRITE_BUFFER_RATIO] = round(
                trial.suggest_float(fo.WRITE_BUFFER_RATIO, 0.1, top, step=0.05), 2
            )
        else:  # a pool so large that only the workload's own small ratio fits
            s[fo.WRITE_BUFFER_RATIO] = memory.write_buffer_ratio
        s[fo.PARTITIONED_INDEX_FILTERS] = (
            trial.suggest_categorical(fo.PARTITIONED_INDEX_FILTERS, ["false", "true"]) == "true"
        )
    else:
        s[fo.BLOCK_CACHE_SIZE] = _pow2(trial, fo.BLOCK_CACHE_SIZE, 4 * MIB, 512 * MIB)
    s[fo.WRITE_BUFFER_SIZE] = _pow2(trial, fo.WRITE_BUFFER_SIZE, MIN_WRITE_BUFFER_SIZE, 128 * MIB)
    count = trial.suggest_int(fo.MAX_WRITE_BUFFER_NUMBER, 2, 6)
    s[fo.MAX_WRITE_BUFFER_NUMBER] = count
    # Pinned, not searched: merging memtables lets a checkpoint's flush wait for ever
    # (facebook/rocksdb#12094, open; 4 of 88 replays hung, docs: measurement design), and no
    # gain is worth a job whose checkpoint may never finish. Pinned so that a pasted config
    # also overrides a merge the user's own configuration sets.
    s[fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE] = 1
    style = trial.suggest_categorical(fo.COMPACTION_STYLE, ["LEVEL", "UNIVERSAL"])
    s[fo.COMPACTION_STYLE] = style
    s[fo.TARGET_FILE_SIZE_BASE] = _pow2(trial, fo.TARGET_FILE_SIZE_BASE, 4 * MIB, 256 * MIB)
    s[fo.MAX_SIZE_LEVEL_BASE] = _pow2(trial, fo.MAX_SIZE_LEVEL_BASE, 16 * MIB, 1024 * MIB)
    s[fo.USE_DYNAMIC_LEVEL_SIZE] = (
        trial.suggest_categorical(fo.USE_DYNAMIC_LEVEL_SIZE, ["false", "true"]) == "true"
    )
    s[fo.BLOCK_SIZE] = _pow2(trial, fo.BLOCK_SIZE, 4 * KIB, 64 * KIB)
    bloom = trial.suggest_categorical(fo.USE_BLOOM_FILTER, ["false", "true"]) == "true"
    s[fo.USE_BLOOM_FILTER] = bloom
    if bloom:
        s[fo.BLOOM_FILTER_BITS_PER_KEY] = float(
            trial.suggest_int(fo.BLOOM_FILTER_BITS_PER_KEY, 4, 20)
        )
    layout = trial.suggest_categorical(COMPRESSION_PARAM, list(COMPRESSION_LAYOUTS))
    s[fo.COMPRESSION_PER_LEVEL] = COMPRESSION_LAYOUTS[layout]
    s[fo.THREAD_NUM] = trial.suggest_int(fo.THREAD_NUM, 1, 4)
    if timers:
        s[fo.TIMER_SERVICE_FACTORY] = trial.suggest_categorical(
            fo.TIMER_SERVICE_FACTORY, ["ROCKSDB", "HEAP"]
        )
    if restore != "none":
        s[fo.CHECKPOINT_TRANSFER_THREADS] = trial.suggest_int(fo.CHECKPOINT_TRANSFER_THREADS, 1, 8)
    if restore == "rescale":
        s[fo.RESTORE_OVERLAP_FRACTION] = trial.suggest_float(
            fo.RESTORE_OVERLAP_FRACTION, 0.0, 1.0, step=0.25
        )
        for key in (fo.DELETE_FILES_IN_RANGE, fo.INGEST_DB_RESTORE):
            s[key] = trial.suggest_categorical(key, ["false", "true"]) == "true"
    return s


def searched_keys(
    memory: Memory, timers: bool = False, restore: RestoreSearch = "none"
) -> tuple[str, ...]:
    """The Flink keys a search sets (what a recommendation pins explicitly)."""
    shared = (
        (fo.WRITE_BUFFER_RATIO, fo.PARTITIONED_INDEX_FILTERS)
        if memory.mode != "unmanaged"
        else (fo.BLOCK_CACHE_SIZE,)
    )
    return (
        *shared,
        fo.WRITE_BUFFER_SIZE,
        fo.MAX_WRITE_BUFFER_NUMBER,
        fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE,
        fo.COMPACTION_STYLE,
        fo.TARGET_FILE_SIZE_BASE,
        fo.MAX_SIZE_LEVEL_BASE,
        fo.USE_DYNAMIC_LEVEL_SIZE,
        fo.BLOCK_SIZE,
        fo.USE_BLOOM_FILTER,
        fo.BLOOM_FILTER_BITS_PER_KEY,
        fo.COMPRESSION_PER_LEVEL,
        fo.THREAD_NUM,
        *((fo.TIMER_SERVICE_FACTORY,) if timers else ()),
        *((fo.CHECKPOINT_TRANSFER_THREADS,) if restore != "none" else ()),
        *(RESCALE_OPTIONS if restore == "rescale" else ()),
    )


@dataclass(frozen=True)
class Point:
    """A configuration as the search's own parameters: what Optuna is told of a configuration
    measured outside the search (a warm start)."""

    params: Mapping[str, int | float | str]
    distributions: Mapping[str, BaseDistribution]


class _Inverse:
    """A TrialLike that answers every suggestion with the value a configuration already has, so
    that :func:`suggest` run on it yields that configuration's parameters. A value the space
    cannot draw (off its range or grid) is answered with the nearest one it can; the caller's
    round trip then finds the difference."""

    def __init__(self, values: Mapping[str, fo.FlinkValue]) -> None:
        self._values = values
        self.params: dict[str, int | float | str] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        if name.endswith(".log2"):  # _pow2: the exponent of a size
            size = self._values[name.removesuffix(".log2")]
            x = int(size).bit_length() - 1 if isinstance(size, int) and size > 0 else low
        else:
            value = self._values[name]
            x = int(value) if isinstance(value, int | float) else low
        x = min(max(x, low), high)
        self.params[name] = x
        self.distributions[name] = IntDistribution(low, high, log=log)
        return x

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None
    ) -> float:
        dist = FloatDistribution(low, high, step=step)
        value = self._values[name]
        x = float(value) if isinstance(value, int | float) else low
        if step is not None:
            x = low + round((x - low) / step) * step
        x = min(max(x, dist.low), dist.high)
        self.params[name] = x
        self.distributions[name] = dist
        return x

    def suggest_categorical(self, name: str, choices: list[str]) -> str:
        if name == COMPRESSION_PARAM:
            wanted = self._values[fo.COMPRESSION_PER_LEVEL]
            named = [k for k, layout in COMPRESSION_LAYOUTS.items() if layout == wanted]
            x = named[0] if named else choices[0]
        else:
            value = self._values[name]
            x = str(value).lower() if isinstance(value, bool) else str(value)
            x = x if x in choices else choices[0]
        self.params[name] = x
        self.distributions[name] = CategoricalDistribution(choices)
        return x


def _nearest(
    settings: fo.FlinkSettings, memory: Memory, timers: bool, restore: RestoreSearch
) -> tuple[_Inverse, dict[str, fo.FlinkValue]]:
    """The search point nearest these settings, and that point's own settings."""
    inverse = _Inverse(fo.effective({**fo.memory_settings(memory), **settings}))
    return inverse, suggest(inverse, memory, timers, restore)


def point_of(
    settings: fo.FlinkSettings,
    memory: Memory,
    flink_version: str = "2.x",
    timers: bool = False,
    restore: RestoreSearch = "none",
) -> Point | None:
    """These settings (a predefined set, a user's configuration) as a point of the search space,
    or None when no point is the same configuration: the point's settings must open RocksDB
    exactly as these do (:func:`tuner.flink.options.resolve`) and keep timers and restores
    alike. SPINNING_DISK_OPTIMIZED_HIGH_MEM's 128 KiB blocks, for one, are off the range."""
    inverse, drawn = _nearest(settings, memory, timers, restore)
    if not same_configuration(drawn, settings, memory, flink_version):
        return None
    return Point(dict(inverse.params), dict(inverse.distributions))


def off_space(
    settings: fo.FlinkSettings,
    memory: Memory,
    flink_version: str = "2.x",
    timers: bool = False,
    restore: RestoreSearch = "none",
) -> list[str]:
    """The searched keys whose value in these settings no search point has (``key = value``)."""
    values = fo.effective({**fo.memory_settings(memory), **settings})
    _, drawn = _nearest(settings, memory, timers, restore)
    catalog = load_catalog(flink_version)
    return [
        f"{key.removeprefix('state.backend.rocksdb.')} = {catalog.format_value(key, values[key])}"
        for key, value in drawn.items()
        if values[key] != value
    ]


def same_configuration(
    a: fo.FlinkSettings, b: fo.FlinkSettings, memory: Memory, flink_version: str = "2.x"
) -> bool:
    """Whether two settings run the same: RocksDB opened alike, timers and restores alike."""
    ra, rb = fo.resolve(a, memory, flink_version), fo.resolve(b, memory, flink_version)
    if memory.mode != "unmanaged":  # beside Flink's shared cache, block.cache-size is unused
        ra, rb = replace(ra, block_cache_size=0), replace(rb, block_cache_size=0)
    ea, eb = fo.effective(a), fo.effective(b)
    beyond = (fo.TIMER_SERVICE_FACTORY, fo.CHECKPOINT_TRANSFER_THREADS, *RESCALE_OPTIONS)
    return ra == rb and all(ea[k] == eb[k] for k in beyond)
