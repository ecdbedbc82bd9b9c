"""Does the scaled answer hold at full size? The scale-transfer benchmark.

Ranks the same configurations (Flink's four predefined option sets and search candidates drawn
from the search space) on a workload replayed at full size and as scaled models, and compares:
the Spearman rank correlation of each scaled ranking with the full-size one, and the full-size
throughput of the scaled ranking's winner against the best full-size configuration.

Throughput is the cost model's counted figure (tuner.costmodel), not wall time. Running writes a
tidy CSV (one row per configuration and scale); :func:`render` makes the table from that file
alone, so it can be re-rendered without re-running.
"""

from __future__ import annotations

import csv
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from tuner.costmodel import Disk, score
from tuner.flink import options as fo
from tuner.scale import ScaleSpec, model_workload
from tuner.search import space
from tuner.search.measure import measure_isolated
from tuner.stats import spearman
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import write_trace
from tuner.trace.source import has_timers
from tuner.workload import Workload, column_family_count

__all__ = ["Config", "candidates", "render", "run", "spearman"]

Log = Callable[[str], None]
FIELDS = (
    "scale",
    "config",
    "repeat",
    "status",
    "ops_per_s",
    "cpu_s",
    "block_cache_misses",
    "wall_s",
)


@dataclass(frozen=True)
class Config:
    """One configuration of the benchmark, in production units."""

    label: str
    settings: dict[str, fo.FlinkValue]


def candidates(workload: Workload, n: int, seed: int) -> list[Config]:
    """Flink's four predefined sets, then ``n`` search candidates drawn at random from the
    search space (those the budget allows, as the study would run them)."""
    out = [Config(name, {fo.PREDEFINED_OPTIONS: name}) for name in fo.PREDEFINED]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    families = column_family_count(workload.states)
    tries = 0
    while len(out) < 4 + n and tries < 200 * n:
        tries += 1
        settings = space.suggest(study.ask(), workload.memory, has_timers(workload))
        if fo.invalid_reason(settings, workload.memory, families, workload.flink_version) is None:
            out.append(Config(f"cand-{len(out) - 3}", settings))
    return out


def _ranks(values: Sequence[float]) -> np.ndarray:  # type: ignore[type-arg]
    """Ranks 1..n with ties averaged (descending values get rank 1)."""
    a = -np.asarray(values, dtype=float)
    order = a.argsort(kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    for v in np.unique(a):
        tie = a == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def run(
    workload: Workload,
    scales: Sequence[float],
    configs: Sequence[Config],
    disk: Disk,
    out_csv: Path,
    *,
    repeats: int = 1,
    earlier: Sequence[dict[str, str]] = (),
    timeout_s: float = 1800.0,
    log: Log = lambda _: None,
) -> list[dict[str, str]]:
    """Measure every configuration ``repeats`` times at every scale and write ``out_csv``.

    Scales run smallest first, so the cheap rankings are complete before the full-size one
    starts; within a scale, round by round (every configuration once, then again), so a run cut
    off during the full size still has each configuration measured as often as the others, give
    or take one. Rows in ``earlier`` (an interrupted run's CSV) are kept and not measured again.
    """
    rows: list[dict[str, str]] = list(earlier)
    done = {(float(r["scale"]), r["config"], int(r.get("repeat") or 0)) for r in earlier}
    with tempfile.TemporaryDirectory(prefix="scale-transfer-", dir=out_csv.parent) as tmp:
        for factor in sorted(scales):
            todo = [
                (r, c) for r in range(repeats) for c in configs if (factor, c.label, r) not in done
            ]
            if not todo:
                continue
            model = model_workload(workload, ScaleSpec(factor))
            trace = Path(tmp) / f"trace-{factor:g}.parquet"
            write_trace(
                trace, stream_header(model), generate(model, "preload"), generate(model, "measure")
            )
            for r, c in todo:
                rows.append(_measure(model, trace, c, factor, r, disk, Path(tmp), timeout_s))
                row = rows[-1]
                log(
                    f"scale {factor:g} {c.label} round {r + 1}/{repeats}: {row['ops_per_s']} "
                    f"ops/s ({row['wall_s']} s)"
                    f"{'' if row['status'] == 'ok' else ' ' + row['status']}"
                )
                _write_rows(out_csv, rows)  # after every row: a cut-off run still counts
            trace.unlink(missing_ok=True)
    return rows


def _measure(
    model: Workload,
    trace: Path,
    c: Config,
    factor: float,
    repeat: int,
    disk: Disk,
    tmp: Path,
    timeout_s: float,
) -> dict[str, str]:
    t0 = time.monotonic()
    m = measure_isolated(
        model,
        trace,
        c.settings,
        tmp / f"db-{factor:g}-{c.label}-{repeat}",
        timeout_s=timeout_s,
        rss_margin=1 << 30,
        scale=factor,
    )
    metrics = score(m.metrics, disk) if m.status == "ok" else {}
    return {
        "scale": f"{factor:g}",
        "config": c.label,
        "repeat": str(repeat),
        "status": m.status if m.status == "ok" else f"failed: {m.reason}",
        "ops_per_s": f"{metrics.get('ops_per_s', math.nan):.1f}",
        "cpu_s": f"{metrics.get('cpu_s', math.nan):.3f}",
        "block_cache_misses": f"{metrics.get('block_cache_misses', math.nan):.0f}",
        "wall_s": f"{time.monotonic() - t0:.1f}",
    }


def _write_rows(path: Path, rows: Sequence[dict[str, str]]) -> None:
    """Write the CSV beside the old one and rename it over: never a half-written file."""
    part = path.with_name(path.name + ".part")
    with part.open("w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows({**r, "repeat": r.get("repeat") or "0"} for r in rows)
    part.replace(path)


def render(rows: Sequence[dict[str, str]]) -> str:
    """The markdown table: throughput and rank per scale, then Spearman and the transfer.

    With repeats a cell is the median of a configuration's measurements at that scale, with
    their spread, ``(max - min) / median``, and count; rankings, Spearman and the pick use the
    medians. A configuration not measured at a scale shows "-", one whose every measurement
    failed "failed"; Spearman is over the configurations measured at both scales, and the scaled
    pick is the scaled ranking's winner among all it measured.
    """
    scales = sorted({float(r["scale"]) for r in rows}, reverse=True)
    configs = list(dict.fromkeys(r["config"] for r in rows))
    runs: dict[tuple[float, str], list[float]] = {}
    for r in rows:
        runs.setdefault((float(r["scale"]), r["config"]), []).append(float(r["ops_per_s"]))
    val = {
        k: statistics.median(ok) if (ok := [v for v in vs if not math.isnan(v)]) else math.nan
        for k, vs in runs.items()
    }
    full = scales[0]
    lines = [
        "| configuration | " + " | ".join(f"{_label(s)} ops/s (rank)" for s in scales) + " |",
        "|---|" + "---:|" * len(scales),
    ]
    ranks: dict[float, dict[str, float]] = {}
    for s in scales:
        measured = [c for c in configs if not math.isnan(val.get((s, c), math.nan))]
        ranks[s] = dict(
            zip(measured, (float(x) for x in _ranks([val[(s, c)] for c in measured])), strict=True)
        )
    for c in configs:
        cells = []
        for s in scales:
            if (s, c) not in val:
                cells.append("-")
            elif c not in ranks[s]:
                cells.append("failed")
            else:
                cells.append(f"{val[(s, c)]:,.0f} ({ranks[s][c]:g}){_spread(runs[(s, c)])}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("")
    best_full = max((val[(full, c)] for c in ranks[full]), default=math.nan)
    lines.append(
        f"| scale | configurations in both | Spearman vs {_label(full)} (goal ≥ 0.9) | scaled pick "
        f"| its {_label(full)} throughput vs the best {_label(full)} (goal ≥ 95 %) |"
    )
    lines.append("|---|---:|---:|---|---:|")
    for s in scales[1:]:
        both = [c for c in configs if c in ranks[s] and c in ranks[full]]
        rho = spearman([val[(s, c)] for c in both], [val[(full, c)] for c in both])
        pick = max(ranks[s], key=lambda c: val[(s, c)]) if ranks[s] else "-"
        share = (
            f"{val[(full, pick)] / best_full:.1%}"
            if pick in ranks[full]
            else f"not measured at {_label(full)}"
        )
        lines.append(f"| {_label(s)} | {len(both)} | {rho:+.2f} | {pick} | {share} |")
    return "\n".join(lines + _gain_sizes(val, configs, scales))


def _gain_sizes(
    val: dict[tuple[float, str], float], configs: Sequence[str], scales: Sequence[float]
) -> list[str]:
    """The gain of each configuration over DEFAULT at each scale (medians), and each scaled
    gain as a multiple of the full-size one: whether a model's figure is the job's, beside
    whether its ranking is. Nothing when DEFAULT was not measured."""
    full = scales[0]
    gain = {
        (s, c): val[(s, c)] / val[(s, "DEFAULT")] - 1.0
        for s in scales
        for c in configs
        if c != "DEFAULT" and math.isfinite(val.get((s, c), math.nan))
        if math.isfinite(val.get((s, "DEFAULT"), math.nan))
    }
    if not gain:
        return []
    lines = [
        "",
        "| configuration | "
        + " | ".join(f"gain over DEFAULT at {_label(s)}" for s in scales)
        + " | "
        + " | ".join(f"{_label(s)} gain / {_label(full)} gain" for s in scales[1:])
        + " |",
        "|---|" + "---:|" * (2 * len(scales) - 1),
    ]
    for c in configs:
        if c == "DEFAULT":
            continue
        cells = [f"{gain[(s, c)]:+.1%}" if (s, c) in gain else "-" for s in scales]
        for s in scales[1:]:
            g, f = gain.get((s, c)), gain.get((full, c))
            # A ratio of gains means something only where full size found a gain to speak of.
            cells.append(f"{g / f:.2f}x" if g is not None and f is not None and f > 0.1 else "-")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def _spread(values: Sequence[float]) -> str:
    """Nothing for one measurement; else the spread of the ok ones, their count and any failures."""
    if len(values) < 2:
        return ""
    ok = [v for v in values if not math.isnan(v)]
    failed = len(values) - len(ok)
    parts = [f"{len(ok)} runs"]
    if len(ok) >= 2:
        med = statistics.median(ok)
        parts.append(f"spread {(max(ok) - min(ok)) / med:.1%}")
    if failed:
        parts.append(f"{failed} failed")
    return " " + ", ".join(parts)


def _label(factor: float) -> str:
    if factor == 1.0:
        return "full"
    inv = 1 / factor
    return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-6 else f"{factor:g}"


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV written by :func:`run`."""
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
