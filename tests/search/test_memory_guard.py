"""The memory guard watches what Flink's budget covers (RocksDB's own figures), not the replay
process's RSS; the trace is read in slices, so a recording of real size replays in a small
budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.engine.replay import MemoryBudgetExceeded, replay
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.flink import options as fo
from tuner.flink.memory import GUARD_FACTOR, Memory, covered_bytes
from tuner.search.measure import measure_isolated
from tuner.trace.ops import OpBatch
from tuner.trace.parquet import STREAM_ROWS, read_trace, write_trace
from tuner.workload import load_workload

from ..factories import VALUE_AND_LIST, recorded_workload_file, value_and_list_calls

HEADER = VALUE_AND_LIST
MiB = 1 << 20


def _calls(start_ts: int, n: int, keys: int, seed: int) -> OpBatch:
    return value_and_list_calls(start_ts, n, keys, seed, add_share=0.9, value_size=40)


def test_covered_bytes_counts_what_the_shared_cache_does_not_hold() -> None:
    mem = {
        "block_cache_usage": 10,
        "memtables_bytes": 4,
        "table_readers_bytes": 3,
        "block_cache_pinned_usage": 0,
        "rss_bytes": 1 << 30,
    }
    # Flink's managed memory: memtables are charged to the cache, index and filters cached.
    assert covered_bytes(mem, shared=True, index_in_cache=True) == 10
    assert covered_bytes(mem, shared=True, index_in_cache=False) == 13
    assert covered_bytes(mem, shared=False, index_in_cache=False) == 17


def test_a_trace_is_read_in_slices_whatever_its_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    # One batch of 300k calls: written as one row group, as an imported recording's 1M are.
    write_trace(path, HEADER, [], [_calls(0, 300_000, 1_000, seed=1)])
    trace = read_trace(path)
    sizes = [len(b) for b in trace.batches("measure")]
    assert sum(sizes) == 300_000
    assert max(sizes) <= STREAM_ROWS


def test_the_guard_stops_a_replay_whose_rocksdb_memory_passes_the_limit(tmp_path: Path) -> None:
    engine = RocksdictEngine()
    config = fo.resolve({}, Memory(managed_per_slot=16 * MiB), "2.x")
    engine.open(config, HEADER, tmp_path / "db")
    with engine, pytest.raises(MemoryBudgetExceeded, match=r"memory guard: RocksDB held \d+ MiB"):
        replay(
            engine,
            HEADER,
            [_calls(0, 50_000, 5_000, seed=1)],
            [_calls(100_000, 20_000, 5_000, seed=2)],
            checkpoint_interval_ms=10_000,
            workdir=tmp_path / "work",
            memory_limit_bytes=1,
        )


def test_a_multi_million_call_recording_replays_under_a_small_budget(tmp_path: Path) -> None:
    """The field case: a recording of millions of calls under 16 MiB of managed memory. The
    process itself (Python, RocksDB, Arrow) holds far more than the budget: the guard must watch
    RocksDB's figures, which stay within the budget, and the process must not grow with the
    trace's row groups."""
    trace = tmp_path / "trace.parquet"
    write_trace(
        trace,
        HEADER,
        [_calls(0, 500_000, 100_000, seed=1)],
        [_calls(1_000_000, 1_500_000, 100_000, seed=2)],
    )
    workload = load_workload(recorded_workload_file(tmp_path, trace, "16 mb"))
    m = measure_isolated(
        workload, trace, {fo.PREDEFINED_OPTIONS: "DEFAULT"}, tmp_path / "w", timeout_s=600
    )
    assert m.status == "ok", m.reason
    assert m.metrics["ops"] == 1_200_000  # 1.5M measured calls less the 20% warm-up
    covered = m.metrics["rocksdb_memory_peak_bytes"]
    assert 0 < covered <= workload.memory.budget * GUARD_FACTOR
    # Both figures are kept: RocksDB's and the process's; the process is many times the budget.
    assert m.rss_peak_bytes > covered
    # Read in slices: 1M-call row groups would have added about 70 MiB of columns at a time.
    assert m.rss_peak_bytes < 512 * MiB
