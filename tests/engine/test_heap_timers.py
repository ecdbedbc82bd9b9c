"""timer-service.factory: HEAP in the replay: timers off RocksDB, in the same order, and their
cost counted (live timers, the bytes every checkpoint writes of them in full); and a restore
from a checkpoint (recovery)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from tests.engine.conftest import HEADER, USER_TIMERS, WINDOW_TIMERS, batch, small_config
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.flink import options as fo
from tuner.flink.inert import inert_keys
from tuner.flink.memory import Memory
from tuner.search import space
from tuner.trace.ops import Op, OpBatch

ROOT = Path(__file__).resolve().parents[2]


def _timer_calls(seed: int) -> OpBatch:
    """Registers, deletes and fires of both timer services over a few keys and windows."""
    rng = random.Random(seed)
    rows = []
    for _ in range(600):
        state = rng.choice((USER_TIMERS, WINDOW_TIMERS))
        w = {"ns_start": 0, "ns_end": 1000} if state == WINDOW_TIMERS else {}
        op = rng.choice((Op.REGISTER_TIMER, Op.REGISTER_TIMER, Op.DELETE_TIMER, Op.FIRE_TIMER))
        rows.append(
            {"state": state, "op": op, "key": rng.randrange(20), "timer_ts": rng.randrange(50), **w}
        )
    rows += [{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(50)]
    return batch(*rows)


def _opened(path: Path, heap: bool) -> RocksdictEngine:
    e = RocksdictEngine()
    e.open(small_config(), HEADER, path, timer_cache_size=2, heap_timers=heap)
    return e


def test_heap_timers_fire_in_the_order_rocksdb_timers_do(tmp_path: Path) -> None:
    calls = _timer_calls(3)
    with _opened(tmp_path / "rocks", False) as rocks, _opened(tmp_path / "heap", True) as heap:
        rocks.apply(calls)
        heap.apply(calls)
        for state in (USER_TIMERS, WINDOW_TIMERS):
            assert heap.executor.pending_timers(state) == rocks.executor.pending_timers(state)
        r, h = rocks.snapshot_counters(), heap.snapshot_counters()
        assert h["state.timer_polls"] == r["state.timer_polls"]
        assert h["state.timer_polls_empty"] == r["state.timer_polls_empty"]
        live = sum(len(heap.executor.pending_timers(s)) for s in (USER_TIMERS, WINDOW_TIMERS))
        assert h["state.heap_timers"] == live > 0
        assert h["state.heap_timer_bytes"] == heap.executor.heap_timer_bytes() > 0
        # Nothing of them reached RocksDB: only the value state wrote.
        assert h["rocksdb.bytes.written"] < r["rocksdb.bytes.written"]
        assert rocks.executor.heap_timer_bytes() == 0


def test_every_checkpoint_writes_the_heap_timers_in_full(tmp_path: Path) -> None:
    with _opened(tmp_path / "heap", True) as heap:
        heap.apply(_timer_calls(5))
        timers = heap.executor.heap_timer_bytes()
        first = heap.flush_and_checkpoint(tmp_path / "chk-1")
        second = heap.flush_and_checkpoint(tmp_path / "chk-2")
        # The second checkpoint has no new SST file, yet writes the timers again.
        assert second.new_sst_bytes == timers < first.new_sst_bytes
        assert heap.checkpoint_figures()["checkpoint_timer_bytes"] == timers


def test_where_timers_live_is_searched_only_for_a_job_with_timers() -> None:
    class Fixed:
        def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
            return low

        def suggest_float(
            self, name: str, low: float, high: float, *, step: float | None = None
        ) -> float:
            return low

        def suggest_categorical(self, name: str, choices: list[str]) -> str:
            return choices[-1]

    with_timers = space.suggest(Fixed(), Memory(), timers=True)
    assert with_timers[fo.TIMER_SERVICE_FACTORY] == "HEAP"
    assert fo.TIMER_SERVICE_FACTORY not in space.suggest(Fixed(), Memory())
    assert fo.TIMER_SERVICE_FACTORY in space.searched_keys(Memory(), timers=True)
    # The RocksDB service's cache means nothing to heap timers: never emitted beside HEAP.
    heap: dict[str, fo.FlinkValue] = {
        fo.TIMER_SERVICE_FACTORY: "HEAP",
        fo.TIMER_SERVICE_CACHE_SIZE: 256,
    }
    assert list(inert_keys(heap, Memory())) == [fo.TIMER_SERVICE_CACHE_SIZE]


@pytest.mark.parametrize("factory", ["ROCKSDB", "HEAP"])
def test_a_measurement_reports_what_heap_timers_cost(tmp_path: Path, factory: str) -> None:
    from tuner.search.measure import measure_settings
    from tuner.trace.source import has_timers, trace_file
    from tuner.workload import load_workload

    workload = load_workload(ROOT / "workloads" / "tumbling-window-timers.yaml")
    assert has_timers(workload)
    small = replace(
        workload,
        replay=replace(workload.replay, records=3000),
        checkpointing=replace(workload.checkpointing, interval_ms=250),
    )
    trace = trace_file(small, tmp_path / "t.parquet")
    m = measure_settings(
        small, str(trace), {fo.TIMER_SERVICE_FACTORY: factory}, str(tmp_path / "w")
    )
    # Levels (live timers, their bytes, the peak) as they stand at the end, never differences.
    assert not any(k.startswith("state_heap_timer") for k in m)
    assert m["heap_timers_peak"] >= m["heap_timers"]
    if factory == "HEAP":
        assert m["heap_timers"] > 0 and m["checkpoint_timer_bytes"] > 0
    else:
        assert m["heap_timers"] == 0 and m["checkpoint_timer_bytes"] == 0


def test_a_restore_copies_the_checkpoint_and_opens_it(tmp_path: Path) -> None:
    with _opened(tmp_path / "db", False) as e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 300} for k in range(3000)]
            )
        )
        cp = e.flush_and_checkpoint(tmp_path / "chk")
        restored = e.restore_from(tmp_path / "chk", tmp_path / "restored")
        assert restored is not None and restored.duration_s > 0
        assert restored.sst_files is not None and restored.sst_files >= 1
        assert restored.bytes >= cp.total_sst_bytes
        # Every SST file of the checkpoint is in the restored instance, which RocksDB opened
        # (opening writes a new MANIFEST).
        names = {p.name for p in (tmp_path / "restored").iterdir()}
        assert {p.name for p in (tmp_path / "chk").glob("*.sst")} <= names
        assert len(list((tmp_path / "restored").glob("MANIFEST-*"))) >= 1


def test_a_rescaled_restore_keeps_only_the_new_subtasks_key_groups(tmp_path: Path) -> None:
    import rocksdict as rd

    from tuner.flink.keys import operator_key_groups

    with _opened(tmp_path / "db", False) as e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(3000)]
            )
        )
        e.flush_and_checkpoint(tmp_path / "chk")
        restored = e.restore_from(tmp_path / "chk", tmp_path / "restored", rescale=4)
        assert restored is not None and restored.duration_s > 0
    # Subtask 0 of 4 (max parallelism 128) owns key groups 0..31: every entry left has one of
    # their prefixes, and about a quarter of the entries are left.
    assert operator_key_groups(HEADER.max_parallelism, 4, 0) == (0, 31)
    path, opts = str(tmp_path / "restored"), rd.Options(raw_mode=True)
    families = {n: rd.Options(raw_mode=True) for n in rd.Rdict.list_cf(path, opts)}
    db = rd.Rdict(path, opts, column_families=families)
    try:
        keys = db.get_column_family("v").keys()
        groups = [bytes(k)[0] for k in keys if isinstance(k, bytes)]
    finally:
        db.close()
    assert groups and max(groups) <= 31
    assert 0.15 < len(groups) / 3000 < 0.35


def test_a_scaled_in_restore_merges_every_old_subtasks_key_groups(tmp_path: Path) -> None:
    import rocksdict as rd

    with _opened(tmp_path / "db", False) as e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(3000)]
            )
        )
        cp = e.flush_and_checkpoint(tmp_path / "chk")
        restored = e.restore_from(tmp_path / "chk", tmp_path / "restored", rescale=1 / 3)
        again = e.restore_from(tmp_path / "chk", tmp_path / "again", rescale=1 / 3)
        assert restored is not None and again is not None and restored.duration_s > 0
        # Three old subtasks' checkpoints, each compacted to its own key groups: together about
        # the one checkpoint's bytes (file overheads aside), split once for both restores.
        parts = sorted((tmp_path / "scale-in-chk-3").iterdir())
        assert [p.name for p in parts] == ["subtask-0", "subtask-1", "subtask-2"]
        assert restored.bytes == again.bytes
        assert 0.5 * cp.total_sst_bytes < restored.bytes < 2 * cp.total_sst_bytes + (1 << 20)
    # The merged instance holds every key of every key group, each once.
    path, opts = str(tmp_path / "restored"), rd.Options(raw_mode=True)
    families = {n: rd.Options(raw_mode=True) for n in rd.Rdict.list_cf(path, opts)}
    db = rd.Rdict(path, opts, column_families=families)
    try:
        stored = db.get_column_family("v").keys()
        keys = [k for k in stored if isinstance(k, bytes)]
    finally:
        db.close()
    assert len(keys) == len(set(keys)) == 3000
    # And each old subtask's checkpoint held only its own key groups (0..42, 43..85, 86..127).
    path = str(parts[1])
    families = {n: rd.Options(raw_mode=True) for n in rd.Rdict.list_cf(path, opts)}
    db = rd.Rdict(path, opts, column_families=families)
    try:
        stored = db.get_column_family("v").keys()
        groups = {k[0] for k in stored if isinstance(k, bytes)}
    finally:
        db.close()
    assert groups and min(groups) >= 43 and max(groups) <= 85


def test_operator_key_groups_split_as_flink_does() -> None:
    from tuner.flink.keys import operator_key_groups

    # KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex for 128 groups in 3.
    assert [operator_key_groups(128, 3, i) for i in range(3)] == [(0, 42), (43, 85), (86, 127)]
    with pytest.raises(ValueError):
        operator_key_groups(128, 129, 0)
