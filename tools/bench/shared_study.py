"""Figures for README "Tune on many machines", on a throw-away PostgreSQL (tests/pgcluster.py).

workers:  wall time of N search trials with 1 process measuring (the coordinator alone) vs 2
          (the coordinator and one `tuner worker`), real rocksdict replay, through the CLI.
storage:  time spent in storage calls per trial (count, ask incl. sampling, mark, check, store)
          by one worker, PostgreSQL vs SQLite, on the fake engine so that nothing else differs.

    python tools/bench/shared_study.py workers --workers 1 --trials 24
    python tools/bench/shared_study.py storage --trials 24
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
import sqlalchemy  # noqa: E402

from tests.pgcluster import running_cluster  # noqa: E402
from tuner.remote import create_shared_study, run_worker  # noqa: E402
from tuner.search.shared import StudySpec  # noqa: E402
from tuner.search.storage import Retry, Scrubber, driver_url, open_storage  # noqa: E402
from tuner.search.study import StudyConfig  # noqa: E402
from tuner.trace.digest import stream_sha256  # noqa: E402
from tuner.trace.generator import generate, stream_header  # noqa: E402
from tuner.trace.parquet import read_trace, write_trace  # noqa: E402
from tuner.workload import dump_workload, load_workload  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search_span(url: str, study: str) -> tuple[float, int]:
    storage = optuna.storages.RDBStorage(driver_url(url))
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    measured = [t for t in trials if isinstance(t.user_attrs.get("record"), dict)]
    measured = [t for t in measured if t.user_attrs["record"]["status"] != "skipped"]
    start = min(t.datetime_start for t in measured if t.datetime_start)
    end = max(t.datetime_complete for t in measured if t.datetime_complete)
    return (end - start).total_seconds(), len(measured)


def workers(args: argparse.Namespace) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tuner = [sys.executable, "-m", "tuner.cli"]
    with running_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = cluster.create_database("bench")
        started = time.monotonic()
        extra = [
            subprocess.Popen(
                [*tuner, "worker", "--storage", url, "--study", "w"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(args.workers - 1)
        ]
        subprocess.run(
            [
                *tuner,
                "run",
                args.workload,
                "--trials",
                str(args.trials),
                "--repeats",
                "1",
                "--out",
                f"{tmp}/run",
                "--storage",
                url,
                "--study",
                "w",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in extra:
            p.wait()
        total = time.monotonic() - started
        span, n = _search_span(url, "w")
        print(
            f"{args.workers} process(es) measuring: {n} search trials in {span:.0f} s "
            f"({span / n:.1f} s per trial); whole run {total:.0f} s"
        )


def storage(args: argparse.Namespace) -> None:
    w = load_workload(args.workload)
    sql = {"statements": 0, "seconds": 0.0}
    started: dict[int, float] = {}

    # Every statement any engine of this process sends, timed from execute to result.
    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
    def before(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        started[id(cursor)] = time.perf_counter()

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "after_cursor_execute")
    def after(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        sql["statements"] += 1
        sql["seconds"] += time.perf_counter() - started.pop(id(cursor), time.perf_counter())

    with running_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.parquet"
        write_trace(trace, stream_header(w), generate(w, "preload"), generate(w, "measure"))
        digest = stream_sha256(read_trace(trace))
        urls = {
            "postgresql": cluster.create_database("overhead"),
            "sqlite": f"sqlite:///{tmp}/study.db",
        }
        for rep in range(args.repeats):
            for backend, url in urls.items():
                name = f"o{rep}"
                spec = StudySpec(
                    run_id=name,
                    origin="bench",
                    created_at=time.time(),
                    workload_yaml=dump_workload(w),
                    stream_sha256=digest,
                    trials=args.trials,
                    objective="throughput",
                    seed=1,
                    engine="fake",
                    disk=None,
                    trial_timeout_s=300.0,
                    heartbeat_s=10,
                )
                retry = Retry(Scrubber(url), backend)
                store = open_storage(url, retry=retry)
                create_shared_study(store, name, spec, StudyConfig(trials=args.trials), retry)
                store.engine.dispose()
                sql.update(statements=0, seconds=0.0)
                result = run_worker(url, name, work_dir=Path(tmp) / f"w-{backend}-{rep}")
                per = result.summary.storage_s
                ms = sorted(1000 * s for s in per)
                n = len(per)
                print(
                    f"{backend:10s} repeat {rep + 1}: {n} trials, storage calls per trial "
                    f"median {statistics.median(ms):.0f} ms (min {ms[0]:.0f}, max {ms[-1]:.0f}; "
                    f"includes TPE sampling in ask); SQL per trial: "
                    f"{sql['statements'] / n:.0f} statements, "
                    f"{1000 * sql['seconds'] / n:.0f} ms executing (heartbeats included)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["workers", "storage"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workload", default=str(ROOT / "workloads" / "quickstart.yaml"))
    args = parser.parse_args()
    workers(args) if args.what == "workers" else storage(args)


if __name__ == "__main__":
    main()
