"""Does the disk cost model price a block-cache miss as a disk really charges it? (issue 7)

Every trial here runs on the page cache, so the cost model (tuner.costmodel) prices the counted
misses for the target disk instead of measuring them. This benchmark takes the page cache out of
the way and measures what the misses cost on this machine's disk:

1. probe the disk under the work directory with O_DIRECT random reads (one thread, as the
   operator thread issues them): the latency of a small read and the transfer rate of a large
   one, i.e. a custom ``Disk`` for the cost model;
2. replay each configuration twice, interleaved, ``--repeats`` times: through the page cache
   (the counted quantities, as ``tuner run`` measures) and with direct reads (RocksDB's
   ``use_direct_reads``: every miss is a read of the disk; on flink-backend through Flink's own
   ``state.backend.rocksdb.options-factory``);
3. compare, per configuration, the read wait the model predicts from the page-cache run's counters
   (``foreground_read_s`` for the probed disk) with the wall time direct reads really added to the
   measured phase, and rank the configurations by the model's throughput for the probed disk and
   by the direct-read runs' wall-clock throughput.

Wall clock: run it with nothing else heavy on the machine (``flock -x /work/heavy.lock`` here).

    python tools/disk_pricing/run.py workloads/quickstart.yaml --repeats 3
    python tools/disk_pricing/run.py workloads/session-map-state.yaml --engine flink-backend
"""

from __future__ import annotations

import argparse
import math
import mmap
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tuner.costmodel import PRESETS, Disk, foreground_read_s, modelled_ops_per_s
from tuner.flink import options as fo
from tuner.search.measure import measure_isolated
from tuner.search.study import BASELINES
from tuner.stats import spearman
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import write_trace
from tuner.workload import Workload, load_workload

PROBE_FILE_BYTES = 1 << 30  # larger than any cache on the way that the guest controls
_SMALL, _LARGE = 4096, 1 << 20


def _direct_read_s(fd: int, block: int, n: int, file_bytes: int) -> list[float]:
    buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT requires
    rng = random.Random(block)
    out = []
    for _ in range(n):
        offset = rng.randrange(file_bytes // block) * block
        t = time.perf_counter()
        os.preadv(fd, [buf], offset)
        out.append(time.perf_counter() - t)
    return out


def probe_disk(directory: Path, file_bytes: int = PROBE_FILE_BYTES) -> Disk:
    """This machine's disk under ``directory`` as the cost model sees a disk: the median of
    single-threaded O_DIRECT random 4 KiB reads (latency) and 1 MiB reads (transfer rate)."""
    path = directory / "probe.bin"
    chunk = os.urandom(_LARGE)
    with path.open("wb") as f:
        for _ in range(file_bytes // _LARGE):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        _direct_read_s(fd, _SMALL, 200, file_bytes)  # the first reads pay for cold paths
        small = statistics.median(_direct_read_s(fd, _SMALL, 2000, file_bytes))
        large = statistics.median(_direct_read_s(fd, _LARGE, 200, file_bytes))
    finally:
        os.close(fd)
        path.unlink()
    rate = (_LARGE - _SMALL) / max(large - small, 1e-9)
    latency_us = max(0.0, small - _SMALL / rate) * 1e6
    nvme = PRESETS["local-nvme"]
    return Disk(
        name="this machine, direct reads",
        read_latency_us=round(latency_us, 1),
        read_iops=math.inf,  # one thread waits for each read: latency binds, never IOPS
        read_bytes_per_s=rate,
        write_bytes_per_s=nvme.write_bytes_per_s,  # background writes are not what is checked
    )


def _med(xs: Sequence[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return statistics.median(xs) if xs else math.nan


def _span(xs: Sequence[float], fmt: str = "{:,.2f}") -> str:
    return f"{fmt.format(min(xs))} .. {fmt.format(max(xs))}" if xs else "-"


def _measure(
    workload: Workload, trace: Path, name: str, engine: str, direct: bool, work: Path
) -> dict[str, float]:
    m = measure_isolated(
        workload,
        trace,
        {fo.PREDEFINED_OPTIONS: name},
        work / f"m-{len(list(work.iterdir()))}",
        timeout_s=3600,
        rss_margin=2 << 30,
        engine_name=engine,
        direct_reads=direct,
    )
    if m.status != "ok":
        raise SystemExit(f"{name} ({engine}, direct={direct}): measurement failed: {m.reason}")
    return dict(m.metrics)


def compare(path: Path, engine: str, repeats: int, configs: Sequence[str]) -> None:
    """Measure and print the tables for one workload."""
    w = load_workload(path)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TUNER_WORK_DIR")) as tmp:
        work = Path(tmp)
        disk = probe_disk(work)
        trace = work / "trace.parquet"
        write_trace(trace, stream_header(w), generate(w, "preload"), generate(w, "measure"))
        runs: dict[tuple[str, bool], list[dict[str, float]]] = {}
        for r in range(repeats):
            for name in configs:
                for direct in (False, True):
                    runs.setdefault((name, direct), []).append(
                        _measure(w, trace, name, engine, direct, work)
                    )
                print(f"  repeat {r + 1}/{repeats}: {name} done", flush=True)
    print(f"\n### {w.name} on {engine}: {repeats} interleaved repeats per configuration and mode\n")
    print(f"Probed disk: {disk.describe()}\n")
    print(
        "| configuration | misses / 1k calls | cached wall s | predicted read wait s "
        "(local-nvme) | predicted read wait s (probed) | measured extra wall s, direct - cached "
        "(range) | measured / predicted | predicted direct-read ops/s | measured direct-read "
        "ops/s (range) | cost model's ops/s (local-nvme) | write stalls s, direct |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    predicted: dict[str, float] = {}
    nvme: dict[str, float] = {}
    measured: dict[str, float] = {}
    for name in configs:
        cached, direct = runs[(name, False)], runs[(name, True)]
        calls = _med([m["ops"] for m in cached]) / 1000
        misses = _med([m["block_cache_misses"] for m in cached]) / calls
        wall = _med([m["replay_wall_s"] for m in cached])
        wait = _med([foreground_read_s(m, disk) for m in cached])
        wait_nvme = _med([foreground_read_s(m, PRESETS["local-nvme"]) for m in cached])
        # Paired by repeat: each direct run against the cached run just before it.
        extra = [
            d["replay_wall_s"] - c["replay_wall_s"] for c, d in zip(cached, direct, strict=True)
        ]
        # The pricing alone: the cached run's own time plus the waits the model adds for the
        # disk (the CPU side of the model is not what this checks).
        predicted[name] = _med([m["ops"] / (m["replay_wall_s"] + wait) for m in cached])
        nvme[name] = _med([modelled_ops_per_s(m, PRESETS["local-nvme"]) for m in cached])
        direct_ops = [d["ops"] / d["replay_wall_s"] for d in direct]
        measured[name] = _med(direct_ops)
        ratio = _med(extra) / wait if wait > 0 else math.nan
        print(
            f"| {name} | {misses:,.1f} | {wall:.2f} | {wait_nvme:.2f} | {wait:.2f} | "
            f"{_med(extra):.2f} ({_span(extra)}) | {ratio:.2f} | {predicted[name]:,.0f} | "
            f"{measured[name]:,.0f} ({_span(direct_ops, '{:,.0f}')}) | {nvme[name]:,.0f} | "
            f"{_med([d.get('stall_micros', math.nan) / 1e6 for d in direct]):.2f} |",
            flush=True,
        )
    names = list(configs)
    rho = spearman([predicted[n] for n in names], [measured[n] for n in names])
    rho_nvme = spearman([nvme[n] for n in names], [measured[n] for n in names])
    print(
        f"\nSpearman, predicted vs measured direct-read ops/s: {rho:+.2f} "
        f"(the cost model's own local-nvme ops/s vs the same: {rho_nvme:+.2f})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("workloads", type=Path, nargs="+")
    p.add_argument("--engine", choices=("rocksdict", "flink-backend"), default="rocksdict")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--configs", default=",".join(BASELINES), help="predefined option sets")
    args = p.parse_args(argv)
    for path in args.workloads:
        compare(path, args.engine, args.repeats, args.configs.split(","))


if __name__ == "__main__":
    main()
