"""`tuner check-config`, `compare`, `size`, `noise`, `validate` and `bench`: measuring
configurations outside a search, and checking a config file."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from tuner.cli.app import EXIT_USAGE, cli
from tuner.cli.options import (
    disk_option,
    flink_version_option,
    jobs_option,
    output_option,
    repeats_option,
)
from tuner.flink.options import PREDEFINED, PREDEFINED_OPTIONS


@cli.command("check-config")
@click.argument("file", metavar="CONFIG", type=click.Path(path_type=Path))
@flink_version_option(None, 'Flink version the config is for: "1.20" or "2.x" (e.g. 2.0 .. 2.3).')
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
@click.option(
    "--restore",
    is_flag=True,
    help="Also restore each run's job from a checkpoint of its end state (local, incremental) "
    "and set the real restore time (the keyed operator's INITIALIZING time, from Flink's own "
    "timestamps) beside the run's restore figures.",
)
def validate(run_dir: Path, configs: str, records: int | None, repeats: int, restore: bool) -> None:
    """Replay RUN_DIR's operation stream on real Flink (RocksDB backend) under each
    configuration, and compare with the replay's prediction.

    Runs on the Flink line the workload targets, in one slot with the slot's share of the
    memory: Flink 2.3 (`pip install 'tuner[flink]'`) for 2.x, Flink 1.20 for 1.20 (its jars
    are fetched from PyPI once when missing); Java 17. Compiles the bundled job with javac on
    first use. Writes validation.csv and validation.md into RUN_DIR, prints the rank
    correlation, the pairs of configurations Flink tells apart and how many the replay orders
    alike, and the predicted vs real gain, and adds them to report.md. With --restore, also
    each configuration's real restore time against the replay's and Flink's backend's.
    """
    from tuner.report import render_report
    from tuner.validate import validate_run

    def progress(p: Any) -> None:
        if p.done < p.total:  # the last call only reports the finished last run
            click.echo(f"[{p.done + 1}/{p.total}] {p.label} repeat {p.repeat + 1}", err=True)

    result = validate_run(run_dir, configs.split(","), records, repeats, progress, restore=restore)
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
    from tuner.scale import load_scaled, model_workload

    production, scale = load_scaled(workload_file)
    w = model_workload(production, scale)  # a production-size workload: its scaled model
    contenders = [contender(c, w.flink_version) for c in configs]
    target = disk_from(disk) if disk else w.disk

    def tick(done: int, total: int, name: str) -> None:
        click.echo(f"[{done + 1}/{total}] {name}", err=True)

    result = run_compare(w, contenders, repeats, target, on_measure=tick, scale=scale.factor)
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
@output_option(
    "Directory for sizing.csv, sizing.md, sizing.png (default: RUN_DIR with --run, "
    "else results/<workload>-size-<timestamp>/).",
    dest="out",
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
    from tuner.costmodel import disk_from
    from tuner.report import render_report
    from tuner.report.memory import native_share
    from tuner.results import load_run
    from tuner.scale import load_scaled
    from tuner.sizing import (
        ContainerAdvice,
        check_one_target,
        parse_factors,
        parse_total_memory,
        size_memory,
        sizing_contenders,
    )
    from tuner.sizing_report import write_sizing

    check_one_target(run_dir, config_file)  # said before the workload is read
    w, scale = load_scaled(workload_file)
    contenders = sizing_contenders(w.flink_version, run_dir, config_file)
    steps = parse_factors(factors)
    total = parse_total_memory(total_flink_memory)
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
        scale=scale,
    )
    if run_dir is not None:
        # The container beyond managed memory, from what the run's confirmation measured.
        run = load_run(run_dir)
        share = native_share(run, run.recommendation())
        if share is not None:
            per_slot = result.advice.recommended if result.advice is not None else result.budget
            result = replace(
                result, container=ContainerAdvice(share, per_slot, w.memory.slots_per_tm)
            )
    if out is None:
        out = run_dir if run_dir is not None else _stamped(Path("results"), f"{w.name}-size")
    command = " ".join(
        [f"tuner size {workload_file}"]
        + ([f"--run {run_dir}"] if run_dir is not None else [])
        + ([f"--config {config_file}"] if config_file is not None else [])
        + [f"--repeats {repeats}", f"--tolerance {tolerance:g}", f"--factors {factors}"]
        + ([f"--disk {disk}"] if disk else [])
    )
    files = write_sizing(result, out, command)
    if run_dir is not None:
        render_report(run_dir)
    click.echo(result.render())
    for f in files:
        click.echo(str(f))


def _stamped(root: Path, name: str) -> Path:
    """A directory under ``root`` named for now."""
    return root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
