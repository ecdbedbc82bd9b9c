"""report.md: what a run found, written for the engineer who will paste the settings.

Rendered only from the run directory (trials.csv, study.db, run.json, recommendation.json),
so it can be re-rendered at any time, also for a run that stopped half way. Numbers are
formatted for people (49.1k ops/s, 12.0 MiB, 237 µs); the pasteable values stay in Flink's
own syntax (``64 mb``) as the config files have them.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner.costmodel import DISK_BOUND_SHARE, read_wait_share
from tuner.fileio import atomic_write_text
from tuner.flink.options import FlinkValue, known_hang
from tuner.recommend import Gain, engine_name, reference_name, show_value
from tuner.report import data, plots
from tuner.report import memory as memory_report
from tuner.report import minimal as minimal_report
from tuner.report import timers as timers_report
from tuner.report import watch as watch_report
from tuner.rescale import describe_rescale, rescale_label
from tuner.results import Run, load_run
from tuner.scale import ScaleSpec
from tuner.search.study import BASELINES, DEFAULT_LABEL, THROUGHPUT

__all__ = [
    "REPORT_FILE",
    "TABLE_METRICS",
    "format_bytes",
    "format_duration_s",
    "format_factor",
    "format_ops",
    "format_percent",
    "format_us",
    "render_markdown",
    "render_report",
]

REPORT_FILE = "report.md"
_NONE = "–"
# The Flink config files a run writes next to the report (runner/config_files), linked when present.
_CONFIG_FILES = ("config.yaml", "flink-conf.yaml", "flink-deployment.yaml", "rocksdb-options.ini")
_PLOT_CAPTIONS: Mapping[str, str] = {
    "history": "Throughput of every search trial, the best so far, and Flink's option sets "
    "(dashed).",
    "importance": "Which searched options explain throughput (PED-ANOVA over the completed "
    "trials).",
    "memory": "Throughput against memory used (left) and against read p99 latency, with the "
    "Pareto front (right).",
    "spread": "Median throughput per configuration; error bars span min..max over repeats.",
    "amplification": "Write and space amplification of Flink's option sets and the recommendation.",
    "minimal": "The minimal recommendation: what reverting each changed key cost (kept keys in "
    "green) beside its PED-ANOVA importance.",
}


def _finite(x: float) -> bool:
    return not math.isnan(x) and not math.isinf(x)


def format_ops(x: float) -> str:
    """Operations per second, short: ``850``, ``49.1k``, ``1.23M``."""
    if not _finite(x):
        return _NONE
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def format_bytes(x: float) -> str:
    """A size in binary units with one decimal: ``512 B``, ``4.0 KiB``, ``12.0 MiB``."""
    if not _finite(x):
        return _NONE
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(x) >= scale:
            return f"{x / scale:.1f} {unit}"
    return f"{x:.0f} B"


def format_us(x: float) -> str:
    """A duration given in microseconds: ``237 µs``, ``1.5 ms``, ``2.3 s``."""
    if not _finite(x):
        return _NONE
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f} s"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.1f} ms"
    return f"{x:.0f} µs"


def format_duration_s(x: float) -> str:
    """A duration given in seconds, as format_us does."""
    return format_us(x * 1e6) if _finite(x) else _NONE


def format_percent(x: float) -> str:
    """A ratio in 0..1 as a percentage: ``74.6 %``."""
    return f"{x:.1%}".replace("%", " %") if _finite(x) else _NONE


def format_factor(x: float) -> str:
    """An amplification factor: ``6.6×``."""
    return f"{x:.1f}×" if _finite(x) else _NONE


# Columns of the configurations table: metric, header, formatter.
TABLE_METRICS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    (THROUGHPUT, "ops/s", format_ops),
    ("read_p99_us", "read p99", format_us),
    ("write_p99_us", "write p99", format_us),
    ("write_amplification", "write amp", format_factor),
    ("space_amplification", "space amp", format_factor),
    ("block_cache_hit_ratio", "cache hits", format_percent),
    ("stall_micros", "write stalls", format_us),
    ("checkpoint_p50_s", "checkpoint p50", format_duration_s),
    ("checkpoint_incremental_bytes_mean", "incremental checkpoint", format_bytes),
    ("restore_s", "restore", format_duration_s),
)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|") or _NONE


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _stat_cell(s: data.Stat, fmt: Callable[[float], str]) -> str:
    if s.n == 0:
        return _NONE
    if s.n == 1 or s.low == s.high:
        return fmt(s.median)
    return f"{fmt(s.median)} ({fmt(s.low)}–{fmt(s.high)})"


def _status_section(run: Run) -> list[str]:
    trials = run.trials
    baselines = run.baselines()
    search = run.search()
    again = run.remeasured()
    planned = run.meta.get("trials")
    done_search = int((search["status"].isin(["ok", "failed"])).sum())
    progress = (
        f"{int((baselines['status'] != 'skipped').sum())} of Flink's {len(BASELINES)} option "
        f"sets measured, {done_search}"
        + (f" of {planned}" if isinstance(planned, int) else "")
        + f" search trials, {len(again)} re-measurements "
        f"({int((trials['status'] == 'failed').sum())} failed, "
        f"{int((trials['status'] == 'skipped').sum())} skipped as over the memory budget)."
    )
    lines = ["## Run status", ""]
    resume = f"`tuner run --resume {run.path}`"
    if run.status == "complete":
        lines.append(f"Complete: {progress}")
    elif run.status == "running":
        lines.append(
            "**This run has not finished**: run.json still says `running`, so it is either going "
            f"on now or was killed. So far: {progress} If it is not running any more, continue "
            f"it with {resume}."
        )
    elif run.status == "failed":
        reason = run.meta.get("error")
        lines.append(
            "**This run failed**"
            + (f" ({_cell(str(reason))})" if reason else "")
            + f". So far: {progress} Fix the cause and continue it with {resume}."
        )
    else:
        lines.append(
            f"**This run is incomplete** (status `{run.status}`): it stopped before all of its "
            f"phases ran. So far: {progress} Continue it with {resume}; what was measured is "
            "kept and is not run again."
        )
    budget = run.meta.get("time_budget_s")
    elapsed = run.meta.get("elapsed_s")
    took = f"; this run took {elapsed / 60:.1f} min" if isinstance(elapsed, int | float) else ""
    cuts = run.meta.get("time_budget_cuts")
    if budget is None and "time_budget_s" in run.meta:
        lines += ["", f"No time budget (`--time-budget none`){took}."]
    elif isinstance(budget, int | float) and isinstance(cuts, list):
        lines += ["", f"Time budget: {budget / 60:g} min{took}. "]
        if cuts:
            lines[-1] += "What it cut:"
            lines += ["", *(f"- {cut[:1].upper()}{cut[1:]}." for cut in cuts)]
        else:
            lines[-1] += "Everything asked for fitted in it."
    elif isinstance(budget, int | float):  # a run from before the cuts were recorded
        cut = run.meta.get("time_budget_trials")
        lines += [
            "",
            f"Time budget: {budget / 60:g} min{took}. "
            + (
                f"It ended the search after {cut} of {planned} trials, leaving time for the "
                "measurements that follow it (minimal recommendation, re-measurements, "
                "confirmation)."
                if isinstance(cut, int)
                else "Every trial asked for fitted in it."
            ),
        ]
    price = run.meta.get("confirm_price_s")
    if isinstance(price, int | float):
        lines += [
            "",
            f"The budget kept {price:.1f} s for each measurement of the confirmation: Flink's "
            "default measured twice on Flink's own backend before the search, the faster run; "
            "each other configuration at its share of that, from its replay time against the "
            "default's, bounded. A confirmation the budget still cuts is decided on its "
            "whole rounds, two at least.",
        ]
    return lines + _warm_start_lines(run)


def _warm_start_lines(run: Run) -> list[str]:
    """Which measured baselines the search started from (run.json ``warm_start``)."""
    told = run.meta.get("warm_start")
    left_out = run.meta.get("warm_start_left_out") or {}
    if not isinstance(told, list) or not (told or left_out):
        return []
    line = (
        f"The search started from what {', '.join(f'`{t}`' for t in told)} measured (a warm "
        "start: told to Optuna before its first trial, beside its random start; the search "
        "trials are numbered after them)."
        if told
        else "The search started from nothing measured."
    )
    if isinstance(left_out, dict) and left_out:
        line += " Not told: " + "; ".join(f"`{k}`, {v}" for k, v in left_out.items()) + "."
    return ["", line]


def _promise_headline(promise: Mapping[str, Any], gain: Gain | None) -> list[str]:
    """The run's one figure (recommendation.json's ``promise``), then the other engines'
    figures, labelled as secondary."""
    lines = [f"**{promise['text']}**", ""]
    ref = reference_name(str(promise.get("reference") or DEFAULT_LABEL))
    if promise.get("gain") is None:
        # The decision's own reason (within the noise, or the reference not measured at all).
        lines.append(
            f"No gain is promised: keep {ref} ({promise.get('note') or 'no reason given'})."
        )
    elif promise.get("unchanged"):
        lines.append(
            f"config.yaml changes only how a restore runs: its state calls are {ref}'s, so "
            "there is no throughput to gain or lose; its figure is the objective's below."
            + (
                f" The search's whole pick is not emitted: {promise['note']}."
                if promise.get("note")
                else ""
            )
        )
    elif not promise.get("significant"):
        lines.append(
            f"The rounds do not agree on whether config.yaml is faster than {ref}: on this "
            "machine and workload the difference is within the noise, so there is no gain to "
            "claim."
        )
    elif float(promise["gain"]) < 0:
        lines.append(f"config.yaml was **slower** than {ref}: keep {ref}.")
    else:
        lines.append(
            "This is the one figure of this run: the gain of exactly the configuration in "
            "config.yaml, from the most faithful engine that measured it."
        )
    model = promise.get("model")
    if isinstance(model, int | float) and 0 < model < 1 and promise.get("gain") is not None:
        lines += [
            "",
            f"Measured on a {ScaleSpec(float(model)).label} model of the job (its share of the "
            "keys and of the memory), not on the job. The size of a gain moves with the "
            "scale: on the two jobs measured at both sizes, a 1/10 model's gain for a leading "
            "configuration was 0.7x to 1.4x the full size's, and at 1/100 a third or less "
            "(docs: scale transfer). Read the figure for its direction and its order of "
            "size.",
        ]
    if gain is not None and gain.engine != promise.get("engine"):
        lines += [
            "",
            "Secondary, not the promise: the search's recommendation re-measured on "
            f"{engine_name(gain.engine)}: {gain.median_gain:+.1%} (pairwise {gain.low:+.1%} .. "
            f"{gain.high:+.1%}, {gain.n} runs each).",
        ]
    return lines


def _headline(run: Run, gain: Gain | None) -> list[str]:
    lines = ["## Result", ""]
    rec = run.recommendation()
    promise = (rec or {}).get("promise")
    if isinstance(promise, Mapping) and promise.get("text"):
        return lines + _promise_headline(promise, gain) + minimal_report.headline_extra(rec)
    if gain is not None:
        lines.append(f"**{gain.describe()}**")
        lines.append("")
        if not gain.significant:
            lines.append(
                "The re-measurements do not agree on whether the recommendation is faster than "
                f"{gain.reference_name}: on this machine and workload the difference is within "
                "the noise, so there is no gain to claim."
            )
        elif gain.median_gain < 0:
            lines.append(
                f"The recommendation was **slower** than {gain.reference_name} in every "
                f"re-measured pair: keep {gain.reference_name}."
            )
        else:
            lines.append(
                f"Median {format_ops(gain.recommended_median)} ops/s recommended vs "
                f"{format_ops(gain.default_median)} ops/s with {gain.reference_name}, measured "
                "back to back in pairs."
            )
        lines += minimal_report.headline_extra(run.recommendation())
        return lines
    best = run.best_search()
    default = [
        s
        for s in data.summarize(run.baselines(), [THROUGHPUT])
        if s.label == DEFAULT_LABEL and s.stats[THROUGHPUT].n
    ]
    if best is None:
        search = run.search()
        tried = search[search["status"] != "ok"]["status"].value_counts()
        if tried.sum():
            said = ", ".join(f"{n} {status}" for status, n in sorted(tried.items()))
            lines.append(
                f"No search trial produced figures ({said}; see Failed and skipped "
                "measurements): there is no recommendation and no gain."
            )
        else:
            lines.append("No search trial has finished: there is no recommendation and no gain.")
        return lines
    text = (
        "**Not re-measured against Flink's default**, so there is no measured gain: the "
        "re-measurement runs the default and the recommendation interleaved, and the run "
        f"stopped before it. The best search trial ({best['label']}) reached "
        f"{format_ops(float(best[THROUGHPUT]))} ops/s in a single run"
    )
    if default:
        text += (
            f"; Flink's default, also in a single run, "
            f"{format_ops(default[0].stats[THROUGHPUT].median)} ops/s"
        )
    lines.append(text + ". Single runs differ by noise; do not read a gain into them.")
    return lines


def _confirmation_section(rec: Mapping[str, Any] | None) -> list[str]:
    """The confirmation on Flink's own state backend (recommendation.json), or the plain
    statement that the recommendation is unconfirmed."""
    lines = ["## Confirmation on Flink's own state backend", ""]
    conf = (rec or {}).get("confirmation")
    if rec is None:
        return []
    if isinstance(conf, Mapping) and conf.get("status") == "measured on Flink":
        lines.append(
            f"Not needed: {conf.get('reason') or 'every candidate was measured on Flink'}."
        )
        return lines
    if not isinstance(conf, Mapping) or "engine" not in conf:
        reason = conf.get("reason") if isinstance(conf, Mapping) else None
        lines.append(
            "**Unconfirmed.** The recommendation was measured only on the search's engine"
            + (f" ({reason})" if reason else "")
            + ". Its gain is that engine's figure; it was not re-measured on Flink's own "
            "state backend (`pip install -e '.[flink]'` and a JDK 17 enable the confirmation)."
        )
        return lines
    decision = "keep your configuration" if conf.get("keep") else f"recommend {conf.get('chosen')}"
    noise = conf.get("noise")
    ref = str(conf.get("reference") or "DEFAULT")
    ref_name = reference_name(ref)
    lines.append(
        f"Measured on {engine_name(str(conf['engine']))}, Flink {conf.get('flink_version', '?')}:"
        f" {conf.get('rounds', 0)} rounds, each running {ref_name} first and then every "
        "candidate. **Decision: " + decision + f"**: {conf.get('reason', '')}."
    )
    lines.append("")
    base = [float(v) for v in conf.get("baseline") or []]
    rows = [
        [
            ref,
            ref_name,
            ", ".join(format_ops(v) for v in base),
            format_ops(statistics.median(base)) if base else "–",
            "–",
            "spread " + (format_percent(float(noise)) if noise is not None else "unmeasured"),
        ]
    ]
    for c in conf.get("configs") or []:
        vals = [float(v) for v in c.get("values") or []]
        low, high = c.get("low"), c.get("high")
        rng = f"{low:+.1%} .. {high:+.1%}" if low is not None and high is not None else "–"
        rows.append(
            [
                str(c.get("label")),
                str(c.get("source", "")),
                ", ".join(format_ops(v) for v in vals),
                format_ops(float(c.get("median", math.nan))),
                f"{float(c.get('gain', math.nan)):+.1%}",
                rng + (" (beats the noise)" if c.get("beats_noise") else ""),
            ]
        )
    lines += _table(
        ["configuration", "from", "ops/s per round", "median", "gain", "same-round gain"], rows
    )
    return lines


def _settings_value(key: str, value: Any) -> str:
    # recommendation.json holds list options as JSON lists; show_value expects tuples.
    v: FlinkValue = tuple(value) if isinstance(value, list) else value
    if isinstance(v, float):
        # A ratio searched in steps of 0.05 arrives as 0.15000000000000002.
        return f"{v:.10g}"
    return show_value(key, v)


def _recommendation_section(run: Run, rec: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Recommended settings", ""]
    if rec is None:
        lines.append(
            "No recommendation.json in this run directory: the run wrote no recommendation "
            "(no search trial finished, or it stopped before writing one)."
        )
        return lines
    settings = rec.get("settings") or {}
    comments = rec.get("comments") or {}
    trial = rec.get("trial_number")
    if trial is not None:
        lines.append(f"From search trial {trial}.")
        lines.append("")
    if not settings:
        lines.append("recommendation.json lists no settings.")
    else:
        rows = [
            [f"`{k}`", f"`{_settings_value(k, v)}`", str(comments.get(k, ""))]
            for k, v in settings.items()
        ]
        lines += _table(["key", "value", "why"], rows)
        hang = known_hang(settings)
        if hang:
            lines += [
                "",
                f"**Watch:** {hang}; `state.backend.rocksdb.writebuffer.number-to-merge: 1` "
                "avoids it. A checkpoint stuck in its synchronous phase would be the sign.",
            ]
    files = [f for f in _CONFIG_FILES if (run.path / f).exists()]
    if files:
        lines.append("")
        lines.append("Paste-ready: " + ", ".join(f"[{f}]({f})" for f in files) + ".")
    return lines


def _configurations_section(run: Run) -> list[str]:
    lines = [
        "## Configurations measured",
        "",
        "Flink's predefined option sets (`DEFAULT` is Flink's default), the best search trial "
        "and the interleaved re-measurements. Medians over repeats, with min–max where there "
        "is more than one.",
        "",
    ]
    summaries = data.summarize(run.trials, [m for m, _, _ in TABLE_METRICS])
    if not summaries:
        lines.append("Nothing measured yet.")
        return lines
    rows = []
    for s in summaries:
        runs = f"{s.ok}/{s.runs}" + (" (failed)" if s.ok == 0 else "")
        rows.append([s.config, runs, *(_stat_cell(s.stats[m], f) for m, _, f in TABLE_METRICS)])
    return lines + _table(["configuration", "ok/runs", *(h for _, h, _ in TABLE_METRICS)], rows)


def _plots_section(run: Run, plot_files: Mapping[str, Path]) -> list[str]:
    lines = ["## Plots", ""]
    if not plot_files:
        lines.append("No plots yet: nothing to draw before the first search trial.")
        return lines
    for name in plots.PLOT_FILES:
        if name in plot_files:
            rel = plot_files[name].relative_to(run.path).as_posix()
            lines += [f"![{name}]({rel})", "", _PLOT_CAPTIONS[name], ""]
    return lines[:-1]


def _failures_section(run: Run) -> list[str]:
    lines = ["## Failed and skipped measurements", ""]
    bad = data.failures(run.trials)
    failed = bad[bad["status"] == "failed"]
    skipped = bad[bad["status"] == "skipped"]
    if not len(bad):
        return [*lines, "None: every measurement finished."]
    if len(failed):
        lines += _table(
            ["#", "configuration", "kind", "reason"],
            [
                [str(r["seq"]), str(r["label"]), str(r["kind"]), str(r["reason"])]
                for r in failed.to_dict("records")
            ],
        )
        lines.append("")
    if len(skipped):
        # Skipped candidates can be many (the sampler keeps proposing over-budget ones): one
        # row per reason keeps the section readable.
        lines.append(
            "Skipped (never run: with these settings Flink would exceed the memory budget or "
            "break a RocksDB rule):"
        )
        lines.append("")
        rows = []
        for reason, group in skipped.groupby("reason", sort=True):
            labels = [str(x) for x in group["label"]]
            shown = ", ".join(labels[:5]) + (", …" if len(labels) > 5 else "")
            rows.append([str(reason), str(len(labels)), shown])
        lines += _table(["reason", "count", "candidates"], rows)
    return lines


def _deviations_section(run: Run) -> list[str]:
    lines = ["## Deviations from Flink", ""]
    devs = run.meta.get("deviations")
    if isinstance(devs, list) and devs:
        lines += [f"- {' '.join(str(d).split())}" for d in devs]
    else:
        lines.append(
            "run.json lists none. The replay still differs from a Flink job in ways this run "
            "did not record; treat the numbers as a comparison between configurations."
        )
    return lines


def render_markdown(
    run: Run,
    *,
    plot_files: Mapping[str, Path],
    recommendation: Mapping[str, Any] | None,
    disk: str | None = None,
) -> str:
    """The text of report.md for ``run``; ``plot_files`` are the PNGs drawn for it (paths
    inside the run directory) and ``disk`` names the storage the run measured on."""
    workload = run.meta.get("workload") or run.name
    created = run.meta.get("created_at")
    when = (
        dt.datetime.fromtimestamp(float(created), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if isinstance(created, int | float)
        else "unknown"
    )
    disk_text = run.meta.get("scored_disk") or disk or run.meta.get("disk")
    header = [
        f"# RocksDB tuning report: {workload}",
        "",
        f"Run `{run.name}` · started {when} · objective {run.meta.get('objective', 'throughput')}"
        f" · status **{run.status}**" + (f" · disk: {disk_text}" if disk_text else ""),
    ]
    rescale = float((run.meta.get("settings") or {}).get("rescale") or 1.0)
    if rescale != 1.0:
        header += [
            "",
            f"Restores are measured as after a rescale (`--rescale {rescale_label(rescale)}`): "
            f"{describe_rescale(rescale)}.",
        ]
    if not run.complete:
        # Said first, so nobody pastes settings from a half-finished run unawares.
        header += ["", f"> Not a finished run (status `{run.status}`): see Run status below."]
    sections = [
        header,
        _measurement_section(run),
        _headline(run, run.gain()),
        _confirmation_section(recommendation),
        _recommendation_section(run, recommendation),
        minimal_report.section(recommendation),
        watch_report.section(run, recommendation),
        timers_report.section(run, recommendation),
        memory_report.section(run, recommendation),
        _configurations_section(run),
        _plots_section(run, plot_files),
        _failures_section(run),
        _status_section(run),
        _validation_section(run),
        _sizing_section(run),
        _deviations_section(run),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def _validation_section(run: Run) -> list[str]:
    """`tuner validate`'s findings on real Flink (validation.md, a level-2 section), if any."""
    path = run.path / "validation.md"
    if not path.is_file():
        return [
            "## Validation on real Flink",
            "",
            f"Not validated yet: `tuner validate {run.path}` replays this stream on real Flink.",
        ]
    return path.read_text().strip().splitlines()


def _sizing_section(run: Run) -> list[str]:
    """`tuner size --run`'s findings (sizing.md, a level-2 section), if any."""
    path = run.path / "sizing.md"
    if not path.is_file():
        return [
            "## Memory right-sizing",
            "",
            f"Not sized yet: `tuner size WORKLOAD --run {run.path}` measures throughput against "
            "managed memory per slot and advises the smallest size that keeps it.",
        ]
    return path.read_text().strip().splitlines()


def _read_wait_share(run: Run) -> float | None:
    """The share of Flink's default's modelled time spent waiting for block reads (None when it
    was not measured or the counters are missing)."""
    b = run.baselines()
    if b.empty or not {"foreground_read_s", "ops", "ops_per_s"} <= set(b.columns):
        return None
    rows = b[(b["label"] == "DEFAULT") & (b["status"] == "ok")]
    if rows.empty:
        return None
    r = rows.iloc[0]
    return read_wait_share({k: float(r[k]) for k in ("foreground_read_s", "ops", "ops_per_s")})


def _measurement_section(run: Run) -> list[str]:
    """How the numbers were obtained, so nobody reads modelled figures as wall-clock ones."""
    model = run.meta.get("scored_disk_model") or run.meta.get("disk_model")
    lines = ["## How throughput is measured", ""]
    lines.append(
        "Throughput (`ops_per_s`) is modelled, not read off this machine's clock: the replay's "
        "process CPU time plus its block-cache misses priced as random reads on the target disk, "
        "or the disk time of its flushes and compactions when that is longer "
        "(`elapsed = max(cpu_s + misses x read latency, background I/O)`). Replay databases sit "
        "in this machine's page cache (no direct I/O), so a miss costs nothing here; a "
        "TaskManager with a memory limit pays a disk read for it. The wall-clock figure is kept "
        "as `wall_ops_per_s` in trials.csv."
    )
    if model:
        lines += ["", f"Disk model: {model}."]
    share = _read_wait_share(run)
    if share is not None and share >= DISK_BOUND_SHARE:
        lines += [
            "",
            f"> **Disk-bound:** under Flink's default, {share:.0%} of the modelled time is "
            "waiting for block reads the cache missed. Measured with direct reads on a real "
            "disk (README: Disk pricing against a real disk), such jobs paid 1.3-8.7x the "
            "modelled price per miss when compactions shared the disk, and the model's ranking "
            "of Flink's option sets did not hold there: treat these gains as uncertain by that "
            "much, and prefer a confirmed recommendation.",
        ]
    if run.meta.get("scored_disk") and run.meta.get("scored_disk") != run.meta.get("disk"):
        lines += [
            "",
            f"Re-scored for `{run.meta['scored_disk']}` from the raw counters; the search and "
            f"the recommendation were made for `{run.meta.get('disk', 'unknown')}`.",
        ]
    return lines


def render_report(run_dir: str | Path, disk: str | None = None) -> Path:
    """Draw the plots into ``<run_dir>/plots/`` and write ``<run_dir>/report.md`` (atomically).

    Works on any run directory, finished or not; ``disk`` (a tuner.costmodel preset) re-scores
    the measurements for that disk. Returns the report's path. TunerError when ``run_dir`` is
    not a readable run directory.
    """
    run = load_run(run_dir, disk=disk)
    plot_files = plots.save_plots(run)
    text = render_markdown(
        run, plot_files=plot_files, recommendation=run.recommendation(), disk=disk
    )
    path = run.path / REPORT_FILE
    atomic_write_text(path, text)
    return path
