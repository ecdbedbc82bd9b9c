"""The minimal recommendation: which of the search winner's changes are worth making.

After the search, every key the winner changes (against the user's configuration, or Flink's
default) is reverted to the baseline's value, one at a time, with repeats, next to the winner
itself (interleaved per repeat). A key whose revert costs no more than the measured noise is a
candidate to drop; those are then reverted greedily, cheapest first, keeping each revert only
while the accumulated set still measures within noise of the winner (two keys can be harmless
alone and costly together). Keys that do nothing under the chosen settings are dropped by rule
(tuner.flink.inert) without a measurement.

Decisions use the counted throughput (``ops_per_s`` of the cost model); every figure is a median
over repeats with its range. The number of measurements is bounded (``max_measurements``) and
known in advance, so the progress line can show it.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tuner.flink import options as fo
from tuner.flink.inert import inert_keys
from tuner.search.study import THROUGHPUT, Candidate, RunBatch, TrialRecord
from tuner.workload import Workload, column_family_count

__all__ = [
    "NOISE_FLOOR",
    "Ablation",
    "KeyEffect",
    "Minimizer",
    "changed_keys",
    "measured_noise",
    "short",
]

# Below this relative difference nothing is called a cost, whatever two repeats show: the
# objective's CV on a quiet machine is about 1 % (README: Measurement quality).
NOISE_FLOOR = 0.005
# Keys that set the budget come from the workload, never from the search.
_NOT_CHANGES = frozenset(
    {fo.PREDEFINED_OPTIONS, fo.MEMORY_MANAGED, fo.MEMORY_FIXED_PER_SLOT, fo.MEMORY_FIXED_PER_TM}
)
WINNER_LABEL = "minimal:winner"


def short(key: str) -> str:
    """A key without Flink's ``state.backend.rocksdb.`` prefix."""
    return key.removeprefix("state.backend.rocksdb.")


@dataclass(frozen=True)
class KeyEffect:
    """What reverting one changed key to the baseline cost (positive: the revert is slower)."""

    key: str
    value: fo.FlinkValue  # the winner's
    baseline: fo.FlinkValue  # what the revert sets
    n: int
    cost: float  # median over repeats of winner / reverted - 1
    low: float
    high: float
    decision: str  # "kept: ...", "dropped: ..."
    kept: bool


@dataclass(frozen=True)
class Ablation:
    """The minimal recommendation and the evidence for it."""

    reference: str  # "current" (the user's configuration) or "DEFAULT"
    noise: float  # relative range of the winner's repeats (NOISE_FLOOR at least)
    repeats: int
    measurements: int  # measurements this step made (or found on resume)
    winner_median: float
    minimal_median: float  # the accumulated minimal set's median (the winner's when unchanged)
    effects: tuple[KeyEffect, ...]
    inert: Mapping[str, str]  # key -> rule that made it inert, dropped without measuring
    settings: Mapping[str, fo.FlinkValue]  # the minimal configuration, complete
    winner: Mapping[str, fo.FlinkValue]  # the search winner, as the search chose it
    metric: str = THROUGHPUT  # what the contributions are measured on
    untried_for_time: int = 0  # keys kept untried because the time budget ran short

    @property
    def kept(self) -> tuple[str, ...]:
        """The changes worth making, largest contribution first."""
        return tuple(e.key for e in sorted(self.effects, key=lambda e: -e.cost) if e.kept)

    def to_json(self) -> dict[str, Any]:
        """For recommendation.json (lists for tuples)."""

        def plain(v: Any) -> Any:
            return list(v) if isinstance(v, tuple) else v

        out = asdict(self)
        out["settings"] = {k: plain(v) for k, v in self.settings.items()}
        out["winner"] = {k: plain(v) for k, v in self.winner.items()}
        out["effects"] = [
            {**asdict(e), "value": plain(e.value), "baseline": plain(e.baseline)}
            for e in self.effects
        ]
        out["inert"] = dict(self.inert)
        out["kept"] = list(self.kept)
        return out


def changed_keys(
    winner: Mapping[str, fo.FlinkValue], baseline: Mapping[str, fo.FlinkValue], workload: Workload
) -> tuple[list[str], dict[str, str]]:
    """Keys whose effective value differs between ``winner`` and ``baseline`` (in DEFAULTS'
    order), and the inert ones among them (dropped, with the rule's reason)."""
    mem = fo.memory_settings(workload.memory)
    w = fo.effective({**mem, **winner})
    b = fo.effective({**mem, **baseline})
    changed = [k for k in fo.DEFAULTS if k not in _NOT_CHANGES and w[k] != b[k]]
    full = {**baseline, **{k: w[k] for k in changed}}
    dead = inert_keys(full, workload.memory)
    return [k for k in changed if k not in dead], {k: dead[k] for k in changed if k in dead}


def _revert(
    settings: Mapping[str, fo.FlinkValue], key: str, baseline: Mapping[str, fo.FlinkValue]
) -> dict[str, fo.FlinkValue]:
    out = dict(settings)
    if key in baseline:
        out[key] = baseline[key]
    else:
        out.pop(key, None)
    return out


@dataclass
class Minimizer:
    """The Refine step of the study loop that makes the minimal recommendation."""

    workload: Workload
    baseline: Mapping[str, fo.FlinkValue] | None  # None: Flink's default
    repeats: int = 2
    max_measurements: int = 80
    reference: str = "DEFAULT"
    column_families: int | None = None  # of the replayed instance (the trace header's)
    # What the decisions are made on: the objective's counted figure (throughput, higher is
    # better; for --objective checkpoint the incremental checkpoint size, lower is better).
    metric: str = THROUGHPUT
    lower_is_better: bool = False

    def _cost(self, winner: float, reverted: float) -> float:
        """What a revert costs, relative (positive: the reverted configuration is worse)."""
        if self.lower_is_better:
            return reverted / winner - 1 if winner > 0 else 0.0
        return winner / reverted - 1 if reverted > 0 else float("inf")

    def _base(self) -> Mapping[str, fo.FlinkValue]:
        return self.baseline or {}

    def _repeats(self, keys: int) -> int:
        """Repeats that fit the bound: one-at-a-time (keys + 1) plus greedy (keys) rounds."""
        rounds = 2 * keys + 1
        return max(1, min(self.repeats, self.max_measurements // max(1, rounds)))

    def planned(self, best: Mapping[str, fo.FlinkValue] | None) -> int:
        """Measurements at most for this winner: ``max_measurements``, or the one-at-a-time
        step (each changed key and the winner, once each, the winner twice) when that alone
        needs more; the greedy step stops at the bound."""
        if best is None:
            return 0
        keys = len(changed_keys(best, self._base(), self.workload)[0])
        if keys == 0:
            return 0
        r = self._repeats(keys)
        one_at_a_time = (keys + 1) * r + max(0, 2 - r)
        return max(one_at_a_time, min(self.max_measurements, one_at_a_time + keys * r))

    def least(self, best: Mapping[str, fo.FlinkValue] | None) -> int:
        """The one-at-a-time step with one repeat (what :meth:`planned` is at the smallest
        bound): each changed key reverted once, the winner twice."""
        if best is None:
            return 0
        keys = len(changed_keys(best, self._base(), self.workload)[0])
        return keys + 2 if keys else 0

    def fit_to(self, measurements: int) -> None:
        """Lower the bound to ``measurements`` (tuner run --time-budget). The bound does not
        cut the one-at-a-time step (see :meth:`planned`): without it nothing can be decided;
        only the time left does (``room`` in :meth:`__call__`)."""
        self.max_measurements = min(self.max_measurements, measurements)

    def __call__(
        self,
        best: Mapping[str, fo.FlinkValue],
        records: Sequence[TrialRecord],
        run_batch: RunBatch,
        should_stop: Callable[[], bool],
        room: Callable[[int], bool] | None = None,
    ) -> tuple[dict[str, fo.FlinkValue], object] | None:
        """Measure and decide; None when asked to stop (resume continues from the records).
        ``room(n)`` says whether n more measurements fit the time budget. Both steps ask
        before each measurement (the winner's first one excepted: without it nothing is
        decided) and stop when they do not fit; a key whose revert was not measured is kept,
        and the step says so."""
        base = self._base()
        mem = fo.memory_settings(self.workload.memory)
        w_eff = fo.effective({**mem, **best})
        b_eff = fo.effective({**mem, **base})
        changed, inert = changed_keys(best, base, self.workload)
        winner = {**base, **{k: w_eff[k] for k in changed}}

        def invalid(settings: Mapping[str, fo.FlinkValue]) -> str | None:
            """Why Flink would refuse these settings or RocksDB misbehave with them (such a
            configuration is never a revert: it could not be recommended); None when fine.
            A merge of memtables is one: reverting to a baseline's merge would emit a
            checkpoint that may hang (the search pins the merge to 1)."""
            cfs = self.column_families or column_family_count(self.workload.states)
            return fo.invalid_reason(
                settings, self.workload.memory, cfs, self.workload.flink_version
            ) or fo.known_hang(settings)

        repeats = self._repeats(len(changed))
        if not changed:
            ab = Ablation(
                self.reference, 0.0, 0, 0, float("nan"), float("nan"), (), inert, winner, best
            )
            return winner, ab
        made = 0
        untried_for_time = 0
        out_of_time: set[str] = set()  # labels left unmeasured for the time budget

        def measure(
            labelled: Sequence[tuple[str, Mapping[str, fo.FlinkValue]]],
            reps: range | None = None,
        ) -> list[list[float]]:
            """Each labelled config ``repeats`` times, interleaved per repeat; values per config
            (NaN for a failed measurement). Earlier records of the same label are reused."""
            nonlocal made
            values: list[list[float]] = [[] for _ in labelled]
            for r in reps if reps is not None else range(repeats):
                todo = []
                for label, settings in labelled:
                    if _find(records, label, r) is None:
                        todo.append(Candidate(label, "ablation", dict(settings), None, r))
                if todo:
                    if should_stop():
                        raise _Stopped
                    if room is None:
                        run_batch(todo)
                    else:
                        # One at a time under a budget: measurements that run longer than
                        # planned stop here, not in the confirmation's time. The first of
                        # the first round (the winner, or a greedy candidate, which asked
                        # already) is always measured.
                        for n, cand in enumerate(todo):
                            if (n or r) and not room(1):
                                out_of_time.add(cand.label)
                                continue
                            run_batch([cand])
                for i, (label, _) in enumerate(labelled):
                    rec = _find(records, label, r)
                    made += 1
                    ok = rec is not None and rec.ok and self.metric in rec.metrics
                    values[i].append(float(rec.metrics[self.metric]) if ok else float("nan"))  # type: ignore[union-attr]
            return values

        try:
            valid = [k for k in changed if invalid(_revert(winner, k, base)) is None]
            measured = measure(
                [(WINNER_LABEL, winner)]
                + [(f"minimal:-{short(k)}", _revert(winner, k, base)) for k in valid]
            )
            nan_row = [float("nan")] * len(measured[0])
            by_key = dict(zip(valid, measured[1:], strict=True))
            one = [measured[0], *(by_key.get(k, nan_row) for k in changed)]
            # The noise comes from the winner's own repeats: two at least, whatever --repeats.
            extra = measure([(WINNER_LABEL, winner)], range(repeats, 2))[0] if repeats < 2 else []
            win = [v for v in [*one[0], *extra] if v == v]
            if not win:
                return winner, Ablation(
                    self.reference,
                    0.0,
                    repeats,
                    made,
                    float("nan"),
                    float("nan"),
                    (),
                    inert,
                    winner,
                    best,
                )
            win_median = statistics.median(win)
            noise = measured_noise([win, *one[1:]])
            costs: dict[str, list[float]] = {}
            for k, vals in zip(changed, one[1:], strict=True):
                costs[k] = [
                    self._cost(a, b) for a, b in zip(one[0], vals, strict=True) if a == a and b == b
                ]
            decisions: dict[str, tuple[bool, str]] = {}
            droppable = []
            for k in changed:
                c = costs[k]
                why = invalid(_revert(winner, k, base))
                if why is not None:
                    decisions[k] = (True, f"kept: reverting it alone is invalid ({why})")
                elif f"minimal:-{short(k)}" in out_of_time:
                    untried_for_time += 1
                    decisions[k] = (True, "kept: not tried, the time budget was reached")
                elif not c:
                    decisions[k] = (True, "kept: its revert failed to measure")
                elif statistics.median(c) > noise:
                    decisions[k] = (
                        True,
                        f"kept: reverting it costs more than the noise ({noise:.1%})",
                    )
                else:
                    droppable.append(k)
            droppable.sort(key=lambda k: statistics.median(costs[k]))
            current = dict(winner)
            current_median = win_median
            for i, k in enumerate(droppable):
                if made + repeats > self.max_measurements:
                    decisions[k] = (True, "kept: not tried, the measurement bound was reached")
                    continue
                if room is not None and not room(repeats):
                    untried_for_time += 1
                    decisions[k] = (True, "kept: not tried, the time budget was reached")
                    continue
                cand = _revert(current, k, base)
                if invalid(cand) is not None:
                    decisions[k] = (True, "kept: reverting it with the cheaper keys is invalid")
                    continue
                label = f"minimal:greedy-{i}-{short(k)}-{_digest(cand)}"
                (vals,) = measure([(label, cand)])
                ok = [v for v in vals if v == v]
                loss = self._cost(win_median, statistics.median(ok)) if ok else float("inf")
                if loss <= noise:
                    current = cand
                    current_median = statistics.median(ok)
                    decisions[k] = (
                        False,
                        f"dropped: with it and the cheaper keys reverted the set measures "
                        f"{abs(loss):.1%} {'worse' if loss > 0 else 'better'} than the winner "
                        f"on {self.metric} (within the noise, or better)",
                    )
                else:
                    decisions[k] = (
                        True,
                        f"kept: alone within noise, but reverted together with the cheaper keys "
                        f"it costs {loss:.1%}",
                    )
        except _Stopped:
            return None
        # A kept key can do nothing once another was dropped (bloom bits after use-bloom-filter
        # went back to false): the measurement could not see it, so the rule drops it.
        dead = inert_keys(current, self.workload.memory)
        for k in changed:
            if decisions[k][0] and k in dead:
                current = _revert(current, k, base)
                decisions[k] = (
                    False,
                    f"dropped: does nothing once the others were dropped ({dead[k]})",
                )
        effects = []
        for k in changed:
            c = costs[k] or [float("nan")]
            kept, why = decisions[k]
            effects.append(
                KeyEffect(
                    k,
                    w_eff[k],
                    b_eff[k],
                    len(costs[k]),
                    statistics.median(c),
                    min(c),
                    max(c),
                    why,
                    kept,
                )
            )
        ab = Ablation(
            self.reference,
            noise,
            repeats,
            made,
            win_median,
            current_median,
            tuple(effects),
            inert,
            current,
            dict(best),
            self.metric,
            untried_for_time,
        )
        return current, ab


class _Stopped(Exception):
    """Raised inside the Minimizer when the study is asked to stop."""


def measured_noise(runs: Sequence[Sequence[float]]) -> float:
    """The relative spread the repeats of one configuration show: the median, over every
    configuration measured more than once, of (max - min) / median; NOISE_FLOOR at least.

    Every reverted configuration is repeated as often as the winner, so the estimate rests on
    all of them rather than on the winner's two or three values alone.
    """
    spreads = []
    for values in runs:
        ok = [v for v in values if v == v]
        if len(ok) > 1 and statistics.median(ok) > 0:
            spreads.append((max(ok) - min(ok)) / statistics.median(ok))
    return max(NOISE_FLOOR, statistics.median(spreads)) if spreads else NOISE_FLOOR


def _digest(settings: Mapping[str, fo.FlinkValue]) -> str:
    """A short stable name for a set of settings (labels of greedy steps, so a resumed run
    never reuses a measurement of another set)."""
    text = json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(settings.items())}
    )
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _find(records: Sequence[TrialRecord], label: str, repeat: int) -> TrialRecord | None:
    for r in records:
        c = r.candidate
        if (
            c.kind == "ablation"
            and c.label == label
            and c.repeat == repeat
            and r.status != "skipped"
        ):
            return r
    return None
