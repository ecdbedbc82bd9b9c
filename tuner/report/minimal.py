"""report.md's account of the minimal recommendation and the baseline, from
recommendation.json (written by the run; tuner.search.ablation made the decisions).

Kept apart from markdown.py so the section can grow without touching the report's skeleton.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tuner.recommend import show_value

__all__ = ["contributions", "headline_extra", "section"]


def _value(key: str, value: Any) -> str:
    v = tuple(value) if isinstance(value, list) else value
    if isinstance(v, float):
        return f"{v:.10g}"
    return show_value(key, v)


def _pct(x: Any) -> str:
    return f"{x:+.1%}" if isinstance(x, int | float) and math.isfinite(x) else "–"


def _short(key: str) -> str:
    return key.removeprefix("state.backend.rocksdb.")


def headline_extra(rec: Mapping[str, Any] | None) -> list[str]:
    """Lines under the headline: the gain over Flink's default too when the headline is
    against the user's configuration, and how many keys the recommendation changes."""
    if rec is None:
        return []
    out: list[str] = []
    base = rec.get("baseline")
    other = rec.get("gain_vs_default")
    if base and isinstance(other, Mapping):
        out += [
            "",
            "Against Flink's default the same recommendation measured "
            f"{_pct(other.get('median_gain'))} "
            f"(pairwise {_pct(other.get('low'))} .. {_pct(other.get('high'))}).",
        ]
    objective = rec.get("objective")
    what = {
        "checkpoint": ("checkpoint_gain", "incremental checkpoint size", "smaller"),
        "recovery": (
            "restore_gain",
            "restore time from a checkpoint of the end state",
            "faster; the checkpoint's files copied from a local directory and RocksDB opened, "
            "wall clock",
        ),
    }.get(str(objective))
    cost = rec.get(what[0]) if what is not None else None
    if what is not None and isinstance(cost, Mapping):
        out += [
            "",
            f"**Objective {objective}:** {what[1]} {_pct(cost.get('median_gain'))} "
            f"(pairwise {_pct(cost.get('low'))} .. {_pct(cost.get('high'))}, negative is "
            f"{what[2]}) against the same reference, with a throughput floor of "
            f"{float(rec.get('throughput_floor') or 0):.0%} of the reference's.",
        ]
    minimal = rec.get("minimal")
    promise = rec.get("promise")
    emitted = promise.get("label") if isinstance(promise, Mapping) else "minimal"
    if isinstance(minimal, Mapping) and emitted == "minimal":
        kept = minimal.get("kept") or []
        changed = len(minimal.get("effects") or [])
        against = "your configuration" if base else "Flink's default"
        out += [
            "",
            f"The recommendation changes **{len(kept)} key(s)** against {against} "
            f"(of {changed} measured changes of the search winner; "
            f"{len(minimal.get('inert') or {})} more that do nothing under the chosen settings "
            "were dropped by rule).",
        ]
    elif isinstance(minimal, Mapping) and isinstance(promise, Mapping) and promise.get("unchanged"):
        out += [
            "",
            f"config.yaml holds {emitted}: the whole recommendation restored faster too but "
            "cost more throughput than the floor allows (see the headline); the minimal "
            "recommendation is kept in recommendation.json.",
        ]
    elif (
        isinstance(minimal, Mapping)
        and isinstance(promise, Mapping)
        and "gain" in promise
        and promise["gain"] is None
    ):
        out += [
            "",
            "config.yaml keeps your configuration, as the confirmation decided; the minimal "
            "recommendation is kept in recommendation.json.",
        ]
    elif isinstance(minimal, Mapping):
        out += [
            "",
            f"config.yaml holds {emitted}, which the confirmation chose over the minimal "
            "recommendation (see the confirmation below); the minimal recommendation is kept "
            "in recommendation.json.",
        ]
    return out


def section(rec: Mapping[str, Any] | None) -> list[str]:
    """## Minimal recommendation: each changed key's measured contribution and decision."""
    lines = ["## Minimal recommendation", ""]
    if rec is None:
        return [*lines, "No recommendation.json: nothing to show."]
    base = rec.get("baseline")
    if isinstance(base, Mapping):
        settings = base.get("settings") or {}
        lines += [
            f"Baseline (`current`): `{base.get('source')}`, {len(settings)} RocksDB key(s) "
            "applied; it is measured beside Flink's option sets and re-measured against the "
            "recommendation.",
            "",
        ]
    minimal = rec.get("minimal")
    if not isinstance(minimal, Mapping):
        return [
            *lines,
            "Not made for this run (`--minimal-repeats 0`, or the run stopped before it): the "
            "recommendation is the full search winner.",
        ]
    noise = minimal.get("noise")
    lines.append(
        "Each key the search winner changes was reverted to the baseline's value, one at a time, "
        f"{minimal.get('repeats')} time(s) interleaved with the winner; a key is kept when its "
        f"revert costs more than the measured noise ({_pct(noise).lstrip('+')}: the median "
        "relative range (max − min) / median over every configuration measured more than once, "
        "0.5 % at least). Keys within noise were then reverted greedily, cheapest first, each "
        "revert kept while the set measured no worse than the winner by more than the noise. "
        f"{minimal.get('measurements')} measurements. Contribution on "
        f"`{minimal.get('metric', 'ops_per_s')}`: how much worse the reverted configuration "
        "is than the winner (median, min..max over repeats); importance: PED-ANOVA over the "
        "search trials."
    )
    lines.append("")
    imp = rec.get("importances") or {}
    effects = sorted(minimal.get("effects") or [], key=lambda e: -float(e.get("cost", 0.0)))
    rows = []
    for e in effects:
        k = str(e["key"])
        share = imp.get(k)
        rows.append(
            "| "
            + " | ".join(
                [
                    f"`{_short(k)}`",
                    f"`{_value(k, e['value'])}`",
                    f"`{_value(k, e['baseline'])}`",
                    f"{_pct(e['cost'])} ({_pct(e['low'])} .. {_pct(e['high'])})",
                    f"{share:.0%}" if isinstance(share, int | float) else "–",
                    ("**kept**" if e.get("kept") else "dropped")
                    + ": "
                    + str(e.get("decision", "")).split(": ", 1)[-1].replace("|", "\\|"),
                ]
            )
            + " |"
        )
    if rows:
        lines += [
            "| key | winner | baseline | contribution | importance | decision |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    else:
        lines.append("The search winner changes no key against the baseline.")
    inert = minimal.get("inert") or {}
    if inert:
        lines += ["", "Never emitted (they do nothing under the chosen settings):", ""]
        lines += [f"- `{_short(k)}`: {why}" for k, why in inert.items()]
    winner = rec.get("search_winner") or {}
    ws = winner.get("settings") or {}
    if ws:
        lines += [
            "",
            f"The full search winner (trial {winner.get('trial_number')}, {len(ws)} keys; also "
            "under `search_winner` in recommendation.json):",
            "",
            ", ".join(f"`{_short(k)}: {_value(k, v)}`" for k, v in ws.items()),
        ]
    return lines


def contributions(rec: Mapping[str, Any] | None) -> pd.DataFrame:
    """Each changed key's measured contribution beside its PED-ANOVA importance, largest
    contribution first: columns key, cost, low, high, importance (NaN when none), kept."""
    cols = ["key", "cost", "low", "high", "importance", "kept"]
    minimal = rec.get("minimal") if rec is not None else None
    if not isinstance(minimal, Mapping) or rec is None:
        return pd.DataFrame(columns=cols)
    imp = rec.get("importances") or {}
    rows = [
        {
            "key": _short(str(e["key"])),
            "cost": float(e["cost"]),
            "low": float(e["low"]),
            "high": float(e["high"]),
            "importance": float(imp.get(e["key"], math.nan)),
            "kept": bool(e["kept"]),
        }
        for e in minimal.get("effects") or []
    ]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("cost", ascending=False).reset_index(drop=True)
