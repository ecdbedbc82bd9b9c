"""Would another model of the job have promised the real gain better than the recorded share?

Reads what ``bench.py run`` left (each query's recording, its run's confirmation on Flink's
backend, and the real rounds in ``table.csv``) and puts three promises beside the real gain:

* **share** (what ``tuner run`` promises): Amdahl's law with the recorded share of the job's time
  in state calls and the confirmation's state-call gain;
* **absolute**: the job's time outside state calls from the recording, its state calls at the
  confirmation's own per-call times for Flink's default and the recommendation;
* **hybrid**: the state calls at the job's recorded per-call time under Flink's default, and at
  the confirmation's per-call time under the recommendation.

A promise "holds" as issue 16 counts it: within 25 % of the real median gain, or 5 points.

    python tools/nexmark/promise_models.py results/nexmark10/q5 results/nexmark10/q8 ...
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tuner.recorder.format import read_recording
from tuner.trace.recording import recording_files, state_time_share


@dataclass(frozen=True)
class Row:
    """One query's figures, seconds and gains as fractions."""

    name: str
    share: float
    recorded_call_s: float  # the job's mean state call, from the recorder's timing
    default_call_s: float  # the confirmation's, Flink's default (median of its rounds)
    chosen_call_s: float  # the confirmation's, the configuration the run emitted
    state_s: float  # the state time the share counts
    other_s: float  # the rest of the job's recorded time
    real: float

    def share_promise(self) -> float:
        gain = self.default_call_s / self.chosen_call_s - 1
        return 1 / ((1 - self.share) + self.share / (1 + gain)) - 1

    def absolute_promise(self) -> float:
        scale = self.default_call_s / self.recorded_call_s
        before = self.other_s + self.state_s * scale
        after = self.other_s + self.state_s * scale * self.chosen_call_s / self.default_call_s
        return before / after - 1

    def hybrid_promise(self) -> float:
        after = self.other_s + self.state_s * self.chosen_call_s / self.recorded_call_s
        return (self.other_s + self.state_s) / after - 1


def holds(promised: float, real: float) -> bool:
    """Issue 16's rule: within 25 % of the real gain, or 5 points."""
    return abs(promised - real) <= max(0.05, 0.25 * abs(real))


def _gain(cell: str) -> float:
    return float(cell.split("%")[0]) / 100


def read_row(query_dir: Path) -> Row | None:
    """The figures of one ``bench.py run`` query directory; None when its run kept Flink's
    default (nothing to promise) or was not confirmed."""
    table = query_dir.parent / "table.csv"
    real = next(r for r in csv.DictReader(table.open()) if r["query"] == query_dir.name)
    rec = json.loads((query_dir / "tune" / "recommendation.json").read_text())
    chosen = (rec.get("confirmation") or {}).get("chosen")
    if not chosen:
        return None
    runs = pd.read_csv(query_dir / "tune" / "confirmation.csv")
    runs = runs[runs.status == "ok"]

    def per_call(label: str) -> float:
        return 1 / statistics.median(runs[runs.label == label].ops_per_s)

    share = state_time_share([read_recording(f) for f in recording_files(query_dir / "record")])
    if share.share is None or share.state_calls <= 0:
        return None
    return Row(
        f"{query_dir.parent.name}/{query_dir.name}",
        share.share,
        share.estimated_state_cpu_s / share.state_calls,
        per_call("DEFAULT"),
        per_call(chosen),
        share.numerator_s,
        share.denominator_s - share.numerator_s,
        _gain(real["real job gain"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("queries", nargs="+", type=Path, help="bench.py's <out>/<query> dirs")
    args = parser.parse_args()
    rows = [r for r in (read_row(q) for q in args.queries) if r is not None]
    print(
        "| run | recorded share | job's call (µs) | replay's call, default / emitted (µs) "
        "| share promise | absolute | hybrid | real |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [
            f"{p:+.1%}{' (holds)' if holds(p, r.real) else ''}"
            for p in (r.share_promise(), r.absolute_promise(), r.hybrid_promise())
        ]
        print(
            f"| {r.name} | {r.share:.1%} | {r.recorded_call_s * 1e6:.2f} "
            f"| {r.default_call_s * 1e6:.2f} / {r.chosen_call_s * 1e6:.2f} | "
            + " | ".join(cells)
            + f" | {r.real:+.1%} |"
        )
    for name, promise in (
        ("share", Row.share_promise),
        ("absolute", Row.absolute_promise),
        ("hybrid", Row.hybrid_promise),
    ):
        held = sum(holds(promise(r), r.real) for r in rows)
        print(f"{name}: holds on {held} of {len(rows)}")


if __name__ == "__main__":
    main()
