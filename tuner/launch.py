"""Starting or resuming a run from the options a user gave: what `tuner run` does before and
after the study, so that the CLI only parses and prints and a notebook can do the same.

The options arrive under the names `tuner run` gives them (``trials``, ``trial_timeout``,
``time_budget``, ...), with the set of those given explicitly: a new run takes every value, a
resumed run only the ones given again (the others are the run's own, see
:func:`tuner.runner.resume_run`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.flink.baseline import read_user_config
from tuner.measuring import RunSettings, check_time_budget
from tuner.rescale import NONE as NO_RESCALE
from tuner.rescale import grown_by, rescale_label, shrunk_by
from tuner.rundir import RunDir
from tuner.runner import RunSummary, resume_run, shared_tm_deviation, start_run
from tuner.scale import (
    SMALL_MODEL_BUDGET,
    TRANSFER_FLOOR,
    ScaleSpec,
    load_scaled,
    model_warnings,
    model_workload,
    parse_factor,
    transfer_warning,
)
from tuner.trace.parquet import recording_meta
from tuner.trace.subsample import (
    CALLS_PER_BUDGET_SECOND,
    KeySample,
    key_sample_to_fit,
    trace_size,
)
from tuner.units import format_duration
from tuner.workload import Workload

# `tuner run` options that are RunSettings fields under another name.
_SETTING_OF_OPTION = {"trial_timeout": "timeout_s", "time_budget": "time_budget_s"}
# Options that pass straight to RunSettings (under their setting's name).
_PLAIN_OPTIONS = (
    "trials",
    "seed",
    "objective",
    "repeats",
    "disk",
    "jobs",
    "engine",
    "trial_timeout",
    "storage",
    "study_name",
    "confirm",
    "confirm_top",
    "throughput_floor",
    "time_budget",
    "warm_start",
)


@dataclass(frozen=True)
class Launch:
    """A run ready to start: its workload, directory and settings, and what to tell the user
    before it starts (one line each; warnings begin with ``warning:``)."""

    workload: Workload
    run_dir: RunDir
    settings: RunSettings
    notes: tuple[str, ...]


def settings_given(options: Mapping[str, Any], given: Collection[str]) -> dict[str, Any]:
    """The RunSettings fields set by the options in ``given`` (``tuner run``'s names)."""
    out = {
        _SETTING_OF_OPTION.get(name, name): options[name]
        for name in _PLAIN_OPTIONS
        if name in given and name in options
    }
    if "minimal_repeats" in given:
        out.update(minimal=options["minimal_repeats"] > 0)
        out.update(minimal_repeats=max(1, options["minimal_repeats"]))
    return out


def new_settings(options: Mapping[str, Any], **more: Any) -> RunSettings:
    """A new run's settings from every option value (defaults included)."""
    values = settings_given(options, set(options))
    values["objective"] = values.get("objective") or "throughput"
    values["engine"] = values.get("engine") or "rocksdict"
    values.setdefault("minimal", True)
    return RunSettings(**{**values, **more})


def open_run(
    target: Path,
    options: Mapping[str, Any],
    given: Collection[str] = (),
    *,
    resume: bool = False,
    out: Path | None = None,
    results_dir: Path = Path("results"),
    scale_factor: str | None = None,
    baseline: Path | None = None,
) -> Launch:
    """Create a run directory for the workload file ``target``, or (``resume``) reopen the run
    directory ``target`` (or ``out``) with the settings it was started with, changed only by the
    options in ``given``. Every refusal comes before a new run directory exists."""
    storage = options.get("storage")
    if storage is not None:
        from tuner.search.storage import public_url

        public_url(storage)  # a malformed URL is refused before a run directory exists
    factor = None if scale_factor is None else parse_factor(scale_factor, where="--scale")
    if resume:
        if factor is not None:
            raise TunerError("a resumed run keeps the scale it was started with", where="--scale")
        run_path = out if out is not None and (out / "run.json").exists() else target
        launch = _resume(run_path, options, given, baseline)
    else:
        launch = _start(target, options, factor, baseline, out, results_dir)
    return Launch(
        launch.workload,
        launch.run_dir,
        launch.settings,
        (*launch.notes, *_run_notes(launch, resume, "time_budget" in given)),
    )


def _rescale(options: Mapping[str, Any], workload: Workload) -> float:
    """--rescale N or 1/N (tuner.rescale), checked against what the run can measure (1 without
    it)."""
    factor = options.get("rescale")
    if factor is None:
        return NO_RESCALE
    n = max(grown_by(factor), shrunk_by(factor))
    label = rescale_label(factor)
    if options.get("engine") == "flink":
        raise TunerError(
            "--rescale needs restore times, which the Flink engine does not report; use the "
            "rocksdict or flink-backend engine",
            where="--rescale",
        )
    if n > workload.max_parallelism:
        raise TunerError(
            f"--rescale {label}: a subtask needs at least one key group, and the job has "
            f"{workload.max_parallelism} (max_parallelism)",
            where="--rescale",
        )
    return float(factor)


def _resume(
    run_path: Path, options: Mapping[str, Any], given: Collection[str], baseline: Path | None
) -> Launch:
    if "rescale" in given:
        raise TunerError("a resumed run keeps the --rescale it was started with", where="--rescale")
    overrides = settings_given(options, given)
    earlier = resume_run(run_path)  # as it was: what the options below are checked against
    storage = options.get("storage")
    if storage is not None and "storage" not in given:  # from TUNER_STORAGE
        from tuner.search.storage import same_storage

        # The environment gives a resumed run the password of its own database; it never moves
        # the run to another one (only --storage does).
        if same_storage(storage, earlier.settings.storage):
            overrides["storage"] = storage
    if baseline is not None:
        again = read_user_config(baseline, earlier.workload.flink_version)
        overrides.update(baseline=dict(again.settings), baseline_source=str(baseline))
    resumed = resume_run(run_path, overrides)
    check_time_budget(resumed.settings)
    notes = [f"resuming {resumed.run_dir.path}"]
    shown = ", ".join(f"{k}={shown_setting(resumed.settings, k)}" for k in resumed.kept)
    notes += [f"  keeping the run's settings: {shown}"] if resumed.kept else []
    shown = ", ".join(f"{k}={shown_setting(resumed.settings, k)}" for k in resumed.changed)
    notes += [f"  changed on the command line: {shown}"] if resumed.changed else []
    return Launch(resumed.workload, resumed.run_dir, resumed.settings, tuple(notes))


def _start(
    target: Path,
    options: Mapping[str, Any],
    factor: float | None,
    baseline: Path | None,
    out: Path | None,
    results_dir: Path,
) -> Launch:
    workload, scale = load_scaled(target, factor)
    user = read_user_config(baseline, workload.flink_version) if baseline else None
    notes = [
        f"baseline: {k} not applied ({why})" for k, why in (user.ignored if user else {}).items()
    ]
    settings = new_settings(
        options,
        scale=scale,
        baseline=dict(user.settings) if user is not None else None,
        baseline_source=str(baseline) if baseline is not None else None,
        rescale=_rescale(options, workload),
    )
    check_time_budget(settings)  # refused before a run directory exists
    sample = _key_sample(workload, scale, settings)
    if sample.keep < 1 or sample.budget_keep is not None:
        assert settings.time_budget_s is not None
        fits = settings.time_budget_s * CALLS_PER_BUDGET_SECOND
        head = (
            f"the recording holds {sample.calls / 1e6:.1f}M calls, more than the time budget "
            f"measures ({fits / 1e6:.2f}M calls)"
        )
        if sample.budget_keep is not None:
            replayed = "it whole" if sample.keep >= 1 else f"{sample.label} of its keys"
            notes.append(
                f"{head}, but a {ScaleSpec(sample.budget_keep).label} sample would make a "
                f"{ScaleSpec(scale.factor * sample.budget_keep).label} model "
                f"({_untrusted_model(workload, scale, sample.budget_keep)}): replaying "
                f"{replayed}, so the search measures fewer candidates"
            )
        else:
            notes.append(
                f"{head}: replaying {sample.label} of its keys (every call of a kept key, in "
                "order) as a model of that share of the job; --time-budget none replays it whole"
            )
    if sample.keep < 1:
        scale = replace(scale, factor=scale.factor * sample.keep)
        settings = replace(settings, scale=scale)
    rd, workload = start_run(workload, out, results_dir, scale, key_sample=sample.keep)
    return Launch(workload, rd, settings, (*notes, f"run directory: {rd.path}"))


def _trusted_factor(workload: Workload) -> float:
    """The smallest model of the job trusted to rank configurations as it does: at least
    :data:`tuner.scale.TRANSFER_FLOOR` of it, with a memory budget of at least
    :data:`tuner.scale.SMALL_MODEL_BUDGET`."""
    return max(TRANSFER_FLOOR, SMALL_MODEL_BUDGET / max(1.0, workload.memory.budget))


def _least_keep(workload: Workload, scale: ScaleSpec) -> float:
    """The smallest share of a recording's keys (a model of ``scale``) whose model is trusted
    (:func:`_trusted_factor`; 1 when even the whole recording is smaller)."""
    return min(1.0, _trusted_factor(workload) / scale.factor)


def _untrusted_model(workload: Workload, scale: ScaleSpec, keep: float) -> str:
    """Why a model of ``keep`` of the recording's keys is not trusted, for the run's note."""
    factor = scale.factor * keep
    if factor < TRANSFER_FLOOR * (1 - 1e-9):
        return "smaller than 1/10 of the job, the smallest scale measured to rank like it"
    mib = workload.memory.budget * factor / (1 << 20)
    return (
        f"a {mib:.1f} MiB memory budget, below {SMALL_MODEL_BUDGET >> 20} mb, where a small "
        "block cache's misses vary from run to run"
    )


def _key_sample(workload: Workload, scale: ScaleSpec, settings: RunSettings) -> KeySample:
    """The share of a recorded trace's keys the run replays: all, unless its calls would not
    fit the time budget (:func:`tuner.trace.subsample.key_sample_to_fit`), and never a model
    smaller than one trusted to rank as the job does when a larger one fits not far past it."""
    if workload.trace is None:
        return KeySample(1.0, 0, 0)
    return key_sample_to_fit(workload.trace, settings.time_budget_s, _least_keep(workload, scale))


def _run_notes(launch: Launch, resumed: bool, budget_given: bool) -> list[str]:
    """The time budget, the shared study's worker command and the model's warnings."""
    settings, workload = launch.settings, launch.workload
    if budget_given:
        origin = "--time-budget"
    elif resumed:
        origin = "kept from the run; --time-budget changes it"
    else:
        origin = "the default; --time-budget DURATION or none changes it"
    budget = settings.time_budget_s
    shown = "none" if budget is None else format_duration(round(budget * 1000))
    notes = [f"time budget: {shown} ({origin})"]
    if settings.storage:
        from tuner.search.storage import public_url

        shared = public_url(settings.storage)
        name = settings.study_name or launch.run_dir.path.name
        notes.append(
            f"study {name} on {shared}; add workers with: "
            f"tuner worker --storage {shared} --study {name}"
        )
    shared_tm = shared_tm_deviation(workload.memory)
    notes += [f"warning: {shared_tm}"] if shared_tm else []
    if shrunk_by(settings.rescale) > 1 and settings.engine == "rocksdict":
        notes.append(
            "note: after a scale-in the replay merges as Flink's default does; ingesting the old "
            "subtasks' files (use-ingest-db-restore-mode, 41-84 % faster restores on Flink's "
            "backend: docs, Recovery after a scale-in) is searched on --engine flink-backend "
            "only"
        )
    if settings.scale.factor != 1.0:
        notes.append(f"replaying a {settings.scale.label} model of the job")
        model = model_workload(workload, settings.scale)
        notes += [f"warning: {w}" for w in model_warnings(model)]
        small = transfer_warning(settings.scale)
        if small and workload.trace is not None and budget is not None:
            # A key sample the budget chose: the calls a 1/10 model would replay say the budget
            # that would hold one (if the recording has that share of the job's keys).
            calls = trace_size(workload.trace)[0] * TRANSFER_FLOOR / settings.scale.factor
            minutes = math.ceil(calls / CALLS_PER_BUDGET_SECOND / 60)
            small += (
                f"; --time-budget '{minutes} min' replays a 1/10 model, if the recording holds "
                "1/10 of the job's keys (tuner recorder config --sample 0.1 or more)"
            )
        notes += [f"warning: {small}"] if small else []
        if not small and workload.trace is not None and budget is not None:
            notes += _trusted_budget_note(workload, settings.scale)
    return notes


def _trusted_budget_note(workload: Workload, scale: ScaleSpec) -> list[str]:
    """For a key sample the budget chose under 48 mb of memory: the budget that would replay a
    model trusted to rank as the job does (empty when the model is one already)."""
    if workload.trace is None:
        return []
    of = recording_meta(workload.trace).get("key_sample_of")
    keep = of.get("keep") if isinstance(of, dict) else None
    if not isinstance(of, dict) or not isinstance(keep, int | float) or not 0 < keep < 1:
        return []  # not sampled by the budget: the recording's own --sample made the model
    trusted = _trusted_factor(workload)
    if scale.factor >= trusted * (1 - 1e-9):
        return []
    recorded = scale.factor / keep
    if trusted > recorded:
        return [
            f"warning: a model trusted to rank as the job does holds {trusted:.0%} of the "
            f"job's keys, more than the recording's {recorded:.0%}: record more keys "
            "(tuner recorder config --sample)"
        ]
    # The whole recording's calls where it is still there, else the sample's scaled up.
    source = Path(str(of.get("trace", "")))
    calls = (
        trace_size(source)[0] * trusted / recorded
        if source.is_file()
        else trace_size(workload.trace)[0] * trusted / scale.factor
    )
    minutes = math.ceil(calls / CALLS_PER_BUDGET_SECOND / 60)
    return [
        f"warning: --time-budget '{minutes} min' replays a model trusted to rank as the job "
        f"does ({trusted:.0%} of the job's keys: at least 1/10 of them and "
        f"{SMALL_MODEL_BUDGET >> 20} mb of memory)"
    ]


def shown_setting(settings: RunSettings, name: str) -> object:
    """A run setting as printed: the storage URL without its password."""
    value = getattr(settings, name)
    if name == "storage" and value:
        from tuner.search.storage import public_url

        return public_url(value)
    return value


def summary_lines(summary: RunSummary) -> list[str]:
    """What a finished run says after its status line: the headline, what failed or was cut,
    the files to open, and how to continue an incomplete run."""
    lines = [f"  {summary.recommendation.headline}"] if summary.recommendation else []
    if summary.failed or summary.skipped:
        lines.append(
            f"  {summary.failed} failed, {summary.skipped} skipped (over budget): see report.md"
        )
    lines += [f"  time budget: {cut}" for cut in summary.budget_cuts]
    for name in ("config.yaml", "flink-conf.yaml", "flink-deployment.yaml", "report.md"):
        if (summary.run_dir / name).exists():
            lines.append(f"  {summary.run_dir / name}")
    if summary.status == "incomplete":
        lines.append(f"  incomplete; continue with: tuner run --resume {summary.run_dir}")
    return lines


__all__ = [
    "Launch",
    "new_settings",
    "open_run",
    "settings_given",
    "shown_setting",
    "summary_lines",
]
