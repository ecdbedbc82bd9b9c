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
FIELDS = ("scale", "config", "status", "ops_per_s", "cpu_s", "block_cache_misses", "wall_s")


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
    timeout_s: float = 1800.0,
    log: Log = lambda _: None,
) -> list[dict[str, str]]:
    """Measure every configuration at every scale (smallest first) and write ``out_csv``."""
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="scale-transfer-", dir=out_csv.parent) as tmp:
        for factor in sorted(scales):
            spec = ScaleSpec(factor)
            model = model_workload(workload, spec)
            trace = Path(tmp) / f"trace-{factor:g}.parquet"
            write_trace(
                trace, stream_header(model), generate(model, "preload"), generate(model, "measure")
            )
            for c in configs:
                t0 = time.monotonic()
                m = measure_isolated(
                    model,
                    trace,
                    c.settings,
                    Path(tmp) / f"db-{factor:g}-{c.label}",
                    timeout_s=timeout_s,
                    rss_margin=1 << 30,
                    scale=factor,
                )
                metrics = score(m.metrics, disk) if m.status == "ok" else {}
                row = {
                    "scale": f"{factor:g}",
                    "config": c.label,
                    "status": m.status if m.status == "ok" else f"failed: {m.reason}",
                    "ops_per_s": f"{metrics.get('ops_per_s', math.nan):.1f}",
                    "cpu_s": f"{metrics.get('cpu_s', math.nan):.3f}",
                    "block_cache_misses": f"{metrics.get('block_cache_misses', math.nan):.0f}",
                    "wall_s": f"{time.monotonic() - t0:.1f}",
                }
                rows.append(row)
                log(
                    f"scale {factor:g} {c.label}: {row['ops_per_s']} ops/s "
                    f"({row['wall_s']} s){'' if m.status == 'ok' else ' ' + row['status']}"
                )
                with out_csv.open("w", newline="") as fh:  # after every row: a partial run counts
                    w = csv.DictWriter(fh, FIELDS)
                    w.writeheader()
                    w.writerows(rows)
            trace.unlink(missing_ok=True)
    return rows


def render(rows: Sequence[dict[str, str]]) -> str:
    """The markdown table: throughput and rank per scale, then Spearman and the transfer.

    A configuration not measured at a scale shows "-", a failed measurement "failed"; Spearman
    is over the configurations measured at both scales, and the scaled pick is the scaled
    ranking's winner among all it measured.
    """
    scales = sorted({float(r["scale"]) for r in rows}, reverse=True)
    configs = list(dict.fromkeys(r["config"] for r in rows))
    val = {(float(r["scale"]), r["config"]): float(r["ops_per_s"]) for r in rows}
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
                cells.append(f"{val[(s, c)]:,.0f} ({ranks[s][c]:g})")
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
    return "\n".join(lines)


def _label(factor: float) -> str:
    if factor == 1.0:
        return "full"
    inv = 1 / factor
    return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-6 else f"{factor:g}"


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV written by :func:`run`."""
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
