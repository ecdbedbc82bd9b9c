"""``tuner validate``: run a run directory's operation stream on real Flink and compare.

For each configuration (Flink's default, the run's recommended config.yaml, Flink's predefined
option sets) the Flink job runs ``repeats`` times, interleaved (A B C A B C ...) so that drift of
the machine hits every configuration alike. Each run is one JVM with a fresh RocksDB.

Writes into the run directory (atomically): ``validation.csv``, one row per Flink run (its
``format_version`` column says which layout), and ``validation.md``, a section the report can
include. The fidelity figures are computed from the rows by :mod:`tuner.validate.fidelity`.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.confirm import MINIMAL_LABEL
from tuner.costmodel import PRESETS
from tuner.errors import TunerError
from tuner.fileio import atomic_write_text
from tuner.flink import options as fo
from tuner.rescale import rescale_label
from tuner.results import rescored
from tuner.rundir import RunDir
from tuner.scale import read_scale
from tuner.search.study import BASELINES, DEFAULT_LABEL, RECOMMENDED_LABEL, TrialRecord
from tuner.trace.ops import OpBatch, StreamHeader
from tuner.trace.source import operation_stream
from tuner.validate.counters import compare_counters, render_counters
from tuner.validate.fidelity import Fidelity, compute_fidelity
from tuner.validate.flink import compile_job, find_or_install_flink
from tuner.validate.job import (
    FlinkRun,
    PreparedStream,
    count_mismatches,
    prepare_stream,
    run_config,
    settings_entries,
)
from tuner.validate.restore import RestoreCheck, render_restore, restore_checks
from tuner.workload import Workload, load_workload

__all__ = [
    "CONFIG_GROUPS",
    "DEVIATIONS",
    "FORMAT_VERSION",
    "ValidationProgress",
    "ValidationResult",
    "config_labels",
    "render_markdown",
    "runs_to_csv",
    "validate_run",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
VALIDATION_CSV = "validation.csv"
VALIDATION_MD = "validation.md"
# --configs names -> the configuration labels they stand for (trials.csv labels).
CONFIG_GROUPS: dict[str, tuple[str, ...]] = {
    "default": (DEFAULT_LABEL,),
    "recommended": (RECOMMENDED_LABEL,),
    "predefined": BASELINES,
}

# Where the Flink job does not do what the replay does (validation.md lists them).
DEVIATIONS: tuple[str, ...] = (
    "One Flink record per state call: the replay's per-record grouping of calls is not kept "
    "(each call of the stream draws its own key, so one keyed record cannot carry several), so "
    "Flink pays its per-record cost (serialization, network buffer, key-group routing) on every "
    "call. Absolute records/s are therefore below the replay's ops/s; rankings are comparable.",
    "Window fires: the watermark fires Flink's real timer (removing it from RocksDB); the "
    "window's GET and CLEAR that follow a fire are the stream's own rows, and the FIRE_TIMER row "
    "is counted but does nothing. Timers still pending at the end fire on Flink's final "
    "watermark, after the measured interval.",
    "Processing-time timers are registered 2^60 ms in the future so Flink's wall clock never "
    "fires them; the stream's FIRE_TIMER deletes them (the RocksDB work of a fire).",
    "TTL: states with TTL use StateTtlConfig (values carry the 8-byte timestamp, Flink's "
    "RocksDB compaction filter is on) with a TTL of 10 years: expiry follows the stream's "
    "explicit CLEARs (event time), because Flink's TTL clock is processing time.",
    "Checkpoints are triggered by event time like the replay's, but asynchronously: the "
    "barrier enters behind the rows already buffered between source and operator "
    "(checkpoint_lag_rows in validation.csv).",
    "Flink creates a processing-time timer column family next to each event-time one (and the "
    "reverse); the replay only has the column families the stream uses.",
    "Values are byte[] with BytePrimitiveArraySerializer's 4-byte length, holding value_size - 4 "
    "bytes of the replay's payload, so stored sizes match for value_size >= 4. Map user keys "
    "are Long for user_key_size 8, else byte[] of user_key_size - 4 bytes.",
    "RocksDB statistics are enabled (Flink's native ticker metrics) as in the replay; the job "
    "reads them and the DB handle by reflection on RocksDBKeyedStateBackend, to flush and wait "
    "for compactions after the preload as the replay does.",
)

OnValidationProgress = Callable[["ValidationProgress"], None]


@dataclass(frozen=True)
class ValidationProgress:
    """Where a validation is, for a progress line."""

    done: int
    total: int
    label: str
    repeat: int
    last: FlinkRun | None


@dataclass(frozen=True)
class ValidationResult:
    """What ``validate_run`` produced."""

    runs: tuple[FlinkRun, ...]
    fidelity: Fidelity
    csv_path: Path
    md_path: Path
    mismatches: tuple[str, ...]  # state calls Flink executed differently from the stream
    flink_version: str = ""  # the Flink release the job ran on (the workload's line)
    restores: tuple[RestoreCheck, ...] = ()  # with --restore: the real restores per config

    def summary(self) -> str:
        """The fidelity figures as a few lines of text (what the CLI prints)."""
        f = self.fidelity
        lines = [f"{'config':<34} {'replay ops/s':>13} {'flink rec/s':>12} {'range':>21}"]
        for c in f.configs:
            rng = f"{c.flink_min:,.0f}-{c.flink_max:,.0f}"
            lines.append(
                f"{c.label:<34} {_num(c.replay_ops_per_s):>13} {_num(c.flink_records_per_s):>12}"
                f" {rng:>21}"
            )
        lines.append(
            f"Spearman rank correlation (replay vs Flink, {f.ranked} configs): "
            f"{_fmt(f.spearman, '+.2f')}"
        )
        lines.append(
            f"pairs Flink tells apart: {f.resolved}, ordered alike by the replay: {f.concordant}"
        )
        lines.append(
            f"recommended vs default: predicted {_fmt(f.predicted_gain, '+.1%')}, "
            f"Flink {_fmt(f.real_gain, '+.1%')} (pairs {_fmt(f.real_gain_low, '+.1%')} .. "
            f"{_fmt(f.real_gain_high, '+.1%')})"
        )
        if self.runs:
            wall = [r.wall_s for r in self.runs]
            lines.append(
                f"one Flink run: {sorted(wall)[len(wall) // 2]:.1f} s median wall "
                f"(JVM + cluster start {self.runs[0].startup_s:.1f} s)"
            )
        for rc in self.restores:
            lines.append(
                f"restore {rc.label}: real Flink {rc.real_s * 1000:,.0f} ms "
                f"({rc.real_min_s * 1000:,.0f}-{rc.real_max_s * 1000:,.0f}, {rc.real_runs} runs); "
                f"the run {_fmt(rc.off_by(rc.run_s), '+.0%')}, "
                f"the confirmation {_fmt(rc.off_by(rc.backend_s), '+.0%')} of it"
            )
        if self.mismatches:
            lines.append(
                f"WARNING: {len(self.mismatches)} state-call counts differ from the "
                "stream (see validation.md)"
            )
        return "\n".join(lines)


def _fmt(v: float, spec: str) -> str:
    return "n/a" if not math.isfinite(v) else format(v, spec)


def _num(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:,.0f}"


def config_labels(configs: Iterable[str]) -> list[str]:
    """``--configs`` names (default, recommended, predefined) as labels, in order, unique."""
    out: list[str] = []
    for name in configs:
        name = name.strip().lower()
        if name not in CONFIG_GROUPS:
            raise TunerError(
                f"unknown configuration {name!r}; choose from {', '.join(CONFIG_GROUPS)}",
                where="--configs",
            )
        out.extend(label for label in CONFIG_GROUPS[name] if label not in out)
    if not out:
        raise TunerError("no configuration to validate", where="--configs")
    return out


def _config_yaml(label: str, rd: RunDir) -> str | None:
    """The config.yaml text of a configuration (None: Flink's defaults, no RocksDB keys)."""
    if label == DEFAULT_LABEL:
        return None
    if label == RECOMMENDED_LABEL:
        path = rd.path / "config.yaml"
        if not path.exists():
            raise TunerError("the run has no config.yaml (no recommendation yet?)", file=str(path))
        return path.read_text()
    if label in fo.PREDEFINED:
        return f"{fo.PREDEFINED_OPTIONS}: {label}\n"
    raise TunerError(f"no configuration called {label!r}")


def recommended_stand_in(run_dir: Path) -> str | None:
    """The label whose replay figures predict the run's config.yaml when that is not the
    re-measured search result: the configuration the confirmation chose, or the reference it
    kept (Flink's default, or `current`); None when config.yaml is the re-measured result."""
    path = run_dir / "recommendation.json"
    if not path.exists():
        return None
    conf = json.loads(path.read_text()).get("confirmation") or {}
    if "engine" not in conf:  # unconfirmed: config.yaml is the re-measured result
        return None
    chosen = conf.get("chosen")
    if chosen == MINIMAL_LABEL:
        return None
    if chosen is None:
        return str(conf.get("reference") or DEFAULT_LABEL)
    return str(chosen)


def _take(batches: Iterable[OpBatch], limit: int | None) -> Iterator[OpBatch]:
    """The first ``limit`` rows of ``batches`` (all when None)."""
    if limit is None:
        yield from batches
        return
    left = limit
    for b in batches:
        if left <= 0:
            return
        if len(b) > left:
            cols = {name: getattr(b, name)[:left] for name in b.columns()}
            b = OpBatch.from_columns(b.states, cols)
        left -= len(b)
        yield b


def _stream(
    workload: Workload, rd: RunDir
) -> tuple[StreamHeader, Iterable[OpBatch], Iterable[OpBatch]]:
    """The run's operation stream: its trace.parquet, the workload's trace, or the generator."""
    stream = operation_stream(workload, rd.trace)
    return stream.header, stream.preload, stream.measure


def runs_to_csv(runs: Sequence[FlinkRun]) -> str:
    """validation.csv text: one row per run, the union of every run's columns."""
    rows = [{"format_version": FORMAT_VERSION, **r.row()} for r in runs]
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: _cell(row.get(k)) for k in cols})
    return out.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    return v


def render_markdown(
    result_runs: Sequence[FlinkRun],
    fidelity: Fidelity,
    mismatches: Sequence[str],
    flink_version: str,
    records: Sequence[TrialRecord] = (),
    stand_in: str | None = None,
    restores: Sequence[RestoreCheck] = (),
    run_engine: str = "rocksdict",
) -> str:
    """validation.md: the fidelity table, the figures, time per run and the deviations."""
    lines = [
        f"## Validation on real Flink {flink_version}",
        "",
        "The run's operation stream replayed by a Flink DataStream job (RocksDB state backend, "
        "parallelism 1, MiniCluster) under each configuration, interleaved. Flink's records/s "
        "counts state calls (one record per call), the same unit as the replay's ops/s.",
        "",
        "| configuration | replay ops/s | Flink records/s (median) | Flink range | runs "
        "| Flink / replay |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in fidelity.configs:
        lines.append(
            f"| {c.label} | {_num(c.replay_ops_per_s)} | {_num(c.flink_records_per_s)} | "
            f"{_num(c.flink_min)} – {_num(c.flink_max)} | {c.flink_runs} | "
            f"{_fmt(c.flink_over_replay, '.2f')} |"
        )
    lines += [
        "",
        f"- Spearman rank correlation of the configurations (replay vs Flink, "
        f"{fidelity.ranked} configurations): **{_fmt(fidelity.spearman, '+.2f')}**",
        f"- Pairs of configurations Flink tells apart (repeat ranges that do not overlap): "
        f"{fidelity.resolved}; the replay orders **{fidelity.concordant} of {fidelity.resolved}** "
        "the same way" + (f" ({'; '.join(fidelity.discordant)})" if fidelity.discordant else ""),
        *(
            [
                f"- The run's config.yaml holds `{stand_in}` (the confirmation's decision), so "
                f"`recommended` is predicted by the replay's figure for `{stand_in}`"
            ]
            if stand_in is not None
            else []
        ),
        f"- Recommended vs Flink's default: predicted by the study "
        f"**{_fmt(fidelity.predicted_gain, '+.1%')}**, measured on Flink "
        f"**{_fmt(fidelity.real_gain, '+.1%')}** (same-repeat pairs "
        f"{_fmt(fidelity.real_gain_low, '+.1%')} .. {_fmt(fidelity.real_gain_high, '+.1%')})",
    ]
    if result_runs:
        walls = sorted(r.wall_s for r in result_runs)
        starts = sorted(r.startup_s for r in result_runs)
        lines.append(
            f"- One Flink run took {walls[len(walls) // 2]:.1f} s wall (median; JVM and "
            f"MiniCluster start {starts[len(starts) // 2]:.1f} s of it)"
        )
    if mismatches:
        lines += ["", "**State-call counts that differ from the stream:**", ""]
        lines += [f"- {m}" for m in mismatches[:50]]
    else:
        lines += [
            "- Every run executed exactly the stream's state calls (counted per state and call)."
        ]
    counters = render_counters(compare_counters(records, result_runs))
    if counters:
        lines += ["", *counters]
    restore_lines = render_restore(restores, run_engine)
    if restore_lines:
        lines += ["", *restore_lines]
    lines += ["", "### Where the Flink job differs from the replay", ""]
    lines += [f"- {d}" for d in DEVIATIONS]
    return "\n".join(lines) + "\n"


def validate_run(
    run_dir: Path,
    configs: Sequence[str] = ("default", "recommended", "predefined"),
    records: int | None = None,
    repeats: int = 3,
    progress: OnValidationProgress | None = None,
    *,
    timeout_s: float = 1800.0,
    keep_workdir: bool = False,
    restore: bool = False,
) -> ValidationResult:
    """Run the run directory's stream on real Flink under each configuration and compare.

    ``records`` caps the measured state calls sent to Flink (None: the whole measured phase);
    the preload is always sent whole, so the state has the size the study saw. ``restore``:
    each run then restores a real job from a checkpoint of its end state, set beside the run's
    own restore figures (:mod:`tuner.validate.restore`).
    """
    if repeats < 1:
        raise TunerError(f"`repeats >= 1` must hold, but got {repeats=}", where="--repeats")
    if records is not None and records < 1:
        raise TunerError(f"`records >= 1` must hold, but got {records=}", where="--records")
    rd = RunDir(Path(run_dir))
    meta = rd.read_meta()
    labels = config_labels(configs)
    workload = load_workload(rd.workload_yaml)
    if read_scale(rd.workload_yaml).factor != 1.0:
        # Flink would run the model's stream with production-size options: not the job.
        raise TunerError(
            "a run of a scaled model cannot be validated on Flink (its options are in production "
            "units, its stream is the model's); validate a full-size run",
            file=str(rd.workload_yaml),
            where="scale",
        )
    rescale = float((meta.get("settings") or {}).get("rescale") or 1.0)
    if restore and rescale != 1.0:
        # The real job restores at its own parallelism: set beside a restore after a change of
        # parallelism it would compare two different restores.
        raise TunerError(
            f"the run measured restores after --rescale {rescale_label(rescale)}, and the real "
            "job restores without a change of parallelism: validate --restore needs a run "
            "without --rescale",
            file=str(rd.path / "run.json"),
            where="settings.rescale",
        )
    yamls = {label: _config_yaml(label, rd) for label in labels}
    # The job runs on the Flink line the workload targets: its options were searched (arena
    # rule, catalog, FRocksDB version) for that line, so another line would judge other RocksDB.
    flink = find_or_install_flink(workload.flink_version)
    classes = compile_job(flink)
    # Real Flink runs here on this machine's page cache, so the replay's prediction is priced
    # for that same "disk" (CPU time only), not for the disk the study was tuned for.
    trial_records: list[TrialRecord] = rescored(rd.read_records(), PRESETS["page-cache"])

    # A short path: RocksDB names its LOG in state.backend.rocksdb.log.dir after the flattened
    # instance path (Flink's job, operator and uuid directories under it), which passes the
    # 255-byte file-name limit once the run directory itself is deep.
    work = Path(tempfile.mkdtemp(prefix="tuner-validate-"))
    try:
        header, preload, measure = _stream(workload, rd)
        stream: PreparedStream = prepare_stream(header, preload, _take(measure, records), work)
        base = settings_entries(fo.one_slot_memory_settings(workload.memory), flink.version)
        plan = [(label, rep) for rep, label in itertools.product(range(repeats), labels)]
        runs: list[FlinkRun] = []
        mismatches: list[str] = []
        for i, (label, rep) in enumerate(plan):
            if progress:
                progress(ValidationProgress(i, len(plan), label, rep, runs[-1] if runs else None))
            started = time.perf_counter()
            run_dir_i = work / f"{i:03d}"
            run = run_config(
                flink,
                classes,
                stream,
                label,
                rep,
                yamls[label],
                base,
                budget_bytes=workload.memory.budget,
                checkpoint_interval_ms=workload.checkpointing.interval_ms,
                incremental=workload.checkpointing.incremental,
                workdir=run_dir_i,
                timeout_s=timeout_s,
                measure_restore=restore,
            )
            log.info(
                "%s #%d: %.0f records/s (%.1f s)",
                label,
                rep,
                run.records_per_s,
                time.perf_counter() - started,
            )
            mismatches += [f"{label} #{rep}: {m}" for m in count_mismatches(stream, run.counts)]
            runs.append(run)
            if not keep_workdir:
                shutil.rmtree(run_dir_i, ignore_errors=True)
        if progress:
            progress(ValidationProgress(len(plan), len(plan), "", 0, runs[-1] if runs else None))
    finally:
        if not keep_workdir:
            shutil.rmtree(work, ignore_errors=True)

    by_label: dict[str, dict[int, float]] = {}
    for r in runs:
        by_label.setdefault(r.label, {})[r.repeat] = r.records_per_s
    stand_in = recommended_stand_in(rd.path)
    fidelity = compute_fidelity(trial_records, by_label, stand_in)
    restores = restore_checks(runs, trial_records, rd.read_confirmation_records(), stand_in)
    csv_path = rd.path / VALIDATION_CSV
    md_path = rd.path / VALIDATION_MD
    atomic_write_text(csv_path, runs_to_csv(runs))
    atomic_write_text(
        md_path,
        render_markdown(
            runs,
            fidelity,
            mismatches,
            flink.version,
            trial_records,
            stand_in,
            restores,
            str(meta.get("engine") or "rocksdict"),
        ),
    )
    return ValidationResult(
        tuple(runs),
        fidelity,
        csv_path,
        md_path,
        tuple(mismatches),
        flink.version,
        tuple(restores),
    )
