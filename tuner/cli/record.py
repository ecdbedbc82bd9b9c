"""`tuner trace`, `tuner workload` and `tuner recorder`: recordings of a real job, the traces
made from them, and the workloads fitted to those."""

from __future__ import annotations

from pathlib import Path

import click

from tuner.cli.app import cli
from tuner.cli.options import flink_version_option, output_option
from tuner.errors import TunerError


@cli.group()
def trace() -> None:
    """Recorded keyed-state traces: generate one from a workload, or inspect one."""


@trace.command("generate")
@click.argument("workload_file", metavar="WORKLOAD", type=click.Path(path_type=Path))
@output_option("Trace file to write (Parquet).", required=True)
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
@output_option("Trace file to write (Parquet).", required=True)
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
    if stats.compressibility is not None:
        click.echo(
            f"written values and map user keys compress {stats.compressibility:.2f}x (LZ4 in "
            f"4 KB blocks, {stats.compressibility_bytes / 2**20:.1f} MiB sampled): the replay's "
            "bytes are made to compress the same"
        )
    else:
        click.echo(
            "compressibility not measured (too few writes sampled, or a recorder before it): "
            "the replay's bytes compress about 2.2x (LZ4 in 4 KB blocks)"
        )
    share = stats.time_share.share if stats.time_share else None
    doubt = stats.time_share.doubt(stats.iterations) if stats.time_share else ""
    if share is not None and not doubt:
        click.echo(
            f"state calls took {share:.1%} of the job's recorded time in its most "
            "state-bound subtask (sampled): a state backend gain of g speeds the job up by "
            "1/(1 - share + share/(1+g)) - 1. It is this run's share: where Flink's default "
            "runs fast in some runs and slow in others, each records its own (Nexmark q18: "
            "31-84 %); record twice to see whether yours does"
        )
    elif doubt:
        click.echo(f"no share of task time in state calls: {doubt}")


@cli.group()
def workload() -> None:
    """Workload descriptions: fit one to a recorded trace."""


@workload.command("fit")
@click.argument("trace_file", type=click.Path(path_type=Path))
@output_option("Workload YAML to write.", required=True)
@flink_version_option("2.x", "flink_version of the fitted workload (2.x or 1.20).")
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
@output_option("File to write (default: print it).")
@flink_version_option("2.x", "flink_version of the workload: 2.x or 1.20.")
def workload_from_config(
    flink_conf: Path, trace_file: Path | None, output: Path | None, flink_version: str
) -> None:
    """The memory section of a workload from the job's Flink configuration (managed memory,
    slots, RocksDB memory options), with how each number was derived; with --trace, a workload
    that replays a recorded trace under that memory."""
    from tuner.fileio import atomic_write_text
    from tuner.workload.from_config import workload_from_config

    target = output if output is not None else Path("workload.yaml")
    text = workload_from_config(flink_conf, trace_file, flink_version, target)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text)
        click.echo(str(output))


@cli.group()
def recorder() -> None:
    """Record a running Flink job's keyed-state calls (a state backend that wraps yours)."""


@recorder.command("jar")
@flink_version_option()
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
@flink_version_option()
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
