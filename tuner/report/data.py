"""What each plot and table shows, computed from a run's trials frame (``tuner.results``).

Pure functions: they take DataFrames (and, for importances, the Optuna study) and return plain
data, so every number on a plot is tested here and ``plots.py`` only draws. As optuna splits
``visualization/_optimization_history.py`` from its matplotlib backend.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from tuner.search.importance import MIN_TRIALS_FOR_IMPORTANCE, param_importances
from tuner.search.study import (
    BASELINES,
    CURRENT_LABEL,
    DEFAULT_LABEL,
    READ_P99,
    RECOMMENDED_LABEL,
    THROUGHPUT,
)

__all__ = [
    "MIN_TRIALS_FOR_IMPORTANCE",
    "ConfigSummary",
    "HistoryData",
    "MemoryPoints",
    "Stat",
    "amplification",
    "config_spread",
    "failures",
    "memory_points",
    "optimisation_history",
    "param_importances",
    "pareto_points",
    "summarize",
    "summary_frame",
]

# Importance over fewer trials than this explains noise, not parameters.
# RocksDB's own memory, as the engine reports it (the block cache is shared by every column
# family, memtables and table readers are summed over them).
ROCKSDB_MEMORY_COLUMNS: tuple[str, ...] = ("block_cache_usage", "memtables_bytes")
TABLE_READERS = "table_readers_bytes"


def _ok(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[trials["status"] == "ok"]


def _with(trials: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """``trials`` with every metric in ``metrics`` as a column (NaN where the run has none):
    a run whose engine never reported a metric is drawn like one where it is all missing."""
    missing = [m for m in metrics if m not in trials]
    return trials.assign(**{m: math.nan for m in missing}) if missing else trials


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class Stat:
    """One metric of one configuration over its repeats (NaN values left out)."""

    n: int
    median: float
    low: float
    high: float

    @staticmethod
    def of(values: Sequence[float]) -> Stat:
        """The median and range of the finite ``values`` (``n == 0`` and NaNs when none)."""
        finite = [float(v) for v in values if _finite(v)]
        if not finite:
            return Stat(0, math.nan, math.nan, math.nan)
        return Stat(len(finite), statistics.median(finite), min(finite), max(finite))


@dataclass(frozen=True)
class ConfigSummary:
    """A measured configuration: a baseline, the best search trial or a re-measured one."""

    config: str  # display name
    group: str  # "baseline" | "best trial" | "re-measured"
    label: str  # the label in trials.csv
    runs: int  # measurements attempted
    ok: int  # measurements that finished
    stats: Mapping[str, Stat]


def _configs(trials: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(display name, group, label, rows) per configuration, in the order reports list them:
    the baselines (Flink's order), the best search trial, the re-measured default and
    recommendation."""
    out: list[tuple[str, str, str, pd.DataFrame]] = []
    base = trials[trials["kind"] == "baseline"]
    labels = list(dict.fromkeys(base["label"]))
    labels.sort(key=lambda lb: BASELINES.index(lb) if lb in BASELINES else len(BASELINES))
    out += [(lb, "baseline", lb, base[base["label"] == lb]) for lb in labels]
    search = _ok(_with(trials, [THROUGHPUT]))
    search = search[search["kind"] == "search"]
    if search[THROUGHPUT].notna().any():
        best = search.loc[[search[THROUGHPUT].idxmax()]]
        label = str(best["label"].iloc[0])
        out.append((f"best trial ({label})", "best trial", label, best))
    again = trials[trials["kind"] == "remeasure"]
    for lb in (DEFAULT_LABEL, CURRENT_LABEL, RECOMMENDED_LABEL):
        rows = again[again["label"] == lb]
        if len(rows):
            out.append((f"{lb} (re-measured)", "re-measured", lb, rows))
    return out


def summarize(trials: pd.DataFrame, metrics: Sequence[str]) -> list[ConfigSummary]:
    """Per configuration, each of ``metrics`` over its finished repeats.

    A metric a run did not record is summarised as n == 0 (NaN), not dropped, so tables keep
    their shape across engine versions.
    """
    out = []
    for name, group, label, rows in _configs(_with(trials, metrics)):
        ok = _ok(rows)
        stats = {m: Stat.of(ok[m].tolist()) for m in metrics}
        out.append(ConfigSummary(name, group, label, len(rows), len(ok), stats))
    return out


def summary_frame(trials: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """``summarize`` as a table for notebooks: one row per configuration, columns config,
    group, ok, runs, then ``<metric>`` (median), ``<metric>_min`` and ``<metric>_max``."""
    rows = []
    for s in summarize(trials, metrics):
        row: dict[str, object] = {"config": s.config, "group": s.group, "ok": s.ok, "runs": s.runs}
        for m in metrics:
            st = s.stats[m]
            row.update({m: st.median, f"{m}_min": st.low, f"{m}_max": st.high})
        rows.append(row)
    cols = ["config", "group", "ok", "runs"]
    cols += [c for m in metrics for c in (m, f"{m}_min", f"{m}_max")]
    return pd.DataFrame(rows, columns=cols)


@dataclass(frozen=True)
class HistoryData:
    """Optuna's optimisation history over throughput, with Flink's baselines for reference."""

    metric: str
    trial_numbers: tuple[int, ...]  # measured search trials, in trial order
    values: tuple[float, ...]
    best_so_far: tuple[float, ...]
    failed: tuple[int, ...]  # trial numbers that failed (drawn as marks on the axis)
    references: Mapping[str, float]  # baseline label -> its (median) value


def optimisation_history(trials: pd.DataFrame, metric: str = THROUGHPUT) -> HistoryData:
    """The objective per measured search trial, the running best and the baselines' values.

    Higher is better (the search maximises throughput; with the pareto objective throughput is
    still its first value). Skipped trials never ran and are left out.
    """
    trials = _with(trials, [metric])
    search = trials[trials["kind"] == "search"].sort_values("trial_number")
    ok = _ok(search)
    ok = ok[ok[metric].notna()]
    values = tuple(float(v) for v in ok[metric])
    best: list[float] = []
    for v in values:
        best.append(v if not best else max(best[-1], v))
    failed = search[search["status"] == "failed"]["trial_number"].dropna()
    refs = {
        s.label: s.stats[metric].median
        for s in summarize(trials, [metric])
        if s.group == "baseline" and s.stats[metric].n
    }
    return HistoryData(
        metric,
        tuple(int(n) for n in ok["trial_number"]),
        values,
        tuple(best),
        tuple(int(n) for n in failed),
        refs,
    )


@dataclass(frozen=True)
class MemoryPoints:
    """Throughput against memory for the baselines and measured search trials.

    ``points`` columns: label, kind, memory_bytes, ops_per_s. ``source`` says what memory is:
    ``rocksdb`` (block cache + memtables + table readers as RocksDB reports them) or ``rss``
    (the trial process's peak resident memory, when the engine reported no RocksDB memory).
    """

    points: pd.DataFrame
    source: str


def memory_points(trials: pd.DataFrame) -> MemoryPoints:
    """Throughput vs memory used; RocksDB's own accounting when every point has it, else RSS.

    One source for all points, so that no point is compared on a different scale.
    """
    trials = _with(trials, [THROUGHPUT, *ROCKSDB_MEMORY_COLUMNS, TABLE_READERS])
    rows = _ok(trials[trials["kind"].isin(["baseline", "search"])])
    rows = rows[rows[THROUGHPUT].notna()]
    rocksdb = rows[list(ROCKSDB_MEMORY_COLUMNS)]
    if len(rows) and bool(rocksdb.notna().all(axis=None)):
        # Table readers are left out of some engine versions' metrics: counted as 0 then.
        memory = rocksdb.sum(axis=1) + rows[TABLE_READERS].fillna(0.0)
        source = "rocksdb"
    else:
        memory = rows["rss_peak_bytes"].astype("float64")
        source = "rss"
    points = pd.DataFrame(
        {
            "label": rows["label"].astype(str),
            "kind": rows["kind"].astype(str),
            "memory_bytes": memory.astype("float64"),
            THROUGHPUT: rows[THROUGHPUT].astype("float64"),
        }
    )
    points = points[points["memory_bytes"] > 0].reset_index(drop=True)
    return MemoryPoints(points, source)


def pareto_points(trials: pd.DataFrame, front_seqs: Collection[int]) -> pd.DataFrame:
    """Measured search trials as (label, ops_per_s, read_p99_us, on_front), sorted by
    throughput; ``front_seqs`` are the ``seq`` of the front (``Run.pareto()``)."""
    ok = _ok(_with(trials, [THROUGHPUT, READ_P99]))
    ok = ok[ok["kind"] == "search"]
    ok = ok[ok[THROUGHPUT].notna() & ok[READ_P99].notna()]
    out = pd.DataFrame(
        {
            "label": ok["label"].astype(str),
            THROUGHPUT: ok[THROUGHPUT].astype("float64"),
            READ_P99: ok[READ_P99].astype("float64"),
            "on_front": ok["seq"].isin(list(front_seqs)),
        }
    )
    return out.sort_values(THROUGHPUT).reset_index(drop=True)


def config_spread(trials: pd.DataFrame, metric: str = THROUGHPUT) -> pd.DataFrame:
    """Bars for baselines vs recommendation: one row per configuration with a measured value.

    Columns: config, group, n, median, low, high. ``low``/``high`` are the min and max over
    repeats (equal to the median for a single measurement, which draws no error bar).
    """
    rows = [
        {
            "config": s.config,
            "group": s.group,
            "n": s.stats[metric].n,
            "median": s.stats[metric].median,
            "low": s.stats[metric].low,
            "high": s.stats[metric].high,
        }
        for s in summarize(trials, [metric])
        if s.stats[metric].n
    ]
    return pd.DataFrame(rows, columns=["config", "group", "n", "median", "low", "high"])


AMPLIFICATION: tuple[str, ...] = ("write_amplification", "space_amplification")


def amplification(trials: pd.DataFrame) -> pd.DataFrame:
    """Write and space amplification (medians) of each baseline and of the recommendation.

    The recommendation is its re-measurement when there is one, else the best search trial
    (an incomplete run); the re-measured default repeats a baseline and is left out. Columns:
    config, write_amplification, space_amplification; configurations with neither are dropped.
    """
    summaries = summarize(trials, AMPLIFICATION)
    remeasured = any(s.label == RECOMMENDED_LABEL and s.ok for s in summaries)
    keep = [
        s
        for s in summaries
        if s.group == "baseline"
        or (s.group == "re-measured" and s.label == RECOMMENDED_LABEL)
        or (s.group == "best trial" and not remeasured)
    ]
    rows = [
        {"config": s.config, **{m: s.stats[m].median for m in AMPLIFICATION}}
        for s in keep
        if any(s.stats[m].n for m in AMPLIFICATION)
    ]
    return pd.DataFrame(rows, columns=["config", *AMPLIFICATION])


def failures(trials: pd.DataFrame) -> pd.DataFrame:
    """Measurements that failed or were skipped (over the memory budget), with the reason."""
    bad = trials[trials["status"].isin(["failed", "skipped"])]
    return bad[["seq", "label", "kind", "status", "reason"]].reset_index(drop=True)
