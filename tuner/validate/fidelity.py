"""How well the replay predicts real Flink: pure functions over trials.csv records and Flink runs.

Three figures:

* per configuration, the replay's ops/s (median of its baseline and re-measurement rows) next to
  Flink's records/s (median of the validation runs; one Flink record is one state call, so both
  count the same thing);
* the Spearman rank correlation between the two rankings of the configurations (ties get their
  average rank; 1 means the replay orders the configurations exactly as Flink does);
* the recommendation's gain over Flink's default as the study predicted it (its interleaved
  re-measurements) and as Flink shows it;
* the pairs of configurations Flink itself tells apart (their repeat ranges do not overlap),
  and how many of those the replay orders the same way: a Spearman over near-ties ranks noise,
  this counts only the differences the validation resolved.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuner.recommend import measure_gain
from tuner.search.study import DEFAULT_LABEL, RECOMMENDED_LABEL, THROUGHPUT, TrialRecord
from tuner.stats import spearman

__all__ = [
    "ConfigFidelity",
    "Fidelity",
    "compute_fidelity",
    "medians",
    "pairwise_gains",
    "replay_rates",
    "resolved_pairs",
    "spearman",
]


def medians(values: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The median of each label's finite values (labels without any are left out)."""
    out = {}
    for label, vs in values.items():
        finite = [v for v in vs if math.isfinite(v)]
        if finite:
            out[label] = statistics.median(finite)
    return out


def replay_rates(
    records: Sequence[TrialRecord],
    metric: str = THROUGHPUT,
    kinds: tuple[str, ...] = ("baseline", "remeasure"),
) -> dict[str, list[float]]:
    """The replay's measurements per configuration label: successful rows of ``kinds`` (by
    default baseline and re-measurement rows; search trials are single draws of other settings,
    left out)."""
    out: dict[str, list[float]] = {}
    for r in records:
        c = r.candidate
        if r.ok and c.kind in kinds and metric in r.metrics:
            out.setdefault(c.label, []).append(float(r.metrics[metric]))
    return out


def pairwise_gains(
    by_repeat: Mapping[str, Mapping[int, float]], label: str, baseline: str = DEFAULT_LABEL
) -> list[float]:
    """``label / baseline - 1`` for each repeat both were measured in (interleaved pairs)."""
    a, b = by_repeat.get(baseline, {}), by_repeat.get(label, {})
    return [b[i] / a[i] - 1 for i in sorted(set(a) & set(b)) if a[i] > 0]


@dataclass(frozen=True)
class ConfigFidelity:
    """One configuration: the replay's prediction next to Flink's measurement."""

    label: str
    replay_ops_per_s: float  # NaN when trials.csv has no row for it
    flink_records_per_s: float
    flink_min: float
    flink_max: float
    flink_runs: int

    @property
    def flink_over_replay(self) -> float:
        """Flink's rate divided by the replay's (NaN when either is missing)."""
        if not (math.isfinite(self.replay_ops_per_s) and self.replay_ops_per_s > 0):
            return math.nan
        return self.flink_records_per_s / self.replay_ops_per_s


@dataclass(frozen=True)
class Fidelity:
    """The fidelity figures of one validation."""

    configs: tuple[ConfigFidelity, ...]
    spearman: float  # over configurations with both figures
    ranked: int  # how many configurations that is
    predicted_gain: float  # recommended vs default, from the study's re-measurements
    real_gain: float  # recommended vs default, Flink medians
    real_gain_low: float  # smallest pairwise (same repeat) gain on Flink
    real_gain_high: float
    resolved: int = 0  # pairs of configurations whose Flink ranges do not overlap
    concordant: int = 0  # of those, the pairs the replay orders the same way
    discordant: tuple[str, ...] = ()  # "A > B on Flink, B > A on the replay"


def resolved_pairs(configs: Sequence[ConfigFidelity]) -> tuple[int, int, tuple[str, ...]]:
    """(pairs Flink resolves, of those ordered alike by the replay, the others in words).

    A pair is resolved when both configurations ran at least twice on Flink and their ranges
    (min .. max) do not overlap; configurations without a replay figure are left out.
    """
    usable = [
        c
        for c in configs
        if c.flink_runs >= 2 and math.isfinite(c.replay_ops_per_s) and math.isfinite(c.flink_min)
    ]
    resolved = concordant = 0
    discordant = []
    for i, a in enumerate(usable):
        for b in usable[i + 1 :]:
            hi, lo = (a, b) if a.flink_min > b.flink_max else (b, a)
            if not hi.flink_min > lo.flink_max:
                continue  # the ranges overlap: Flink does not tell them apart
            resolved += 1
            if hi.replay_ops_per_s > lo.replay_ops_per_s:
                concordant += 1
            else:
                discordant.append(f"{hi.label} > {lo.label} on Flink, not on the replay")
    return resolved, concordant, tuple(discordant)


def compute_fidelity(
    records: Sequence[TrialRecord],
    flink: Mapping[str, Mapping[int, float]],
    recommended_as: str | None = None,
) -> Fidelity:
    """Fidelity from the run's trial records and Flink's records/s by label and repeat.

    ``recommended_as`` names the configuration the run's config.yaml holds when it is not the
    re-measured search result (the confirmation chose another one, or kept the reference): the
    replay's figures of that label then stand for the recommendation's prediction.
    """
    replay = medians(replay_rates(records))
    if recommended_as is not None:
        every = medians(replay_rates(records, kinds=("baseline", "remeasure", "search")))
        replay[RECOMMENDED_LABEL] = every.get(recommended_as, math.nan)
    configs = []
    for label, runs in flink.items():
        vals = [v for v in runs.values() if math.isfinite(v)]
        configs.append(
            ConfigFidelity(
                label=label,
                replay_ops_per_s=replay.get(label, math.nan),
                flink_records_per_s=statistics.median(vals) if vals else math.nan,
                flink_min=min(vals) if vals else math.nan,
                flink_max=max(vals) if vals else math.nan,
                flink_runs=len(vals),
            )
        )
    both = [
        c
        for c in configs
        if math.isfinite(c.replay_ops_per_s) and math.isfinite(c.flink_records_per_s)
    ]
    rho = spearman([c.replay_ops_per_s for c in both], [c.flink_records_per_s for c in both])
    gain = measure_gain(records) if recommended_as is None else None
    if gain is not None:
        predicted = gain.median_gain
    elif RECOMMENDED_LABEL in replay and replay.get(DEFAULT_LABEL, 0) > 0:
        predicted = replay[RECOMMENDED_LABEL] / replay[DEFAULT_LABEL] - 1
    else:
        predicted = math.nan
    by_label = {c.label: c for c in configs}
    real = math.nan
    d, r = by_label.get(DEFAULT_LABEL), by_label.get(RECOMMENDED_LABEL)
    if d is not None and r is not None and d.flink_records_per_s > 0:
        real = r.flink_records_per_s / d.flink_records_per_s - 1
    pairs = pairwise_gains(flink, RECOMMENDED_LABEL)
    resolved, concordant, discordant = resolved_pairs(configs)
    return Fidelity(
        configs=tuple(configs),
        spearman=rho,
        ranked=len(both),
        predicted_gain=predicted,
        real_gain=real,
        real_gain_low=min(pairs) if pairs else math.nan,
        real_gain_high=max(pairs) if pairs else math.nan,
        resolved=resolved,
        concordant=concordant,
        discordant=discordant,
    )
