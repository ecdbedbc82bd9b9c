"""From measurements to a recommendation: the chosen settings, the measured gain with its
spread, and the one-line reason for every emitted key. Pure functions over trial records."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuner.flink import options as fo
from tuner.flink.inert import inert_keys, without_inert
from tuner.search.study import (
    CURRENT_LABEL,
    DEFAULT_LABEL,
    RECOMMENDED_LABEL,
    THROUGHPUT,
    TrialRecord,
)
from tuner.units import format_memory_size
from tuner.workload import Workload

# Keys that are sizes (for human-readable comments).
_SIZE_KEYS = frozenset(
    {
        fo.WRITE_BUFFER_SIZE,
        fo.TARGET_FILE_SIZE_BASE,
        fo.MAX_SIZE_LEVEL_BASE,
        fo.BLOCK_SIZE,
        fo.BLOCK_CACHE_SIZE,
        fo.METADATA_BLOCK_SIZE,
    }
)


def reference_name(label: str) -> str:
    """A gain's reference label (DEFAULT or current) as the report words it."""
    return "your current configuration" if label == CURRENT_LABEL else "Flink's default"


@dataclass(frozen=True)
class Gain:
    """Recommended vs default, from interleaved re-measurements (pairs run back to back)."""

    metric: str
    n: int
    default_median: float
    recommended_median: float
    median_gain: float  # recommended median / default median - 1
    low: float  # smallest pairwise gain
    high: float  # largest pairwise gain
    engine: str = "rocksdict"  # what measured it (tuner.recommend.ENGINE_NAMES)
    reference: str = DEFAULT_LABEL  # what it is a gain over: DEFAULT or current (--baseline)

    @property
    def reference_name(self) -> str:
        """The reference as the report words it."""
        return reference_name(self.reference)

    @property
    def significant(self) -> bool:
        """True when every pair agrees on the sign of the gain (the spread does not cross 0)."""
        return self.low > 0 or self.high < 0

    def describe(self) -> str:
        """One line for comments and the report."""
        verdict = "" if self.significant else " (within noise: the pairs disagree on the sign)"
        return (
            f"{self.median_gain:+.1%} median {self.metric} over {self.reference_name}, "
            f"measured on {engine_name(self.engine)} ({self.n} interleaved runs each, pairwise "
            f"range {self.low:+.1%} .. {self.high:+.1%}){verdict}"
        )


# How a gain names the engine it was measured on: a gain is never shown without it.
ENGINE_NAMES: dict[str, str] = {
    "rocksdict": "the rocksdict replay (modelled ops/s)",
    "flink": "a real Flink job (records/s)",
    "flink-backend": "Flink's own RocksDB state backend (flink-backend engine, modelled ops/s)",
}


def engine_name(engine: str) -> str:
    """The engine as a gain names it."""
    return ENGINE_NAMES.get(engine, engine)


def reference_label(records: Sequence[TrialRecord]) -> str:
    """What the headline gain is measured against: the user's configuration (``current``)
    when the run re-measured one (tuner run --baseline), else Flink's default."""
    for r in records:
        if r.candidate.kind == "remeasure" and r.candidate.label == CURRENT_LABEL:
            return CURRENT_LABEL
    return DEFAULT_LABEL


def measure_gain(
    records: Sequence[TrialRecord],
    metric: str = THROUGHPUT,
    engine: str = "rocksdict",
    reference: str | None = None,
    label: str = RECOMMENDED_LABEL,
) -> Gain | None:
    """The gain of the re-measured recommendation (or the re-measured configuration ``label``)
    over the re-measured reference, measured on ``engine``: ``current`` when the run has one,
    else Flink's default (``reference`` picks one explicitly)."""
    ref = reference or reference_label(records)
    runs: dict[str, dict[int, float]] = {ref: {}, label: {}}
    for r in records:
        c = r.candidate
        if c.kind == "remeasure" and r.ok and metric in r.metrics and c.label in runs:
            runs[c.label][c.repeat] = r.metrics[metric]
    pairs = sorted(set(runs[ref]) & set(runs[label]))
    if not pairs:
        return None
    d = [runs[ref][i] for i in pairs]
    rec = [runs[label][i] for i in pairs]
    ratios = [b / a - 1 for a, b in zip(d, rec, strict=True) if a > 0]
    if not ratios:
        return None
    dm, rm = statistics.median(d), statistics.median(rec)
    return Gain(
        metric,
        len(pairs),
        dm,
        rm,
        rm / dm - 1 if dm > 0 else 0.0,
        min(ratios),
        max(ratios),
        engine,
        ref,
    )


def show_value(key: str, value: fo.FlinkValue) -> str:
    """A value as a person reads it in a comment."""
    if isinstance(value, tuple):
        return ";".join(value)
    if key in _SIZE_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return format_memory_size(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@dataclass(frozen=True)
class Recommendation:
    """The settings to paste, and what measuring them showed."""

    workload: str
    flink_version: str
    settings: Mapping[str, fo.FlinkValue]
    comments: Mapping[str, str]
    trial_number: int | None
    gain: Gain | None
    headline: str
    changed: int | None = None  # keys changed against the baseline (None: no baseline given)
    baseline_source: str | None = None


def recommend(
    workload: Workload,
    best_settings: Mapping[str, fo.FlinkValue],
    best_trial: int | None,
    records: Sequence[TrialRecord],
    importances: Mapping[str, float],
    engine: str = "rocksdict",
    *,
    minimal: Mapping[str, fo.FlinkValue] | None = None,
    contributions: Mapping[str, str] | None = None,
    baseline: Mapping[str, fo.FlinkValue] | None = None,
    baseline_source: str | None = None,
) -> Recommendation:
    """Assemble the recommendation: the memory keys of the budget, the searched keys (pinned
    explicitly, even where they equal Flink's default, so the result is reproducible), each with
    its reason. ``importances`` are per Flink key
    (:func:`tuner.search.importance.param_importances`).

    ``minimal`` (the keys the minimal recommendation keeps, tuner.search.ablation) replaces the
    winner's keys: only they are emitted, each commented with ``contributions[key]``. Keys that
    do nothing under the chosen settings (tuner.flink.inert) are never emitted.

    ``baseline`` (the user's configuration, tuner run --baseline): its keys the recommendation
    does not change are emitted too, marked unchanged, so the files are the complete measured
    configuration and the changes are the keys with a reason.
    """
    gain = measure_gain(records, engine=engine)
    settings: dict[str, fo.FlinkValue] = {}
    comments: dict[str, str] = {}
    memory = fo.memory_settings(workload.memory)
    settings[fo.MEMORY_MANAGED] = memory[fo.MEMORY_MANAGED]
    comments[fo.MEMORY_MANAGED] = (
        "RocksDB memory as in the workload's budget "
        f"({format_memory_size(workload.memory.budget)} per slot, mode {workload.memory.mode})"
    )
    for key in (fo.MEMORY_FIXED_PER_SLOT, fo.MEMORY_FIXED_PER_TM):
        if key in memory:
            settings[key] = memory[key]
            comments[key] = "the workload's fixed RocksDB memory"
    imp = importances
    chosen = minimal if minimal is not None else without_inert(best_settings, workload.memory)
    for key, value in chosen.items():
        if key == fo.PREDEFINED_OPTIONS:
            continue
        default = fo.DEFAULTS.get(key)
        base = (
            "same as Flink's default"
            if value == default
            else f"Flink default {show_value(key, default)}"
            if default is not None
            else "no Flink default"
        )
        share = imp.get(key)
        effect = f"; importance for throughput {share:.0%}" if share is not None else ""
        measured = (contributions or {}).get(key)
        measured_text = f"; {measured}" if measured else ""
        comments[key] = f"searched: {show_value(key, value)} ({base}){effect}{measured_text}"
        settings[key] = value
    full = {**(baseline or {}), **chosen}
    dead = inert_keys(full, workload.memory)
    source = baseline_source or "baseline"
    for key, value in (baseline or {}).items():
        if key not in settings and key not in dead:
            settings[key] = value
            comments[key] = f"unchanged from your current configuration ({source})"
    headline = (
        gain.describe()
        if gain is not None
        else "not re-measured against Flink's default (the run stopped early)"
    )
    return Recommendation(
        workload.name,
        workload.flink_version,
        settings,
        comments,
        best_trial,
        gain,
        headline,
        len(chosen) if baseline is not None else None,
        baseline_source,
    )
