"""The disk cost model: counted I/O turned into time on the disk a job will really run on.

A replay database sits in this machine's page cache (24 GiB), so a block-cache miss costs almost
nothing here, while a TaskManager in a container with a memory limit pays a disk read for it.
Instead of trusting this machine's wall clock, a trial's throughput is scored from what was
counted: the process CPU time of the replay (foreground and background threads) plus the I/O the
replay did, converted into time on the target disk:

* foreground reads: every block-cache miss is one random read of a block, issued by the single
  operator thread and waited for (latency-bound), unless the disk's IOPS or bandwidth bind first;
* background I/O: flush and compaction writes and compaction reads, sequential, overlapping the
  foreground; they bound throughput only when the disk cannot keep up with them.

    elapsed = max(cpu_s + foreground_read_s, background_io_s);  ops_per_s = ops / elapsed

The raw counts stay in trials.csv, so a run can be re-scored for another disk later
(``tuner report DIR --disk network-ssd``) without re-running anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tuner.errors import TunerError

MB = 1_000_000


@dataclass(frozen=True)
class Disk:
    """What the target disk can do. Rates per second; latency of one random read."""

    name: str
    read_latency_us: float
    read_iops: float
    read_bytes_per_s: float
    write_bytes_per_s: float

    def describe(self) -> str:
        """One line for reports."""
        return (
            f"{self.name}: {self.read_latency_us:g} µs per random read, "
            f"{self.read_iops:,.0f} read IOPS, {self.read_bytes_per_s / MB:,.0f} MB/s read, "
            f"{self.write_bytes_per_s / MB:,.0f} MB/s write"
        )


# Typical figures, rounded; a workload can give its own numbers instead.
PRESETS: Mapping[str, Disk] = MappingProxyType(
    {
        # Everything served from memory: what this machine measures (no disk cost at all).
        "page-cache": Disk("page-cache", 0.0, math.inf, math.inf, math.inf),
        # A local NVMe SSD (e.g. an instance-store volume).
        "local-nvme": Disk("local-nvme", 90.0, 400_000, 2_500 * MB, 1_500 * MB),
        # A SATA SSD.
        "local-ssd": Disk("local-ssd", 150.0, 80_000, 500 * MB, 450 * MB),
        # Network block storage at a common baseline (AWS gp3: 3000 IOPS, 125 MB/s).
        "network-ssd": Disk("network-ssd", 800.0, 3_000, 125 * MB, 125 * MB),
        # A spinning disk.
        "hdd": Disk("hdd", 8_000.0, 150, 150 * MB, 150 * MB),
    }
)
DEFAULT_DISK = "local-nvme"


def disk_from(spec: str | Mapping[str, float | str]) -> Disk:
    """A preset by name, or a custom disk from its numbers."""
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise TunerError(
                f"unknown disk {spec!r}; expected one of {', '.join(PRESETS)} or custom numbers"
            )
        return PRESETS[spec]
    try:
        return Disk(
            name=str(spec.get("name", "custom")),
            read_latency_us=float(spec["read_latency_us"]),
            read_iops=float(spec["read_iops"]),
            read_bytes_per_s=float(spec["read_mb_s"]) * MB,
            write_bytes_per_s=float(spec["write_mb_s"]) * MB,
        )
    except KeyError as exc:
        raise TunerError(f"custom disk lacks {exc.args[0]!r}") from None


# Counters a trial must carry to be scored.
NEEDED = (
    "ops",
    "cpu_s",
    "block_cache_misses",
    "sst_bytes_read",
    "compaction_bytes_read",
    "compaction_bytes_written",
    "flush_bytes_written",
)


def can_score(metrics: Mapping[str, float]) -> bool:
    """Whether a measurement carries the counters the model prices (older or foreign rows,
    e.g. from the Flink engine, keep their own ``ops_per_s``)."""
    return all(name in metrics for name in NEEDED)


def _get(metrics: Mapping[str, float], name: str) -> float:
    v = float(metrics.get(name, math.nan))
    return 0.0 if math.isnan(v) and name != "ops" and name != "cpu_s" else v


def foreground_read_s(metrics: Mapping[str, float], disk: Disk) -> float:
    """Seconds the operator thread waits for block reads the block cache missed."""
    misses = _get(metrics, "block_cache_misses")
    if misses <= 0:
        return 0.0
    return max(
        misses * disk.read_latency_us / 1e6,
        misses / disk.read_iops,
        _get(metrics, "sst_bytes_read") / disk.read_bytes_per_s,
    )


def background_io_s(metrics: Mapping[str, float], disk: Disk) -> float:
    """Seconds the disk needs for flushes and compactions, including the compaction debt the
    replay left unpaid (``compaction_debt_bytes``: read once and written once more)."""
    debt = _get(metrics, "compaction_debt_bytes")
    written = (
        _get(metrics, "flush_bytes_written") + _get(metrics, "compaction_bytes_written") + debt
    )
    return (
        _get(metrics, "compaction_bytes_read") + debt
    ) / disk.read_bytes_per_s + written / disk.write_bytes_per_s


def modelled_seconds(metrics: Mapping[str, float], disk: Disk) -> float:
    """The replay's elapsed time on ``disk``: CPU plus waited reads, or the background I/O."""
    cpu = _get(metrics, "cpu_s")
    return max(cpu + foreground_read_s(metrics, disk), background_io_s(metrics, disk))


def modelled_ops_per_s(metrics: Mapping[str, float], disk: Disk) -> float:
    """Throughput on ``disk`` (NaN when the counters are missing)."""
    ops = _get(metrics, "ops")
    seconds = modelled_seconds(metrics, disk)
    if math.isnan(ops) or math.isnan(seconds) or seconds <= 0:
        return math.nan
    return ops / seconds


def score(metrics: Mapping[str, float], disk: Disk) -> dict[str, float]:
    """The scored metrics: ``ops_per_s`` becomes the modelled throughput on ``disk``; the
    replay's own wall-clock figure is kept as ``wall_ops_per_s``. Metrics without the counters
    (see :func:`can_score`) are returned unchanged."""
    out = dict(metrics)
    if not can_score(metrics):
        return out
    if "wall_ops_per_s" not in out and "ops_per_s" in out:
        out["wall_ops_per_s"] = out["ops_per_s"]
    out["foreground_read_s"] = foreground_read_s(metrics, disk)
    out["background_io_s"] = background_io_s(metrics, disk)
    out["ops_per_s"] = modelled_ops_per_s(metrics, disk)
    return out
