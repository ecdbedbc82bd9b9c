"""What ``tuner size`` writes: sizing.csv (one row per configuration and size), sizing.md (the
table and the advice, pulled into report.md when written into a run directory) and sizing.png
(throughput against memory per slot)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from tuner.fileio import atomic_write_bytes, atomic_write_text
from tuner.sizing import SizingResult
from tuner.units import format_memory_size

__all__ = ["SIZING_FILES", "sizing_figure", "sizing_markdown", "write_sizing"]

SIZING_FILES = ("sizing.csv", "sizing.md", "sizing.png")
_MIB = float(1 << 20)


def sizing_figure(result: SizingResult) -> Figure:
    """Median ops/s against memory per slot, min..max as error bars, per configuration; the
    budget as a dashed line, the tolerance band and the advised size marked."""
    df = result.frame()
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, rows in df[df["n"] > 0].groupby("config", sort=False):
        rows = rows.sort_values("memory_per_slot_bytes")
        x = (rows["memory_per_slot_bytes"] / _MIB).tolist()
        mid = rows["ops_per_s"].tolist()
        low = (rows["ops_per_s"] - rows["ops_per_s_min"]).tolist()
        high = (rows["ops_per_s_max"] - rows["ops_per_s"]).tolist()
        ax.errorbar(
            x,
            mid,
            yerr=[low, high],
            fmt="o-",
            capsize=3,
            label=str(name),
        )
    ax.axvline(result.budget / _MIB, linestyle="--", color="gray", label="workload's budget")
    a = result.advice
    if a is not None and math.isfinite(a.budget_ops):
        ax.axhspan(
            a.budget_ops * (1 - a.tolerance),
            a.budget_ops,
            color="tab:green",
            alpha=0.1,
            label=f"within {a.tolerance:.0%} of the budget ({a.config})",
        )
        ax.plot(
            [a.recommended / _MIB],
            [a.recommended_ops],
            "*",
            markersize=14,
            color="tab:red",
            label=f"advised: {format_memory_size(a.recommended)}",
        )
    ax.set_xlabel("RocksDB (managed) memory per slot (MiB)")
    ax.set_ylabel("ops/s (modelled; median, bars min..max)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v / 1000:g}k"))
    ax.set_title(f"Throughput vs memory: {result.workload}")
    ax.legend(fontsize="small")
    return fig


def sizing_markdown(result: SizingResult, command: str) -> str:
    """sizing.md: a level-2 section (report.md includes it as is)."""
    lines = [
        "## Memory right-sizing",
        "",
        f"`{command}`: each configuration measured at each memory per slot, {result.repeats} "
        f"time(s) interleaved, throughput modelled for `{result.disk}`.",
        "",
        "![sizing](sizing.png)",
        "",
        "| configuration | memory per slot | × budget | n | median ops/s | min–max | CV "
        "| vs budget |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ref = {p.config: p.median for p in result.points if p.budget == result.budget}
    for p in sorted(result.points, key=lambda p: (p.config, p.budget)):
        size = format_memory_size(p.budget)
        head = f"| {p.config} | {size} | {p.factor:g} | {len(p.values)} |"
        if p.not_run:
            lines.append(f"{head} not run: {p.not_run} | | | |")
            continue
        if not p.values:
            lines.append(f"{head} every run failed | | | |")
            continue
        base = ref.get(p.config, math.nan)
        rel = f"{p.median / base - 1:+.1%}" if base == base and base else "–"
        cv = "–" if math.isnan(p.cv) else f"{p.cv:.1%}"
        lines.append(f"{head} {p.median:,.0f} | {p.low:,.0f}–{p.high:,.0f} | {cv} | {rel} |")
    lines.append("")
    lines.append(
        f"**Advice:** {result.advice.describe()}"
        if result.advice is not None
        else "**No advice**: the budget itself was not measured."
    )
    if result.container is not None:
        lines += ["", f"**{result.container.describe().replace(': ', ':** ', 1)}"]
    return "\n".join(lines) + "\n"


def write_sizing(result: SizingResult, out_dir: Path, command: str) -> list[Path]:
    """Write sizing.csv, sizing.md and sizing.png into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, png_path = (out_dir / f for f in SIZING_FILES)
    atomic_write_text(csv_path, result.frame().to_csv(index=False))
    atomic_write_text(md_path, sizing_markdown(result, command))
    buf = io.BytesIO()
    sizing_figure(result).savefig(buf, format="png", dpi=110)
    atomic_write_bytes(png_path, buf.getvalue())
    return [csv_path, md_path, png_path]
