"""The replay job on real Flink: a tiny mixed stream, every state call counted.

Runs when a Flink installation is found (TUNER_PYFLINK_HOME, pyflink in this interpreter, or the
development venv) and java/javac are on PATH; skipped with the reason otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tuner.errors import TunerRuntimeError
from tuner.flink import options as fo
from tuner.trace.generator import generate, stream_header
from tuner.trace.ops import Op
from tuner.validate.flink import FlinkInstall, compile_job
from tuner.validate.job import (
    FlinkRun,
    PreparedStream,
    count_mismatches,
    prepare_stream,
    run_config,
    settings_entries,
)
from tuner.workload import Memory, Workload

from ._streams import mixed_workload


@pytest.fixture(scope="module")
def flink_job(flink2: FlinkInstall) -> tuple[FlinkInstall, Path]:
    return flink2, compile_job(flink2)


def _run(
    flink: FlinkInstall,
    classes: Path,
    stream: PreparedStream,
    w: Workload,
    label: str,
    config_yaml: str,
    tmp_path: Path,
    measure_restore: bool = False,
) -> FlinkRun:
    """One run of the job under ``config_yaml``, with the base memory keys of a one-slot run."""
    return run_config(
        flink,
        classes,
        stream,
        label,
        0,
        config_yaml,
        settings_entries(fo.one_slot_memory_settings(w.memory), flink.version),
        budget_bytes=w.memory.budget,
        checkpoint_interval_ms=w.checkpointing.interval_ms,
        incremental=True,
        workdir=tmp_path / "run",
        timeout_s=600,
        measure_restore=measure_restore,
    )


@pytest.mark.slow
def test_job_executes_exactly_the_streams_state_calls(
    flink_job: tuple[FlinkInstall, Path], tmp_path: Path
) -> None:
    flink, classes = flink_job
    w = mixed_workload()
    header = stream_header(w)
    stream = prepare_stream(header, generate(w, "preload"), generate(w, "measure"), tmp_path)
    kinds = {s.kind for s in header.states}
    assert {"value", "list", "map", "aggregating", "reducing", "timers"} <= kinds
    assert stream.ops.rows < 50_000  # a tiny stream: the test is about semantics, not speed

    config = f"{fo.PREDEFINED_OPTIONS}: FLASH_SSD_OPTIMIZED\n"
    run = _run(flink, classes, stream, w, "FLASH_SSD_OPTIMIZED", config, tmp_path, True)
    assert count_mismatches(stream, run.counts) == []
    # The job restored from the checkpoint of its end state: every state kind, timers included,
    # came back (a failed restore fails the run), and Flink timed the operator's initialization.
    assert run.restore is not None
    assert 0 < run.restore.initializing_s <= run.restore.submit_to_running_s
    # Flink's own log timed the RocksDB backend's part of it (millisecond stamps).
    assert 0 <= run.restore.rocksdb_s <= run.restore.initializing_s + 0.002
    assert run.row()["restore_s"] == run.restore.initializing_s
    assert run.measure_rows == stream.ops.measure_rows
    assert run.records_per_s > 0
    # Event-time timers fired by Flink's watermark before the end are the stream's event
    # FIRE_TIMER rows (window timers and the value state's event user timers).
    names = header.names
    event_fires = sum(
        int(stream.counts[names.index(n), Op.FIRE_TIMER])
        for n in names
        if n.startswith("_timer_state/event_")
    )
    assert event_fires > 0
    assert run.timer_fires_event == event_fires
    # 3 s of event time, one checkpoint per second of it after the first measured second.
    done = [c for c in run.checkpoints if c["status"] == "COMPLETED"]
    assert len(done) >= 1
    assert all(c["checkpointed_size"] > 0 for c in done)
    # The configuration and the budget reached RocksDB: 4 background jobs (FLASH_SSD_OPTIMIZED),
    # and Flink's shared cache sized from the 32 MiB managed memory, ratio 0.5.
    assert run.rocksdb_log["max_background_jobs"] == "4"
    assert run.properties["rocksdb.block-cache-capacity"] == int((3 - 0.5) * (32 << 20) / 3)
    assert run.tickers["rocksdb.bytes.written"] > 0
    assert run.rss_peak_bytes > 0
    # CPU over the measured phase: the task thread's is part of the whole JVM's.
    assert 0 < run.task_cpu_s <= run.process_cpu_s
    row = run.row()
    assert row["checkpoint_count"] == len(done)
    assert np.isfinite(row["block_cache_hit_ratio"])


@pytest.mark.slow
def test_a_bad_config_value_fails_the_run_with_flinks_message(
    flink_job: tuple[FlinkInstall, Path], tmp_path: Path
) -> None:
    flink, classes = flink_job
    w = mixed_workload(records=200)
    stream = prepare_stream(
        stream_header(w), generate(w, "preload"), generate(w, "measure"), tmp_path
    )
    with pytest.raises(TunerRuntimeError, match="Could not parse value 'many' for key"):
        run_config(
            flink,
            classes,
            stream,
            "recommended",
            0,
            "state.backend.rocksdb.writebuffer.count: many\n",
            {},
            budget_bytes=w.memory.budget,
            checkpoint_interval_ms=1000,
            incremental=True,
            workdir=tmp_path / "run",
            timeout_s=600,
        )


@pytest.mark.slow
def test_flink_120_runs_the_job_with_the_slots_share_of_fixed_per_tm_memory(
    flink120: FlinkInstall, tmp_path: Path
) -> None:
    # A 1.20 workload is validated on 1.20 (its arena rule and catalog). fixed-per-tm names the
    # TaskManager's memory, shared by its 4 slots; the one-slot run gets the slot's share even
    # when the configuration under test names the whole (as a recommended config.yaml does).
    memory = Memory(mode="fixed-per-tm", fixed_per_tm=128 << 20, slots_per_tm=4)
    w = replace(mixed_workload(), flink_version="1.20", memory=memory)
    stream = prepare_stream(
        stream_header(w), generate(w, "preload"), generate(w, "measure"), tmp_path
    )
    config = f"{fo.MEMORY_FIXED_PER_TM}: 128 mb\n"
    run = _run(flink120, compile_job(flink120), stream, w, "recommended", config, tmp_path)
    assert count_mismatches(stream, run.counts) == []
    # The shared cache of 32 MiB (128 MiB / 4 slots), write-buffer ratio 0.5.
    assert run.properties["rocksdb.block-cache-capacity"] == int((3 - 0.5) * (32 << 20) / 3)
