"""Run one Nexmark query on a local Flink 2.3 MiniCluster and print the job's own throughput.

    python tools/nexmark/run.py q5 --nexmark ~/src/nexmark --events 2000000 --managed 64mb \
        [--backend rocksdb|hashmap] [--config RUN_DIR/config.yaml] \
        [--record --sample 0.1 [--max-events N]] [--workdir DIR]

The query is upstream's SQL (``queries/ddl_gen.sql``, ``ddl_views.sql`` and ``<query>.sql`` of
the build from ``tools/nexmark/build.py``), with its variables set as upstream's QueryRunner sets
them: the ``nexmark`` source bounded at ``--events`` events, ``--tps`` as the generator's event
rate (upstream's default 10M/s: it spaces the events' timestamps, the source itself emits at full
speed), proportions person/auction/bid 1/3/46, into upstream's ``blackhole`` sink.

The cluster is one TaskManager slot at parallelism 1 whose managed memory is ``--managed``: on
``rocksdb`` that is the RocksDB budget the slot's stateful operators share. Upstream's own Flink
settings for Nexmark apply (``conf/config.yaml``: mini-batch 2 s / 50,000 rows, split distinct
aggregates, incremental checkpoints every 180 s); ``--flink-defaults`` drops the table settings.
``--config`` merges a Flink 2.x ``config.yaml`` (the one ``tuner run`` emits) under the harness:
the harness keeps the backend, memory, directories and parallelism, everything else is the
file's. ``--record`` switches the tuner recorder on (the lines ``tuner recorder config`` prints,
with the jar ``tuner recorder jar`` builds); the recording lands in ``WORKDIR/rec/<job id>/``.

The figure is events / Flink's ``JobExecutionResult.getNetRuntime()``: the job's own time, not
the JVM and cluster start.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT, Path(__file__).resolve().parent):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from build import NexmarkBuild, build  # noqa: E402

from tuner.errors import TunerError, TunerRuntimeError  # noqa: E402
from tuner.recorder.build import build_jar, config_lines  # noqa: E402
from tuner.units import format_memory_size, parse_memory_size  # noqa: E402
from tuner.validate.flink import compile_java, run_job  # noqa: E402

__all__ = [
    "BACKENDS",
    "QueryRun",
    "Recording",
    "harness_settings",
    "run_query",
    "statements",
]

log = logging.getLogger(__name__)

RUNNER = "NexmarkQueryRun"
BACKENDS = ("rocksdb", "hashmap")
# QueryRunner.initializeVarsMap and NexmarkSourceOptions: upstream's defaults.
DEFAULT_TPS = 10_000_000
PROPORTIONS = {"PERSON_PROPORTION": 1, "AUCTION_PROPORTION": 3, "BID_PROPORTION": 46}
# nexmark-flink/src/main/resources/conf/config.yaml: upstream's table settings for Nexmark.
NEXMARK_TABLE_CONFIG: Mapping[str, str] = {
    "table.exec.mini-batch.enabled": "true",
    "table.exec.mini-batch.allow-latency": "2s",
    "table.exec.mini-batch.size": "50000",
    "table.optimizer.distinct-agg.split.enabled": "true",
}
_VAR = re.compile(r"\$\{([A-Z_]+)\}")


@dataclass(frozen=True)
class Recording:
    """Record the run with the tuner recorder: that share of keys, at most that many events."""

    sample: float = 1.0
    max_events: int | None = None


@dataclass(frozen=True)
class QueryRun:
    """One run of one query."""

    query: str
    backend: str
    events: int
    net_runtime_ms: int  # Flink's JobExecutionResult.getNetRuntime
    submit_to_end_ms: int  # the INSERT's submission to the job's end, measured by the runner
    wall_s: float  # the whole JVM: start, cluster, job, shutdown
    rss_peak_bytes: int
    recording_dir: Path | None  # WORKDIR/rec/<job id>/ when recorded
    # The JVM's CPU time from the INSERT's submission to the job's end (every thread: the
    # cluster's start for the job, the tasks, JIT and GC); 0 from a runner that did not say.
    job_cpu_ms: int = 0
    # --rocksdb-metrics: each metric's last reported value, summed over the job's RocksDB
    # instances and column families (reported every second: the job's last second is missing).
    rocksdb_metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        """Events over the job's own runtime."""
        return self.events / (self.net_runtime_ms / 1000.0)


def statements(nexmark: NexmarkBuild, query: str, events: int, tps: int = DEFAULT_TPS) -> list[str]:
    """Upstream's DDL, views and ``query`` as SQL statements, variables set as QueryRunner
    sets them for the generator source; the last statement is the query's INSERT."""
    values = {
        "TPS": str(tps),
        "EVENTS_NUM": str(events),
        "NEXMARK_TABLE": "datagen",
        **{k: str(v) for k, v in PROPORTIONS.items()},
    }
    out: list[str] = []
    for path in (
        nexmark.queries / "ddl_gen.sql",
        nexmark.queries / "ddl_views.sql",
        nexmark.query_file(query),
    ):
        lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("--")]
        text = "\n".join(lines)
        unknown = sorted({m for m in _VAR.findall(text) if m not in values})
        if unknown:
            raise TunerError(
                f"variables this runner does not set: {', '.join(unknown)}", file=str(path)
            )
        text = _VAR.sub(lambda m: values[m.group(1)], text)
        out.extend(s.strip() for s in text.split(";") if s.strip())
    if not out or not out[-1].upper().startswith("INSERT"):
        raise TunerError(f"{query}.sql does not end with an INSERT", file=str(nexmark.queries))
    return out


def harness_settings(
    workdir: Path, backend: str, managed_bytes: int, nexmark_table_config: bool = True
) -> dict[str, str]:
    """The Flink settings every run sets on top of a ``--config`` file (Flink 2.x keys)."""
    if backend not in BACKENDS:
        raise TunerError(f"backend must be one of {', '.join(BACKENDS)}, but got {backend!r}")
    out = {
        "state.backend.type": backend,
        # Upstream's conf/config.yaml: incremental checkpoints every 180 s.
        "execution.checkpointing.interval": "180s",
        "execution.checkpointing.incremental": "true",
        "execution.checkpointing.dir": (workdir / "checkpoints").resolve().as_uri(),
        "execution.checkpointing.checkpoints-after-tasks-finish": "false",
        "state.backend.rocksdb.localdir": str((workdir / "rocksdb").resolve()),
        # One slot at parallelism 1: its managed memory is what RocksDB's operators share.
        "taskmanager.memory.managed.size": f"{managed_bytes}b",
        "taskmanager.numberOfTaskSlots": "1",
        "parallelism.default": "1",
        "rest.bind-port": "0",
    }
    if nexmark_table_config:
        out.update(NEXMARK_TABLE_CONFIG)
    return out


def _runner_classes(nexmark: NexmarkBuild) -> Path:
    source = (Path(__file__).resolve().parent / f"{RUNNER}.java").read_text()
    return compile_java(nexmark.flink, RUNNER, nexmark.jar.parent / "runner", source=source)


def run_query(
    nexmark: NexmarkBuild,
    query: str,
    workdir: Path,
    *,
    events: int,
    managed_bytes: int,
    backend: str = "rocksdb",
    config_yaml: Path | None = None,
    record: Recording | None = None,
    tps: int = DEFAULT_TPS,
    nexmark_table_config: bool = True,
    heap: str = "2g",
    timeout_s: float = 3600.0,
    rocksdb_metrics: Sequence[str] = (),
) -> QueryRun:
    """Run ``query`` once in a fresh JVM under ``workdir`` (created; its RocksDB files and
    checkpoints are removed afterwards, the recording and logs kept)."""
    # Absolute: the JVM runs in another directory, and a relative --workdir would point nowhere.
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sql = workdir / "statements.sql"
    sql.write_text("\0".join(statements(nexmark, query, events, tps)))
    settings = harness_settings(workdir, backend, managed_bytes, nexmark_table_config)
    lines = [f"{k}: {v}" for k, v in settings.items()]
    classpath = [nexmark.jar]
    rec_dir = None
    if record is not None:
        jar = build_jar("2.x")
        classpath.append(jar.path)
        rec_dir = workdir / "rec"
        # After the harness: the recorder's state.backend.type wins, delegating to `backend`.
        lines.append(
            config_lines(
                str(rec_dir.resolve()),
                sample=record.sample,
                max_events=record.max_events,
                delegate=backend,
            )
        )
    if rocksdb_metrics:
        classpath.append(_slf4j_reporter_jar(nexmark))
        lines.extend(f"{k}: {v}" for k, v in metric_settings(rocksdb_metrics).items())
    settings_file = workdir / "settings.yaml"
    settings_file.write_text("\n".join(lines) + "\n")
    conf_dir = "-"
    if config_yaml is not None:
        if not config_yaml.is_file():
            raise TunerError("no such file", file=str(config_yaml))
        (workdir / "conf").mkdir(exist_ok=True)
        shutil.copyfile(config_yaml, workdir / "conf" / "config.yaml")
        conf_dir = str((workdir / "conf").resolve())
    result = workdir / "result.json"
    result.unlink(missing_ok=True)
    try:
        outcome = run_job(
            nexmark.flink,
            _runner_classes(nexmark),
            workdir / "unused",
            result,
            workdir,
            timeout_s=timeout_s,
            jvm_args=(f"-Xms{heap}", f"-Xmx{heap}"),
            main=(RUNNER, str(sql), conf_dir, str(settings_file), str(result)),
            extra_classpath=classpath,
        )
    finally:
        for scratch in ("rocksdb", "checkpoints"):
            shutil.rmtree(workdir / scratch, ignore_errors=True)
    job_id = str(outcome.result["job_id"])
    recorded = rec_dir / job_id if rec_dir is not None else None
    if recorded is not None and not recorded.is_dir():
        raise TunerRuntimeError(f"the recorder wrote nothing under {recorded}")
    return QueryRun(
        query=query,
        backend=backend,
        events=events,
        net_runtime_ms=int(outcome.result["net_runtime_ms"]),
        submit_to_end_ms=int(outcome.result["submit_to_end_ms"]),
        wall_s=outcome.wall_s,
        rss_peak_bytes=outcome.rss_peak_bytes,
        recording_dir=recorded,
        job_cpu_ms=int(outcome.result.get("job_cpu_ms", 0)),
        rocksdb_metrics=(
            last_reported(workdir / "flink.log", rocksdb_metrics) if rocksdb_metrics else {}
        ),
    )


# What Flink's slf4j reporter writes per gauge: `<scope>.rocksdb_<name>: <value>`, where a
# property keeps its hyphens (`rocksdb_estimate-live-data-size`, per column family) and a
# statistics ticker has underscores (`rocksdb_block_cache_miss`, per RocksDB instance).
_REPORTED = re.compile(r"^(?:.* - )?(.+)\.rocksdb_([a-z0-9_-]+): (-?[0-9.Ee+-]+)\s*$")


def metric_settings(metrics: Sequence[str]) -> dict[str, str]:
    """Flink settings that switch RocksDB's native ``metrics`` on and report them through
    slf4j into the run's flink.log every second."""
    reporter = "org.apache.flink.metrics.slf4j.Slf4jReporterFactory"
    out = {
        "metrics.reporter.slf4j.factory.class": reporter,
        "metrics.reporter.slf4j.interval": "1 s",
    }
    out.update({f"state.backend.rocksdb.metrics.{m}": "true" for m in metrics})
    return out


def last_reported(log: Path, metrics: Sequence[str]) -> dict[str, float]:
    """Each metric's last reported value per scope (a RocksDB instance's column family, or
    the instance), summed over the scopes; a metric never reported is left out."""
    last: dict[tuple[str, str], float] = {}
    wanted = set(metrics)
    with log.open(errors="replace") as lines:
        for line in lines:
            m = _REPORTED.match(line)
            name = m.group(2).replace("_", "-") if m else ""
            if m and name in wanted:
                last[(name, m.group(1))] = float(m.group(3))
    out: dict[str, float] = {}
    for (metric, _), value in last.items():
        out[metric] = out.get(metric, 0.0) + value
    return out


def _slf4j_reporter_jar(nexmark: NexmarkBuild) -> Path:
    # pyflink ships the reporter as a plugin; on the MiniCluster's classpath it loads as well.
    jars = sorted(
        (nexmark.flink.home / "plugins" / "metrics-slf4j").glob("flink-metrics-slf4j-*.jar")
    )
    if not jars:
        raise TunerError(
            "no flink-metrics-slf4j jar under plugins/metrics-slf4j",
            file=str(nexmark.flink.home),
        )
    return jars[-1]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options run.py and bench.py share."""
    parser.add_argument(
        "--nexmark",
        type=Path,
        default=None,
        help="a nexmark checkout or bare git directory (default: $TUNER_NEXMARK_SRC)",
    )
    parser.add_argument("--events", type=int, default=2_000_000, help="events (default 2M)")
    parser.add_argument("--managed", default="64mb", help="managed memory of the slot")
    parser.add_argument("--tps", type=int, default=DEFAULT_TPS, help="generator's event rate")
    parser.add_argument(
        "--flink-defaults",
        action="store_true",
        help="leave out upstream's table settings (mini-batch, split distinct aggregates)",
    )
    parser.add_argument("--heap", default="2g", help="JVM heap (-Xms/-Xmx)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds before a run is stopped as failed"
    )


def nexmark_source(arg: Path | None) -> Path:
    """--nexmark, else $TUNER_NEXMARK_SRC, else a TunerError saying how to get it."""
    if arg is not None:
        return arg
    env = os.environ.get("TUNER_NEXMARK_SRC")
    if env:
        return Path(env)
    raise TunerError(
        "--nexmark DIR is needed (or $TUNER_NEXMARK_SRC): "
        "git clone https://github.com/nexmark/nexmark"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``run.py QUERY ...``: one run, its figures printed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("query", help="q0 .. q23")
    add_common_arguments(parser)
    parser.add_argument("--backend", choices=BACKENDS, default="rocksdb")
    parser.add_argument("--config", type=Path, help="a Flink 2.x config.yaml to merge")
    parser.add_argument("--record", action="store_true", help="switch the tuner recorder on")
    parser.add_argument("--sample", type=float, default=1.0, help="recorder: share of keys")
    parser.add_argument("--max-events", type=int, help="recorder: events per subtask")
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument(
        "--rocksdb-metrics",
        default="",
        help="RocksDB native metrics to report and print (comma-separated names of "
        "state.backend.rocksdb.metrics.*, e.g. block-cache-miss,block-cache-hit,"
        "estimate-live-data-size): summed over the job's RocksDB instances, last report of "
        "each (every second); switching statistics on costs some throughput",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        nexmark = build(nexmark_source(args.nexmark))
        managed = parse_memory_size(args.managed)
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"nexmark-{args.query}-"))
        run = run_query(
            nexmark,
            args.query,
            workdir,
            events=args.events,
            managed_bytes=managed,
            backend=args.backend,
            config_yaml=args.config,
            record=Recording(args.sample, args.max_events) if args.record else None,
            tps=args.tps,
            nexmark_table_config=not args.flink_defaults,
            heap=args.heap,
            timeout_s=args.timeout,
            rocksdb_metrics=[m for m in args.rocksdb_metrics.split(",") if m],
        )
    except TunerError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2
    except TunerRuntimeError as e:
        print(f"run.py: failed: {e}", file=sys.stderr)
        return 1
    print(
        f"{run.query} on {run.backend} ({format_memory_size(managed)} managed, {run.events:,} "
        f"events): net runtime {run.net_runtime_ms / 1000:.2f} s, {run.events_per_s:,.0f} "
        f"events/s, job CPU {run.job_cpu_ms / 1000:.2f} s (JVM wall {run.wall_s:.1f} s, "
        f"peak RSS {run.rss_peak_bytes / 2**20:.0f} MiB)"
    )
    for metric, value in sorted(run.rocksdb_metrics.items()):
        print(f"rocksdb {metric}: {value:,.0f}")
    if run.recording_dir is not None:
        print(f"recording: {run.recording_dir}")
    print(f"workdir: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
