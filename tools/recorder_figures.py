"""The recorder's figures in README.md, measured on this machine.

    python tools/recorder_figures.py overhead [--pairs 7] [--records 60000] [--sample 0.1] \
        [--keys 200000] [--managed 64mb] [--parallelism 1]
    python tools/recorder_figures.py import-speed [--events 5000000] [--repeats 3]
    python tools/recorder_figures.py fit-agreement [--records 40000]
    python tools/recorder_figures.py fit-cost [--records 40000] [--alone-records 8000]
    python tools/recorder_figures.py real-size --out results/demo-real-size [--records 1500000]
    python tools/recorder_figures.py share-estimates RECORDING_DIR...
    python tools/recorder_figures.py real-gain --out DIR --config RUN/config.yaml [--rounds 3]

Run wall-clock measurements alone on the machine (here: under ``flock -x /work/heavy.lock``).

overhead       the demo job (tuner/recorder/java/RecorderDemoJob.java: Value, Map, List state,
               timers, a window) without and with recording, in interleaved pairs (plain,
               recorded, plain, recorded ...), throughput = records / Flink's net job runtime;
               prints each pair's recorded/plain ratio, their median and range, and the same
               for the JVM's CPU time (a counted figure, steadier on a shared machine).
import-speed   a synthetic recording of 4 subtask files (the recorder's format, random keys) is
               imported ``--repeats`` times; prints events/s of each import (wall clock and
               per CPU second of the importing process).
fit-agreement  records the demo job, imports and fits it, then replays Flink's predefined option
               sets on the recording and on the fitted workload: both rankings and the Spearman.
fit-cost       CPU seconds of one DEFAULT replay of the recording and of the fitted workload,
               and of each fitted state replayed alone.
real-size      the README's own-job path on the demo job at real size (parallelism 1, 64 mb of
               managed memory, every key recorded, tens of millions of state calls): the job
               alone on RocksDB's default and on the heap backend, interleaved (the heap's share),
               then recorded, imported (the recorded share), and tuned with ``tuner run`` at
               default flags, each step timed. Keeps its files under ``--out``; a step already
               done there is not redone.
real-gain      the demo job at real size (as real-size runs it) under Flink's default and under
               a run's config.yaml, interleaved (the order alternates from round to round):
               each round's net runtimes, and the job's throughput gain (median and range of
               the rounds' gains); the promise of a run on real-size's recording is checked so.
share-estimates  for each recording directory (all ``*.tunerrec`` files under it, one job): the
               recorded share of time in state as the sum over subtasks over the job's time
               (before issue 16's fix) and as the pace-setting subtask's (today's).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuner.recorder.demo import run_demo  # noqa: E402
from tuner.recorder.format import EVENT_DTYPE, write_recording  # noqa: E402
from tuner.trace.recording import import_recording  # noqa: E402


def overhead(
    pairs: int,
    records: int,
    flink_version: str,
    *,
    sample: float = 1.0,
    keys: int | None = None,
    managed: str | None = None,
    parallelism: int = 2,
) -> None:
    ratios = []
    cpu_ratios = []
    job: dict[str, Any] = {"flink_version": flink_version, "parallelism": parallelism}
    job.update({"keys": keys} if keys is not None else {})
    if managed is not None:
        job["extra_config"] = f"taskmanager.memory.managed.size: {managed}\n"
    with tempfile.TemporaryDirectory(prefix="tuner-overhead-") as tmp:
        run_demo(Path(tmp) / "warm", records=2000, flink_version=flink_version)  # compile, cache
        for i in range(pairs):
            plain = run_demo(Path(tmp) / f"p{i}", records=records, record=False, **job)
            rec = run_demo(Path(tmp) / f"r{i}", records=records, sample=sample, **job)
            # Only its cost is wanted: a recording of every key at real size is gigabytes.
            shutil.rmtree(Path(tmp) / f"r{i}", ignore_errors=True)
            tp_plain = records / plain.net_runtime_ms * 1000
            tp_rec = records / rec.net_runtime_ms * 1000
            ratios.append(tp_rec / tp_plain)
            cpu_ratios.append(rec.cpu_s / plain.cpu_s)
            print(
                f"pair {i + 1}: plain {tp_plain:,.0f} rec/s ({plain.cpu_s:.1f} CPU s), recorded "
                f"{tp_rec:,.0f} rec/s ({rec.cpu_s:.1f} CPU s): throughput ratio "
                f"{tp_rec / tp_plain:.3f}, CPU ratio {rec.cpu_s / plain.cpu_s:.3f}",
                flush=True,
            )
    print(
        f"Flink {flink_version}, {records} records, sample {sample:g}, {pairs} pairs: median "
        "recorded/plain "
        f"throughput {statistics.median(ratios):.3f} (range {min(ratios):.3f} .. "
        f"{max(ratios):.3f}); median recorded/plain JVM CPU time "
        f"{statistics.median(cpu_ratios):.3f} (range {min(cpu_ratios):.3f} .. "
        f"{max(cpu_ratios):.3f})"
    )


def import_speed(events: int, repeats: int) -> None:
    states = [
        {"id": 0, "name": "count", "kind": "value", "namespace": "void", "ttl": False},
        {"id": 1, "name": "recent", "kind": "map", "namespace": "void", "ttl": False},
        {
            "id": 2,
            "name": "_timer_state/event_user-timers",
            "kind": "timers",
            "namespace": "timer",
            "ttl": False,
        },
    ]
    per_file = events // 4
    with tempfile.TemporaryDirectory(prefix="tuner-import-") as tmp:
        job = Path(tmp) / "rec" / "job"
        job.mkdir(parents=True)
        for i in range(4):
            rng = np.random.default_rng(i)
            ev = np.zeros(per_file, dtype=EVENT_DTYPE)
            ev["ts"] = 1_000_000 + np.sort(rng.integers(0, 600_000, per_file))
            ev["key"] = rng.integers(0, 1_000_000, per_file).astype(np.uint64) * np.uint64(
                0x9E3779B97F4A7C15
            )
            ev["state"] = rng.integers(0, 3, per_file)
            ev["op"] = np.where(ev["state"] == 2, 8, np.where(ev["state"] == 1, 4, 1))
            ev["aux"] = np.where(ev["state"] == 1, rng.integers(0, 100, per_file), ev["ts"] + 500)
            ev["size"] = np.where(ev["state"] == 2, 0, 100)
            ev["ns_a"] = ev["ns_b"] = -1
            header = {"job_id": "job", "operator": "Op_(1/4)", "subtask": i, "max_parallelism": 128}
            footer = {"events": per_file, "stopped": None, "key_lengths": {"8": per_file}}
            write_recording(job / f"Op.{i}.0.0.tunerrec", header, states, ev, footer)
        size = sum(f.stat().st_size for f in job.iterdir())
        for r in range(repeats):
            cpu0 = time.process_time()
            stats = import_recording(Path(tmp) / "rec", Path(tmp) / "trace.parquet")
            cpu = time.process_time() - cpu0
            print(
                f"import {r + 1}: {stats.events} events ({size / 1e6:.0f} MB) in "
                f"{stats.seconds:.2f} s wall = {stats.events_per_s / 1e6:.2f}M events/s; "
                f"{cpu:.2f} CPU s = {stats.events / cpu / 1e6:.2f}M events per CPU second",
                flush=True,
            )


def fit_agreement(records: int) -> None:
    from tuner.search.fit_check import rank_agreement
    from tuner.trace.fit import fit_to_file
    from tuner.workload import load_workload

    with tempfile.TemporaryDirectory(prefix="tuner-fit-") as tmp:
        work = Path(tmp)
        run_demo(work / "demo", records=records, keys=2000)
        trace = work / "trace.parquet"
        import_recording(work / "demo" / "rec", trace)
        conf = work / "config.yaml"
        conf.write_text("taskmanager.memory.managed.size: 64m\ntaskmanager.numberOfTaskSlots: 1\n")
        from tuner.flink.memory_config import memory_from_config

        out = fit_to_file(trace, work / "fitted.yaml", memory=memory_from_config(conf).memory)
        print(out.report)
        print(rank_agreement(trace, load_workload(out.path)).render())


def fit_cost(records: int, alone_records: int) -> None:
    """CPU of one DEFAULT replay of the recording vs the fitted workload, and of each fitted
    state replayed alone (where a fitted stream's cost comes from)."""
    import dataclasses

    import yaml

    from tuner.search.measure import measure_settings
    from tuner.trace.fit import fit_to_file
    from tuner.trace.generator import generate, stream_header
    from tuner.trace.parquet import write_trace
    from tuner.workload import load_workload, parse_workload

    memory = {"mode": "managed", "managed_per_slot": "64 mb"}
    with tempfile.TemporaryDirectory(prefix="tuner-fitcost-") as tmp:
        work = Path(tmp)
        run_demo(work / "demo", records=records, keys=2000)
        trace = work / "trace.parquet"
        import_recording(work / "demo" / "rec", trace)
        fitted = load_workload(fit_to_file(trace, work / "fitted.yaml", memory=memory).path)

        def cpu(w: object, path: Path) -> tuple[int, float]:
            m = measure_settings(w, str(path), {}, tempfile.mkdtemp(dir=tmp))  # type: ignore[arg-type]
            return int(m["ops"]), m["cpu_s"]

        def generated(w: object, name: str) -> Path:
            path = work / f"{name}.parquet"
            write_trace(path, stream_header(w), generate(w, "preload"), generate(w, "measure"))  # type: ignore[arg-type]
            return path

        on_trace = dataclasses.replace(fitted, states=(), trace=str(trace))
        calls, secs = cpu(on_trace, trace)
        print(f"recording: {calls} calls, {secs:.2f} CPU s", flush=True)
        calls, secs = cpu(fitted, generated(fitted, "fitted"))
        print(f"fitted:    {calls} calls, {secs:.2f} CPU s", flush=True)
        data = yaml.safe_load((work / "fitted.yaml").read_text())
        data["replay"]["records"] = alone_records
        for state in data["states"]:
            one = parse_workload({**data, "states": [state]}, str(work / "one.yaml"))
            calls, secs = cpu(one, generated(one, "one"))
            print(
                f"fitted {state['name']} alone ({alone_records} records): {calls} calls, "
                f"{secs:.2f} CPU s"
            )


def _interleaved(
    out: Path, extras: dict[str, str], rounds: int, records: int, keys: int, *, alternate: bool
) -> dict[str, list[float]]:
    """The demo job at real size once per setting (config.yaml lines) per round, after a small
    warm-up run; ``alternate`` reverses the order every other round. Net runtimes, seconds."""
    run_demo(out / "warm", records=2000, record=False)  # compile, cache
    times: dict[str, list[float]] = {name: [] for name in extras}
    for i in range(rounds):
        order = list(extras) if not alternate or i % 2 == 0 else list(reversed(extras))
        for name in order:
            run = run_demo(
                out / f"{name}{i}",
                records=records,
                keys=keys,
                parallelism=1,
                record=False,
                timeout_s=3600,
                extra_config=extras[name],
            )
            times[name].append(run.net_runtime_ms / 1000)
            print(f"round {i + 1} {name}: {run.net_runtime_ms / 1000:.1f} s", flush=True)
    return times


def real_size(out: Path, records: int, keys: int, managed: str, rounds: int) -> None:
    import json
    import subprocess

    out.mkdir(parents=True, exist_ok=True)
    memory = f"taskmanager.memory.managed.size: {managed}\n"
    backends = {b: memory + f"state.backend.type: {b}\n" for b in ("rocksdb", "hashmap")}
    times = _interleaved(out, backends, rounds, records, keys, alternate=False)
    shares = [1 - h / r for r, h in zip(times["rocksdb"], times["hashmap"], strict=True)]
    if shares:  # --rounds 0: the recording and the tuning only
        print(
            f"heap-measured share: median {statistics.median(shares):.1%} (range "
            f"{min(shares):.1%} .. {max(shares):.1%}), {rounds} interleaved rounds",
            flush=True,
        )
    trace = out / "trace.parquet"
    if not trace.exists():
        started = time.perf_counter()
        rec = run_demo(
            out / "record",
            records=records,
            keys=keys,
            parallelism=1,
            timeout_s=3600,
            extra_config=memory + f"tuner.recorder.max-bytes: {8 << 30}\n",
        )
        assert rec.recording_dir is not None
        print(
            f"recorded in {time.perf_counter() - started:.0f} s "
            f"(net {rec.net_runtime_ms / 1000:.1f} s)",
            flush=True,
        )
        started = time.perf_counter()
        stats = import_recording(rec.recording_dir, trace)
        share = stats.time_share.share if stats.time_share is not None else None
        print(
            f"imported {stats.events:,} events in {time.perf_counter() - started:.0f} s; "
            f"recorded share {share:.1%}"
            if share is not None
            else "recorded share: none",
            flush=True,
        )
        (out / "import.json").write_text(json.dumps({"events": stats.events, "share": share}))
    conf = out / "job-config.yaml"
    conf.write_text(memory + "taskmanager.numberOfTaskSlots: 1\n")
    workload = out / "recorded.yaml"
    tuner = [sys.executable, "-m", "tuner.cli"]
    subprocess.run(
        [*tuner, "workload", "from-config", str(conf), "--trace", str(trace), "-o", str(workload)],
        check=True,
    )
    started = time.perf_counter()
    subprocess.run([*tuner, "run", str(workload), "-o", str(out / "tune")], check=False)
    print(f"tuner run at default flags: {time.perf_counter() - started:.0f} s", flush=True)


def real_gain(out: Path, config: Path, records: int, keys: int, managed: str, rounds: int) -> None:
    memory = f"taskmanager.memory.managed.size: {managed}\n"
    # The run's config.yaml, without a memory size of its own: the job's slot is the one measured.
    emitted = "".join(
        line
        for line in config.read_text().splitlines(keepends=True)
        if not line.startswith("taskmanager.memory.managed.size")
    )
    settings = {"default": "state.backend.type: rocksdb\n", "recommended": emitted}
    out.mkdir(parents=True, exist_ok=True)
    extras = {name: memory + lines for name, lines in settings.items()}
    times = _interleaved(out, extras, rounds, records, keys, alternate=True)
    gains = [d / r - 1 for d, r in zip(times["default"], times["recommended"], strict=True)]
    if gains:
        print(
            f"job throughput gain: median {statistics.median(gains):+.1%} (range "
            f"{min(gains):+.1%} .. {max(gains):+.1%}), {rounds} interleaved rounds",
            flush=True,
        )


def share_estimates(dirs: list[Path]) -> None:
    from tuner.recorder.format import read_recording
    from tuner.trace.recording import state_time_share

    for d in dirs:
        recs = [read_recording(f) for f in sorted(d.rglob("*.tunerrec"))]
        share = state_time_share(recs)
        summed = share.estimated_state_cpu_s / share.denominator_s if share.denominator_s else 0
        today = share.share if share.share is not None else float("nan")
        print(
            f"{d}: {len(recs)} subtask files, summed {summed:.1%}, pace-setting subtask {today:.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("overhead")
    p.add_argument("--pairs", type=int, default=7)
    p.add_argument("--records", type=int, default=60_000)
    p.add_argument("--flink-version", default="2.x")
    p.add_argument("--sample", type=float, default=1.0, help="the recorder's share of keys")
    p.add_argument("--keys", type=int, help="the demo job's keys (its default: 200)")
    p.add_argument("--managed", help="the TaskManager's managed memory, e.g. 64mb")
    p.add_argument("--parallelism", type=int, default=2)
    p = sub.add_parser("import-speed")
    p.add_argument("--events", type=int, default=5_000_000)
    p.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("fit-agreement")
    p.add_argument("--records", type=int, default=40_000)
    p = sub.add_parser("fit-cost")
    p.add_argument("--records", type=int, default=40_000)
    p.add_argument("--alone-records", type=int, default=8_000)
    p = sub.add_parser("real-size")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--records", type=int, default=1_500_000)
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--managed", default="64mb")
    p.add_argument("--rounds", type=int, default=3)
    p = sub.add_parser("real-gain")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path, required=True, help="a run's config.yaml")
    p.add_argument("--records", type=int, default=1_500_000)
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--managed", default="64mb")
    p.add_argument("--rounds", type=int, default=3)
    p = sub.add_parser("share-estimates")
    p.add_argument("dirs", type=Path, nargs="+")
    args = parser.parse_args()
    if args.cmd == "overhead":
        overhead(
            args.pairs,
            args.records,
            args.flink_version,
            sample=args.sample,
            keys=args.keys,
            managed=args.managed,
            parallelism=args.parallelism,
        )
    elif args.cmd == "import-speed":
        import_speed(args.events, args.repeats)
    elif args.cmd == "fit-agreement":
        fit_agreement(args.records)
    elif args.cmd == "fit-cost":
        fit_cost(args.records, args.alone_records)
    elif args.cmd == "share-estimates":
        share_estimates(args.dirs)
    elif args.cmd == "real-gain":
        real_gain(args.out, args.config, args.records, args.keys, args.managed, args.rounds)
    else:
        real_size(args.out, args.records, args.keys, args.managed, args.rounds)


if __name__ == "__main__":
    main()
