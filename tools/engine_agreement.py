"""The flink-backend engine next to the rocksdict replay: what a trial costs on each, and whether
they rank the same configurations the same way. Prints markdown tables (the README quotes them).

    # per-trial cost and ops/s, one configuration (Flink's default), interleaved repeats
    python tools/engine_agreement.py cost workloads/quickstart.yaml --repeats 3

    # ranking of Flink's 4 predefined sets + the run's recommendation (its best search trial)
    python tools/engine_agreement.py rank RUN_DIR [RUN_DIR ...] --repeats 3

    # where SPINNING_DISK_OPTIMIZED_HIGH_MEM's cost comes from: 128 KiB blocks, with and
    # without compression, CPU seconds on each engine
    python tools/engine_agreement.py blocks RUN_DIR

    # counted quantities (block-cache misses, bytes read, flush and compaction bytes, stalls)
    # of the same stream on both engines, per workload and configuration
    python tools/engine_agreement.py counters workloads/*.yaml --repeats 2

Every measurement is a trial as `tuner run` makes it (its own process, the run's stream, scored
by the cost model for the workload's disk). Wall-clock figures need a quiet machine
(`flock -x /work/heavy.lock` here); the ranking uses the modelled ops/s, which is computed from
counted quantities (CPU time, block-cache misses, flush and compaction bytes).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from tuner.costmodel import score
from tuner.flink import options as fo
from tuner.rundir import RunDir
from tuner.search.measure import measure_isolated
from tuner.search.study import BASELINES
from tuner.stats import spearman
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import write_trace
from tuner.workload import Workload, load_workload

ENGINES = ("rocksdict", "flink-backend")
Settings = Mapping[str, fo.FlinkValue]


def _measure(
    workload: Workload, trace: Path, settings: Settings, engine: str, work: Path
) -> dict[str, float]:
    m = measure_isolated(
        workload,
        trace,
        settings,
        work / f"m-{engine}-{len(list(work.iterdir()))}",
        timeout_s=1800,
        rss_margin=2 << 30,
        engine_name=engine,
    )
    if m.status != "ok":
        raise SystemExit(f"{engine}: measurement failed: {m.reason}")
    out = dict(score(m.metrics, workload.disk))
    out["trial_wall_s"] = m.wall_s
    return out


def _med(xs: Sequence[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return statistics.median(xs) if xs else math.nan


def _range(xs: Sequence[float]) -> str:
    return f"{min(xs):,.1f} .. {max(xs):,.1f}" if xs else "–"


def _spread(xs: Sequence[float]) -> str:
    return f"{min(xs):,.0f} .. {max(xs):,.0f}" if xs else "–"


def cost(workload_path: Path, repeats: int) -> None:
    """Per-trial cost and ops/s of both engines on Flink's default."""
    w = load_workload(workload_path)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trace = work / "trace.parquet"
        write_trace(trace, stream_header(w), generate(w, "preload"), generate(w, "measure"))
        runs: dict[str, list[dict[str, float]]] = {e: [] for e in ENGINES}
        for _ in range(repeats):
            for e in ENGINES:
                runs[e].append(_measure(w, trace, {fo.PREDEFINED_OPTIONS: "DEFAULT"}, e, work))
    print(f"### {w.name}: Flink's default, {repeats} interleaved repeats per engine\n")
    print("| engine | trial wall s | replay wall ops/s | CPU s (measured phase) | modelled ops/s |")
    print("|---|---:|---:|---:|---:|")
    for e in ENGINES:
        r = runs[e]

        def col(k: str, r: list[dict[str, float]] = r) -> list[float]:
            return [x[k] for x in r]

        print(
            f"| {e} | {_med(col('trial_wall_s')):.1f} ({min(col('trial_wall_s')):.1f} .. "
            f"{max(col('trial_wall_s')):.1f}) | {_med(col('wall_ops_per_s')):,.0f} "
            f"({_spread(col('wall_ops_per_s'))}) | {_med(col('cpu_s')):.2f} | "
            f"{_med(col('ops_per_s')):,.0f} ({_spread(col('ops_per_s'))}) |"
        )
    ratio = _med([x["trial_wall_s"] for x in runs["flink-backend"]]) / _med(
        [x["trial_wall_s"] for x in runs["rocksdict"]]
    )
    print(f"\nflink-backend trial / rocksdict trial (wall): {ratio:.2f}x")


def _configs(rd: RunDir) -> dict[str, Settings]:
    out: dict[str, Settings] = {b: {fo.PREDEFINED_OPTIONS: b} for b in BASELINES}
    search = [r for r in rd.read_records() if r.candidate.kind == "search" and r.ok]
    if not search:
        raise SystemExit(f"{rd.path}: no finished search trial")
    best = max(search, key=lambda r: r.metrics["ops_per_s"])
    out[f"recommendation ({best.candidate.label})"] = dict(best.candidate.settings)
    return out


def rank(run_dirs: Sequence[Path], repeats: int) -> None:
    """Spearman between the engines' rankings of the 4 predefined sets + the recommendation."""
    summary = []
    for path in run_dirs:
        rd = RunDir(path)
        w = load_workload(rd.workload_yaml)
        configs = _configs(rd)
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(repeats):
                labels = list(configs)
                labels = labels[i % len(labels) :] + labels[: i % len(labels)]
                for label in labels:
                    for e in ENGINES:
                        m = _measure(w, rd.trace, configs[label], e, Path(tmp))
                        runs.setdefault((label, e), []).append(m)
        print(f"### {w.name} ({path.name}), {repeats} repeats, disk {w.disk.name}\n")
        print(
            "| configuration | rocksdict modelled ops/s | flink-backend modelled ops/s | "
            "rocksdict misses | flink-backend misses | rocksdict wall ops/s | "
            "flink-backend wall ops/s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        med: dict[str, dict[str, list[float]]] = {
            k: {e: [] for e in ENGINES}
            for k in ("ops_per_s", "block_cache_misses", "wall_ops_per_s")
        }
        for label in configs:
            cells = []
            for k in ("ops_per_s", "block_cache_misses", "wall_ops_per_s"):
                for e in ENGINES:
                    vals = [x[k] for x in runs[(label, e)]]
                    med[k][e].append(_med(vals))
                    cells.append(f"{_med(vals):,.0f} ({_spread(vals)})")
            print(f"| {label} | " + " | ".join(cells) + " |")
        rho = {k: spearman(med[k]["rocksdict"], med[k]["flink-backend"]) for k in med}
        print(
            f"\nSpearman rocksdict vs flink-backend over {len(configs)} configurations: "
            f"modelled ops/s {rho['ops_per_s']:+.2f}, block-cache misses "
            f"{rho['block_cache_misses']:+.2f}, wall ops/s {rho['wall_ops_per_s']:+.2f}\n"
        )
        summary.append((w.name, rho))
    if len(summary) > 1:
        print("| workload | Spearman (modelled ops/s) | Spearman (misses) | Spearman (wall) |")
        print("|---|---:|---:|---:|")
        for name, rho in summary:
            print(
                f"| {name} | {rho['ops_per_s']:+.2f} | {rho['block_cache_misses']:+.2f} | "
                f"{rho['wall_ops_per_s']:+.2f} |"
            )


_P = "state.backend.rocksdb."
BLOCK_CONFIGS: dict[str, Settings] = {
    "SPINNING_DISK_OPTIMIZED_HIGH_MEM": {fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM"},
    "SPINNING_DISK_OPTIMIZED_HIGH_MEM, no compression": {
        fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM",
        _P + "compression.per.level": ("NO_COMPRESSION",),
    },
    "DEFAULT": {fo.PREDEFINED_OPTIONS: "DEFAULT"},
    "DEFAULT + 128 KiB blocks": {_P + "block.blocksize": 128 << 10},
    "DEFAULT + 128 KiB blocks, no compression": {
        _P + "block.blocksize": 128 << 10,
        _P + "compression.per.level": ("NO_COMPRESSION",),
    },
}


def blocks(run_dir: Path, repeats: int) -> None:
    """CPU seconds, misses and SST bytes read of large-block configurations on both engines."""
    rd = RunDir(run_dir)
    w = load_workload(rd.workload_yaml)
    print(f"### {w.name}: large blocks and compression, {repeats} repeats (medians)\n")
    print("| configuration | engine | CPU s | block-cache misses | SST bytes read |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, settings in BLOCK_CONFIGS.items():
            for e in ENGINES:
                ms = [_measure(w, rd.trace, settings, e, Path(tmp)) for _ in range(repeats)]
                print(
                    f"| {label} | {e} | {_med([m['cpu_s'] for m in ms]):.2f} | "
                    f"{_med([m['block_cache_misses'] for m in ms]):,.0f} | "
                    f"{_med([m['sst_bytes_read'] for m in ms]) / 1e6:,.0f} MB |",
                    flush=True,
                )


# What the engines count the same way (RocksDB's own tickers and properties), per 1,000 calls.
COUNTERS: tuple[tuple[str, str], ...] = (
    ("block_cache_data_misses", "block-cache data misses"),
    ("block_cache_misses", "block-cache misses"),
    ("sst_bytes_read", "SST bytes read"),
    ("flush_bytes_written", "flush bytes"),
    ("compaction_bytes_read", "compaction bytes read"),
    ("compaction_bytes_written", "compaction bytes written"),
    ("stall_micros", "stall µs"),
)
AGREE = 0.15  # issue 7's goal: within 15 % of Flink's


def counters(
    paths: Sequence[Path], repeats: int, configs: Sequence[str], own_line: bool = False
) -> None:
    """Counted quantities of one stream per workload on both engines, under each predefined
    option set in ``configs``: per 1,000 state calls, medians of ``repeats`` interleaved runs.

    A workload written for 1.20 is measured as its 2.x twin on both engines (the arena rule and
    table format follow the line), so the comparison is of the engines; ``own_line`` keeps its
    line, and flink-backend then runs Flink 1.20's backend (FRocksDB 6.20).
    """
    print(
        "| workload | configuration | counter | rocksdict (range) | flink-backend (range) "
        "| flink / rocksdict (medians) | within 15% |"
    )
    print("|---|---|---|---:|---:|---:|---|")
    misses = []
    for path in paths:
        w = load_workload(path)
        if not own_line and not w.flink_version.startswith("2"):
            w = replace(w, flink_version="2.x")
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            trace = work / "trace.parquet"
            write_trace(trace, stream_header(w), generate(w, "preload"), generate(w, "measure"))
            for name in configs:
                runs: dict[str, list[dict[str, float]]] = {e: [] for e in ENGINES}
                for _ in range(repeats):
                    for e in ENGINES:
                        runs[e].append(_measure(w, trace, {fo.PREDEFINED_OPTIONS: name}, e, work))
                calls = _med([m["ops"] for m in runs["rocksdict"]]) / 1000
                for key, label in COUNTERS:
                    xa = [m.get(key, math.nan) / calls for m in runs["rocksdict"]]
                    xb = [m.get(key, math.nan) / calls for m in runs["flink-backend"]]
                    a, b = _med(xa), _med(xb)
                    both_small = a < 1 and b < 1  # nothing to speak of on either side
                    ratio = b / a if a > 0 else math.nan
                    ok = both_small or (math.isfinite(ratio) and abs(ratio - 1) <= AGREE)
                    # Repeats whose ranges overlap: the engines differ by less than either
                    # engine differs from itself.
                    overlap = max(min(xa), min(xb)) <= min(max(xa), max(xb))
                    verdict = "yes" if ok else "no, within the repeats' spread" if overlap else "no"
                    if not ok:
                        misses.append(f"{w.name} {name} {label} ({verdict})")
                    print(
                        f"| {w.name} | {name} | {label} | {a:,.1f} ({_range(xa)}) | "
                        f"{b:,.1f} ({_range(xb)}) | {ratio:.2f} | {verdict} |",
                        flush=True,
                    )
    print(f"\n{len(misses)} counters outside 15 %: " + ("; ".join(misses) or "none"))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost", help="per-trial cost and ops/s of both engines")
    c.add_argument("workload", type=Path)
    c.add_argument("--repeats", type=int, default=3)
    r = sub.add_parser("rank", help="ranking agreement over a run's configurations")
    r.add_argument("run_dirs", type=Path, nargs="+")
    r.add_argument("--repeats", type=int, default=3)
    b = sub.add_parser("blocks", help="large blocks with and without compression, both engines")
    b.add_argument("run_dir", type=Path)
    b.add_argument("--repeats", type=int, default=1)
    k = sub.add_parser("counters", help="counted quantities of one stream on both engines")
    k.add_argument("workloads", type=Path, nargs="+")
    k.add_argument("--repeats", type=int, default=2)
    k.add_argument("--configs", default="DEFAULT,SPINNING_DISK_OPTIMIZED_HIGH_MEM")
    k.add_argument(
        "--own-line",
        action="store_true",
        help="measure a 1.20 workload as 1.20 (flink-backend on Flink 1.20), not as its 2.x twin",
    )
    args = p.parse_args(argv)
    if args.what == "counters":
        counters(args.workloads, args.repeats, args.configs.split(","), args.own_line)
    elif args.what == "cost":
        cost(args.workload, args.repeats)
    elif args.what == "blocks":
        blocks(args.run_dir, args.repeats)
    else:
        rank(args.run_dirs, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
