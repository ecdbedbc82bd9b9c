"""replay(): preload unmeasured, measured phase with checkpoints, deltas of counters."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from tuner.engine.base import Engine
from tuner.engine.bench import bench_stream, run_bench
from tuner.engine.replay import replay
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.trace.ops import Op, OpBatch

from ..factories import VALUE_AND_LIST, value_and_list_calls
from .conftest import small_config

HEADER = VALUE_AND_LIST


def _stream(start_ts: int, n: int, keys: int, seed: int) -> OpBatch:
    return value_and_list_calls(start_ts, n, keys, seed)


def test_replay_measures_only_the_measured_phase(engine_cls: type[Engine], tmp_path: Path) -> None:
    engine = engine_cls()
    engine.open(small_config(), HEADER, tmp_path / "db", sample_every=4)
    seen: list[tuple[str, int]] = []
    with engine:
        preload = [_stream(0, 20_000, 2_000, seed=1)]
        measure = [_stream(100_000, 10_000, 2_000, seed=2), _stream(105_000, 10_000, 2_000, seed=3)]
        result = replay(
            engine,
            HEADER,
            preload,
            measure,
            checkpoint_interval_ms=2_000,
            workdir=tmp_path / "work",
            progress=lambda phase, done: seen.append((phase, done)),
        )
    assert result.ops == 20_000
    assert result.records == 10_000
    assert seen[0] == ("preload", 20_000) and seen[-1] == ("measure", 20_000)
    # Event time runs 100000..109999: checkpoints at 102000, 104000, 106000 and 108000.
    assert result.checkpoint_count == 4
    assert result.checkpoint_p50_s >= 0 and result.checkpoint_max_s >= result.checkpoint_p50_s
    assert result.checkpoint_incremental_bytes_mean > 0
    assert not list((tmp_path / "work" / "checkpoints").glob("chk-*"))  # cleaned up
    assert result.settled
    assert result.ops_per_s > 0 and result.wall_s > 0 and result.cpu_s > 0
    assert 0 < result.read_p50_us <= result.read_p99_us
    assert 0 < result.write_p50_us <= result.write_p99_us
    # The preload wrote as much again; only the measured writes count.
    writes = sum(int(((b.op == Op.UPDATE) | (b.op == Op.ADD)).sum()) for b in measure)
    assert result.extra["state_calls_update"] + result.extra["state_calls_add"] == writes
    assert writes * 120 <= result.user_bytes_written < writes * 200
    assert result.write_amplification > 0
    assert 0 <= result.block_cache_hit_ratio <= 1
    assert result.flush_bytes_written > 0
    d = result.as_dict()
    assert d["ops"] == 20_000.0 and "state_entries_scanned" in d
    assert all(isinstance(v, float) for v in d.values())
    assert not math.isnan(d["space_amplification"])


def test_bench_reports_both_speeds(tmp_path: Path) -> None:
    header, batches = bench_stream(1_000)
    assert sum(len(b) for b in batches) == 1_000 and header.states[0].kind == "value"
    r = run_bench(20_000, workdir=tmp_path)
    assert r.engine_ops_per_s > 0 and r.bare_ops_per_s > 0
    assert math.isclose(r.ratio, r.engine_ops_per_s / r.bare_ops_per_s)
    assert r.render().startswith("20000 ops: engine ")


def test_warm_up_checkpoints_never_collide_with_the_measured_ones(
    engine_cls: type[Engine], tmp_path: Path
) -> None:
    # The warm-up keeps its last checkpoint (chk-1 here); the measured phase's first one must
    # not be named the same (a one-trial quickstart in CI failed on exactly that).
    engine = engine_cls()
    engine.open(small_config(), HEADER, tmp_path / "db")
    with engine:
        measure = [_stream(100_000, 10_000, 2_000, seed=2), _stream(105_000, 10_000, 2_000, seed=3)]
        result = replay(
            engine,
            HEADER,
            [_stream(0, 2_000, 2_000, seed=1)],
            measure,
            checkpoint_interval_ms=2_000,
            workdir=tmp_path / "work",
            warmup_ops=6_000,  # event time 100000..102999: one checkpoint, at 102000
        )
    assert result.ops == 14_000
    assert result.checkpoint_count == 3  # at 104000, 106000 and 108000


def test_a_measured_compressibility_sets_the_bytes_rocksdb_stores(tmp_path: Path) -> None:
    # The same calls under headers that differ only in how their values compress: what the
    # memtables flush (after block compression) follows the ratio, so the replayed state is
    # as large in RocksDB as the job's.
    flushed = {}
    for ratio in (1.0, 4.0):
        header = dataclasses.replace(HEADER, compressibility=ratio)
        engine = RocksdictEngine()
        engine.open(small_config(), header, tmp_path / f"db{ratio}", sample_every=4)
        with engine:
            result = replay(
                engine,
                header,
                [],
                [_stream(0, 20_000, 2_000, seed=1)],
                checkpoint_interval_ms=4_000,
                workdir=tmp_path / f"work{ratio}",
            )
        flushed[ratio] = result.flush_bytes_written
        assert result.user_bytes_written > 0
    assert flushed[1.0] > 2 * flushed[4.0] > 0
