"""The report's plots, drawn with matplotlib from the data of ``tuner.report.data``.

Drawing only: every number comes from a tested function in ``data.py``. Figures are built with
``matplotlib.figure.Figure`` directly, never pyplot, so rendering needs no display, holds no
global figure state and leaves a notebook's backend alone (a notebook shows the returned
figures inline).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from tuner.fileio import atomic_write_bytes
from tuner.report import data
from tuner.report.minimal import contributions
from tuner.results import Run
from tuner.search.study import READ_P99, THROUGHPUT

__all__ = [
    "PLOT_FILES",
    "amplification_figure",
    "figures",
    "history_figure",
    "importance_figure",
    "memory_figure",
    "minimal_figure",
    "save_plots",
    "spread_figure",
]

# Plot name -> file name under <run>/plots/, in the order the report shows them.
PLOT_FILES: Mapping[str, str] = {
    "history": "history.png",
    "importance": "importance.png",
    "memory": "throughput-memory.png",
    "spread": "baselines-vs-recommended.png",
    "amplification": "amplification.png",
    "minimal": "minimal.png",
}
_GROUP_COLOURS = {"baseline": "tab:gray", "best trial": "tab:blue", "re-measured": "tab:green"}
_MIB = float(1 << 20)


def _kops(ax: Axes, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _pos: f"{v / 1000:g}k")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def history_figure(h: data.HistoryData) -> Figure:
    """Throughput per search trial, the best so far, and each baseline as a dashed line."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(h.trial_numbers, h.values, s=18, color="tab:blue", label="trial", zorder=3)
    ax.step(h.trial_numbers, h.best_so_far, where="post", color="tab:red", label="best so far")
    for i, (label, value) in enumerate(sorted(h.references.items())):
        ax.axhline(value, linestyle="--", linewidth=1, color=f"C{i + 2}", label=label)
    if h.failed:
        # Failed trials have no value: marked along the bottom so gaps are explained.
        ax.plot(
            h.failed,
            [0.0] * len(h.failed),
            "x",
            color="black",
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            label="failed",
        )
    ax.set_xlabel("search trial")
    ax.set_ylabel(f"{h.metric} (ops/s)")
    _kops(ax)
    ax.set_title("Optimisation history")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def importance_figure(importances: Mapping[str, float]) -> Figure:
    """Horizontal bars of each Flink key's importance for throughput (shares summing to 1)."""
    keys = list(importances)[::-1]  # largest at the top
    fig = Figure(figsize=(8, 0.4 * len(keys) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(
        [k.removeprefix("state.backend.rocksdb.") for k in keys],
        [importances[k] for k in keys],
        color="tab:blue",
    )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0%}"))
    ax.set_xlabel("importance for throughput (PED-ANOVA, normalised)")
    ax.set_title("Parameter importance (state.backend.rocksdb.*)")
    return fig


def memory_figure(mem: data.MemoryPoints, pareto: pd.DataFrame) -> Figure:
    """Left: throughput vs memory per trial and baseline. Right: throughput vs read p99 with
    the Pareto front highlighted."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    pts = mem.points
    for kind, marker, colour in (("search", "o", "tab:blue"), ("baseline", "s", "tab:gray")):
        sel = pts[pts["kind"] == kind]
        left.scatter(
            sel["memory_bytes"] / _MIB,
            sel[THROUGHPUT],
            marker=marker,
            color=colour,
            s=22,
            label=kind,
        )
    base = pts[pts["kind"] == "baseline"]
    for label, x, y in zip(
        base["label"].tolist(),
        base["memory_bytes"].tolist(),
        base[THROUGHPUT].tolist(),
        strict=True,
    ):
        left.annotate(
            str(label), (x / _MIB, y), fontsize="x-small", xytext=(3, 3), textcoords="offset points"
        )
    left.set_xlabel(
        "RocksDB memory: block cache + memtables + table readers (MiB)"
        if mem.source == "rocksdb"
        else "peak process RSS (MiB)"
    )
    left.set_ylabel("ops/s")
    _kops(left)
    left.set_title("Throughput vs memory")
    if len(pts):
        left.legend(fontsize="small")
    rest = pareto[~pareto["on_front"]]
    front = pareto[pareto["on_front"]]
    right.scatter(rest[READ_P99], rest[THROUGHPUT], s=18, color="tab:gray", label="trial")
    right.plot(front[READ_P99], front[THROUGHPUT], "o-", color="tab:red", label="Pareto front")
    right.set_xlabel("read p99 (µs)")
    right.set_ylabel("ops/s")
    _kops(right)
    right.set_title("Throughput vs read latency")
    if len(pareto):
        right.legend(fontsize="small")
    return fig


def spread_figure(spread: pd.DataFrame) -> Figure:
    """One bar per configuration (median), min..max over repeats as error bars."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    x = list(range(len(spread)))
    colours = [_GROUP_COLOURS.get(str(g), "tab:blue") for g in spread["group"]]
    ax.bar(x, spread["median"], color=colours)
    repeated = spread[spread["n"] > 1]
    if len(repeated):
        pos = [x[i] for i in repeated.index]
        ax.errorbar(
            pos,
            repeated["median"],
            yerr=[repeated["median"] - repeated["low"], repeated["high"] - repeated["median"]],
            fmt="none",
            ecolor="black",
            capsize=4,
        )
    ax.set_xticks(
        x,
        [f"{c}\n(n={n})" for c, n in zip(spread["config"], spread["n"], strict=True)],
        rotation=20,
        ha="right",
        fontsize="small",
    )
    ax.set_ylabel("ops/s (median; bars: min..max over repeats)")
    _kops(ax)
    ax.set_title("Flink's option sets vs the recommendation")
    return fig


def amplification_figure(amp: pd.DataFrame) -> Figure:
    """Write and space amplification side by side per configuration."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.4
    x = list(range(len(amp)))
    for i, (col, name) in enumerate(
        (
            ("write_amplification", "write amplification"),
            ("space_amplification", "space amplification"),
        )
    ):
        ax.bar([p + (i - 0.5) * width for p in x], amp[col], width, label=name)
    ax.set_xticks(x, list(amp["config"]), rotation=20, ha="right", fontsize="small")
    ax.set_ylabel("× (bytes written or stored / bytes of user data)")
    ax.set_title("Amplification")
    ax.legend(fontsize="small")
    return fig


def minimal_figure(df: pd.DataFrame) -> Figure:
    """Left: what reverting each changed key cost (median, min..max), kept keys coloured.
    Right: the same keys' PED-ANOVA importance."""
    keys = df["key"].tolist()[::-1]
    fig = Figure(figsize=(11, 0.45 * len(keys) + 1.6), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    cost = df["cost"].tolist()[::-1]
    low = [c - lo for c, lo in zip(cost, df["low"].tolist()[::-1], strict=True)]
    high = [hi - c for c, hi in zip(cost, df["high"].tolist()[::-1], strict=True)]
    colours = ["tab:green" if k else "tab:gray" for k in df["kept"].tolist()[::-1]]
    left.barh(keys, cost, color=colours, xerr=[low, high], capsize=3)
    left.axvline(0, color="black", linewidth=0.8)
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:+.0%}"))
    left.set_xlabel("cost of reverting the key (green: kept)")
    left.set_title("Measured contribution")
    right.barh(keys, [0.0 if v != v else v for v in df["importance"].tolist()[::-1]])
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0%}"))
    right.set_xlabel("importance for the objective (PED-ANOVA)")
    right.set_title("Importance over the search")
    return fig


def figures(run: Run) -> dict[str, Figure]:
    """Every plot the run has data for, by name (keys of PLOT_FILES, in report order).

    A plot with nothing to show (no search trial yet, no study, too few trials for
    importance) is left out rather than drawn empty.
    """
    trials = run.trials
    makers: dict[str, Callable[[], Figure | None]] = {
        "history": lambda: _history(trials),
        "importance": lambda: _importance(run),
        "memory": lambda: _memory(run),
        "spread": lambda: _nonempty(data.config_spread(trials), spread_figure),
        "amplification": lambda: _nonempty(data.amplification(trials), amplification_figure),
        "minimal": lambda: _nonempty(contributions(run.recommendation()), minimal_figure),
    }
    out = {}
    for name, make in makers.items():
        fig = make()
        if fig is not None:
            out[name] = fig
    return out


def _nonempty(df: pd.DataFrame, draw: Callable[[pd.DataFrame], Figure]) -> Figure | None:
    return draw(df) if len(df) else None


def _history(trials: pd.DataFrame) -> Figure | None:
    h = data.optimisation_history(trials)
    return history_figure(h) if h.values else None


def _importance(run: Run) -> Figure | None:
    imp = data.param_importances(run.study())
    return importance_figure(imp) if imp else None


def _memory(run: Run) -> Figure | None:
    mem = data.memory_points(run.trials)
    pareto = data.pareto_points(run.trials, run.pareto()["seq"].tolist())
    if not len(mem.points) and not len(pareto):
        return None
    return memory_figure(mem, pareto)


def save_plots(run: Run, out_dir: Path | None = None) -> dict[str, Path]:
    """Draw every available plot into ``out_dir`` (default ``<run>/plots``) as PNG.

    Each file is written atomically; a plot of ours that has no data any more is removed, so
    the directory never shows a plot the current report does not describe.
    """
    target = out_dir if out_dir is not None else run.path / "plots"
    saved: dict[str, Path] = {}
    for name, fig in figures(run).items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        path = target / PLOT_FILES[name]
        atomic_write_bytes(path, buf.getvalue())
        saved[name] = path
    for name, file in PLOT_FILES.items():
        if name not in saved:
            (target / file).unlink(missing_ok=True)
    return saved
