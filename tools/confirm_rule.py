"""How often does the confirmation's rule pick wrongly, and how often does it confirm a real
gain? A simulation of the rule itself (:func:`tuner.confirm.decide`) on synthetic rounds.

    python tools/confirm_rule.py [--runs 5000] [--rounds 3] [--candidates 5] [--seed 1]

Each simulated confirmation measures Flink's default and ``--candidates`` candidates over
``--rounds`` rounds. A figure is ``drift of its round x (1 + effect) x noise``, both drift and noise
normal around 1; every candidate has the same true effect. With effect 0 the table shows how
often the rule picks a candidate that is no better (a false pick); with an effect, how often it
picks one at all. The second column adds one more way to win, tried and not adopted: every
figure of the candidate above every figure of the default (a complete separation), with a win in
every round.
"""

from __future__ import annotations

import argparse
import random
import sys

from tuner.confirm import ConfirmTarget, decide
from tuner.flink import options as fo
from tuner.search.study import DEFAULT_LABEL, THROUGHPUT, Candidate, TrialRecord

DEFAULT = {fo.PREDEFINED_OPTIONS: "DEFAULT"}


def _records(figures: dict[str, list[float]]) -> list[TrialRecord]:
    out = []
    for label, values in figures.items():
        for r, v in enumerate(values):
            cand = Candidate(label, "remeasure", {}, None, r)
            out.append(TrialRecord(len(out), cand, "ok", "", {THROUGHPUT: v}, 0.0, 0, 0.0))
    return out


def simulate(
    effect: float, noise: float, drift: float, rounds: int, n: int, rng: random.Random
) -> tuple[bool, bool]:
    """One confirmation: (the rule picked a candidate, the rule or a separation picked one)."""
    d = [rng.gauss(1, drift) for _ in range(rounds)]
    figures = {DEFAULT_LABEL: [d[i] * rng.gauss(1, noise) for i in range(rounds)]}
    for c in range(n):
        figures[f"c{c}"] = [d[i] * (1 + effect) * rng.gauss(1, noise) for i in range(rounds)]
    targets = [ConfirmTarget(label, label, DEFAULT) for label in figures]
    picked = not decide(_records(figures), targets).keep
    base = figures[DEFAULT_LABEL]
    separated = any(
        min(v) > max(base) and all(v[i] > base[i] for i in range(rounds))
        for label, v in figures.items()
        if label != DEFAULT_LABEL
    )
    return picked, picked or separated


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=5000, help="simulated confirmations per row")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--candidates", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    rng = random.Random(a.seed)
    columns = ("true effect", "noise (CV)", "drift per round", "picks, the rule")
    print("| " + " | ".join((*columns, "picks, rule or separation")) + " |")
    print("|---:|---:|---:|---:|---:|")
    for effect in (0.0, 0.1, 0.2, 0.3):
        for noise, drift in ((0.05, 0.0), (0.05, 0.1), (0.1, 0.1), (0.15, 0.0)):
            hits = [
                simulate(effect, noise, drift, a.rounds, a.candidates, rng) for _ in range(a.runs)
            ]
            rule = sum(h[0] for h in hits) / a.runs
            both = sum(h[1] for h in hits) / a.runs
            print(f"| {effect:+.0%} | {noise:.0%} | {drift:.0%} | {rule:.1%} | {both:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
