"""The Nexmark benchmark: record each query, tune it with tuner, run the real query under each
setting, and compare what tuner promised with what the job got.

    python tools/nexmark/bench.py run --nexmark ~/src/nexmark [--queries q4,q5,...] \
        [--events 2000000] [--managed 64mb] [--repeats 3] [--sample 0.1] [--trials N] \
        [--baseline my-config.yaml] [--out results/nexmark]
    python tools/nexmark/bench.py report [--out results/nexmark]
    python tools/nexmark/bench.py overhead --nexmark ~/src/nexmark --queries q5,q8 \
        [--events 1000000] [--repeats 3] [--sample 0.1] [--out results/nexmark-overhead]

``run`` does, for each query (each step skipped when its output is already there, so a rerun
continues where a stopped one ended):

1. record the query (``run.py --record --sample S``; rocksdb, Flink's default RocksDB options);
2. ``tuner trace import`` the recording: events, and the recorded share of time in state;
3. ``tuner workload from-config job-config.yaml --trace trace.parquet -o recorded.yaml``, where
   job-config.yaml holds the job's memory (the managed size, one slot);
4. ``tuner run recorded.yaml --disk page-cache`` (the benchmark's RocksDB files live in the page
   cache), at tuner's default flags (``--trials`` only to shorten a smoke test);
5. one warm-up run, then the real query interleaved ``--repeats`` times (round 1: every setting
   once, round 2 the same starting one setting later ...):
   ``default`` (Flink's defaults), ``predefined`` (the predefined option set that measured best in
   the tuning run), ``recommended`` (the run's config.yaml), ``baseline`` (``--baseline``, if
   given), ``hashmap`` (the heap backend: the speed limit of any RocksDB tuning), and the
   recorder's overhead: ``recorder-sampled`` (``--sample``) and ``recorder-all`` (every key).

``overhead`` runs step 5 for the recorder's rows alone (``default``, ``recorder-sampled``,
``recorder-all``), without recording or tuning anything first.

Every run is one row of ``runs.csv`` (the raw figures, the JVM's CPU time during the job
among them); ``report`` renders ``table.md`` and ``table.csv`` from ``runs.csv`` and each
query's ``tuning.json`` alone, and ``overhead.md`` from the recorder's rows, so they can be
rendered again without running anything. Gains are pairwise within a round (setting / default
of the same round - 1): median and range over the rounds. The recorder's overhead is given
twice: as throughput lost (wall clock, what the job feels) and as CPU time per event added
(counted, what a busy neighbour on this shared machine moves least).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT, Path(__file__).resolve().parent):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from build import NexmarkBuild, build  # noqa: E402
from run import (  # noqa: E402
    Recording,
    add_common_arguments,
    nexmark_source,
    run_query,
)

from tuner.errors import TunerError, TunerRuntimeError  # noqa: E402
from tuner.promise import job_gain  # noqa: E402
from tuner.trace.recording import import_recording  # noqa: E402
from tuner.units import parse_memory_size  # noqa: E402

__all__ = [
    "QUERIES",
    "RunRow",
    "Tuning",
    "best_predefined",
    "from_run",
    "promise_holds",
    "render",
    "schedule",
    "summarize",
]

log = logging.getLogger(__name__)

# The list: aggregations, joins, windows, sessions, distinct aggregates, a rank.
QUERIES = ("q4", "q5", "q7", "q8", "q11", "q15", "q16", "q18", "q20")
PREDEFINED = (
    "SPINNING_DISK_OPTIMIZED",
    "SPINNING_DISK_OPTIMIZED_HIGH_MEM",
    "FLASH_SSD_OPTIMIZED",
)
SETTINGS = (
    "default",
    "predefined",
    "recommended",
    "baseline",
    "hashmap",
    "recorder-sampled",
    "recorder-all",
)
DISK = "page-cache"
RUNS_CSV = "runs.csv"
TUNING_JSON = "tuning.json"
# The goal's tolerance for "the promise holds": within 25% of the real gain, or 5 points.
PROMISE_REL, PROMISE_ABS = 0.25, 0.05


@dataclass(frozen=True)
class RunRow:
    """One real run of one query under one setting (a row of runs.csv)."""

    query: str
    setting: str
    repeat: int
    events: int
    net_runtime_ms: int
    events_per_s: float
    submit_to_end_ms: int
    wall_s: float
    rss_peak_bytes: int
    status: str  # ok or failed
    reason: str
    job_cpu_ms: int = 0  # the JVM's CPU time during the job; 0: not reported


@dataclass(frozen=True)
class Tuning:
    """What recording and tuning one query gave (tuning.json)."""

    query: str
    recorded_events: int
    recorded_share: float | None  # the recorder's share of task-thread CPU in state calls
    record_net_runtime_ms: int
    tune_seconds: float
    state_gain: float | None  # the run's headline gain (recommendation.json gain.median_gain)
    state_gain_low: float | None
    state_gain_high: float | None
    gain_engine: str  # which engine measured state_gain
    promised_job_gain: float | None  # Amdahl's law on the recorded share
    best_predefined: str | None
    best_predefined_replay_gain: float | None
    recommendation_keys: int
    headline: str  # the run's headline, or why the run gave none
    tune_ok: bool = (
        True  # False: `tuner run` failed; the query is measured without a recommendation
    )


def promise_holds(promised: float, real: float) -> bool:
    """The issue's goal: promised within 25% of the real gain, or within 5 points."""
    return abs(promised - real) <= max(PROMISE_REL * abs(real), PROMISE_ABS)


def best_predefined(trials_csv: Path) -> tuple[str | None, float | None]:
    """The predefined option set with the highest median ops/s among a run's baselines, and its
    gain over DEFAULT's median (the replay's figures)."""
    by_label: dict[str, list[float]] = {}
    with trials_csv.open() as f:
        for row in csv.DictReader(f):
            if row.get("status") != "ok" or not row.get("ops_per_s"):
                continue
            label = row.get("label", "")
            if label in (*PREDEFINED, "DEFAULT"):
                by_label.setdefault(label, []).append(float(row["ops_per_s"]))
    medians = {k: statistics.median(v) for k, v in by_label.items()}
    candidates = {k: v for k, v in medians.items() if k in PREDEFINED}
    if not candidates:
        return None, None
    name = max(candidates, key=lambda k: candidates[k])
    default = medians.get("DEFAULT")
    return name, (candidates[name] / default - 1.0 if default else None)


def _tuner(args: Sequence[str], log_file: Path) -> None:
    """Run the tuner CLI (this checkout's) as a user would; its output goes to ``log_file``."""
    cmd = [
        sys.executable,
        "-c",
        "import sys; from tuner.cli import main; sys.argv[0] = 'tuner'; main()",
        *args,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with log_file.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = log_file.read_text().strip().splitlines()[-3:]
        raise TunerRuntimeError(
            f"tuner {' '.join(args[:2])} exited {proc.returncode}: {' / '.join(tail)}"
        )


def job_config(managed_bytes: int) -> str:
    """The job's Flink configuration as tuner sees it: one slot with the benchmark's managed
    memory, RocksDB (what `tuner workload from-config` reads)."""
    return (
        "# the Nexmark benchmark's job: one slot, parallelism 1 (tools/nexmark/run.py)\n"
        "state.backend.type: rocksdb\n"
        f"taskmanager.memory.managed.size: {managed_bytes}b\n"
        "taskmanager.numberOfTaskSlots: 1\n"
        "parallelism.default: 1\n"
    )


def tune(
    nexmark: NexmarkBuild,
    query: str,
    qdir: Path,
    *,
    events: int,
    managed_bytes: int,
    sample: float,
    max_events: int | None,
    trials: int | None,
    tps: int,
    table_config: bool,
    heap: str,
    timeout_s: float,
) -> Tuning:
    """Steps 1-4 for one query; tuning.json is written last, so a stopped run redoes only the
    step it stopped in."""
    done = qdir / TUNING_JSON
    if done.exists():
        return Tuning(**json.loads(done.read_text()))
    qdir.mkdir(parents=True, exist_ok=True)
    rec = run_query(
        nexmark,
        query,
        qdir / "record",
        events=events,
        managed_bytes=managed_bytes,
        record=Recording(sample, max_events),
        tps=tps,
        nexmark_table_config=table_config,
        heap=heap,
        timeout_s=timeout_s,
    )
    assert rec.recording_dir is not None
    trace = qdir / "trace.parquet"
    stats = import_recording(rec.recording_dir, trace)
    share = stats.time_share.share if stats.time_share is not None else None
    conf = qdir / "job-config.yaml"
    conf.write_text(job_config(managed_bytes))
    workload = qdir / "recorded.yaml"
    _tuner(
        ["workload", "from-config", str(conf), "--trace", str(trace), "-o", str(workload)],
        qdir / "from-config.log",
    )
    run_dir = qdir / "tune"
    started = time.perf_counter()
    args = ["run", str(workload), "--disk", DISK, "-o", str(run_dir)]
    if trials is not None:
        args += ["--trials", str(trials)]
    if (run_dir / "run.json").exists():
        args = ["run", str(run_dir), "--resume"]
    try:
        _tuner(args, qdir / "tune.log")
    except TunerRuntimeError as e:
        # A miss to show in the table, not a reason to stop the benchmark.
        tuning = Tuning(
            query=query,
            recorded_events=stats.events,
            recorded_share=share,
            record_net_runtime_ms=rec.net_runtime_ms,
            tune_seconds=time.perf_counter() - started,
            state_gain=None,
            state_gain_low=None,
            state_gain_high=None,
            gain_engine="",
            promised_job_gain=None,
            best_predefined=None,
            best_predefined_replay_gain=None,
            recommendation_keys=0,
            headline=str(e),
            tune_ok=False,
        )
        done.write_text(json.dumps(asdict(tuning), indent=2) + "\n")
        return tuning
    tuning = from_run(
        run_dir,
        query=query,
        recorded_events=stats.events,
        recorded_share=share,
        record_net_runtime_ms=rec.net_runtime_ms,
        tune_seconds=time.perf_counter() - started,
    )
    done.write_text(json.dumps(asdict(tuning), indent=2) + "\n")
    return tuning


def from_run(
    run_dir: Path,
    *,
    query: str,
    recorded_events: int,
    recorded_share: float | None,
    record_net_runtime_ms: int,
    tune_seconds: float,
) -> Tuning:
    """What a finished `tuner run` promised: its recommendation.json's gain (0 when it says
    "keep your configuration": the config.yaml it wrote is then Flink's default) and the best
    predefined set of its trials.csv."""
    recommendation = json.loads((run_dir / "recommendation.json").read_text())
    promise = recommendation.get("promise")
    if isinstance(promise, dict):
        # The run's one figure (tuner.promise): of exactly the emitted config, with the job's
        # gain where the recording's share could be trusted; "keep" promises +0%.
        keep = promise.get("gain") is None
        gain = {k: 0.0 if keep else promise.get(k) for k in ("gain", "low", "high")}
        engine = str(promise.get("engine") or "") + (": keep your configuration" if keep else "")
        state_gain = gain["gain"]
        promised = 0.0 if keep else promise.get("job_gain")
        headline = str(promise.get("text", ""))
    else:  # a run from before the promise: its replay gain and the recorded share
        old = recommendation.get("gain") or {}
        confirmation = recommendation.get("confirmation") or {}
        engine = str(confirmation.get("engine") or "rocksdict replay")
        if confirmation.get("keep") is True:
            old = {"median_gain": 0.0, "low": 0.0, "high": 0.0}
            engine += ": keep your configuration"
        gain = {"gain": old.get("median_gain"), "low": old.get("low"), "high": old.get("high")}
        state_gain = gain["gain"]
        promised = (
            job_gain(state_gain, recorded_share)
            if recorded_share is not None and state_gain is not None
            else None
        )
        headline = str(recommendation.get("headline", ""))
    predefined, predefined_gain = best_predefined(run_dir / "trials.csv")
    return Tuning(
        query=query,
        recorded_events=recorded_events,
        recorded_share=recorded_share,
        record_net_runtime_ms=record_net_runtime_ms,
        tune_seconds=tune_seconds,
        state_gain=state_gain,
        state_gain_low=gain["low"],
        state_gain_high=gain["high"],
        gain_engine=engine,
        promised_job_gain=promised,
        best_predefined=predefined,
        best_predefined_replay_gain=predefined_gain,
        recommendation_keys=len(recommendation.get("settings") or {}),
        headline=headline,
    )


def schedule(settings: Sequence[str], repeats: int) -> list[tuple[str, int]]:
    """The order of the real runs: one warm-up run (round 0, discarded: a fresh JVM on a cold
    machine pays for jars and page cache), then ``repeats`` rounds of every setting, each round
    starting one setting later so that no setting always runs first."""
    out = [("warmup", 0)] if repeats > 0 else []
    for repeat in range(1, repeats + 1):
        shift = (repeat - 1) % len(settings)
        out += [(s, repeat) for s in [*settings[shift:], *settings[:shift]]]
    return out


def _read_rows(path: Path) -> list[RunRow]:
    if not path.exists():
        return []
    out = []
    with path.open() as f:
        for r in csv.DictReader(f):
            out.append(
                RunRow(
                    query=r["query"],
                    setting=r["setting"],
                    repeat=int(r["repeat"]),
                    events=int(r["events"]),
                    net_runtime_ms=int(r["net_runtime_ms"]),
                    events_per_s=float(r["events_per_s"]),
                    submit_to_end_ms=int(r["submit_to_end_ms"]),
                    wall_s=float(r["wall_s"]),
                    rss_peak_bytes=int(r["rss_peak_bytes"]),
                    status=r["status"],
                    reason=r["reason"],
                    # Rows from before the runner reported it have no such column.
                    job_cpu_ms=int(r.get("job_cpu_ms") or 0),
                )
            )
    return out


def _append_row(path: Path, row: RunRow) -> None:
    names = [x.name for x in fields(RunRow)]
    if path.exists():
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header != names:  # an older runs.csv: written again whole, with today's columns
            earlier = _read_rows(path)
            tmp = path.with_suffix(".tmp")
            with tmp.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=names)
                w.writeheader()
                w.writerows(asdict(r) for r in earlier)
            tmp.replace(path)
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=names)
        if new:
            w.writeheader()
        w.writerow(asdict(row))


def _predefined_config(qdir: Path, name: str) -> Path:
    path = qdir / f"predefined-{name}.yaml"
    path.write_text(f"state.backend.rocksdb.predefined-options: {name}\n")
    return path


def measure(
    nexmark: NexmarkBuild,
    query: str,
    qdir: Path,
    tuning: Tuning | None,
    runs_csv: Path,
    *,
    events: int,
    managed_bytes: int,
    repeats: int,
    sample: float,
    baseline: Path | None,
    tps: int,
    table_config: bool,
    heap: str,
    timeout_s: float,
    without: frozenset[str] = frozenset(),
) -> None:
    """Step 5: the real query under every setting but those ``without``, interleaved; rows
    already in runs.csv are kept (a rerun fills in the missing ones). Without a ``tuning``,
    the settings that need none (Flink's default, the heap, the recorder's)."""
    have = {(r.query, r.setting, r.repeat) for r in _read_rows(runs_csv) if r.status == "ok"}
    configs: dict[str, tuple[str, Path | None, Recording | None]] = {
        "default": ("rocksdb", None, None),
        "hashmap": ("hashmap", None, None),
        "recorder-sampled": ("rocksdb", None, Recording(sample)),
        "recorder-all": ("rocksdb", None, Recording(1.0)),
    }
    if tuning is not None and (qdir / "tune" / "config.yaml").is_file() and tuning.tune_ok:
        configs["recommended"] = ("rocksdb", qdir / "tune" / "config.yaml", None)
    if tuning is not None and tuning.best_predefined is not None:
        configs["predefined"] = ("rocksdb", _predefined_config(qdir, tuning.best_predefined), None)
    if baseline is not None:
        configs["baseline"] = ("rocksdb", baseline, None)
    configs["warmup"] = configs["default"]
    settings = [s for s in SETTINGS if s in configs and s not in without]
    for setting, repeat in schedule(settings, repeats):
        if (query, setting, repeat) in have:
            continue
        backend, config, record = configs[setting]
        workdir = qdir / "runs" / f"{setting}-{repeat}"
        try:
            run = run_query(
                nexmark,
                query,
                workdir,
                events=events,
                managed_bytes=managed_bytes,
                backend=backend,
                config_yaml=config,
                record=record,
                tps=tps,
                nexmark_table_config=table_config,
                heap=heap,
                timeout_s=timeout_s,
            )
            row = RunRow(
                query,
                setting,
                repeat,
                events,
                run.net_runtime_ms,
                run.events_per_s,
                run.submit_to_end_ms,
                run.wall_s,
                run.rss_peak_bytes,
                "ok",
                "",
                run.job_cpu_ms,
            )
        except TunerRuntimeError as e:
            row = RunRow(query, setting, repeat, events, 0, 0.0, 0, 0.0, 0, "failed", str(e))
        if record is not None:  # only its cost is wanted; recordings are large
            shutil.rmtree(workdir / "rec", ignore_errors=True)
        _append_row(runs_csv, row)
        log.info(
            "%s %s #%d: %s",
            query,
            setting,
            repeat,
            f"{row.events_per_s:,.0f} events/s" if row.status == "ok" else row.reason,
        )


# ---- report: rendered from runs.csv and tuning.json only ----


@dataclass(frozen=True)
class Spread:
    """Median and range of pairwise figures over rounds."""

    median: float
    low: float
    high: float
    n: int

    def pct(self) -> str:
        """``+12.3% (+8.0 .. +15.1%, 3)``."""
        return f"{self.median:+.1%} ({self.low * 100:+.1f} .. {self.high * 100:+.1f}%, {self.n})"


def _spread(values: Iterable[float]) -> Spread | None:
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return None
    return Spread(statistics.median(v), min(v), max(v), len(v))


def _by_round(rows: Iterable[RunRow], query: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.query == query and r.status == "ok" and r.net_runtime_ms > 0:
            out.setdefault(r.setting, {})[r.repeat] = r.events_per_s
    return out


def _cpu_by_round(rows: Iterable[RunRow], query: str) -> dict[str, dict[int, float]]:
    """Events per CPU second of the job, by setting and round, where the runner reported it
    (the inverse of CPU per event, so that :func:`_overhead` reads it as it reads throughput)."""
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.query == query and r.status == "ok" and r.job_cpu_ms > 0:
            out.setdefault(r.setting, {})[r.repeat] = r.events / (r.job_cpu_ms / 1000.0)
    return out


def _pairwise(tp: Mapping[str, Mapping[int, float]], setting: str) -> Spread | None:
    base, other = tp.get("default", {}), tp.get(setting, {})
    return _spread(other[k] / base[k] - 1.0 for k in sorted(set(base) & set(other)))


def summarize(rows: Sequence[RunRow], tuning: Tuning) -> dict[str, str]:
    """One table row for a query: every cell a finite figure or a short reason."""
    q = tuning.query
    tp = _by_round(rows, q)
    missing = "not measured"

    def median_tp(setting: str) -> float | None:
        v = list(tp.get(setting, {}).values())
        return statistics.median(v) if v else None

    # Share of time in state, from the heap backend: t_heap = t_rocks * (1 - share) when the
    # heap's state calls cost nothing next to RocksDB's, so share = 1 - t_heap / t_rocks,
    # = 1 - tp_rocks / tp_heap, per round.
    base, heap = tp.get("default", {}), tp.get("hashmap", {})
    heap_share = _spread(1.0 - base[k] / heap[k] for k in sorted(set(base) & set(heap)))
    real = _pairwise(tp, "recommended")
    predefined = _pairwise(tp, "predefined")
    d, h, t = median_tp("default"), median_tp("hashmap"), median_tp("recommended")
    gap = (
        f"{(t - d) / (h - d):.0%}"
        if d is not None and h is not None and t is not None and h > d
        else ("heap not faster than default" if d is not None and h is not None else missing)
    )
    promised = tuning.promised_job_gain
    holds = (
        ("yes" if promise_holds(promised, real.median) else "no")
        if promised is not None and real is not None
        else missing
    )
    if tuning.gain_engine.endswith("keep your configuration"):
        # config.yaml is then Flink's default: "recommended" and "default" are the same job,
        # so what their runs differ by is this machine's noise, not a miss of the promise.
        # Said as such, and counted apart from the promises that were put to the test.
        holds = "same configuration" + (f" (strictly: {holds})" if real is not None else "")
    share = (
        f"{tuning.recorded_share:.1%}"
        if tuning.recorded_share is not None
        else "not measured by the recorder"
    )
    return {
        "query": q,
        "recorded share": share,
        "heap-measured share": heap_share.pct().replace("+", "") if heap_share else missing,
        "promised state gain": (
            f"{tuning.state_gain:+.1%} ({tuning.gain_engine})"
            if tuning.state_gain is not None
            else "no gain claimed"
        ),
        "promised job gain": (
            f"{promised:+.1%}"
            if promised is not None
            else ("no figure" if tuning.tune_ok else "tuner run failed (tune.log)")
        ),
        "real job gain": real.pct() if real else missing,
        "promise holds": holds,
        "best predefined": (
            f"{tuning.best_predefined}: {predefined.pct()}"
            if predefined and tuning.best_predefined
            else missing
        ),
        "baseline gain": _pct(_pairwise(tp, "baseline"), "no --baseline"),
        "default events/s": f"{d:,.0f}" if d is not None else missing,
        # Flink's default runs fast in some rounds and several times slower in others on the
        # same input (its reads missing the cache more, as compactions happen to fall); the
        # real gain's median is then the mix of its modes, and the range says which mix.
        "default range events/s": _range(tp.get("default", {}).values(), missing),
        "recommended events/s": _range(tp.get("recommended", {}).values(), missing),
        "heap events/s": f"{h:,.0f}" if h is not None else missing,
        "gap closed": gap,
        "recorder overhead (sampled)": _overhead(tp, "recorder-sampled"),
        "recorder overhead (every key)": _overhead(tp, "recorder-all"),
    }


def _range(values: Iterable[float], reason: str) -> str:
    """``low .. high`` of events/s figures, or ``reason`` when there are none."""
    v = sorted(values)
    return f"{v[0]:,.0f} .. {v[-1]:,.0f}" if v else reason


def _pct(spread: Spread | None, reason: str) -> str:
    return spread.pct() if spread is not None else reason


def _overhead(tp: Mapping[str, Mapping[int, float]], setting: str) -> str:
    s = _pairwise(tp, setting)
    if s is None:
        return "not measured"
    # Overhead = throughput lost: -(recorded / plain - 1); 0.0 - x, not -x: no "-0.0".
    return Spread(0.0 - s.median, 0.0 - s.high, 0.0 - s.low, s.n).pct()


def _cpu_overhead(cpu: Mapping[str, Mapping[int, float]], setting: str) -> str:
    """CPU time per event added by ``setting`` against the default of the same round:
    (recorded CPU / plain CPU - 1), from events per CPU second."""
    base, other = cpu.get("default", {}), cpu.get(setting, {})
    s = _spread(base[k] / other[k] - 1.0 for k in sorted(set(base) & set(other)))
    return s.pct() if s is not None else "not reported"


def _best_cpu_overhead(cpu: Mapping[str, Mapping[int, float]], setting: str) -> str:
    """CPU time per event added by ``setting``, each side's best round against the other's:
    several Nexmark queries have a slow mode under Flink's default that comes and goes from run
    to run with or without the recorder and costs CPU work too (RocksDB does more), so a pair
    that meets it on one side says nothing of the recorder; interference only adds, so each
    side's least CPU is the closest to its own cost."""
    base, other = cpu.get("default", {}), cpu.get(setting, {})
    if not base or not other:
        return "not reported"
    added = max(base.values()) / max(other.values()) - 1.0
    return f"{added:+.1%} (of {len(base)} and {len(other)})"


def overhead_table(rows: Sequence[RunRow]) -> list[dict[str, str]]:
    """One row per query with recorder runs: the recorder's overhead, sampled and with every
    key, as throughput lost and as CPU time per event added (pairwise by round, and best round
    against best round)."""
    order = {q: i for i, q in enumerate(QUERIES)}
    queries = sorted(
        {r.query for r in rows if r.setting.startswith("recorder-")},
        key=lambda q: (order.get(q, len(order)), q),
    )
    out = []
    for q in queries:
        tp, cpu = _by_round(rows, q), _cpu_by_round(rows, q)
        d = list(tp.get("default", {}).values())
        events = {r.events for r in rows if r.query == q and r.status == "ok"}
        out.append(
            {
                "query": q,
                "events": ", ".join(f"{e:,}" for e in sorted(events)),
                "default events/s": f"{statistics.median(d):,.0f}" if d else "not measured",
                "throughput lost (sampled)": _overhead(tp, "recorder-sampled"),
                "CPU per event added (sampled)": _cpu_overhead(cpu, "recorder-sampled"),
                "CPU added, best rounds (sampled)": _best_cpu_overhead(cpu, "recorder-sampled"),
                "throughput lost (every key)": _overhead(tp, "recorder-all"),
                "CPU per event added (every key)": _cpu_overhead(cpu, "recorder-all"),
                "CPU added, best rounds (every key)": _best_cpu_overhead(cpu, "recorder-all"),
            }
        )
    return out


def _markdown(table: Sequence[Mapping[str, str]]) -> list[str]:
    cols = list(table[0])
    return [
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(r[c] for c in cols) + " |" for r in table),
    ]


def render_overhead(out: Path) -> Path | None:
    """overhead.md from the recorder's rows of runs.csv under ``out`` (None: there are none)."""
    table = overhead_table(_read_rows(out / RUNS_CSV))
    if not table:
        return None
    md = out / "overhead.md"
    md.write_text(
        "The recorder's cost, pairwise within a round against Flink's default without it: "
        "median (low .. high, rounds). Throughput lost is wall clock (the job's net runtime); "
        "CPU per event added is the JVM's CPU time from the job's submission to its end, "
        "every thread included. Best rounds: each setting's least CPU against the default's "
        "least (a slow mode of the query, with or without the recorder, costs CPU too).\n\n"
        + "\n".join(_markdown(table))
        + "\n"
    )
    return md


def promise_points(
    rows: Sequence[RunRow], tunings: Sequence[Tuning]
) -> list[tuple[str, float, Spread]]:
    """(query, promised job gain, real job gain) for each query that has both."""
    points = []
    for t in tunings:
        real = _pairwise(_by_round(rows, t.query), "recommended")
        if t.promised_job_gain is not None and real is not None:
            points.append((t.query, t.promised_job_gain, real))
    return points


def plot_promises(points: Sequence[tuple[str, float, Spread]], png: Path) -> Path:
    """promise.png: each query's real job gain (median, and its rounds' range) against its
    promise, beside the line where they are equal and the goal's band around it. Both axes are
    speed-ups (1 + gain) on a log scale, so that +20 % and +200 % are both readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    ups = [1 + g for _, p, r in points for g in (p, r.low, r.high)]
    lo, hi = min([0.9, *ups]) * 0.9, max([2.0, *ups]) * 1.1
    line = [lo, hi]
    # The goal's band: the promise within 25 % of the real gain (gains, not speed-ups).
    ax.fill_between(
        line,
        [1 + (x - 1) / (1 + PROMISE_REL) for x in line],
        [1 + (x - 1) / (1 - PROMISE_REL) for x in line],
        color="C2",
        alpha=0.15,
        label="promise within 25 % of the real gain",
    )
    ax.plot(line, line, color="C2", linewidth=1)
    for _query, promised, real in points:
        ax.errorbar(
            [1 + promised],
            [1 + real.median],
            yerr=[[real.median - real.low], [real.high - real.median]],
            fmt="o",
            color="C0" if promise_holds(promised, real.median) else "C3",
            capsize=3,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    as_gain = FuncFormatter(lambda v, _pos: f"{v - 1:+.0%}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(as_gain)
        axis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
    ticks = [t for t in (0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0) if lo <= t <= hi]
    ax.set_xticks([t for t in ticks if t != 1.2])  # +0 % and +20 % would overlap on x
    ax.set_yticks(ticks)
    _label(ax, [(q, 1 + p, 1 + r.median) for q, p, r in points])
    ax.set_xlabel("promised job gain (tuner run)")
    ax.set_ylabel("real job gain (median, range of rounds)")
    ax.set_title("Nexmark: the promise against the real job (red: a miss)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _label(ax: Any, marks: Sequence[tuple[str, float, float]]) -> None:
    """Name each mark beside it, on the side (of four) farthest from the other marks and from
    the names already placed: neighbours on the plot would otherwise cover each other's."""
    to_screen = ax.transData.transform
    dots = [tuple(to_screen((x, y))) for _, x, y in marks]
    taken: list[tuple[float, float]] = []
    sides = ((6.0, 3.0), (-26.0, 3.0), (6.0, -13.0), (-26.0, -13.0))  # offsets in points
    scale = ax.figure.dpi / 72.0
    for (name, x, y), (sx, sy) in zip(marks, dots, strict=True):
        others = [d for d in dots if d != (sx, sy)] + taken
        # Each side's name centre on the screen, and its distance to the nearest other thing.
        centres = [(sx + (dx + 8) * scale, sy + (dy + 4) * scale) for dx, dy in sides]
        room = [
            min((math.hypot(cx - ox, cy - oy) for ox, oy in others), default=math.inf)
            for cx, cy in centres
        ]
        best = room.index(max(room))
        taken.append(centres[best])
        ax.annotate(name, (x, y), xytext=sides[best], textcoords="offset points")


def render(out: Path) -> tuple[Path, ...]:
    """table.md and table.csv from runs.csv and every query's tuning.json under ``out``, and
    promise.png where a query has both a promise and real runs."""
    rows = _read_rows(out / RUNS_CSV)
    tunings = [Tuning(**json.loads(p.read_text())) for p in sorted(out.glob(f"*/{TUNING_JSON}"))]
    order = {q: i for i, q in enumerate(QUERIES)}
    tunings.sort(key=lambda t: (order.get(t.query, len(order)), t.query))
    table = [summarize(rows, t) for t in tunings]
    md, csv_path = out / "table.md", out / "table.csv"
    if not table:
        raise TunerError(f"no {TUNING_JSON} under it: run `bench.py run` first", file=str(out))
    cols = list(table[0])
    with csv_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(table)
    lines = _markdown(table)
    md.write_text(
        "Gains are pairwise within a round (setting / Flink's default of the same round - 1): "
        "median (low .. high, rounds). Heap-measured share = 1 - default / hashmap throughput. "
        "Promised job gain = the run's headline gain through Amdahl's law with the recorded "
        "share. Gap closed = (recommended - default) / (hashmap - default), median "
        "throughputs. Recorder overhead = throughput lost with recording on.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    points = promise_points(rows, tunings)
    return (md, csv_path, plot_promises(points, out / "promise.png")) if points else (md, csv_path)


def main(argv: Sequence[str] | None = None) -> int:
    """``bench.py run ...`` / ``bench.py report``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="record, tune and measure each query")
    add_common_arguments(run_p)
    run_p.add_argument("--queries", default=",".join(QUERIES))
    run_p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    run_p.add_argument("--sample", type=float, default=0.1, help="recorder: share of keys")
    run_p.add_argument("--max-events", type=int, help="recorder: events per subtask")
    run_p.add_argument("--trials", type=int, help="tuner run --trials (default: tuner's)")
    run_p.add_argument("--baseline", type=Path, help="a user-style config.yaml to compare too")
    run_p.add_argument("--out", type=Path, default=ROOT / "results" / "nexmark")
    run_p.add_argument(
        "--without",
        default="",
        help="settings not to run, comma-separated (e.g. recorder-sampled,recorder-all: a "
        "slow query's recorder overhead rows double its real runs)",
    )
    rep_p = sub.add_parser(
        "report", help="render table.md, table.csv and overhead.md from runs.csv"
    )
    rep_p.add_argument("--out", type=Path, default=ROOT / "results" / "nexmark")
    ov_p = sub.add_parser(
        "overhead",
        help="the recorder's cost alone: Flink's default, recorded with --sample and with every "
        "key, interleaved (no recording or tuning first)",
    )
    add_common_arguments(ov_p)
    ov_p.add_argument("--queries", required=True)
    ov_p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    ov_p.add_argument("--sample", type=float, default=0.1, help="recorder: share of keys")
    ov_p.add_argument("--out", type=Path, default=ROOT / "results" / "nexmark-overhead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command in ("run", "overhead"):
            _run(args)
        overhead = render_overhead(args.out)
        # An overhead-only directory has no tuning.json: its report is overhead.md alone.
        tuned = args.command == "run" or overhead is None or any(args.out.glob(f"*/{TUNING_JSON}"))
        written = list(render(args.out)) if tuned and args.command != "overhead" else []
        written += [overhead] if overhead is not None else []
    except TunerError as e:
        print(f"bench.py: {e}", file=sys.stderr)
        return 2
    except TunerRuntimeError as e:
        print(f"bench.py: failed: {e}", file=sys.stderr)
        return 1
    for path in written:
        if path.suffix == ".md":
            print(path.read_text())
    print("written: " + ", ".join(map(str, written)))
    return 0


def _run(args: argparse.Namespace) -> None:
    """``run`` (record, tune, measure) or ``overhead`` (measure the recorder's rows alone)."""
    nexmark = build(nexmark_source(args.nexmark))
    managed = parse_memory_size(args.managed)
    args.out.mkdir(parents=True, exist_ok=True)
    queries = [q.strip() for q in args.queries.split(",") if q.strip()]
    for query in queries:
        nexmark.query_file(query)  # an unknown name fails before hours of work
    for query in queries:
        qdir = args.out / query
        common: dict[str, Any] = {
            "events": args.events,
            "managed_bytes": managed,
            "tps": args.tps,
            "table_config": not args.flink_defaults,
            "heap": args.heap,
            "timeout_s": args.timeout,
        }
        overhead = args.command == "overhead"
        tuning = None
        if not overhead:
            tuning = tune(
                nexmark,
                query,
                qdir,
                sample=args.sample,
                max_events=args.max_events,
                trials=args.trials,
                **common,
            )
            log.info("%s tuned: %s", query, tuning.headline)
        # The recorder's cost alone: no heap run (it says nothing of the recorder).
        without = (
            frozenset({"hashmap"})
            if overhead
            else frozenset(w.strip() for w in args.without.split(",") if w.strip())
        )
        measure(
            nexmark,
            query,
            qdir,
            tuning,
            args.out / RUNS_CSV,
            repeats=args.repeats,
            sample=args.sample,
            baseline=None if overhead else args.baseline,
            without=without,
            **common,
        )


if __name__ == "__main__":
    sys.exit(main())
