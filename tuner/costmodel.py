"""The disk cost model: counted I/O turned into time on the disk a job will really run on.

A replay database sits in this machine's page cache (24 GiB), so a block-cache miss costs almost
nothing here, while a TaskManager in a container with a memory limit pays a disk read for it.
Instead of trusting this machine's wall clock, a trial's throughput is scored from what was
counted: the process CPU time of the replay (foreground and background threads) plus the I/O the
replay did, converted into time on the target disk:

* foreground reads: every block-cache miss is one random read of a block, issued by the single
  operator thread and waited for: the disk's latency plus the block's transfer time (so large
  blocks cost more per miss), unless the disk's IOPS bind first;
* background I/O: flush and compaction writes and compaction reads, sequential, overlapping the
  foreground; they bound throughput only when the disk cannot keep up with them.

    elapsed = max(cpu_s + frocksdb_extra_cpu_s + foreground_read_s, background_io_s)
    ops_per_s = ops / elapsed

``frocksdb_extra_cpu_s`` is what Flink's own RocksDB build spends more than the replay's on the
same reads (slower snappy decompression, measured; see FROCKSDB_SNAPPY_EXTRA_S_PER_BYTE).

The raw counts stay in trials.csv, so a run can be re-scored for another disk later
(``tuner report DIR --disk network-ssd``) without re-running anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tuner.errors import TunerError
from tuner.units import MEGABYTE


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
            f"{self.read_iops:,.0f} read IOPS, {self.read_bytes_per_s / MEGABYTE:,.0f} MB/s read, "
            f"{self.write_bytes_per_s / MEGABYTE:,.0f} MB/s write"
        )


# Typical figures, rounded; a workload can give its own numbers instead.
PRESETS: Mapping[str, Disk] = MappingProxyType(
    {
        # Everything served from memory: what this machine measures (no disk cost at all).
        "page-cache": Disk("page-cache", 0.0, math.inf, math.inf, math.inf),
        # A local NVMe SSD (e.g. an instance-store volume).
        "local-nvme": Disk("local-nvme", 90.0, 400_000, 2_500 * MEGABYTE, 1_500 * MEGABYTE),
        # A SATA SSD.
        "local-ssd": Disk("local-ssd", 150.0, 80_000, 500 * MEGABYTE, 450 * MEGABYTE),
        # Network block storage at a common baseline (AWS gp3: 3000 IOPS, 125 MB/s).
        "network-ssd": Disk("network-ssd", 800.0, 3_000, 125 * MEGABYTE, 125 * MEGABYTE),
        # A spinning disk.
        "hdd": Disk("hdd", 8_000.0, 150, 150 * MEGABYTE, 150 * MEGABYTE),
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
            read_bytes_per_s=float(spec["read_mb_s"]) * MEGABYTE,
            write_bytes_per_s=float(spec["write_mb_s"]) * MEGABYTE,
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


def foreground_bytes_read(metrics: Mapping[str, float]) -> float:
    """Bytes the operator thread read from SST files: RocksDB's level read tickers count every
    read through RandomAccessFileReader (compaction input included, FRocksDB's
    file/random_access_file_reader.cc RecordIOStats), so compaction reads are taken off."""
    return max(0.0, _get(metrics, "sst_bytes_read") - _get(metrics, "compaction_bytes_read"))


def foreground_read_s(metrics: Mapping[str, float], disk: Disk) -> float:
    """Seconds the operator thread waits for block reads the block cache missed.

    One thread issues them one at a time, so each miss costs the disk's latency plus the time to
    transfer its block: a 128 KiB block costs more than a 4 KiB one. The disk's IOPS bound only
    when it is lower than one read per latency.
    """
    misses = _get(metrics, "block_cache_misses")
    if misses <= 0:
        return 0.0
    transfer = foreground_bytes_read(metrics) / disk.read_bytes_per_s
    return max(misses * disk.read_latency_us / 1e6 + transfer, misses / disk.read_iops)


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


# Flink 2.x's FRocksDB 8.10 (the JNI library in flink-dist) decompresses snappy blocks about 8x
# slower than rocksdict's RocksDB 9.8: on the same SST files, with the same misses and bytes read,
# a 128 KiB block miss costs 424 µs of CPU there vs 64 µs here, a 4 KiB one 18.6 vs 7.3 µs; with
# LZ4 or no compression both libraries cost the same. Per uncompressed byte that is 2.7 ns more
# (`python tools/blockread/bench.py`, this machine). The replay counts the uncompressed bytes of
# the snappy data blocks it missed; Flink's operator thread pays this much more for them.
FROCKSDB_SNAPPY_EXTRA_S_PER_BYTE = 2.7e-9


def runtime_extra_cpu_s(metrics: Mapping[str, float]) -> float:
    """CPU seconds Flink's FRocksDB spends on top of the replay's for the same work: snappy
    decompression of the data blocks read on misses (0 for rows without that counter)."""
    return _get(metrics, "snappy_data_bytes_missed") * FROCKSDB_SNAPPY_EXTRA_S_PER_BYTE


def modelled_seconds(metrics: Mapping[str, float], disk: Disk) -> float:
    """The replay's elapsed time on ``disk`` with Flink's RocksDB: CPU (the replay's plus what
    FRocksDB spends more) plus waited reads, or the background I/O."""
    cpu = _get(metrics, "cpu_s") + runtime_extra_cpu_s(metrics)
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
    out["frocksdb_extra_cpu_s"] = runtime_extra_cpu_s(metrics)
    out["background_io_s"] = background_io_s(metrics, disk)
    out["ops_per_s"] = modelled_ops_per_s(metrics, disk)
    return out


# Where the read wait dominates the modelled time, the disk pricing is least reliable
# (tools/disk_pricing/run.py: 0.84-2.2x on the replay, up to 8.7x on Flink's backend).
DISK_BOUND_SHARE = 0.5


def read_wait_share(metrics: Mapping[str, float]) -> float | None:
    """The share of a scored measurement's modelled time spent waiting for block reads the cache
    missed (None when the counters are missing)."""
    ops, rate, wait = (
        float(metrics.get(k, math.nan)) for k in ("ops", "ops_per_s", "foreground_read_s")
    )
    if not (rate > 0 and ops > 0) or math.isnan(wait):
        return None
    return wait / (ops / rate)
