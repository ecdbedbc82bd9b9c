"""Scale-transfer benchmark: rank Flink's 4 option sets and N search candidates on a workload at
full size and as scaled models, print Spearman per scale and the transfer of the winner.

    python tools/scale_transfer/run.py tools/scale_transfer/full-2gb.yaml \\
        --scales 1,0.1,0.01 --candidates 6 --repeats 3 --out results/scale-transfer.csv
    # cut off? the same command with --resume measures only what the CSV lacks
    python tools/scale_transfer/run.py --render results/scale-transfer.csv   # table only

Throughput is the cost model's counted figure for the workload's disk (README: How throughput
is measured). The CSV is written after every measurement, so a cut-off run still renders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuner import scale_transfer as st
from tuner.costmodel import disk_from
from tuner.scale import parse_factor
from tuner.workload import load_workload


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("workload", nargs="?", type=Path, help="workload at full size")
    p.add_argument("--scales", default="1,0.1,0.01", help="comma-separated factors (1 = full)")
    p.add_argument("--candidates", type=int, default=6, help="search candidates besides Flink's 4")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--disk", default=None, help="cost-model disk preset (default: the workload's)")
    p.add_argument("--out", type=Path, default=Path("results/scale-transfer.csv"))
    p.add_argument(
        "--repeats", type=int, default=1, help="measurements per configuration and scale"
    )
    p.add_argument(
        "--resume", action="store_true", help="keep the rows --out holds; measure only the rest"
    )
    p.add_argument("--render", type=Path, default=None, help="only print the table of a CSV")
    a = p.parse_args(argv)
    if a.render is not None:
        print(st.render(st.read_rows(a.render)))
        return 0
    if a.workload is None:
        p.error("give a workload (or --render CSV)")
    workload = load_workload(a.workload)
    scales = [parse_factor(s, where="--scales") for s in a.scales.split(",")]
    disk = disk_from(a.disk) if a.disk else workload.disk
    configs = st.candidates(workload, a.candidates, a.seed)
    if a.repeats < 1:
        p.error("--repeats: give 1 or more")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    earlier = st.read_rows(a.out) if a.resume and a.out.exists() else []
    if a.out.exists() and not a.resume:
        p.error(f"{a.out} exists: pass --resume to add to it, or another --out")
    rows = st.run(
        workload,
        scales,
        configs,
        disk,
        a.out,
        repeats=a.repeats,
        earlier=earlier,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    for c in configs:
        print(f"{c.label}: {c.settings}", file=sys.stderr)
    print(st.render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
