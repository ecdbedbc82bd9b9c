"""How many trials does the answer need? The search's sample efficiency, measured as a user runs
it: short searches (``tuner run --trials N`` at several seeds) against the best configuration
any search of the workload found (a long search included), for the search started cold (TPE
from its random start alone) and warm (told first what Flink's option sets measured).

    python tools/trials_curve.py run workloads/quickstart.yaml workloads/dedup-ttl.yaml ... \
        [--short 12] [--seeds 1,2,3,4,5] [--long 100] [--starts cold,warm] \
        [--out results/trials-curve]
    python tools/trials_curve.py reference workloads/quickstart.yaml ... [--top 3] [--repeats 3]
    python tools/trials_curve.py render results/trials-curve    # the tables again, and the plot

Every run is ``tuner run WORKLOAD --trials N --seed S --repeats 1 --minimal-repeats 0
--no-confirm --time-budget none --[no-]warm-start`` in its own directory,
``OUT/<start>/<workload>/t<N>-s<S>`` (kept: a rerun skips the runs that completed). The long
run is a cold one. Only the search trials count: their ops/s is the cost model's, computed from
counted quantities (CPU time, block-cache misses, flush and compaction bytes), so the figures
hold on a busy machine better than wall time would.

For each workload the reference is the best search trial of every run (both starts, the long
one's ``--long`` trials and the short ones'), and each run's curve is its best after n trials
against it. That best is the largest of hundreds of single measurements, so it is biased
upward by the replay's noise: ``reference`` measures the ``--top`` best distinct configurations
``--repeats`` times more and writes ``OUT/reference-<workload>.json``; ``render`` then takes
the best of their medians as the reference instead (a run's single figure may exceed it).

A short run is a search of its own (its random start is ``max(4, N // 3)`` trials), not the
first N trials of a long one, which would start with more random trials than a user's run.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.95  # within 5 % of the reference best
STARTS = ("cold", "warm")  # tuner run --no-warm-start, --warm-start


@dataclass(frozen=True)
class Run:
    """One tuner run: its start (cold or warm), workload, seed, trials asked for, and its search
    trials' ops/s in trial order (NaN for a failed trial)."""

    start: str
    workload: str
    seed: int
    trials: int
    ops: tuple[float, ...]


def run_dir(out: Path, start: str, workload: Path, trials: int, seed: int) -> Path:
    """Where one run lives: ``OUT/<start>/<workload stem>/t<trials>-s<seed>``."""
    return out / start / workload.stem / f"t{trials}-s{seed}"


def tune(workload: Path, trials: int, seed: int, out: Path, start: str, jobs: int = 1) -> Path:
    """One ``tuner run`` (skipped when its directory holds a complete run)."""
    target = run_dir(out, start, workload, trials, seed)
    if (target / "run.json").is_file() and '"status": "complete"' in (
        target / "run.json"
    ).read_text():
        return target
    if target.exists():  # an interrupted run: resume it (its settings are its own)
        args = ["run", "--resume", str(target)]
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        args = [
            *_RUN,
            str(workload),
            "--out",
            str(target),
            *_flags(trials, seed),
            "--warm-start" if start == "warm" else "--no-warm-start",
            "--jobs",
            str(jobs),
        ]
    print(f"tuner {' '.join(args)}", flush=True)
    subprocess.run(
        [sys.executable, "-c", "from tuner.cli import main; main()", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return target


_RUN = ("run",)


def _flags(trials: int, seed: int) -> list[str]:
    """A search alone: no minimal recommendation, one re-measurement, no confirmation."""
    return [
        "--trials",
        str(trials),
        "--seed",
        str(seed),
        "--repeats",
        "1",
        "--minimal-repeats",
        "0",
        "--no-confirm",
        "--time-budget",
        "none",
    ]


def read_run(path: Path, start: str, workload: str, seed: int, trials: int) -> Run:
    """The measured search trials of one run's trials.csv, in trial order."""
    by_number: dict[int, float] = {}
    with (path / "trials.csv").open() as f:
        for row in csv.DictReader(f):
            # A candidate refused before it ran (over the budget, a rule) cost nothing: not a
            # trial of the curve; a failed one did, and counts with no figure.
            if row["kind"] != "search" or not row["trial_number"] or row["status"] == "skipped":
                continue
            ok = row["status"] == "ok" and row.get("ops_per_s")
            by_number[int(row["trial_number"])] = float(row["ops_per_s"]) if ok else math.nan
    return Run(start, workload, seed, trials, tuple(by_number[n] for n in sorted(by_number)))


def best_after(ops: Sequence[float], n: int) -> float:
    """The best ops/s among the first ``n`` trials (NaN when none of them measured)."""
    usable = [v for v in ops[:n] if v == v]
    return max(usable) if usable else math.nan


def reference(runs: Sequence[Run], out: Path | None = None) -> float:
    """The reference best: the best median of the re-measured top configurations when
    ``reference`` wrote them under ``out``, else the best search trial any run measured."""
    if out is not None and runs:
        path = out / f"reference-{runs[0].workload}.json"
        if path.is_file():
            return max(float(c["median"]) for c in json.loads(path.read_text())["configurations"])
    return max(v for r in runs for v in r.ops if v == v)


def _top_configurations(out: Path, workload: str, top: int) -> list[tuple[float, str, str]]:
    """The ``top`` best distinct configurations of every run of ``workload``: (single
    measurement, run and trial, settings as JSON)."""
    best: dict[str, tuple[float, str, str]] = {}
    for path in sorted(out.glob(f"*/{workload}/t*-s*/trials.csv")):
        with path.open() as f:
            for row in csv.DictReader(f):
                if row["kind"] != "search" or row["status"] != "ok" or not row["ops_per_s"]:
                    continue
                ops = float(row["ops_per_s"])
                where = f"{path.parent.parent.parent.name}/{path.parent.name} {row['label']}"
                if ops > best.get(row["settings"], (-1.0, "", ""))[0]:
                    best[row["settings"]] = (ops, where, row["settings"])
    return sorted(best.values(), reverse=True)[:top]


def remeasure_reference(workload_path: Path, out: Path, top: int, repeats: int) -> Path:
    """Measure the best ``top`` configurations of the workload's runs ``repeats`` times each
    (as a trial measures, in its own process) and write their medians beside the runs."""
    from tuner.noise import measure_noise
    from tuner.workload import load_workload

    workload = load_workload(workload_path)
    rows = []
    for single, where, settings in _top_configurations(out, workload_path.stem, top):
        values = {
            k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(settings).items()
        }
        result = measure_noise(workload, repeats, workload.disk, values)
        ops = [r["ops_per_s"] for r in result.runs]
        rows.append(
            {
                "found_in": where,
                "single": single,
                "again": ops,
                "median": statistics.median(ops) if ops else math.nan,
                "failures": result.failures,
                "settings": json.loads(settings),
            }
        )
        print(f"{workload_path.stem}: {where}: {single:,.0f} once, {ops} again", flush=True)
    target = out / f"reference-{workload_path.stem}.json"
    target.write_text(json.dumps({"repeats": repeats, "configurations": rows}, indent=2) + "\n")
    return target


def trials_to_goal(ops: Sequence[float], best: float, goal: float = GOAL) -> int | None:
    """The first n whose best is within ``goal`` of ``best``; None if the run never got there."""
    for n in range(1, len(ops) + 1):
        if best_after(ops, n) >= goal * best:
            return n
    return None


def load(out: Path) -> dict[str, list[Run]]:
    """Every run under ``out`` with a trials.csv, by workload (both starts together)."""
    runs: dict[str, list[Run]] = {}
    for path in sorted(out.glob("*/*/t*-s*")):
        if not (path / "trials.csv").is_file():
            continue
        trials, seed = (int(x[1:]) for x in path.name.split("-"))
        workload, start = path.parent.name, path.parent.parent.name
        runs.setdefault(workload, []).append(read_run(path, start, workload, seed, trials))
    for rs in runs.values():  # seed 10 after seed 9, not after seed 1
        rs.sort(key=lambda r: (r.start, r.trials, r.seed))
    return runs


def _row(label: str, r: Run, best: float, points: Sequence[int]) -> str:
    cells = [f"{best_after(r.ops, n) / best:.1%}" for n in points]
    need = trials_to_goal(r.ops, best) or "not reached"
    return f"| {label} | " + " | ".join(cells) + f" | {need} |"


def render(out: Path, short: int) -> str:
    """The markdown tables: per workload, each short run's best after n trials against the
    reference, the trials each needed to come within 5 %, and each start's median."""
    lines: list[str] = []
    points = [n for n in (1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 30) if n <= short]
    for workload, runs in sorted(load(out).items()):
        best = reference(runs, out)
        single = reference(runs)
        longest = max(runs, key=lambda r: r.trials)
        trials = sum(len(r.ops) for r in runs)
        said = (
            f"the best median of the top configurations measured again (the best single "
            f"measurement of the {trials} search trials in {len(runs)} runs: {single:,.0f})"
            if best != single
            else f"the best of {trials} search trials in {len(runs)} runs"
        )
        lines += [
            f"### {workload}",
            "",
            f"Reference: {best:,.0f} ops/s, {said}. The longest run: {longest.trials} trials, "
            f"{longest.start}, seed {longest.seed}, its best "
            f"{best_after(longest.ops, longest.trials) / best:.1%}.",
            "",
            "| run | " + " | ".join(f"n={n}" for n in points) + " | trials to within 5 % |",
            "|---|" + "---:|" * (len(points) + 1),
        ]
        for r in runs:
            if r.trials != short:  # the long run, on the same points
                lines.append(
                    _row(f"--trials {r.trials}, {r.start}, seed {r.seed}", r, best, points)
                )
        for start in STARTS:
            shorts = [r for r in runs if r.trials == short and r.start == start]
            for r in shorts:
                lines.append(_row(f"{start}, seed {r.seed}", r, best, points))
            if shorts:
                med = [median_after(shorts, n, best) for n in points]
                reached = sum(trials_to_goal(r.ops, best) is not None for r in shorts)
                lines.append(
                    f"| **{start}: median** | "
                    + " | ".join(f"**{m:.1%}**" for m in med)
                    + f" | {reached} of {len(shorts)} reached |"
                )
        lines.append("")
    return "\n".join(lines)


def median_after(runs: Sequence[Run], n: int, best: float) -> float:
    """The median over runs of their best after ``n`` trials, as a share of ``best``."""
    return statistics.median(best_after(r.ops, n) / best for r in runs)


def plot(out: Path, short: int, png: Path) -> None:
    """Best-after-n curves, one panel per workload: each start's median over its short runs
    (every run faintly behind it), and the long run's first ``short`` x 3 trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = load(out)
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False)
    colours = {"cold": "C0", "warm": "C1"}
    for ax, (workload, rs) in zip(axes[0], sorted(runs.items()), strict=True):
        best = reference(rs, out)
        n = range(1, short + 1)
        for r in rs:
            if r.trials == short:
                ys = [best_after(r.ops, k) / best for k in n]
                ax.step(n, ys, where="post", color=colours[r.start], alpha=0.2, linewidth=0.8)
            else:
                m = range(1, min(len(r.ops), 3 * short) + 1)
                ys = [best_after(r.ops, k) / best for k in m]
                ax.step(m, ys, where="post", color="grey", label=f"--trials {r.trials} (cold)")
        for start in STARTS:
            shorts = [r for r in rs if r.trials == short and r.start == start]
            if shorts:
                ys = [median_after(shorts, k, best) for k in n]
                ax.step(
                    n,
                    ys,
                    where="post",
                    color=colours[start],
                    linewidth=2,
                    label=f"{start}: median of {len(shorts)}",
                )
        ax.axhline(GOAL, color="C3", linestyle="--", linewidth=1, label="within 5 %")
        ax.axvline(short, color="black", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_title(workload)
        ax.set_xlabel("search trials")
        ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))
    axes[0][0].set_ylabel("best so far / reference")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main(argv: Sequence[str] | None = None) -> None:
    """``run`` the searches (resumable), or ``render`` the tables and plot of earlier ones."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run")
    run_p.add_argument("workloads", nargs="+", type=Path)
    run_p.add_argument("--short", type=int, default=12, help="trials of each short run")
    run_p.add_argument("--seeds", default="1,2,3,4,5", help="seeds of the short runs")
    run_p.add_argument(
        "--long", type=int, default=100, help="trials of the long run (cold, seed 1)"
    )
    run_p.add_argument(
        "--starts", default=",".join(STARTS), help="the short runs' starts: cold, warm or both"
    )
    run_p.add_argument("--out", type=Path, default=ROOT / "results" / "trials-curve")
    run_p.add_argument(
        "--jobs", type=int, default=1, help="tuner run --jobs: measurements side by side"
    )
    ref_p = sub.add_parser("reference")
    ref_p.add_argument("workloads", nargs="+", type=Path)
    ref_p.add_argument("--top", type=int, default=3, help="configurations measured again")
    ref_p.add_argument("--repeats", type=int, default=3, help="measurements of each")
    ref_p.add_argument("--out", type=Path, default=ROOT / "results" / "trials-curve")
    ren_p = sub.add_parser("render")
    ren_p.add_argument("out", type=Path)
    ren_p.add_argument("--short", type=int, default=12)
    ren_p.add_argument("--png", type=Path, help="the plot (default OUT/trials-curve.png)")
    args = p.parse_args(argv)
    if args.cmd == "run":
        for workload in args.workloads:
            tune(workload, args.long, 1, args.out, "cold", args.jobs)
            for start in args.starts.split(","):
                for seed in (int(s) for s in args.seeds.split(",")):
                    tune(workload, args.short, seed, args.out, start, args.jobs)
        out = args.out
    elif args.cmd == "reference":
        for workload in args.workloads:
            remeasure_reference(workload, args.out, args.top, args.repeats)
        out = args.out
    else:
        out = args.out
    short = getattr(args, "short", 12)  # reference has no --short: the default tables
    print(render(out, short))
    png = getattr(args, "png", None) or out / "trials-curve.png"
    plot(out, short, png)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
