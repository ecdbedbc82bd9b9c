"""Confirm before recommending: the search's best candidates re-measured on Flink's own state
backend, interleaved with Flink's default, and the recommendation chosen from those figures.

The search ranks candidates on the rocksdict replay, a model of Flink's backend. Before a
recommendation is written, the minimal recommendation, the top few search candidates and the best
of Flink's predefined option sets are measured on the flink-backend engine
(:mod:`tuner.engine.flink_backend`), in rounds: each round runs the reference first (the user's
configuration given with ``--baseline``, else Flink's default; Flink's default is then measured
too), then every candidate (the order rotates from round to round). The noise is the spread of
the reference's own repeats, ``(max - min) / median``. A candidate is chosen only when its median
beats the reference's median by more than that noise and it beat the reference in every round;
the minimal recommendation is preferred when it is within the noise of the best. Otherwise the
answer is to keep the configuration, with these figures as the evidence.

Measurements are stored in ``confirmation.csv`` (trials.csv's columns); the decision is
recomputed from that file by :func:`decide`, so a report can be re-rendered without re-running.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tuner.engine.base import Measurement
from tuner.flink import options as fo
from tuner.recommend import Recommendation, engine_name, recommend, reference_name
from tuner.search.study import (
    BASELINES,
    CURRENT_LABEL,
    DEFAULT_LABEL,
    THROUGHPUT,
    Candidate,
    StudyOutcome,
    TrialRecord,
)
from tuner.workload import Workload

CONFIRM_ENGINE = "flink-backend"
CONFIRMATION_CSV = "confirmation.csv"
DEFAULT_TOP = 3
MINIMAL_LABEL = "minimal"  # the minimal recommendation (tuner.search.ablation), complete


@dataclass(frozen=True)
class ConfirmTarget:
    """A configuration the confirmation measures, and where it came from."""

    label: str
    source: str  # "Flink's default", "search trial 12 (rank 1 on the replay)", ...
    settings: Mapping[str, fo.FlinkValue]
    trial_number: int | None = None


@dataclass(frozen=True)
class ConfirmedConfig:
    """What the confirmation measured for one configuration."""

    label: str
    source: str
    values: tuple[float, ...]  # the metric per round
    median: float
    gain: float  # median / the default's median - 1
    low: float  # smallest same-round gain over the default
    high: float  # largest same-round gain over the default
    beats_noise: bool


@dataclass(frozen=True)
class Confirmation:
    """The decision and its evidence."""

    engine: str
    metric: str
    rounds: int
    baseline: tuple[float, ...]
    noise: float  # (max - min) / median of the default's repeats; NaN below 2 repeats
    configs: tuple[ConfirmedConfig, ...]
    chosen: str | None  # the label to recommend; None: keep your configuration
    reason: str
    flink_version: str = ""
    settings: Mapping[str, fo.FlinkValue] = field(default_factory=dict)  # of the chosen one
    reference: str = DEFAULT_LABEL  # what the gains are against: DEFAULT or current

    @property
    def keep(self) -> bool:
        """True when nothing beat the reference beyond the noise."""
        return self.chosen is None

    @property
    def reference_name(self) -> str:
        """The reference in words."""
        return reference_name(self.reference)

    def chosen_config(self) -> ConfirmedConfig | None:
        """The chosen configuration's figures."""
        return next((c for c in self.configs if c.label == self.chosen), None)

    def headline(self) -> str:
        """One line: what to do, and the gain with the engine that measured it."""
        where = engine_name(self.engine)
        c = self.chosen_config()
        if c is None:
            return f"keep your configuration: {self.reason} (measured on {where})"
        return (
            f"{c.gain:+.1%} median {self.metric} over {self.reference_name} for {c.label}, "
            f"measured on {where} ({len(c.values)} interleaved rounds, same-round range "
            f"{c.low:+.1%} .. {c.high:+.1%}; the reference's own spread {self.noise:.1%})"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (recommendation.json's ``confirmation``)."""
        d = asdict(self)
        d["settings"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.settings.items()
        }
        d["keep"] = self.keep
        d["headline"] = self.headline()
        out: dict[str, Any] = _finite(d)
        return out


def _finite(x: Any) -> Any:
    """NaN as null, so the JSON is standard."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _key(settings: Mapping[str, fo.FlinkValue]) -> str:
    return json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}, sort_keys=True
    )


def select_targets(
    records: Sequence[TrialRecord],
    top: int = DEFAULT_TOP,
    metric: str = THROUGHPUT,
    *,
    current: Mapping[str, fo.FlinkValue] | None = None,
    minimal: Mapping[str, fo.FlinkValue] | None = None,
) -> list[ConfirmTarget]:
    """The reference first (``current``, the user's configuration, else Flink's default), Flink's
    default when it is not the reference, the ``minimal`` recommendation (complete settings),
    the ``top`` best distinct search candidates on the search's engine, and the best of the
    other predefined option sets."""
    default = ConfirmTarget(DEFAULT_LABEL, "Flink's default", {fo.PREDEFINED_OPTIONS: "DEFAULT"})
    out = [default]
    seen_settings = {_key(default.settings)}
    if current is not None:
        out = [ConfirmTarget(CURRENT_LABEL, "your current configuration", dict(current)), default]
        seen_settings.add(_key(current))
    if minimal is not None and _key(minimal) not in seen_settings:
        seen_settings.add(_key(minimal))
        out.append(ConfirmTarget(MINIMAL_LABEL, "the minimal recommendation", dict(minimal)))
    search = sorted(
        (r for r in records if r.candidate.kind == "search" and r.ok and metric in r.metrics),
        key=lambda r: -r.metrics[metric],
    )
    seen: set[str] = set()
    for r in search:
        if len(seen) >= top:
            break
        k = _key(r.candidate.settings)
        if k in seen or k in seen_settings:
            continue
        seen.add(k)
        out.append(
            ConfirmTarget(
                r.candidate.label,
                f"search trial {r.candidate.trial_number} (rank {len(seen)} in the search)",
                dict(r.candidate.settings),
                r.candidate.trial_number,
            )
        )
    predefined = [
        r
        for r in records
        if r.candidate.kind == "baseline"
        and r.ok
        and metric in r.metrics
        and r.candidate.label in BASELINES
        and r.candidate.label != DEFAULT_LABEL
    ]
    if predefined:
        best = max(predefined, key=lambda r: r.metrics[metric])
        out.append(
            ConfirmTarget(
                best.candidate.label,
                "the best of Flink's other predefined option sets in the search",
                {fo.PREDEFINED_OPTIONS: best.candidate.label},
            )
        )
    return out


def confirm_candidates(targets: Sequence[ConfirmTarget], rounds: int) -> list[Candidate]:
    """The measurement order: per round the reference (the first target) first, then the
    others, rotated."""
    default, others = targets[0], list(targets[1:])
    out = []
    for r in range(rounds):
        k = r % len(others) if others else 0
        order = [default, *others[k:], *others[:k]]
        out += [Candidate(t.label, "remeasure", t.settings, t.trial_number, r) for t in order]
    return out


def run_confirmation(
    targets: Sequence[ConfirmTarget],
    rounds: int,
    measure: Callable[[Candidate], Measurement],
    sink: Callable[[TrialRecord], None],
    earlier: Sequence[TrialRecord] = (),
    should_stop: Callable[[], bool] = lambda: False,
    now: Callable[[], float] = lambda: 0.0,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[TrialRecord], bool]:
    """Measure every target ``rounds`` times (skipping what ``earlier`` holds); each record goes
    to ``sink``; ``on_progress(label, done, total)`` before each measurement. Returns the
    records and whether every measurement ran."""
    records = list(earlier)
    done = {(r.candidate.label, r.candidate.repeat) for r in earlier}
    order = confirm_candidates(targets, rounds)
    for i, cand in enumerate(order):
        if (cand.label, cand.repeat) in done:
            continue
        if should_stop():
            return records, False
        if on_progress is not None:
            on_progress(cand.label, i, len(order))
        started = now()
        m = measure(cand)
        rec = TrialRecord(
            len(records),
            cand,
            m.status,
            m.reason,
            dict(m.metrics),
            m.wall_s,
            m.rss_peak_bytes,
            started,
        )
        records.append(rec)
        sink(rec)
    return records, True


def _source(c: Candidate) -> str:
    if c.label in (DEFAULT_LABEL, CURRENT_LABEL):
        return reference_name(c.label)
    if c.label == MINIMAL_LABEL:
        return "the minimal recommendation"
    if c.trial_number is not None:
        return f"search trial {c.trial_number}"
    return "one of Flink's predefined option sets"


def complete_rounds(
    records: Sequence[TrialRecord], targets: Sequence[ConfirmTarget] | None = None
) -> list[TrialRecord]:
    """The records of the rounds in which every configuration was measured (``targets``, else
    every label the records hold), failed measurements included: a confirmation the time budget
    ended part-way through is decided on its whole rounds, so that every configuration is
    compared with the reference over the same rounds, and a report re-rendered from
    confirmation.csv decides the same way."""
    labels = {t.label for t in targets} if targets else {r.candidate.label for r in records}
    seen: dict[int, set[str]] = {}
    for r in records:
        seen.setdefault(r.candidate.repeat, set()).add(r.candidate.label)
    whole = {i for i, got in seen.items() if labels <= got}
    return [r for r in records if r.candidate.repeat in whole]


def decide(
    records: Sequence[TrialRecord],
    targets: Sequence[ConfirmTarget] | None = None,
    metric: str = THROUGHPUT,
    engine: str = CONFIRM_ENGINE,
    flink_version: str = "",
) -> Confirmation:
    """The recommendation from the confirmation's measurements (see the module docstring).

    The reference is the first target; without ``targets`` (a report re-rendered from
    confirmation.csv) it is the user's configuration when one was measured, else the default.
    Only whole rounds count (:func:`complete_rounds`).
    """
    by: dict[str, dict[int, float]] = {}
    settings: dict[str, Mapping[str, fo.FlinkValue]] = {}
    sources = {t.label: t.source for t in targets or ()}
    sources.update({r.candidate.label: _source(r.candidate) for r in records if targets is None})
    records = complete_rounds(records, targets)
    for r in records:
        if r.ok and metric in r.metrics and math.isfinite(r.metrics[metric]):
            by.setdefault(r.candidate.label, {})[r.candidate.repeat] = r.metrics[metric]
            settings[r.candidate.label] = r.candidate.settings
    if targets:
        ref = targets[0].label
    else:
        ref = (
            CURRENT_LABEL
            if any(r.candidate.label == CURRENT_LABEL for r in records)
            else (DEFAULT_LABEL)
        )
    name = reference_name(ref)
    base = by.get(ref, {})
    rounds = len(base)
    if not base:
        return Confirmation(
            engine,
            metric,
            0,
            (),
            math.nan,
            (),
            None,
            f"{name} could not be measured, so no gain can be confirmed",
            flink_version,
            reference=ref,
        )
    bvals = [base[i] for i in sorted(base)]
    bmed = statistics.median(bvals)
    noise = (max(bvals) - min(bvals)) / bmed if len(bvals) >= 2 and bmed > 0 else math.nan
    configs = []
    for label, runs in by.items():
        if label == ref:
            continue
        vals = [runs[i] for i in sorted(runs)]
        pairs = [runs[i] / base[i] - 1 for i in sorted(runs) if i in base and base[i] > 0]
        med = statistics.median(vals)
        gain = med / bmed - 1
        low = min(pairs) if pairs else math.nan
        high = max(pairs) if pairs else math.nan
        beats = math.isfinite(noise) and gain > noise and bool(pairs) and low > 0
        source = sources.get(label, "")
        configs.append(ConfirmedConfig(label, source, tuple(vals), med, gain, low, high, beats))
    configs.sort(key=lambda c: -c.median)
    winners = [c for c in configs if c.beats_noise]
    chosen: ConfirmedConfig | None = None
    if winners:
        chosen = winners[0]
        minimal = next((c for c in winners if c.label == MINIMAL_LABEL), None)
        preferred = ""
        close = minimal is not None and minimal.median >= chosen.median * (1 - noise)
        if minimal is not None and minimal is not chosen and close:
            # Fewer changes for a difference the rounds cannot resolve.
            preferred = (
                f" (within the noise of {chosen.label}'s {chosen.gain:+.1%}, with fewer changes)"
            )
            chosen = minimal
        reason = (
            f"{chosen.label} beat {name} by {chosen.gain:+.1%} (median), more than the "
            f"reference's own spread of {noise:.1%}, and in every round{preferred}"
        )
    elif not math.isfinite(noise):
        reason = "one round cannot measure the noise (run with --repeats 2 or more)"
    elif configs:
        best = configs[0]
        reason = (
            f"no candidate beat {name} beyond the noise: the best, {best.label}, "
            f"{best.gain:+.1%} (same-round range {best.low:+.1%} .. {best.high:+.1%}), "
            f"the reference's own spread {noise:.1%}"
        )
    else:
        reason = "no candidate could be measured"
    return Confirmation(
        engine,
        metric,
        rounds,
        tuple(bvals),
        noise,
        tuple(configs),
        chosen.label if chosen is not None else None,
        reason,
        flink_version,
        dict(settings[chosen.label]) if chosen is not None else {},
        ref,
    )


def confirmed_recommendation(
    workload: Workload,
    searched: Recommendation,
    confirmation: Confirmation,
    outcome: StudyOutcome,
    importances: dict[str, float],
    engine: str,
    *,
    baseline: Mapping[str, fo.FlinkValue] | None = None,
    baseline_source: str | None = None,
) -> Recommendation:
    """The recommendation the confirmation chose, as the settings it measured: the minimal
    recommendation (``searched``, when it was made), a search trial's settings, a predefined
    option set, or "keep your configuration": the user's ``baseline`` unchanged, or none beyond
    the workload's memory keys. The gain is the search engine's only when it measured the same
    settings."""
    chosen = confirmation.chosen_config()
    headline = confirmation.headline()
    if chosen is None:
        base = recommend(
            workload,
            {},
            None,
            outcome.records,
            importances,
            engine,
            baseline=baseline,
            baseline_source=baseline_source,
        )
        return replace(base, gain=None, headline=headline)
    if chosen.label == MINIMAL_LABEL:
        return replace(searched, gain=None, headline=headline)
    settings = dict(confirmation.settings)
    predefined = settings.pop(fo.PREDEFINED_OPTIONS, None)
    trial = next(
        (
            r.candidate.trial_number
            for r in outcome.records
            if r.candidate.kind == "search" and r.candidate.label == chosen.label
        ),
        None,
    )
    rec = recommend(workload, settings, trial, outcome.records, importances, engine)
    gain = rec.gain if trial is not None and trial == outcome.best_trial_number else None
    out_settings = dict(rec.settings)
    comments = dict(rec.comments)
    if isinstance(predefined, str) and predefined != "DEFAULT":
        out_settings[fo.PREDEFINED_OPTIONS] = predefined
        comments[fo.PREDEFINED_OPTIONS] = (
            f"Flink's predefined option set, chosen by the confirmation on "
            f"{confirmation.engine}: {chosen.gain:+.1%} over {confirmation.reference_name}"
        )
    return replace(rec, settings=out_settings, comments=comments, gain=gain, headline=headline)


__all__ = [
    "CONFIRMATION_CSV",
    "CONFIRM_ENGINE",
    "DEFAULT_TOP",
    "MINIMAL_LABEL",
    "ConfirmTarget",
    "Confirmation",
    "ConfirmedConfig",
    "confirm_candidates",
    "confirmed_recommendation",
    "decide",
    "run_confirmation",
    "select_targets",
]
