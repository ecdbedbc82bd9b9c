"""The ``tuner`` command: parse arguments, call the library, print. Nothing else lives here.

Every user mistake surfaces as a :class:`~tuner.errors.TunerError`, printed as one line
(``tuner: error: FILE: FIELD: what was expected``) with exit code 2.
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from tuner.costmodel import PRESETS
from tuner.errors import TunerError, TunerRuntimeError
from tuner.flink.options import PREDEFINED, PREDEFINED_OPTIONS

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2  # a mistake in the input: the user can fix it
EXIT_FAILURE = 1  # a failure while running: a Flink crash, a full disk, failed trials
DEFAULT_TIME_BUDGET = "15 min"  # tuner run's wall time unless --time-budget says otherwise
# OSErrors that say the machine failed, not that a path on the command line is wrong.
_RUNTIME_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM, errno.EROFS})


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"tuner: error: {message}", err=True)
    sys.exit(code)


def _time_budget(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """--time-budget as seconds (a Flink duration: `15 min`, `900 s`, `1 h`), or None for
    `none`. A mistake is a TunerError: one line naming the flag, exit 2."""
    if value is None or value.strip().lower() == "none":
        return None
    from tuner.units import parse_duration_ms

    expected = "a duration such as `15 min`, `900 s` or `1 h`, or `none`"
    try:
        ms = parse_duration_ms(value, iso8601=False)
    except ValueError as exc:
        raise TunerError(f"{exc}; expected {expected}", where="--time-budget") from None
    if not value.strip() or not any(c.isalpha() for c in value):
        raise TunerError(
            f"give a unit, e.g. `{value.strip()} min`; got {value!r}; expected {expected}",
            where="--time-budget",
        )
    if ms < 1000:
        raise TunerError(f"at least 1 s, got {value!r}", where="--time-budget")
    return ms / 1000


def _budget_line(seconds: float | None, ctx: click.Context) -> str:
    """The time budget as said at the start of a run, and where it came from."""
    from tuner.units import format_duration

    source = ctx.get_parameter_source("time_budget")
    if source == click.core.ParameterSource.COMMANDLINE:
        origin = "--time-budget"
    elif ctx.params.get("resume"):
        origin = "kept from the run; --time-budget changes it"
    else:
        origin = "the default; --time-budget DURATION or none changes it"
    if seconds is None:
        return f"time budget: none ({origin})"
    return f"time budget: {format_duration(round(seconds * 1000))} ({origin})"


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressLine:
    """One status line on stderr: redrawn in place on a terminal, a log line per step otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, p: Any) -> None:
        width = 24
        filled = int(width * p.done / p.total) if p.total else 0
        bar = "#" * filled + "-" * (width - filled)
        best = (
            f"best {p.best_value / 1000:.1f}k ops/s ({p.best_label})" if p.best_value else "best -"
        )
        line = f"[{bar}] {p.done}/{p.total} {p.phase} | {best} | left ~{_fmt_duration(p.eta_s)}"
        if line == self.last:
            return
        self.last = line
        if self.tty:
            click.echo("\r" + line.ljust(110), err=True, nl=False)
        else:
            click.echo(line, err=True)

    def close(self) -> None:
        """End the redrawn line."""
        if self.tty and self.last:
            click.echo("", err=True)


class StopAfterCurrent:
    """Ctrl-C asks the study to stop after the running trial; a second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> StopAfterCurrent:
        self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        click.echo(
            "\ntuner: stopping after the current trial (Ctrl-C again to abort now)", err=True
        )

    def __call__(self) -> bool:
        return self.requested


def disk_option(help_text: str) -> Callable[[F], F]:
    """--disk: a tuner.costmodel preset that prices counted I/O."""
    return click.option("--disk", type=click.Choice(list(PRESETS)), default=None, help=help_text)


def jobs_option(help_text: str) -> Callable[[F], F]:
    """--jobs/-j: measurements at once."""
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True, help=help_text
    )


# Where a password for --storage may come from, so that it stays out of `ps`.
STORAGE_SECRETS = (
    "Keep the password out of the URL (where `ps` shows it): libpq takes it from PGPASSWORD, "
    "~/.pgpass (PGPASSFILE) or a service file (postgresql://?service=NAME, PGSERVICEFILE); "
    "or give the whole URL in TUNER_STORAGE instead of --storage."
)


def storage_option(help_text: str, required: bool = False) -> Callable[[F], F]:
    """--storage: a database URL for a study shared by many machines; TUNER_STORAGE when the
    option is not given (a URL with a password in the environment, not on the command line)."""
    return click.option(
        "--storage",
        default=None,
        required=required,
        envvar="TUNER_STORAGE",
        show_envvar=True,
        help=f"{help_text} {STORAGE_SECRETS}",
    )


def repeats_option(default: int, minimum: int, help_text: str) -> Callable[[F], F]:
    """--repeats: how often a configuration is measured."""
    return click.option(
        "--repeats",
        type=click.IntRange(min=minimum),
        default=default,
        show_default=True,
        help=help_text,
    )


class TunerGroup(click.Group):
    """Turns a TunerError raised by any command (or subcommand) into one line and exit 2, a
    TunerRuntimeError into one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TunerError as exc:
            click.echo(f"tuner: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except TunerRuntimeError as exc:
            click.echo(f"tuner: failed: {exc}", err=True)
            ctx.exit(EXIT_FAILURE)


@click.group(cls=TunerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does (to stderr).")
@click.version_option(package_name="tuner")
def cli(verbose: bool) -> None:
    """Tune Flink's RocksDB state backend by measurement.

    tuner replays a Flink job's keyed-state access pattern (from a workload file or a recorded
    trace) against real RocksDB, laid out as Flink lays it out, under the job's memory budget;
    searches Flink's RocksDB options with Optuna; and writes paste-ready Flink configuration with
    the measured gain over Flink's defaults.

    Start with:  tuner run workloads/quickstart.yaml
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@cli.command()
@click.argument("target", metavar="WORKLOAD", type=click.Path(path_type=Path))
@click.option(
    "--trials",
    "-n",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Search trials to run (baselines and re-measurements come on top).",
)
@click.option(
    "--out",
    "--output",
    "-o",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory. Default: results/<workload-name>-<timestamp>/ "
    "(an existing non-empty directory is never overwritten).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run: WORKLOAD (or --out) is then the run directory. It keeps "
    "every setting it was started with (trials, repeats, objective, engine, disk, ...) unless "
    "given again on the command line, and says which.",
)
@click.option("--seed", type=int, default=None, help="Sampler seed (default: the workload's seed).")
@click.option(
    "--objective",
    type=click.Choice(["throughput", "pareto", "checkpoint"]),
    default=None,
    help="throughput (default): maximise replay ops/s within the budget; pareto: throughput "
    "vs p99 read latency (a Pareto front); checkpoint: minimise the incremental checkpoint "
    "size while throughput stays at least --throughput-floor of the reference's (your "
    "--baseline, else Flink's default). A resumed run keeps its own.",
)
@click.option(
    "--throughput-floor",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="--objective checkpoint: the least throughput a candidate keeps, as a share of the "
    "reference's baseline measurement.",
)
@repeats_option(3, 1, "Interleaved re-measurements of the recommendation and of Flink's default.")
@disk_option(
    "Disk the job runs on, to price counted I/O (default: the workload's `disk:`, else "
    "local-nvme). See README: How throughput is measured."
)
@jobs_option(
    "Measurements at once. 1 is the honest default on a small machine: parallel replays "
    "share the CPUs and the disk, which shifts every figure (README: parallel trials)."
)
@click.option(
    "--engine",
    type=click.Choice(["rocksdict", "flink", "flink-backend"]),
    default=None,
    help="What measures each candidate (a resumed run keeps its own): the replay on rocksdict "
    "(default); flink-backend, Flink's own RocksDB state backend driven in a JVM without a job "
    "(pip install -e '.[flink]', JDK 17); or a real Flink 2.3 job "
    "(about 10 s more per trial, Flink's own records/s as objective).",
)
@click.option(
    "--confirm/--no-confirm",
    default=None,
    help="Re-measure the minimal recommendation, the top search candidates and the best "
    "predefined set on the flink-backend engine, interleaved with the reference (your "
    "--baseline, else Flink's default), and recommend from those figures "
    "(or say: keep your configuration). Default: confirm when Flink 2.x is installed; "
    "--confirm fails without it.",
)
@click.option(
    "--confirm-top",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Search candidates the confirmation re-measures.",
)
@click.option(
    "--trial-timeout",
    type=click.FloatRange(min=1),
    default=900,
    show_default=True,
    help="Seconds before a trial is stopped and recorded as failed. Once trials have "
    "finished, a trial also stops at 10x their median time (2 min at least).",
)
@click.option(
    "--results-dir",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Where default run directories are created.",
)
@storage_option(
    "Share the study through this database (postgresql://USER@HOST[:PORT]/DB) so "
    "that `tuner worker` on other machines measures trials too. Default: study.db (SQLite) in "
    "the run directory."
)
@click.option(
    "--study",
    "study_name",
    default=None,
    help="Name of the shared study (with --storage). Default: the run directory's name. "
    "A name another run holds is refused.",
)
@click.option(
    "--scale",
    "scale_factor",
    default=None,
    metavar="F",
    help='Replay a model of F of the job ("1/100" or 0.01), overriding the workload\'s '
    "`scale:`; option values stay in production units (README: Production-size jobs).",
)
@click.option(
    "--baseline",
    "baseline",
    metavar="CONFIG",
    type=click.Path(path_type=Path),
    default=None,
    help="Your current config.yaml, flink-conf.yaml or FlinkDeployment: checked as check-config "
    "checks it, measured next to Flink's option sets as `current`, and the reference of the "
    "headline gain and of the minimal recommendation. A resumed run keeps its own.",
)
@click.option(
    "--time-budget",
    "time_budget",
    metavar="DURATION",
    callback=_time_budget,
    default=DEFAULT_TIME_BUDGET,
    show_default=True,
    help="Wall time this run may take, e.g. `15 min` or `1 h`; `none` lifts it. The search stops "
    "early when one more trial would leave too little time for the minimal recommendation, the "
    "re-measurements and the confirmation (estimated from the measurements so far); the minimal "
    "recommendation, the re-measurement rounds and the confirmation are shortened to what is "
    "left, or skipped, and the output and report.md say what was cut. No trial runs longer "
    "than 1/8 of the budget. The "
    "smallest budget accepted counts 5 s a measurement for Flink's 4 predefined sets, your "
    "--baseline, 1 trial and --repeats rounds of re-measuring the recommendation beside the "
    "default (and --baseline), and 10 s to write the report: 65 s at the defaults. "
    "At least one search trial always runs; a resumed run keeps its budget unless given again "
    "(and gets it afresh).",
)
@click.option(
    "--minimal-repeats",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Repeats per reverted key for the minimal recommendation (each changed key reverted "
    "to the baseline, one at a time and greedily, at most 80 measurements); 0 skips it and "
    "recommends the search winner.",
)
def run(
    target: Path,
    trials: int,
    out: Path | None,
    resume: bool,
    seed: int | None,
    objective: str | None,
    repeats: int,
    disk: str | None,
    jobs: int,
    engine: str | None,
    confirm: bool | None,
    confirm_top: int,
    trial_timeout: float,
    results_dir: Path,
    storage: str | None,
    study_name: str | None,
    scale_factor: str | None,
    baseline: Path | None,
    minimal_repeats: int,
    throughput_floor: float,
    time_budget: float | None,
) -> None:
    """Tune the RocksDB options of the job in WORKLOAD (a workload YAML file; with --resume, a run
    directory).

    Measures Flink's default, its four predefined option sets and your --baseline config (as
    `current`), runs the Optuna search, reduces the winner to the keys whose revert costs more
    than the noise (the minimal recommendation), re-measures it against the default (and
    `current`), then (when Flink 2.x is installed) confirms the top candidates on Flink's own
    state backend. Writes config.yaml (Flink 2.x),
    flink-conf.yaml (Flink 1.x), flink-deployment.yaml (Kubernetes), rocksdb-options.ini,
    trials.csv, study.db, workload.yaml and report.md with plots into the run directory.
    Ctrl-C stops after the current trial; `tuner run --resume DIR` continues.
    """
    begun = time.monotonic()  # the time budget counts the imports below too
    from tuner.flink.baseline import read_user_config
    from tuner.measuring import RunSettings, check_time_budget
    from tuner.runner import resume_run, run_study, shared_tm_deviation, start_run
    from tuner.scale import load_scaled, parse_factor

    if storage is not None:
        from tuner.search.storage import public_url

        public_url(storage)  # a malformed URL is refused before a run directory exists
    ctx = click.get_current_context()
    given: dict[str, Any] = {
        name: value
        for name, value in (
            ("trials", trials),
            ("seed", seed),
            ("objective", objective),
            ("repeats", repeats),
            ("disk", disk),
            ("jobs", jobs),
            ("engine", engine),
            ("timeout_s", trial_timeout),
            ("storage", storage),
            ("study_name", study_name),
            ("confirm", confirm),
            ("confirm_top", confirm_top),
            ("throughput_floor", throughput_floor),
            ("time_budget_s", time_budget),
        )
        if ctx.get_parameter_source(
            {"timeout_s": "trial_timeout", "time_budget_s": "time_budget"}.get(name, name)
        )
        == click.core.ParameterSource.COMMANDLINE
    }
    factor = None if scale_factor is None else parse_factor(scale_factor, where="--scale")
    if ctx.get_parameter_source("minimal_repeats") == click.core.ParameterSource.COMMANDLINE:
        given.update(minimal=minimal_repeats > 0, minimal_repeats=max(1, minimal_repeats))
    if resume:
        if factor is not None:
            raise TunerError("a resumed run keeps the scale it was started with", where="--scale")
        run_path = out if out is not None and (out / "run.json").exists() else target
        if storage is not None and "storage" not in given:  # from TUNER_STORAGE
            from tuner.search.storage import same_storage

            # The environment gives a resumed run the password of its own database; it never
            # moves the run to another one (only --storage does).
            if same_storage(storage, resume_run(run_path).settings.storage):
                given["storage"] = storage
        if baseline is not None:
            earlier = resume_run(run_path).workload
            again = read_user_config(baseline, earlier.flink_version)
            given.update(baseline=dict(again.settings), baseline_source=str(baseline))
        resumed = resume_run(run_path, given)
        workload, rd, settings = resumed.workload, resumed.run_dir, resumed.settings
        check_time_budget(settings)
        scale = settings.scale
        click.echo(f"resuming {rd.path}", err=True)
        if resumed.kept:
            kept = ", ".join(f"{k}={_shown(settings, k)}" for k in resumed.kept)
            click.echo(f"  keeping the run's settings: {kept}", err=True)
        if resumed.changed:
            changed = ", ".join(f"{k}={_shown(settings, k)}" for k in resumed.changed)
            click.echo(f"  changed on the command line: {changed}", err=True)
    else:
        workload, scale = load_scaled(target, factor)
        user = read_user_config(baseline, workload.flink_version) if baseline else None
        if user is not None:
            for key, why in user.ignored.items():
                click.echo(f"baseline: {key} not applied ({why})", err=True)
        settings = RunSettings(
            trials=trials,
            seed=seed,
            objective=objective or "throughput",
            repeats=repeats,
            disk=disk,
            jobs=jobs,
            engine=engine or "rocksdict",
            timeout_s=trial_timeout,
            storage=storage,
            study_name=study_name,
            scale=scale,
            confirm=confirm,
            confirm_top=confirm_top,
            baseline=dict(user.settings) if user is not None else None,
            baseline_source=str(baseline) if baseline is not None else None,
            minimal=minimal_repeats > 0,
            minimal_repeats=max(1, minimal_repeats),
            throughput_floor=throughput_floor,
            time_budget_s=time_budget,
        )
        check_time_budget(settings)  # refused before a run directory exists
        rd = start_run(workload, out, results_dir, scale)
        click.echo(f"run directory: {rd.path}", err=True)
    click.echo(_budget_line(settings.time_budget_s, ctx), err=True)
    if settings.storage:
        from tuner.search.storage import public_url

        shared = public_url(settings.storage)
        name = settings.study_name or rd.path.name
        click.echo(
            f"study {name} on {shared}; add workers with: "
            f"tuner worker --storage {shared} --study {name}",
            err=True,
        )
    shared_tm = shared_tm_deviation(workload.memory)
    if shared_tm:
        click.echo(f"tuner: warning: {shared_tm}", err=True)
    if scale.factor != 1.0:
        from tuner.scale import model_warnings, model_workload

        click.echo(f"replaying a {scale.label} model of the job", err=True)
        for warning in model_warnings(model_workload(workload, scale)):
            click.echo(f"tuner: warning: {warning}", err=True)
    progress = ProgressLine()
    started = time.monotonic()
    try:
        with StopAfterCurrent() as stop:
            summary = run_study(
                workload, rd, settings, on_progress=progress, should_stop=stop, started=begun
            )
    except (TunerError, TunerRuntimeError, OSError):
        rd.set_status("failed")
        raise
    except KeyboardInterrupt:
        rd.set_status("incomplete")
        progress.close()
        click.echo(f"tuner: aborted; resume with: tuner run --resume {rd.path}", err=True)
        sys.exit(130)
    finally:
        progress.close()
    elapsed = _fmt_duration(time.monotonic() - started)
    click.echo(f"{summary.status} in {elapsed}: {summary.run_dir}")
    if summary.recommendation is not None:
        click.echo(f"  {summary.recommendation.headline}")
    if summary.failed or summary.skipped:
        click.echo(
            f"  {summary.failed} failed, {summary.skipped} skipped (over budget): see report.md"
        )
    for cut in summary.budget_cuts:
        click.echo(f"  time budget: {cut}")
    for name in ("config.yaml", "flink-conf.yaml", "flink-deployment.yaml", "report.md"):
        if (summary.run_dir / name).exists():
            click.echo(f"  {summary.run_dir / name}")
    if summary.status == "incomplete":
        click.echo(f"  incomplete; continue with: tuner run --resume {summary.run_dir}")


def _shown(settings: Any, name: str) -> object:
    """A run setting as printed: the storage URL without its password."""
    value = getattr(settings, name)
    if name == "storage" and value:
        from tuner.search.storage import public_url

        return public_url(value)
    return value


@cli.command()
@storage_option(
    "The database of the study (as given to tuner run --storage).",
    required=True,
)
@click.option("--study", "study_name", required=True, help="The study to join.")
@click.option(
    "--trials",
    "-n",
    type=click.IntRange(min=1),
    default=None,
    help="Measure at most N trials here, then exit. Default: until the study has its trials.",
)
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the operation stream and the trial databases go (default: a temporary "
    "directory, removed at the end).",
)
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="Seconds to wait for the study to appear (workers may start before tuner run).",
)
def worker(
    storage: str, study_name: str, trials: int | None, work_dir: Path | None, wait_s: float
) -> None:
    """Join a study that `tuner run --storage` created and measure its trials.

    Needs no shared disk: the worker rebuilds the operation stream from the workload stored with
    the study and checks it against the coordinator's digest. Runs until the study has all its
    trials; Ctrl-C stops after the current trial. A worker killed mid-trial loses nothing: its
    trial is failed after two missed heartbeats and measured again by another worker.
    """
    from tuner.remote import run_worker
    from tuner.search.storage import public_url

    def started(spec: Any) -> None:
        click.echo(
            f"worker on study {study_name} ({public_url(storage)}): {spec.trials} trials, "
            f"engine {spec.engine}",
            err=True,
        )

    with StopAfterCurrent() as stop:
        result = run_worker(
            storage,
            study_name,
            trials=trials,
            work_dir=work_dir,
            wait_s=wait_s,
            should_stop=stop,
            on_start=started,
        )
    s = result.summary
    per_trial = (
        f", {1000 * sorted(s.storage_s)[len(s.storage_s) // 2]:.0f} ms storage per trial"
        if s.storage_s
        else ""
    )
    click.echo(
        f"{s.measured} trials measured here, {s.skipped} skipped (over budget){per_trial}"
        + (f", {s.retries} storage retries" if s.retries else "")
    )


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@disk_option("Re-score every measurement for this disk from its raw counters (nothing is re-run).")
def report(run_dir: Path, disk: str | None) -> None:
    """Regenerate report.md and the plots of RUN_DIR from its trials.csv and study.db."""
    from tuner.report import render_report

    path = render_report(run_dir, disk=disk)
    click.echo(str(path))


@cli.command("check-config")
@click.argument("file", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option(
    "--flink-version",
    required=True,
    help='Flink version the config is for: "1.20" or "2.x" (e.g. 2.0 .. 2.3).',
)
def check_config(file: Path, flink_version: str) -> None:
    """Validate CONFIG's state.backend.rocksdb.* keys against the Flink version's option catalog.

    CONFIG is a Flink 2.x config.yaml, a Flink 1.x flink-conf.yaml or a Kubernetes
    FlinkDeployment. Flink itself silently ignores a misspelled key; this command does not:
    unknown keys (with the closest valid one) and values Flink cannot parse exit with code 2.
    """
    from tuner.flink.config_check import check_config_file

    problems = check_config_file(file, flink_version)
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        sys.exit(EXIT_USAGE)
    click.echo(f"{file}: ok for Flink {flink_version}")


@cli.group()
def trace() -> None:
    """Recorded keyed-state traces: generate one from a workload, or inspect one."""


@trace.command("generate")
@click.argument("workload_file", metavar="WORKLOAD", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "--out",
    "-o",
    "output",
    type=click.Path(path_type=Path),
    required=True,
    help="Trace file to write (Parquet).",
)
def trace_generate(workload_file: Path, output: Path) -> None:
    """Write the generator's operation stream for WORKLOAD as a trace file."""
    from tuner.trace.parquet import write_trace
    from tuner.trace.source import operation_stream
    from tuner.workload import load_workload

    w = load_workload(workload_file)
    if w.trace is not None:
        raise TunerError(
            "workload already replays a recorded trace", file=str(workload_file), where="trace"
        )
    stream = operation_stream(w)
    write_trace(output, stream.header, stream.preload, stream.measure)
    click.echo(str(output))


@trace.command("inspect")
@click.argument("file", metavar="TRACE", type=click.Path(path_type=Path))
def trace_inspect(file: Path) -> None:
    """Summarise a trace: ops by state and kind, key cardinality, skew, value sizes.

    The preload phase (initial state loaded before measuring) and the measured phase are
    summarised separately.
    """
    from tuner.trace.inspect import render_text, summarize
    from tuner.trace.parquet import read_trace

    t = read_trace(file)
    # Both phases read before anything is printed: damage found in the rows is one line.
    texts = [render_text(summarize(t.header, t.batches(phase))) for phase in ("preload", "measure")]
    for phase, text in zip(("preload", "measure"), texts, strict=True):
        click.echo(f"== {phase} ==")
        click.echo(text)


@trace.command("import")
@click.argument("recording_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Trace file to write (Parquet).",
)
@click.option(
    "--subtask",
    type=click.IntRange(min=0),
    default=None,
    help="Keep one subtask index of each operator (one slot's share). Default: all subtasks.",
)
def trace_import(recording_dir: Path, output: Path, subtask: int | None) -> None:
    """Convert the recorder's files under RECORDING_DIR (one job) into a trace file.

    ts is the processing time of each call (ms from the recording's first call): a state
    backend never sees event time. Window namespaces and timer timestamps stay event time.
    """
    from tuner.trace.recording import import_recording

    stats = import_recording(recording_dir, output, subtask=subtask)
    click.echo(
        f"{output}: {stats.events} events from {stats.files} files, {len(stats.states)} states, "
        f"{stats.events_per_s / 1e6:.2f}M events/s"
    )
    if stats.dropped_events:
        stops = ", ".join(f"{k} in {v} files" for k, v in sorted(stats.stopped.items()))
        click.echo(f"recording stopped early ({stops}): {stats.dropped_events} calls not recorded")
    if len(stats.max_parallelisms) > 1:
        click.echo(
            f"operators with max parallelism {', '.join(map(str, stats.max_parallelisms))}: "
            f"replayed with {stats.max_parallelisms[-1]} (the key-group prefix bytes are the "
            "same while all are 128 or less)"
        )
    if stats.other_namespaces:
        click.echo(f"{stats.other_namespaces} calls in other namespaces replayed as VoidNamespace")
    share = stats.time_share.share if stats.time_share else None
    doubt = stats.time_share.doubt(stats.iterations) if stats.time_share else ""
    if share is not None and not doubt:
        click.echo(
            f"state calls took {share:.1%} of the job's recorded time (sampled): a state "
            "backend gain of g speeds the job up by 1/(1 - share + share/(1+g)) - 1"
        )
    elif doubt:
        click.echo(f"no share of task time in state calls: {doubt}")


@cli.group()
def workload() -> None:
    """Workload descriptions: fit one to a recorded trace."""


@workload.command("fit")
@click.argument("trace_file", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="Workload YAML to write."
)
@click.option(
    "--flink-version",
    default="2.x",
    show_default=True,
    help="flink_version of the fitted workload (2.x or 1.20).",
)
@click.option(
    "--flink-conf",
    type=click.Path(path_type=Path),
    default=None,
    help="The job's Flink config (config.yaml, flink-conf.yaml or FlinkDeployment): memory "
    "comes from it. Default: a placeholder of 256 mb managed memory per slot.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Also replay Flink's predefined option sets on the recording and on the fitted "
    "workload and print both rankings and their Spearman (about 10 replays).",
)
@click.option(
    "--recommendation",
    "run_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="With --check: also rank this run's recommended settings (RUN_DIR/recommendation.json).",
)
def workload_fit(
    trace_file: Path,
    output: Path,
    flink_version: str,
    flink_conf: Path | None,
    check: bool,
    run_dir: Path | None,
) -> None:
    """Fit a workload (states, keys, popularity, sizes, operation mix, accesses per record,
    timers, windows) to a trace, write it as YAML and print the fit report: per state, the
    recording next to the fitted workload's generated stream.
    """
    from tuner.flink.memory_config import memory_from_config
    from tuner.trace.fit import fit_to_file

    memory = memory_from_config(flink_conf).memory if flink_conf is not None else None
    outcome = fit_to_file(trace_file, output, memory=memory, flink_version=flink_version)
    click.echo(outcome.report, nl=False)
    if check:
        from tuner.search.fit_check import rank_agreement
        from tuner.workload import load_workload

        extra = {}
        if run_dir is not None:
            from tuner.results import load_run

            recommended = load_run(run_dir).recommendation()
            if recommended is None:
                raise TunerError("the run has no recommendation", file=str(run_dir))
            extra["recommended"] = recommended["settings"]
        agreement = rank_agreement(trace_file, load_workload(output), extra)
        click.echo(agreement.render(), nl=False)
    click.echo(str(outcome.path))


@workload.command("from-config")
@click.argument("flink_conf", type=click.Path(path_type=Path))
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a whole workload that replays this trace (for `tuner run`) instead of only "
    "the memory section.",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=None, help="File to write."
)
@click.option("--flink-version", default="2.x", show_default=True, help="2.x or 1.20.")
def workload_from_config(
    flink_conf: Path, trace_file: Path | None, output: Path | None, flink_version: str
) -> None:
    """The memory section of a workload from the job's Flink configuration (managed memory,
    slots, RocksDB memory options), with how each number was derived; with --trace, a workload
    that replays a recorded trace under that memory."""
    import yaml

    from tuner.fileio import atomic_write_text
    from tuner.flink.memory_config import memory_from_config
    from tuner.workload import parse_workload

    found = memory_from_config(flink_conf)
    data: dict[str, Any] = {"memory": found.memory}
    if trace_file is not None:
        target = output if output is not None else Path("workload.yaml")
        data = {
            "name": "".join(c if c.isalnum() or c in "-_" else "-" for c in trace_file.stem),
            "description": f"Recorded trace {trace_file.name}, memory from {flink_conf.name}",
            "flink_version": flink_version,
            "memory": found.memory,
            "trace": str(trace_file.resolve()),
        }
        parse_workload(data, str(target))  # checked as `tuner run` will read it
    text = "".join(f"# {line}\n" for line in found.derivation)
    text += yaml.safe_dump(data, sort_keys=False)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text)
        click.echo(str(output))


@cli.group()
def recorder() -> None:
    """Record a running Flink job's keyed-state calls (a state backend that wraps yours)."""


def flink_version_option(default: str) -> Callable[[F], F]:
    """--flink-version for the recorder commands."""
    return click.option(
        "--flink-version",
        default=default,
        show_default=True,
        help="Flink the job runs on: 2.x (2.0 .. 2.3) or 1.20.",
    )


@recorder.command("jar")
@flink_version_option("2.x")
def recorder_jar(flink_version: str) -> None:
    """Build the recorder jar against the installed Flink (cached) and print its path.

    Copy it into Flink's lib/ on every JobManager and TaskManager.
    """
    from tuner.recorder.build import build_jar

    click.echo(str(build_jar(flink_version).path))


@recorder.command("config")
@click.option(
    "--dir",
    "directory",
    required=True,
    help="Directory the TaskManagers write recordings into (one file per subtask and attempt).",
)
@click.option(
    "--sample",
    type=float,
    default=1.0,
    show_default=True,
    help="Share of keys recorded (per key: a sampled key's calls are all recorded).",
)
@click.option(
    "--max-events",
    type=int,
    default=None,
    help="Stop recording a subtask after N events (the job goes on). Default: no limit.",
)
@click.option(
    "--max-bytes",
    type=int,
    default=None,
    help="Stop recording a subtask's file at this size in bytes. Default: 1 GiB.",
)
@flink_version_option("2.x")
def recorder_config(
    directory: str,
    sample: float,
    max_events: int | None,
    max_bytes: int | None,
    flink_version: str,
) -> None:
    """Print the configuration lines that switch recording on (config.yaml for 2.x,
    flink-conf.yaml for 1.20). Each call draws a new secret for the key hashes."""
    from tuner.recorder.build import config_lines

    click.echo(
        config_lines(
            directory,
            sample=sample,
            max_events=max_events,
            max_bytes=max_bytes,
            flink_version=flink_version,
        ),
        nl=False,
    )


@cli.command()
@click.option(
    "--ops",
    type=click.IntRange(min=1000),
    default=200_000,
    show_default=True,
    help="Operations in the fixed stream.",
)
def bench(ops: int) -> None:
    """Replay engine overhead: ops/s of the engine vs bare rocksdict calls on the same stream."""
    from tuner.engine.bench import run_bench

    click.echo(run_bench(ops).render())


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--configs",
    default="default,recommended,predefined",
    show_default=True,
    help="Comma-separated: default (no RocksDB keys), recommended (the run's "
    "config.yaml), predefined (Flink's 4 predefined option sets).",
)
@click.option(
    "--records",
    type=click.IntRange(min=1),
    default=None,
    help="Cap on measured state calls sent to Flink (default: all; the preload is always whole).",
)
@repeats_option(3, 1, "Interleaved runs per configuration.")
def validate(run_dir: Path, configs: str, records: int | None, repeats: int) -> None:
    """Replay RUN_DIR's operation stream on real Flink (RocksDB backend) under each
    configuration, and compare with the replay's prediction.

    Runs on the Flink line the workload targets, in one slot with the slot's share of the
    memory: Flink 2.3 (`pip install 'tuner[flink]'`) for 2.x, Flink 1.20 for 1.20 (its jars
    are fetched from PyPI once when missing); Java 17. Compiles the bundled job with javac on
    first use. Writes validation.csv and validation.md into RUN_DIR, prints the rank
    correlation, the pairs of configurations Flink tells apart and how many the replay orders
    alike, and the predicted vs real gain, and adds them to report.md.
    """
    from tuner.report import render_report
    from tuner.validate import validate_run

    def progress(p: Any) -> None:
        if p.done < p.total:  # the last call only reports the finished last run
            click.echo(f"[{p.done + 1}/{p.total}] {p.label} repeat {p.repeat + 1}", err=True)

    result = validate_run(run_dir, configs.split(","), records, repeats, progress)
    render_report(run_dir)
    click.echo(result.summary())
    click.echo(str(result.csv_path))
    click.echo(str(result.md_path))


@cli.command()
@click.argument("workload_file", metavar="WORKLOAD", type=click.Path(path_type=Path))
@repeats_option(5, 2, "Measurements of the same configuration.")
@click.option(
    "--predefined",
    type=click.Choice(list(PREDEFINED)),
    default="DEFAULT",
    show_default=True,
    help="Which of Flink's option sets to measure.",
)
@disk_option("Disk to price counted I/O for (default: the workload's).")
@jobs_option("Repeats at once: compare with --jobs 1 to see what parallel trials distort.")
def noise(workload_file: Path, repeats: int, predefined: str, disk: str | None, jobs: int) -> None:
    """Measure one configuration REPEATS times and print each metric's coefficient of variation.

    Tells which figures are steady enough on this machine to rank configurations by: each
    repeat replays the same stream in its own process, exactly as a trial does.
    """
    from tuner.costmodel import disk_from
    from tuner.noise import measure_noise
    from tuner.scale import load_scaled, model_workload

    production, scale = load_scaled(workload_file)
    w = model_workload(production, scale)  # a production-size workload: its scaled model
    target = disk_from(disk) if disk else w.disk

    def tick(i: int, n: int) -> None:
        click.echo(f"repeat {i + 1}/{n} ...", err=True)

    result = measure_noise(
        w,
        repeats,
        target,
        {PREDEFINED_OPTIONS: predefined},
        on_repeat=tick,
        jobs=jobs,
        scale=scale.factor,
    )
    click.echo(
        f"{w.name}: {predefined} measured {repeats} times, {jobs} at once ({target.describe()})"
    )
    click.echo(result.render())


@cli.command()
@click.argument("workload_file", metavar="WORKLOAD", type=click.Path(path_type=Path))
@click.argument("configs", metavar="CONFIG_OR_PREDEFINED...", nargs=-1, required=True)
@repeats_option(3, 1, "Measurements of each configuration (interleaved).")
@disk_option("Disk to price counted I/O for (default: the workload's).")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write every measurement (all metrics) to this CSV file.",
)
def compare(
    workload_file: Path,
    configs: tuple[str, ...],
    repeats: int,
    disk: str | None,
    csv_path: Path | None,
) -> None:
    """Measure configurations side by side on WORKLOAD, interleaved, each in its own process.

    Each CONFIG_OR_PREDEFINED is one of Flink's option sets (DEFAULT, SPINNING_DISK_OPTIMIZED,
    SPINNING_DISK_OPTIMIZED_HIGH_MEM, FLASH_SSD_OPTIMIZED), a config.yaml / flink-conf.yaml /
    FlinkDeployment (checked as check-config checks it), or a run directory (its recommendation).
    Prints median ops/s (the cost model's counted throughput), min–max, CV and the change
    against the first configuration. Example: tuner compare w.yaml my-config.yaml
    SPINNING_DISK_OPTIMIZED_HIGH_MEM
    """
    from tuner.compare import compare as run_compare
    from tuner.compare import contender
    from tuner.costmodel import disk_from
    from tuner.workload import load_workload

    w = load_workload(workload_file)
    contenders = [contender(c, w.flink_version) for c in configs]
    target = disk_from(disk) if disk else w.disk

    def tick(done: int, total: int, name: str) -> None:
        click.echo(f"[{done + 1}/{total}] {name}", err=True)

    result = run_compare(w, contenders, repeats, target, on_measure=tick)
    click.echo(
        f"{w.name}: {len(contenders)} configurations x {repeats}, interleaved ({target.describe()})"
    )
    click.echo(result.render())
    if csv_path is not None:
        import pandas as pd

        pd.DataFrame(result.rows()).to_csv(csv_path, index=False)
        click.echo(str(csv_path))


@cli.command()
@click.argument("workload_file", metavar="WORKLOAD", type=click.Path(path_type=Path))
@click.option(
    "--run",
    "run_dir",
    metavar="RUN_DIR",
    type=click.Path(path_type=Path),
    default=None,
    help="Size for this run's recommendation; the outputs go into RUN_DIR and its report.md.",
)
@click.option(
    "--config",
    "config_file",
    metavar="CONFIG",
    type=click.Path(path_type=Path),
    default=None,
    help="Size for this config.yaml / flink-conf.yaml / FlinkDeployment instead.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Throughput a smaller size may lose against the budget's.",
)
@click.option(
    "--factors",
    default="0.25,0.5,0.75,1,1.25,1.5,2",
    show_default=True,
    help="Memory per slot to measure, as multiples of the workload's budget.",
)
@click.option(
    "--total-flink-memory",
    metavar="SIZE",
    default=None,
    help="taskmanager.memory.flink.size (e.g. 4 gb): also give the advice as "
    "taskmanager.memory.managed.fraction.",
)
@repeats_option(2, 1, "Measurements of each configuration at each size (interleaved).")
@disk_option("Disk to price counted I/O for (default: the workload's).")
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for sizing.csv, sizing.md, sizing.png (default: RUN_DIR with --run, "
    "else results/<workload>-size-<timestamp>/).",
)
def size(
    workload_file: Path,
    run_dir: Path | None,
    config_file: Path | None,
    tolerance: float,
    factors: str,
    total_flink_memory: str | None,
    repeats: int,
    disk: str | None,
    out: Path | None,
) -> None:
    """Throughput against managed memory per slot (about 0.25x to 2x the workload's budget)
    for Flink's default and the recommendation (--run) or a config (--config).

    Recommends the smallest measured memory within --tolerance (5 %) of the budget's throughput
    as the Flink keys that set it (taskmanager.memory.managed.size, or the fixed-per-slot/tm
    key), and what it saves per TaskManager. Writes sizing.png, sizing.md and sizing.csv.
    """
    from tuner.compare import contender
    from tuner.costmodel import disk_from
    from tuner.report import render_report
    from tuner.sizing import recommendation_contender, size_memory
    from tuner.sizing_report import write_sizing
    from tuner.units import parse_memory_size
    from tuner.workload import load_workload

    if run_dir is not None and config_file is not None:
        raise TunerError("give --run or --config, not both", where="--config")
    w = load_workload(workload_file)
    try:
        steps = [float(f) for f in factors.split(",") if f.strip()]
    except ValueError:
        raise TunerError(f"not a list of numbers: {factors!r}", where="--factors") from None
    if not steps or any(f <= 0 for f in steps):
        raise TunerError(f"factors must be > 0, got {factors!r}", where="--factors")
    total = None
    if total_flink_memory is not None:
        try:
            total = parse_memory_size(total_flink_memory)
        except ValueError as exc:
            raise TunerError(str(exc), where="--total-flink-memory") from None
    contenders = [contender("DEFAULT", w.flink_version)]
    if run_dir is not None:
        contenders.append(recommendation_contender(run_dir))
    elif config_file is not None:
        contenders.append(contender(str(config_file), w.flink_version))
    target = disk_from(disk) if disk else w.disk

    def tick(done: int, n: int, label: str) -> None:
        click.echo(f"[{done + 1}/{n}] {label}", err=True)

    result = size_memory(
        w,
        contenders,
        factors=steps,
        repeats=repeats,
        disk=target,
        tolerance=tolerance,
        total_flink_memory=total,
        on_measure=tick,
    )
    if out is None:
        out = run_dir if run_dir is not None else _stamped(Path("results"), f"{w.name}-size")
    parts = [f"tuner size {workload_file}"]
    parts += [f"--run {run_dir}"] if run_dir is not None else []
    parts += [f"--config {config_file}"] if config_file is not None else []
    parts += [f"--repeats {repeats}", f"--tolerance {tolerance:g}", f"--factors {factors}"]
    parts += [f"--disk {disk}"] if disk else []
    command = " ".join(parts)
    files = write_sizing(result, out, command)
    if run_dir is not None:
        render_report(run_dir)
    click.echo(result.render())
    for f in files:
        click.echo(str(f))


def _stamped(root: Path, name: str) -> Path:
    return root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user mistakes into one line and exit code 2."""
    try:
        code = cli.main(args=argv, prog_name="tuner", standalone_mode=False)
    except TunerError as exc:
        _fail(str(exc))
    except TunerRuntimeError as exc:
        click.echo(f"tuner: failed: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    except click.exceptions.Abort:
        click.echo("tuner: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        # Files named on the command line that cannot be read or written.
        where = f"{exc.filename}: " if exc.filename else ""
        code = EXIT_FAILURE if exc.errno in _RUNTIME_ERRNOS else EXIT_USAGE
        _fail(f"{where}{exc.strerror or exc}", code)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
