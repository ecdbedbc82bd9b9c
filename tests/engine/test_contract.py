"""The engine contract: every engine replays state calls with Flink's semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.engine.base import Engine, EngineClosedError
from tuner.flink.keys import KeyLayout, decode_timer_key
from tuner.trace.ops import Op

from .conftest import HEADER, USER_TIMERS, WINDOW_TIMERS, batch, small_config


def test_get_after_update_sees_the_value_and_clear_removes_it(engine: Engine) -> None:
    x = engine.executor
    engine.apply(batch({"state": "v", "op": Op.UPDATE, "key": 7, "value_size": 100}))
    first = x.read_value("v", 7)
    assert first is not None and len(first) == 100
    engine.apply(batch({"state": "v", "op": Op.UPDATE, "key": 7, "value_size": 30}))
    second = x.read_value("v", 7)
    assert second is not None and len(second) == 30
    assert x.read_value("v", 8) is None
    engine.apply(
        batch({"state": "v", "op": Op.GET, "key": 7}, {"state": "v", "op": Op.CLEAR, "key": 7})
    )
    assert x.read_value("v", 7) is None


def test_ttl_values_carry_the_last_write_timestamp(engine: Engine) -> None:
    engine.apply(batch({"state": "vt", "op": Op.UPDATE, "key": 1, "value_size": 20, "ts": 123456}))
    stored = engine.executor.read_value("vt", 1)
    assert stored is not None and len(stored) == 8 + 20
    assert int.from_bytes(stored[:8], "big") == 123456


def test_aggregating_add_reads_then_writes(engine: Engine) -> None:
    before = engine.snapshot_counters()
    engine.apply(batch(*[{"state": "agg", "op": Op.ADD, "key": 42, "value_size": 16}] * 3))
    after = engine.snapshot_counters()
    assert after["state.calls.add"] - before["state.calls.add"] == 3
    stored = engine.executor.read_value("agg", 42)
    assert stored is not None and len(stored) == 16


def test_list_get_sees_every_append_in_order_per_window(engine: Engine) -> None:
    x = engine.executor
    w1 = {"ns_start": 0, "ns_end": 1000}
    w2 = {"ns_start": 1000, "ns_end": 2000}
    engine.apply(
        batch(
            {"state": "l", "op": Op.ADD, "key": 3, "value_size": 5, **w1},
            {"state": "l", "op": Op.ADD, "key": 3, "value_size": 6, **w2},
            {"state": "l", "op": Op.ADD, "key": 3, "value_size": 7, **w1},
            {"state": "l", "op": Op.GET, "key": 3, **w1},
        )
    )
    assert [len(e) for e in x.read_list("l", 3, (0, 1000))] == [5, 7]
    assert [len(e) for e in x.read_list("l", 3, (1000, 2000))] == [6]
    engine.apply(batch({"state": "l", "op": Op.UPDATE, "key": 3, "value_size": 40, **w1}))
    assert [len(e) for e in x.read_list("l", 3, (0, 1000))] == [40]
    engine.apply(batch({"state": "l", "op": Op.CLEAR, "key": 3, **w1}))
    assert x.read_list("l", 3, (0, 1000)) == []
    assert len(x.read_list("l", 3, (1000, 2000))) == 1


def test_map_iterate_sees_every_entry_and_clear_removes_them(engine: Engine) -> None:
    x = engine.executor
    n = 300  # more than one 128-entry iterator batch
    puts = [
        {"state": "m", "op": Op.PUT, "key": 9, "user_key": uk, "value_size": 4} for uk in range(n)
    ]
    other = {"state": "m", "op": Op.PUT, "key": 10, "user_key": 1, "value_size": 4}
    engine.apply(batch(*puts, other))
    entries = x.read_map("m", 9)
    assert sorted(entries) == list(range(n))
    assert all(v[:1] == b"\x00" and len(v) == 5 for v in entries.values())  # null flag + value
    before = engine.snapshot_counters()
    engine.apply(batch({"state": "m", "op": Op.ITERATE, "key": 9}))
    after = engine.snapshot_counters()
    assert after["state.entries_scanned"] - before["state.entries_scanned"] == n
    assert after["state.seeks"] - before["state.seeks"] == 3  # 128 + 128 + 44
    engine.apply(
        batch(
            {"state": "m", "op": Op.REMOVE, "key": 9, "user_key": 0},
            {"state": "m", "op": Op.CONTAINS, "key": 9, "user_key": 0},
            {"state": "m", "op": Op.GET, "key": 9, "user_key": 1},
        )
    )
    assert 0 not in x.read_map("m", 9)
    before = engine.snapshot_counters()
    engine.apply(batch({"state": "m", "op": Op.CLEAR, "key": 9}))
    after = engine.snapshot_counters()
    # RocksDBMapState.clear walks the whole prefix with one iterator, not in 128-entry batches.
    assert after["state.seeks"] - before["state.seeks"] == 1
    assert after["state.entries_scanned"] - before["state.entries_scanned"] == n - 1
    assert x.read_map("m", 9) == {}
    assert list(x.read_map("m", 10)) == [1]


def _timer_ts(engine: Engine, state: str) -> list[tuple[int, int]]:
    info = next(s for s in HEADER.states if s.name == state)
    layout = KeyLayout.for_state(info, HEADER.max_parallelism)
    out = []
    for raw in engine.executor.pending_timers(state):
        t = decode_timer_key(raw, layout)
        out.append((t.key, t.timestamp))
    return out


def test_timers_fire_in_timestamp_order_across_cache_refills(engine: Engine) -> None:
    stamps = [50, -20, 10, 40, -5, 30, 0]  # cache size 2: several refills
    engine.apply(
        batch(
            *[
                {"state": USER_TIMERS, "op": Op.REGISTER_TIMER, "key": 4, "timer_ts": t}
                for t in stamps
            ]
        )
    )
    assert _timer_ts(engine, USER_TIMERS) == [(4, t) for t in sorted(stamps)]
    fired = []
    for _ in range(5):
        remaining_before = [t for _, t in _timer_ts(engine, USER_TIMERS)]
        engine.apply(batch({"state": USER_TIMERS, "op": Op.FIRE_TIMER, "key": 4}))
        remaining = [t for _, t in _timer_ts(engine, USER_TIMERS)]
        (gone,) = set(remaining_before) - set(remaining)
        fired.append(gone)
    assert fired == sorted(stamps)[:5]
    counters = engine.snapshot_counters()
    # Worked through RocksDBCachingPriorityQueueSet by hand: the first access loads an empty
    # store; the cache keeps the two smallest; fire 3 refills after -5 (reads 0, 10 and 30 to
    # learn there is more); fire 5 refills after 10 (reads 30, 40, 50).
    assert counters["state.timer_refills"] == 3
    assert counters["state.timer_refill_entries"] == 6
    assert counters["state.timer_polls"] == 5


def test_deleted_timers_do_not_fire(engine: Engine) -> None:
    w = {"ns_start": 0, "ns_end": 1000}
    engine.apply(
        batch(
            {"state": WINDOW_TIMERS, "op": Op.REGISTER_TIMER, "key": 1, "timer_ts": 999, **w},
            {"state": WINDOW_TIMERS, "op": Op.REGISTER_TIMER, "key": 1, "timer_ts": 1999, **w},
            {"state": WINDOW_TIMERS, "op": Op.DELETE_TIMER, "key": 1, "timer_ts": 999, **w},
            {"state": WINDOW_TIMERS, "op": Op.FIRE_TIMER, "key": 1, "timer_ts": 1999, **w},
        )
    )
    assert _timer_ts(engine, WINDOW_TIMERS) == []
    assert engine.snapshot_counters()["state.timer_polls_empty"] == 0


def test_checkpoint_reports_only_new_sst_bytes(engine: Engine, tmp_path: Path) -> None:
    engine.apply(
        batch(*[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 200} for k in range(500)])
    )
    first = engine.flush_and_checkpoint(tmp_path / "chk-1")
    assert (tmp_path / "chk-1").is_dir()
    assert first.new_sst_bytes > 0 and first.total_sst_bytes >= first.new_sst_bytes
    assert first.duration_s >= 0
    second = engine.flush_and_checkpoint(tmp_path / "chk-2")
    assert second.new_sst_bytes == 0
    engine.apply(batch({"state": "v", "op": Op.UPDATE, "key": 1, "value_size": 200}))
    third = engine.flush_and_checkpoint(tmp_path / "chk-3")
    assert third.new_sst_bytes > 0
    with pytest.raises(FileExistsError):
        engine.flush_and_checkpoint(tmp_path / "chk-3")


def test_counters_grow_with_work(engine: Engine) -> None:
    before = engine.snapshot_counters()
    engine.apply(
        batch(*[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 50} for k in range(100)])
    )
    engine.apply(batch(*[{"state": "v", "op": Op.GET, "key": k} for k in range(100)]))
    after = engine.snapshot_counters()
    assert after["rocksdb.bytes.written"] - before["rocksdb.bytes.written"] >= 100 * 50
    assert after["state.calls.update"] - before["state.calls.update"] == 100
    assert after["state.calls.get"] - before["state.calls.get"] == 100
    assert after["state.ops"] - before["state.ops"] == 200
    reads, writes = engine.take_latencies()
    assert reads.size == 100 and writes.size == 100  # sample_every=1 in the fixture
    assert (reads > 0).all()
    mem = engine.memory()
    assert set(mem) >= {"block_cache_usage", "memtables_bytes", "table_readers_bytes", "rss_bytes"}


def test_calls_a_state_kind_does_not_have_are_rejected(engine: Engine) -> None:
    with pytest.raises(ValueError, match=r"'v' \(value\) has no call PUT"):
        engine.apply(batch({"state": "v", "op": Op.PUT, "key": 1, "user_key": 1, "value_size": 1}))
    with pytest.raises(ValueError, match="has no call UPDATE"):
        engine.apply(batch({"state": USER_TIMERS, "op": Op.UPDATE, "key": 1}))


def test_closed_engine_refuses_work(engine_cls: type[Engine], tmp_path: Path) -> None:
    e = engine_cls()
    with pytest.raises(EngineClosedError):
        e.apply(batch({"state": "v", "op": Op.GET, "key": 1}))
    e.open(small_config(), HEADER, tmp_path / "db")
    with e:
        e.apply(batch({"state": "v", "op": Op.GET, "key": 1}))
    with pytest.raises(EngineClosedError):
        e.snapshot_counters()
    e.close()  # idempotent


def test_shared_memory_config_opens_and_charges_memtables(
    engine_cls: type[Engine], tmp_path: Path
) -> None:
    cfg = small_config(
        shared_cache_bytes=8 << 20,
        write_buffer_manager_bytes=4 << 20,
        cache_index_and_filter_blocks=True,
        pin_l0_filter_and_index_blocks_in_cache=True,
        partitioned_index_filters=True,
        pin_top_level_index_and_filter=True,
    )
    e = engine_cls()
    e.open(cfg, HEADER, tmp_path / "db")
    with e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(2000)]
            )
        )
        e.apply(batch(*[{"state": "v", "op": Op.GET, "key": k} for k in range(2000)]))
        assert e.memory()["block_cache_usage"] > 0
