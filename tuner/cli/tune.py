"""`tuner run`, `tuner worker` and `tuner report`: the study and what it leaves behind."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from tuner.cli.app import cli
from tuner.cli.options import (
    DEFAULT_TIME_BUDGET,
    ProgressLine,
    StopAfterCurrent,
    disk_option,
    fmt_duration,
    jobs_option,
    output_option,
    repeats_option,
    rescale_factor,
    storage_option,
    time_budget_seconds,
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
@output_option(
    "Run directory. Default: results/<workload-name>-<timestamp>/ "
    "(an existing non-empty directory is never overwritten).",
    dest="out",
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
    type=click.Choice(["throughput", "pareto", "checkpoint", "recovery"]),
    default=None,
    help="throughput (default): maximise replay ops/s within the budget; pareto: throughput "
    "vs p99 read latency (a Pareto front); checkpoint: minimise the incremental checkpoint "
    "size while throughput stays at least --throughput-floor of the reference's (your "
    "--baseline, else Flink's default); recovery: the same floor, minimising the time to restore "
    "a new instance from a checkpoint of the state at the end of the measurement (the files "
    "copied from a local checkpoint directory, RocksDB opened). A resumed run keeps its own.",
)
@click.option(
    "--throughput-floor",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="--objective checkpoint or recovery: the least throughput a candidate keeps, as a share "
    "of the "
    "reference's baseline measurement.",
)
@click.option(
    "--rescale",
    callback=rescale_factor,
    default=None,
    metavar="N|1/N",
    help="Measure every restore as one after a change of the job's parallelism. N: it grew "
    "N-fold; the new subtask that owns the first 1/N of the replayed subtask's key groups, "
    "restored from its whole checkpoint and clipped to them. 1/N: it shrank N-fold; the one "
    "subtask left restores the replayed subtask's key groups from N old subtasks' checkpoints, "
    "merged (on the flink-backend engine by Flink's own rescaling restore, which "
    "use-ingest-db-restore-mode speeds up). With --objective recovery the search minimises that "
    "restore. A resumed run keeps its own.",
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
    "--warm-start/--no-warm-start",
    default=True,
    show_default=True,
    help="Tell the search what Flink's option sets and your --baseline measured before its "
    "first trial, for each that is a point of the search space (SPINNING_DISK_OPTIMIZED_HIGH_MEM "
    "is not: its 128 KiB blocks are off the searched range, its merge of 3 memtables too). "
    "The random start keeps its length. Not with --storage: workers would count them as trials.",
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
    callback=time_budget_seconds,
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
    "(and gets it afresh). A recorded trace of more calls than 2,500 per second of budget is "
    "replayed as a key sample of itself (a model of that share of the job).",
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
    warm_start: bool,
    confirm_top: int,
    trial_timeout: float,
    results_dir: Path,
    storage: str | None,
    study_name: str | None,
    scale_factor: str | None,
    baseline: Path | None,
    minimal_repeats: int,
    throughput_floor: float,
    rescale: float | None,
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
    from tuner.launch import open_run, summary_lines
    from tuner.runner import run_study

    ctx = click.get_current_context()
    given = {n for n in ctx.params if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}
    launch = open_run(
        target,
        ctx.params,
        given,
        resume=resume,
        out=out,
        results_dir=results_dir,
        scale_factor=scale_factor,
        baseline=baseline,
    )
    for note in launch.notes:
        click.echo(f"tuner: {note}" if note.startswith("warning: ") else note, err=True)
    progress = ProgressLine()
    started = time.monotonic()
    try:
        with StopAfterCurrent() as stop:
            summary = run_study(
                launch.workload,
                launch.run_dir,
                launch.settings,
                on_progress=progress,
                should_stop=stop,
                started=begun,
            )
    except KeyboardInterrupt:  # run_study marked the run incomplete
        progress.close()
        click.echo(
            f"tuner: aborted; resume with: tuner run --resume {launch.run_dir.path}", err=True
        )
        sys.exit(130)
    finally:
        progress.close()
    click.echo(f"{summary.status} in {fmt_duration(time.monotonic() - started)}: {summary.run_dir}")
    for line in summary_lines(summary):
        click.echo(line)


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
