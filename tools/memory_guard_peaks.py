"""The memory guard's evidence: how much of the slot's budget RocksDB itself holds at its peak
under Flink's default and its predefined option sets, per workload, beside the process's RSS.

    python tools/memory_guard_peaks.py WORKLOAD [WORKLOAD ...] [--repeats N]

Each configuration is measured in its own process, as a trial is (one the guard stops prints
its reason); prints one row each: the peak of what the budget covers
(tuner.flink.memory.covered_bytes), its ratio to the budget, and the process's peak RSS. The
guard's limit (tuner.flink.memory.GUARD_FACTOR x the budget) must sit above every ratio here.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from tuner.flink import options as fo
from tuner.flink.memory import GUARD_FACTOR
from tuner.search.measure import measure_isolated
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import write_trace
from tuner.workload import load_workload

MiB = 1 << 20


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("workloads", nargs="+", type=Path)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    print(f"guard limit: {GUARD_FACTOR} x budget")
    print("| workload | configuration | budget | RocksDB peak (median) | of budget | process RSS |")
    print("|---|---|---:|---:|---:|---:|")
    for path in args.workloads:
        workload = load_workload(path)
        with tempfile.TemporaryDirectory() as tmp:
            trace = Path(tmp) / "trace.parquet"
            write_trace(
                trace,
                stream_header(workload),
                generate(workload, "preload"),
                generate(workload, "measure"),
            )
            for name in fo.PREDEFINED:
                peaks, rss = [], []
                for i in range(args.repeats):
                    m = measure_isolated(
                        workload,
                        trace,
                        {fo.PREDEFINED_OPTIONS: name},
                        Path(tmp) / f"{name}-{i}",
                        timeout_s=1800,
                    )
                    if m.status != "ok":
                        print(f"| {workload.name} | {name} | failed: {m.reason} |")
                        continue
                    peaks.append(m.metrics["rocksdb_memory_peak_bytes"])
                    rss.append(m.rss_peak_bytes)
                if peaks:
                    peak = statistics.median(peaks)
                    budget = workload.memory.budget
                    print(
                        f"| {workload.name} | {name} | {budget / MiB:.0f} MiB | "
                        f"{peak / MiB:.1f} MiB ({min(peaks) / MiB:.1f}-{max(peaks) / MiB:.1f}) | "
                        f"{peak / budget:.2f} | {statistics.median(rss) / MiB:.0f} MiB |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
