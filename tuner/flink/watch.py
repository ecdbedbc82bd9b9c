"""What to watch in production: Flink's RocksDB native metrics that tell whether a tuned
configuration still fits the job, each with the figure the measurement gave and when to tune
again.

The emitted config files carry them commented out (switching them on is one uncommented line
each); the report shows the same figures for the recommendation beside Flink's default, so
"healthy" has a number. Ticker metrics (block-cache hit and miss, stall time) make Flink enable
RocksDB statistics, which Flink's documentation warns costs throughput: they are advice to
switch on while checking, not settings tuner measured with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tuner.units import MIB

PREFIX = "state.backend.rocksdb.metrics."


@dataclass(frozen=True)
class Watch:
    """One metric option: what it reports and when its value says to tune again."""

    name: str  # the option key after ``state.backend.rocksdb.metrics.``
    reports: str
    rerun_when: str

    @property
    def key(self) -> str:
        """The Flink option key that switches the metric on."""
        return PREFIX + self.name


WATCHES: tuple[Watch, ...] = (
    Watch(
        "block-cache-hit",
        "block reads served by the shared block cache (with block-cache-miss: the hit ratio)",
        "the hit ratio falls well below the measured one: the state has outgrown the cache",
    ),
    Watch(
        "block-cache-miss",
        "block reads that went to the page cache or the disk",
        "misses per state call rise well above the measured figure",
    ),
    Watch(
        "block-cache-usage",
        "bytes the block cache holds (it also holds the memtables charged to it)",
        "it sits at the cache's capacity while misses rise (or give the slot more memory)",
    ),
    Watch(
        "size-all-mem-tables",
        "bytes in memtables, active and immutable",
        "it stays near the write-buffer budget while stalls appear",
    ),
    Watch(
        "mem-table-flush-pending",
        "memtable flushes waiting to run",
        "it stays above 0: flushes cannot keep up with the writes",
    ),
    Watch(
        "estimate-pending-compaction-bytes",
        "bytes compaction must rewrite to bring every level within its target (level style)",
        "it grows and does not come back down: compaction falls behind and stalls follow",
    ),
    Watch(
        "stall-micros",
        "time writers waited for a flush or a compaction",
        "it grows at all: writes are stalling",
    ),
    Watch(
        "estimate-live-data-size",
        "live data in SST files",
        "it grows well past the measured size: the job's state has grown",
    ),
)


def measured_figures(metrics: Mapping[str, float], scale: float = 1.0) -> dict[str, str]:
    """Each watch's value in a measurement (its trials.csv metrics), as a reader sees it; a
    watch the replay does not measure is left out. Byte figures of a scaled model (``scale``
    < 1) are given in production units."""

    def get(name: str) -> float | None:
        value = metrics.get(name)
        return None if value is None or value != value else float(value)

    def mib(value: float | None) -> str | None:
        return None if value is None else f"{value / scale / MIB:,.1f} MiB"

    out: dict[str, str] = {}
    hits, misses = get("block_cache_hits"), get("block_cache_misses")
    calls = get("state_ops")
    if hits is not None and misses is not None and hits + misses > 0:
        out["block-cache-hit"] = f"{hits / (hits + misses):.1%} of block reads hit the cache"
    if misses is not None and calls:
        out["block-cache-miss"] = f"{1000 * misses / calls:,.1f} misses per 1,000 state calls"
    peak = mib(get("rocksdb_memory_peak_bytes"))
    figures = {
        # The peak of what the budget covers (cache, memtables charged to it, index and filter
        # blocks): the figures at the end of a measurement are after its final flush.
        "block-cache-usage": None if peak is None else f"peak {peak}",
        "estimate-pending-compaction-bytes": mib(get("pending_compaction_bytes_end")),
        "estimate-live-data-size": mib(get("live_bytes")),
    }
    out.update({k: v for k, v in figures.items() if v is not None})
    stall, wall = get("stall_micros"), get("replay_wall_s")
    if stall is not None and wall:
        out["stall-micros"] = f"{stall / 1000 / wall:,.1f} ms of stall per second"
    return out


def watch_comment(watch: Watch, figure: str | None) -> str:
    """The comment above a watch's commented-out key in an emitted file."""
    measured = f"Measured here: {figure}." if figure else "Not measured by tuner."
    what = watch.reports[0].upper() + watch.reports[1:]
    return f"{what}. {measured} Tune again when {watch.rerun_when}."


__all__ = ["PREFIX", "WATCHES", "Watch", "measured_figures", "watch_comment"]
