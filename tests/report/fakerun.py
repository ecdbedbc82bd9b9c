"""A fake run directory for report and results tests: the real StudyLoop, Optuna study and
RunDir files, with RocksDB replaced by a deterministic function of the candidate's settings.

Metrics follow the settings the way a reader expects (bigger write buffers and a bloom filter
help, tiny blocks hurt), with seeded noise so repeats differ, so plots and tables built from
such a run look like a real one and tests can check orderings without RocksDB.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.engine.base import Measurement
from tuner.flink import options as fo
from tuner.rundir import RunDir, claim_run_dir
from tuner.search.study import (
    BASELINES,
    Candidate,
    Kind,
    Objective,
    StudyConfig,
    StudyLoop,
    TrialRecord,
    create_study,
    warm_start,
)
from tuner.units import MIB
from tuner.workload import Memory, StateSpec, Workload

DEVIATIONS = ("rocksdict has no merge operator: list appends are puts plus a prefix scan.",)


def fake_workload() -> Workload:
    """A tiny workload (one value state) with Flink's default memory."""
    return Workload(
        name="fake",
        description="fake workload for report tests",
        flink_version="2.3",
        seed=1,
        memory=Memory(),
        states=(StateSpec(name="s", kind="value", keys=1000),),
    )


def fake_metrics(settings: Mapping[str, fo.FlinkValue], noise_seed: int) -> dict[str, float]:
    """Deterministic metrics of a candidate: a smooth function of its effective options,
    times up to +-3 % noise drawn from ``noise_seed``."""
    v = fo.effective(settings)
    wb = int(v[fo.WRITE_BUFFER_SIZE])  # type: ignore[arg-type]
    block = int(v[fo.BLOCK_SIZE])  # type: ignore[arg-type]
    count = int(v[fo.MAX_WRITE_BUFFER_NUMBER])  # type: ignore[arg-type]
    bloom = bool(v[fo.USE_BLOOM_FILTER])
    rng = random.Random(noise_seed)
    noise = 1.0 + rng.uniform(-0.03, 0.03)
    speed = (1.0 + wb / (256 * MIB)) * (1.15 if bloom else 1.0) * (1.0 - 1024 / block / 8)
    ops_per_s = 40_000.0 * speed * noise
    read_p99 = 300.0 / speed * (1.0 + rng.uniform(-0.05, 0.05)) * (4096 / block) ** 0.2
    memtables = float(min(wb * count, 96 * MIB)) * 0.6
    cache = 80.0 * MIB * (1.0 - wb / (512 * MIB))
    return {
        "ops_per_s": ops_per_s,
        "records": 20_000.0,
        "ops": 40_000.0,
        "cpu_s": 0.8 * noise,
        "read_p50_us": read_p99 / 6,
        "read_p99_us": read_p99,
        "write_p50_us": 4.0 * noise,
        "write_p99_us": 40.0 * noise,
        "write_amplification": 8.0 / speed,
        "space_amplification": 1.1 + 0.2 * (wb / (128 * MIB)),
        "block_cache_hit_ratio": min(0.99, 0.7 + (0.1 if bloom else 0.0) + rng.uniform(0, 0.05)),
        "stall_micros": 0.0 if wb >= 32 * MIB else 1500.0 * noise,
        "block_cache_usage": cache,
        "memtables_bytes": memtables,
        "table_readers_bytes": 2.0 * MIB,
        "checkpoint_count": 3.0,
        "checkpoint_p50_s": 0.2 * noise,
        "checkpoint_max_s": 0.3 * noise,
        "checkpoint_incremental_bytes_mean": 12.0 * MIB * noise,
        "compaction_bytes_written": 30.0 * MIB * noise,
    }


@dataclass
class FakeMeasure:
    """The ``measure`` a StudyLoop calls: fake metrics, or a failure for chosen trials."""

    seed: int
    fail_trials: Collection[int] = ()
    fail_labels: Collection[str] = ()

    def __call__(self, candidate: Candidate) -> Measurement:
        """Measure ``candidate`` without RocksDB."""
        if candidate.trial_number in self.fail_trials and candidate.kind == "search":
            return Measurement("failed", "RocksDBError: fake crash", wall_s=0.5)
        if candidate.label in self.fail_labels:
            return Measurement("failed", "TimeoutError: fake timeout", wall_s=9.0)
        settings = {k: str(v) for k, v in candidate.settings.items()}
        key = json.dumps(
            [candidate.label, candidate.kind, candidate.repeat, self.seed, settings], sort_keys=True
        )
        metrics = fake_metrics(candidate.settings, zlib.crc32(key.encode()))
        return Measurement("ok", metrics=metrics, wall_s=1.5, rss_peak_bytes=300 * MIB)


def make_run(
    path: Path,
    *,
    trials: int = 8,
    repeats: int = 3,
    seed: int = 0,
    objective: Objective = "throughput",
    baselines: Sequence[str] = BASELINES,
    stop_after: int | None = None,
    fail_trials: Collection[int] = (),
    fail_labels: Collection[str] = (),
    with_study: bool = True,
    recommendation: bool = True,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Create a run directory at ``path`` as ``tuner run`` leaves it and return ``path``.

    ``stop_after`` stops the loop after that many measurements (an interrupted run, status
    ``incomplete``); ``with_study=False`` deletes study.db afterwards; ``recommendation`` writes
    recommendation.json for the best trial when there is one.
    """
    rd = claim_run_dir(path)
    config = StudyConfig(
        trials=trials, seed=seed, objective=objective, repeats=repeats, baselines=baselines
    )
    # Flink's option sets are told to the study first (a warm start), so search trials are
    # numbered after them; fail_trials counts from the first search trial.
    warm = len(warm_start(fake_workload(), config)[0])
    study = create_study(rd.storage_url, "tuner", config, warm=warm)
    records: list[TrialRecord] = []

    def sink(rec: TrialRecord) -> None:
        records.append(rec)

    def should_stop() -> bool:
        return stop_after is not None and len(records) >= stop_after

    loop = StudyLoop(
        fake_workload(),
        study,
        config,
        FakeMeasure(seed, {n + warm for n in fail_trials}, fail_labels),
        sink,
        should_stop=should_stop,
    )
    outcome = loop.run()
    rd.write_records(records)
    status = "incomplete" if outcome.interrupted else "complete"
    rd.write_meta(
        {
            "workload": "fake",
            "status": status,
            "trials": trials,
            "seed": seed,
            "objective": objective,
            "created_at": 1_700_000_000.0,
            "deviations": list(DEVIATIONS),
            "warm_start": outcome.warm_start,
            "warm_start_left_out": outcome.warm_start_left_out,
            **(meta or {}),
        }
    )
    if recommendation and outcome.best_settings is not None:
        _write_recommendation(rd, outcome.best_settings, outcome.best_trial_number)
    if not with_study:
        # Drop Optuna's engine connections first so the file is really gone.
        del study
        rd.study_db.unlink()
    return path


def _write_recommendation(
    rd: RunDir, settings: Mapping[str, fo.FlinkValue], trial_number: int | None
) -> None:
    payload = {
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "comments": {k: f"searched: {v}" for k, v in settings.items()},
        "headline": "fake headline",
        "trial_number": trial_number,
    }
    (rd.path / "recommendation.json").write_text(json.dumps(payload, indent=2) + "\n")


def rec(
    seq: int,
    label: str,
    kind: Kind,
    metrics: Mapping[str, float] | None = None,
    *,
    status: str = "ok",
    trial: int | None = None,
    repeat: int = 0,
    reason: str = "",
    rss: int = 0,
) -> TrialRecord:
    """One record with only what a test cares about."""
    return TrialRecord(
        seq=seq,
        candidate=Candidate(label, kind, {}, trial, repeat),
        status=status,  # type: ignore[arg-type]
        reason=reason,
        metrics=dict(metrics or {}),
        wall_s=1.0,
        rss_peak_bytes=rss,
        started_at=float(seq),
    )


def ops(x: float, **more: float) -> dict[str, float]:
    """Metrics with throughput ``x`` and any others given."""
    return {"ops_per_s": x, **more}
