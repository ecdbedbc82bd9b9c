"""The validation matrix: every bundled workload tuned, then validated on real Flink, one table.

    python tools/validation_matrix.py [--out results/validation-matrix] [--trials 3]
        [--repeats 3] [--records 40000] [--workloads quickstart,dedup-ttl,...]

For each workload: ``tuner run <workload> --trials T --repeats R --disk page-cache`` (Flink runs on
this machine's page cache too, so the replay is priced for the same "disk"), then ``tuner validate
<run> --repeats R --records N`` (Flink's default, the recommendation and the four predefined sets,
interleaved). Writes ``matrix.csv`` (one row per workload, rewritten after each) and ``matrix.md``
(the table the README quotes) into ``--out``. A workload whose row is already in ``matrix.csv`` is
skipped, so a rerun fills in the rows that are missing; ``--fresh`` starts over.

Per workload: Spearman over the configurations (Flink records/s, and Flink calls per second of
task-thread CPU, a counted quantity that the machine's noise touches less), the recommendation's
predicted and real gain, the resolution reached (the median spread, max - min over median, of a
configuration's Flink repeats: differences below it are not resolved), and whether the goal
(Spearman >= 0.9, real gain >= 80 % of predicted) is met, with the reason when it is not.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tuner.costmodel import PRESETS
from tuner.results import rescored
from tuner.rundir import RunDir
from tuner.scale import read_scale
from tuner.validate import spearman, validate_run
from tuner.validate.fidelity import compute_fidelity
from tuner.validate.job import FlinkRun
from tuner.validate.run import ValidationResult, recommended_stand_in
from tuner.workload import load_workload

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = (
    "workload",
    "workload_flink",
    "validated_on",
    "configs",
    "repeats",
    "spearman",
    "spearman_cpu",
    "resolved",
    "concordant",
    "predicted_gain",
    "real_gain",
    "real_gain_low",
    "real_gain_high",
    "real_over_predicted",
    "resolution",
    "goal_met",
    "reason",
    "minutes",
)
SPEARMAN_GOAL = 0.9
GAIN_GOAL = 0.8


def _tuner() -> str:
    exe = Path(sys.executable).with_name("tuner")
    return str(exe) if exe.exists() else "tuner"


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _by_label(runs: tuple[FlinkRun, ...]) -> dict[str, list[FlinkRun]]:
    out: dict[str, list[FlinkRun]] = {}
    for r in runs:
        out.setdefault(r.label, []).append(r)
    return out


def resolution(runs: tuple[FlinkRun, ...]) -> float:
    """The median over configurations of (max - min) / median of their Flink records/s."""
    spreads = []
    for rs in _by_label(runs).values():
        rates = [r.records_per_s for r in rs if math.isfinite(r.records_per_s)]
        if len(rates) >= 2 and statistics.median(rates) > 0:
            spreads.append((max(rates) - min(rates)) / statistics.median(rates))
    return _median(spreads)


def cpu_spearman(result: ValidationResult) -> float:
    """Spearman of the replay's ops/s vs Flink's calls per task-CPU second."""
    per_cpu = {
        label: _median([r.measure_rows / r.task_cpu_s for r in rs if r.task_cpu_s > 0])
        for label, rs in _by_label(result.runs).items()
    }
    pairs = [
        (c.replay_ops_per_s, per_cpu[c.label])
        for c in result.fidelity.configs
        if math.isfinite(c.replay_ops_per_s) and math.isfinite(per_cpu.get(c.label, math.nan))
    ]
    return spearman([a for a, _ in pairs], [b for _, b in pairs])


def _reason(f_spearman: float, predicted: float, real: float, result: ValidationResult) -> str:
    reasons = []
    if not (math.isfinite(f_spearman) and f_spearman >= SPEARMAN_GOAL):
        ratios = ", ".join(
            f"{c.label} {c.flink_over_replay:.2f}"
            for c in result.fidelity.configs
            if math.isfinite(c.flink_over_replay)
        )
        reasons.append(f"Spearman {f_spearman:+.2f} < {SPEARMAN_GOAL}; Flink/replay: {ratios}")
    if not (math.isfinite(predicted) and math.isfinite(real)):
        reasons.append("no gain figure")
    elif predicted > 0 and real < GAIN_GOAL * predicted:
        reasons.append(f"real gain {real:+.1%} below 80% of predicted {predicted:+.1%}")
    return "; ".join(reasons)


@contextlib.contextmanager
def _locked(lock: Path | None, exclusive: bool) -> Iterator[None]:
    """Hold ``lock`` (flock) shared or exclusive around a step; nothing when None."""
    if lock is None:
        yield
        return
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _complete(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished study (kept: a rerun validates it again)."""
    meta = run_dir / "run.json"
    return meta.exists() and json.loads(meta.read_text()).get("status") == "complete"


def run_workload(
    path: Path,
    out: Path,
    trials: int,
    repeats: int,
    records: int | None,
    lock: Path | None,
    exclusive: bool = True,
    fresh: bool = False,
) -> dict[str, object]:
    """Tune and validate one workload; its matrix row. A finished study is validated again
    unless ``fresh``, which tunes anew."""
    started = time.perf_counter()
    workload = load_workload(path)
    run_dir = out / path.stem
    if run_dir.exists() and (fresh or not _complete(run_dir)):
        shutil.rmtree(run_dir)
    cmd = [
        _tuner(),
        "run",
        str(path),
        "--trials",
        str(trials),
        "--repeats",
        str(repeats),
        "--disk",
        "page-cache",
        "--out",
        str(run_dir),
    ]
    print("$", " ".join(cmd), flush=True)
    # The study scores counted quantities (CPU time, RocksDB counters): a shared lock will do.
    if not _complete(run_dir):
        with _locked(lock, exclusive=False):
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"$ tuner validate {run_dir} --repeats {repeats} --records {records}", flush=True)
    # Flink's records/s is a wall clock: measured on a quiet machine, unless told otherwise.
    with _locked(lock, exclusive=exclusive):
        result = validate_run(run_dir, repeats=repeats, records=records)
    f = result.fidelity
    real_over = math.nan
    if math.isfinite(f.predicted_gain) and f.predicted_gain != 0:
        real_over = f.real_gain / f.predicted_gain
    reason = _reason(f.spearman, f.predicted_gain, f.real_gain, result)
    return {
        "workload": path.stem,
        "workload_flink": workload.flink_version,
        "validated_on": result.flink_version,
        "configs": len(f.configs),
        "repeats": repeats,
        "spearman": f.spearman,
        "spearman_cpu": cpu_spearman(result),
        "resolved": f.resolved,
        "concordant": f.concordant,
        "predicted_gain": f.predicted_gain,
        "real_gain": f.real_gain,
        "real_gain_low": f.real_gain_low,
        "real_gain_high": f.real_gain_high,
        "real_over_predicted": real_over,
        "resolution": resolution(result.runs),
        "goal_met": "yes" if not reason else "no",
        "reason": reason,
        "minutes": (time.perf_counter() - started) / 60,
    }


def _fmt(v: object, spec: str) -> str:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)
    return "n/a" if not math.isfinite(x) else format(x, spec)


def render(rows: list[dict[str, object]], missing: list[str], command: str) -> str:
    """matrix.md: the table, the rows that miss the goal with their reason, what is missing."""
    lines = [
        f"Command: `{command}`",
        "",
        "| workload | its Flink | validated on | configs × repeats | Spearman (records/s) "
        "| Spearman (calls per task-CPU s) | pairs Flink resolves, ordered alike by the replay "
        "| predicted gain | real gain (pairs) | real / predicted | resolution | goal met |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        pairs = f"{r.get('concordant', '?')} of {r.get('resolved', '?')}"
        lines.append(
            f"| {r['workload']} | {r['workload_flink']} | {r['validated_on']} | "
            f"{r['configs']} × {r['repeats']} | {_fmt(r['spearman'], '+.2f')} | "
            f"{_fmt(r['spearman_cpu'], '+.2f')} | {pairs} | {_fmt(r['predicted_gain'], '+.1%')} | "
            f"{_fmt(r['real_gain'], '+.1%')} ({_fmt(r['real_gain_low'], '+.1%')} .. "
            f"{_fmt(r['real_gain_high'], '+.1%')}) | {_fmt(r['real_over_predicted'], '.0%')} | "
            f"{_fmt(r['resolution'], '.1%')} | {r['goal_met']} |"
        )
    misses = [r for r in rows if r["goal_met"] != "yes"]
    if misses:
        lines += [
            "",
            "Rows that miss the goal (Spearman ≥ 0.9, real gain ≥ 80 % of predicted):",
            "",
        ]
        lines += [f"- **{r['workload']}**: {r['reason']}" for r in misses]
    if missing:
        lines += ["", "Not measured: " + ", ".join(missing)]
    return "\n".join(lines) + "\n"


def pairs_from_run(run_dir: Path) -> tuple[int, int] | None:
    """(pairs Flink resolves, of those ordered alike by the replay) from a validated run's
    files, for rows measured before the matrix had the column; None when not validated."""
    path = run_dir / "validation.csv"
    if not path.exists():
        return None
    by: dict[str, dict[int, float]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            by.setdefault(row["label"], {})[int(row["repeat"])] = float(row["records_per_s"])
    records = rescored(RunDir(run_dir).read_records(), PRESETS["page-cache"])
    fidelity = compute_fidelity(records, by, recommended_stand_in(run_dir))
    return fidelity.resolved, fidelity.concordant


def _read_rows(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run every missing workload, write matrix.csv and matrix.md."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "results" / "validation-matrix")
    p.add_argument("--workloads", default="", help="comma-separated names (default: all bundled)")
    p.add_argument("--trials", type=int, default=3, help="search trials per workload")
    p.add_argument("--repeats", type=int, default=3, help="repeats per configuration, both sides")
    p.add_argument(
        "--records",
        type=int,
        default=40_000,
        help="measured calls sent to Flink; 0: the whole measured phase (what the replay's "
        "prediction covers, so counters and gains compare like for like)",
    )
    p.add_argument("--fresh", action="store_true", help="forget rows and studies already measured")
    p.add_argument(
        "--shared-validation",
        action="store_true",
        help="validate under a shared lock too (a busy machine: wall-clock figures are noisier, "
        "the CPU-based Spearman much less so)",
    )
    p.add_argument(
        "--lock",
        type=Path,
        default=None,
        help="a flock file: each study runs under a shared lock, each validation under an "
        "exclusive one (a quiet machine for Flink's wall clock)",
    )
    args = p.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    # Production-size workloads replay as scaled models, which Flink cannot validate (their
    # options are in production units): scale_transfer covers them.
    paths = [q for q in sorted((ROOT / "workloads").glob("*.yaml")) if read_scale(q).factor == 1.0]
    if args.workloads:
        wanted = {w.strip() for w in args.workloads.split(",")}
        paths = [q for q in paths if q.stem in wanted]
    csv_path = out / "matrix.csv"
    rows = _read_rows(csv_path)
    if args.fresh:  # the chosen workloads start over; the other rows stay
        rows = [r for r in rows if r["workload"] not in {q.stem for q in paths}]
    for r in rows:
        if r.get("resolved") in (None, ""):
            found = pairs_from_run(out / str(r["workload"]))
            if found is not None:
                r["resolved"], r["concordant"] = found
    done = {str(r["workload"]) for r in rows}
    command = (
        f"python tools/validation_matrix.py --trials {args.trials} --repeats {args.repeats} "
        f"--records {args.records}"
        + (f" --lock {args.lock}" if args.lock else "")
        + (" --shared-validation" if args.shared_validation else "")
    )
    for path in paths:
        if path.stem in done:
            continue
        try:
            rows.append(
                run_workload(
                    path,
                    out,
                    args.trials,
                    args.repeats,
                    args.records or None,
                    args.lock,
                    exclusive=not args.shared_validation,
                    fresh=args.fresh,
                )
            )
        except Exception as exc:  # one workload failing must not lose the others' rows
            print(f"{path.stem}: failed: {exc}", file=sys.stderr, flush=True)
            continue
        _write_rows(csv_path, rows)
        (out / "matrix.md").write_text(render(rows, [], command))
        print(render(rows[-1:], [], command), flush=True)
    names = {str(r["workload"]) for r in rows}
    missing = [q.stem for q in paths if q.stem not in names]
    (out / "matrix.md").write_text(render(rows, missing, command))
    print((out / "matrix.md").read_text())
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
