from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

from tests.trace._workloads import same, state, stream, with_replay, workload
from tuner.errors import TunerError
from tuner.trace.generator import (
    PROCESSING_USER_TIMERS,
    USER_TIMERS,
    WINDOW_TIMERS,
    draw_sizes,
    generate,
    stream_header,
)
from tuner.trace.ops import Op, OpBatch
from tuner.workload import Popularity, SizeDist, Timers, Window

GET, UPDATE, ADD, CLEAR, PUT = Op.GET, Op.UPDATE, Op.ADD, Op.CLEAR, Op.PUT


def rows_of(b: OpBatch) -> list[tuple[int, ...]]:
    return list(b.rows())


def key_shares(b: OpBatch, state_index: int) -> np.ndarray[Any, Any]:
    """Share of calls per key, hottest first."""
    _, counts = np.unique(b.key[b.state == state_index], return_counts=True)
    shares: np.ndarray[Any, Any] = np.sort(counts)[::-1] / counts.sum()
    return shares


# -- header ----------------------------------------------------------------------------------


def test_header_lists_states_then_timer_services_named_as_flink_names_them() -> None:
    w = workload(
        state("a"),
        state("w", kind="aggregating", window=Window("tumbling", 1000, 1000)),
        state("t", timers=Timers(per_record=0.1, delay_ms=10)),
        state("p", timers=Timers(per_record=0.1, delay_ms=10, domain="processing")),
        state("w2", kind="list", window=Window("sliding", 1000, 500)),
    )
    h = stream_header(w)
    assert h.names == ("a", "w", "t", "p", "w2", WINDOW_TIMERS, USER_TIMERS, PROCESSING_USER_TIMERS)
    assert WINDOW_TIMERS == "_timer_state/event_window-timers"
    assert USER_TIMERS == "_timer_state/event_user-timers"
    assert PROCESSING_USER_TIMERS == "_timer_state/processing_user-timers"
    by_name = {s.name: s for s in h.states}
    assert by_name["w"].windowed and by_name[WINDOW_TIMERS].windowed
    assert not by_name[USER_TIMERS].windowed and by_name[USER_TIMERS].kind == "timers"


def test_header_carries_key_layout_and_ttl() -> None:
    w = workload(state("a", key_type="string", key_size=20, ttl_ms=5, kind="map", user_key_size=4))
    (info,) = stream_header(w).states
    assert (info.key_type, info.key_size, info.ttl, info.user_key_size) == ("string", 20, True, 4)


# -- determinism -----------------------------------------------------------------------------


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    w = workload(
        state(popularity=Popularity("zipf", 1.1), value_size=SizeDist("normal", 100, sigma=20))
    )
    for phase in ("preload", "measure"):
        assert same(stream(w, phase), stream(w, phase))
    other = stream(w.__class__(**{**w.__dict__, "seed": 43}), "measure")
    assert not np.array_equal(other.key, stream(w, "measure").key)


def test_preload_does_not_depend_on_the_number_of_records() -> None:
    w = workload(state(kind="list", elements_per_key=3), state("m", kind="map", entries_per_key=4))
    assert same(stream(w, "preload"), stream(with_replay(w, records=5), "preload"))


def test_stream_does_not_depend_on_batch_size() -> None:
    w = workload(state(ttl_ms=2000, operations=(("read", 0.5), ("update", 0.5))), records=30_000)
    batches = list(generate(w, "measure", batch_size=777))
    assert all(len(b) == 777 for b in batches[:-1]) and 0 < len(batches[-1]) <= 777
    assert same(OpBatch.concat(batches), stream(w, "measure"))


# -- preload ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "extra", "op", "per_key"),
    [
        ("value", {}, UPDATE, 1),
        ("reducing", {}, UPDATE, 1),
        ("list", {"elements_per_key": 3}, ADD, 3),
        ("map", {"entries_per_key": 5}, PUT, 5),
    ],
)
def test_preload_writes_a_fraction_of_keys_in_random_order(
    kind: str, extra: dict[str, Any], op: Op, per_key: int
) -> None:
    w = workload(state(kind=kind, keys=2_000, **extra), preload_fraction=0.25)
    b = stream(w, "preload")
    assert set(b.op.tolist()) == {op}
    keys, counts = np.unique(b.key, return_counts=True)
    assert len(keys) == 500 and set(counts.tolist()) == {per_key}
    first_seen = b.key[np.sort(np.unique(b.key, return_index=True)[1])]
    assert not np.all(np.diff(first_seen) > 0), "keys must not be written in id order"
    assert np.all(np.diff(b.ts) >= 0) and b.ts.max() <= 0
    if kind == "map":
        assert sorted(b.user_key[b.key == keys[0]].tolist()) == list(range(per_key))
    assert np.all(b.value_size == 100)


def test_preload_of_windowed_state_writes_windows_in_flight_and_their_timers() -> None:
    w = workload(
        state(kind="aggregating", keys=100, window=Window("sliding", 10_000, 5_000)),
    )
    b = stream(w, "preload")
    writes = b.state == 0
    assert sorted(
        set(zip(b.ns_start[writes].tolist(), b.ns_end[writes].tolist(), strict=True))
    ) == [
        (-5000, 5000),
        (0, 10000),
    ]
    timers = b.state == 1
    assert set(b.op[timers].tolist()) == {Op.REGISTER_TIMER}
    assert np.count_nonzero(timers) == 200
    assert np.all(b.timer_ts[timers] == b.ns_end[timers] - 1)


# -- measure: basics -------------------------------------------------------------------------


def test_measure_times_and_access_counts() -> None:
    w = workload(state(accesses_per_record=1.5, operations=(("read", 1.0),)), records=10_000, rps=3)
    b = stream(w, "measure")
    assert b.ts[0] == 0 and b.ts[-1] == 9_999 * 1000 // 3
    assert np.all(np.diff(b.ts) >= 0)
    assert abs(len(b) - 15_000) < 4 * np.sqrt(10_000 * 0.25)
    assert set(b.op.tolist()) == {GET} and np.all(b.value_size == 0)


def test_operation_shares_and_calls() -> None:
    w = workload(
        state(kind="reducing", operations=(("read_update", 0.5), ("read", 0.3), ("clear", 0.2))),
        records=20_000,
    )
    b = stream(w, "measure")
    ops = Counter(b.op.tolist())
    # read_update is a GET then an ADD on the same key (reducing state: add, not update).
    add_at = np.flatnonzero(b.op == ADD)
    assert np.all(b.op[add_at - 1] == GET) and np.array_equal(b.key[add_at - 1], b.key[add_at])
    assert UPDATE not in ops
    assert abs(ops[ADD] / 20_000 - 0.5) < 0.02
    assert abs(ops[CLEAR] / 20_000 - 0.2) < 0.02
    assert abs((ops[GET] - ops[ADD]) / 20_000 - 0.3) < 0.02


def test_map_calls_and_user_keys() -> None:
    w = workload(
        state(
            kind="map", entries_per_key=7, operations=(("get", 0.4), ("put", 0.4), ("iterate", 0.2))
        ),
    )
    b = stream(w, "measure")
    per_entry = np.isin(b.op, [GET, PUT])
    assert set(b.user_key[per_entry].tolist()) == set(range(7))
    assert np.all(b.user_key[b.op == Op.ITERATE] == -1)
    assert np.all((b.value_size > 0) == (b.op == PUT))


@pytest.mark.parametrize(
    "dist",
    [
        SizeDist("fixed", 64),
        SizeDist("uniform", 0, min=10, max=20),
        SizeDist("normal", 500, min=1, max=800, sigma=100),
        SizeDist("lognormal", 300, min=1, max=1 << 20, sigma=1.0),
    ],
)
def test_sizes_follow_their_distribution(dist: SizeDist) -> None:
    sizes = draw_sizes(np.random.default_rng(1), dist, 50_000)
    assert sizes.min() >= dist.min and sizes.max() <= dist.max
    if dist.kind == "uniform":
        assert set(np.unique(sizes).tolist()) == set(range(10, 21))
    else:
        assert abs(sizes.mean() / dist.value - 1) < 0.03


# -- popularity ------------------------------------------------------------------------------


def test_zipf_is_skewed_and_its_hot_keys_are_scattered() -> None:
    w = workload(state(keys=10_000, popularity=Popularity("zipf", 1.0)), records=50_000)
    b = stream(w, "measure")
    shares = key_shares(b, 0)
    assert shares[:100].sum() > 0.45  # top 1%: H(100)/H(10000) ≈ 0.53
    ids, counts = np.unique(b.key, return_counts=True)
    hottest = ids[np.argsort(counts)[::-1][:20]]
    assert hottest.max() > 1_000 and not set(hottest.tolist()) <= set(range(20))


@pytest.mark.parametrize("exponent", [0.3, 1.0, 2.5])
def test_zipf_accepts_any_positive_exponent_and_skew_grows_with_it(exponent: float) -> None:
    w = workload(state(keys=5_000, popularity=Popularity("zipf", exponent)), records=20_000)
    top = key_shares(stream(w, "measure"), 0)[0]
    expected = 1 / np.sum(np.arange(1, 5_001, dtype=float) ** -exponent)
    assert abs(top - expected) < 0.2 * expected + 0.002


def test_uniform_is_flat() -> None:
    w = workload(state(keys=10_000), records=50_000)
    shares = key_shares(stream(w, "measure"), 0)
    assert shares[:100].sum() < 0.03


def test_hotset_sends_its_share_to_its_hot_keys() -> None:
    pop = Popularity("hotset", hot_fraction=0.1, hot_share=0.8)
    w = workload(state(keys=10_000, popularity=pop), records=50_000)
    shares = key_shares(stream(w, "measure"), 0)
    assert abs(shares[:1_000].sum() - 0.8) < 0.02


def test_sequential_takes_a_new_key_per_record_after_the_preloaded_ones() -> None:
    w = workload(
        state(
            keys=1_000,
            popularity=Popularity("sequential"),
            accesses_per_record=2,
            operations=(("read", 1.0),),
        ),
        records=2_500,
        preload_fraction=0.5,
    )
    assert np.array_equal(np.sort(stream(w, "preload").key), np.arange(500))
    b = stream(w, "measure")
    assert np.array_equal(b.key, (500 + np.repeat(np.arange(2_500), 2)) % 1_000)


def test_latest_prefers_the_newest_keys() -> None:
    pop = Popularity("latest", 1.0)
    w = workload(state(keys=100_000, popularity=pop, operations=(("read", 1.0),)), records=20_000)
    b = stream(w, "measure")
    age = (100_000 + np.arange(20_000) - b.key) % 100_000  # preload wrote ids 0..99_999
    # Zipf(1) over 100k ages: half the weight lies within the newest ~240 (uniform: 50_000).
    assert 150 < np.median(age) < 350 and np.mean(age == 0) > 0.05


# -- windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "window", [Window("tumbling", 1_000, 1_000), Window("sliding", 3_000, 1_000)]
)
def test_windows_like_flinks_window_operator(window: Window) -> None:
    w = workload(
        state(kind="aggregating", keys=50, window=window, operations=(("update", 1.0),)),
        records=20_000,
        rps=2_000,
    )
    pre, meas = stream(w, "preload"), stream(w, "measure")
    registered = {(k, s) for _, st, op, k, s, *_ in rows_of(pre) if st == 1}
    fired: set[tuple[int, int]] = set()
    max_ts = -1
    last_fire = -1
    rows = rows_of(meas)
    per_window = window.size_ms // window.slide_ms
    accesses = 0
    for i, (ts, st, op, key, ns_s, ns_e, _uk, _size, timer_ts) in enumerate(rows):
        if st == 0 and op == ADD:
            accesses += 1
            assert (
                ns_s <= ts < ns_e and ns_e - ns_s == window.size_ms and ns_s % window.slide_ms == 0
            )
            assert (key, ns_s) not in fired, "access to a window after it fired"
            if (key, ns_s) not in registered:
                # First access of a (key, window): a timer at window end - 1, right after it.
                assert rows[i + 1][1:6] == (1, Op.REGISTER_TIMER, key, ns_s, ns_e)
                assert rows[i + 1][8] == ns_e - 1
                registered.add((key, ns_s))
        elif st == 1 and op == Op.REGISTER_TIMER:
            assert rows[i - 1][3:5] == (key, ns_s)
        elif op == Op.FIRE_TIMER:
            assert max_ts <= timer_ts < ts, "fires once the watermark (ts - 1) reaches the timer"
            assert timer_ts >= last_fire, "fires in timestamp order"
            last_fire = timer_ts
            assert (key, ns_s) in registered and (key, ns_s) not in fired
            fired.add((key, ns_s))
            assert [r[1:6] for r in rows[i + 1 : i + 3]] == [
                (0, GET, key, ns_s, ns_e),
                (0, CLEAR, key, ns_s, ns_e),
            ]
        if op == ADD:  # fires carry the time of the record they precede
            max_ts = max(max_ts, ts)
    assert accesses == 20_000 * per_window
    due = {(k, s) for k, s in registered if s + window.size_ms - 1 < meas.ts[-1]}
    assert fired == due and len(fired) > 0
    assert registered - fired, "timers due after the last record stay pending"


# -- TTL -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["value", "list"])
def test_ttl_expired_read_is_followed_by_a_clear(kind: str) -> None:
    write = "update" if kind == "value" else "append"
    w = workload(
        state(
            kind=kind,
            keys=3_000,
            ttl_ms=2_000,
            elements_per_key=20,
            operations=(("read", 0.5), (write, 0.5)),
        ),
        records=20_000,
        rps=1_000,
    )
    pre, meas = stream(w, "preload"), stream(w, "measure")
    last: dict[int, int] = {}
    for ts, _st, _op, key, *_ in rows_of(pre):
        last[key] = ts
    rows = rows_of(meas)
    expired = 0
    for i, (ts, _st, op, key, *_) in enumerate(rows):
        if op == GET:
            is_expired = key in last and last[key] + 2_000 <= ts
            follows = i + 1 < len(rows) and rows[i + 1][2] == CLEAR and rows[i + 1][3] == key
            assert follows == is_expired
            if is_expired:
                expired += 1
                del last[key]
        elif op in (UPDATE, ADD):
            last[key] = ts
        elif op == CLEAR:
            assert rows[i - 1][3] == key
            if rows[i - 1][2] == ADD:  # the job's cleanup of a full list, not TTL
                assert kind == "list"
                del last[key]
            else:
                assert rows[i - 1][2] == GET
    assert expired > 100


# -- lists -----------------------------------------------------------------------------------


def test_list_is_cleared_after_elements_per_key_appends() -> None:
    w = workload(
        state(
            kind="list", keys=200, elements_per_key=4, operations=(("append", 0.9), ("read", 0.1))
        ),
        records=10_000,
    )
    rows = rows_of(stream(w, "measure"))
    since: dict[int, int] = defaultdict(int)
    cleared: set[int] = set()
    for i, (_ts, _st, op, key, *_) in enumerate(rows):
        if op == ADD:
            since[key] += 1
            assert since[key] <= 4
        elif op == CLEAR:
            assert rows[i - 1][2] == ADD and rows[i - 1][3] == key
            # Before its first cleanup a key's count started at an unknown point of the cycle.
            assert since[key] == 4 or key not in cleared
            cleared.add(key)
            since[key] = 0
    assert len(cleared) == 200


def test_preloaded_lists_are_not_all_cleared_on_their_first_append() -> None:
    w = workload(
        state(kind="list", keys=2_000, elements_per_key=8, operations=(("append", 1.0),)),
        records=2_000,
    )
    b = stream(w, "measure")
    assert np.count_nonzero(b.op == CLEAR) < 0.3 * 2_000


def test_every_window_access_registers_trigger_and_cleanup_timer_and_a_fire_deletes_it() -> None:
    # WindowOperator.processElement: onElement's timer, then registerCleanupTimer (the same
    # timer with zero lateness); onEventTime -> clearAllState -> Trigger.clear deletes it.
    window = Window("sliding", 3_000, 1_000)
    w = workload(
        state(kind="aggregating", keys=50, window=window, operations=(("read_update", 1.0),)),
        records=5_000,
        rps=2_000,
    )
    rows = rows_of(stream(w, "measure"))
    adds = regs = fires = 0
    for i, (_ts, st, op, key, ns_s, ns_e, _uk, _size, timer_ts) in enumerate(rows):
        if st == 0 and op == ADD:
            adds += 1
            for r in rows[i + 1 : i + 3]:
                assert r[1:6] == (1, Op.REGISTER_TIMER, key, ns_s, ns_e) and r[8] == ns_e - 1
        elif op == Op.REGISTER_TIMER:
            regs += 1
        elif op == Op.FIRE_TIMER:
            fires += 1
            after = [(r[1], r[2], r[3], r[4], r[8]) for r in rows[i + 1 : i + 4]]
            assert after == [
                (0, GET, key, ns_s, -1),
                (0, CLEAR, key, ns_s, -1),
                (1, Op.DELETE_TIMER, key, ns_s, timer_ts),
            ]
    assert adds == 5_000 * 3 and regs == 2 * adds and fires > 0


# -- user timers -----------------------------------------------------------------------------


@pytest.mark.parametrize("per_record", [0.3, 1.0, 2.0])
def test_user_timers_register_for_the_accessed_key_and_fire_in_order(per_record: float) -> None:
    w = workload(
        state(keys=500, timers=Timers(per_record=per_record, delay_ms=3_000)),
        records=10_000,
        rps=1_000,
    )
    rows = rows_of(stream(w, "measure"))
    pending: set[tuple[int, int]] = set()
    registrations = 0
    last_fire = -1
    max_ts = -1
    for i, (ts, st, op, key, ns_s, _ns_e, _uk, _size, timer_ts) in enumerate(rows):
        if op == Op.REGISTER_TIMER:
            registrations += 1
            assert st == 1 and ns_s == -1 and timer_ts == ts + 3_000
            j = i - 1
            while rows[j][2] == Op.REGISTER_TIMER:
                j -= 1
            assert rows[j][1] == 0 and rows[j][3] == key and rows[j][0] == ts
            pending.add((timer_ts, key))
        elif op == Op.FIRE_TIMER:
            assert st == 1 and max_ts <= timer_ts < ts and timer_ts >= last_fire
            last_fire = timer_ts
            pending.remove((timer_ts, key))
        if op != Op.FIRE_TIMER:  # fires carry the time of the record they precede
            max_ts = max(max_ts, ts)
    assert abs(registrations / 10_000 - per_record) < 0.05
    assert all(t >= rows[-1][0] for t, _ in pending)
    assert last_fire > 0


# -- errors ----------------------------------------------------------------------------------


def test_unknown_operation_is_a_user_error_naming_the_field() -> None:
    w = workload(state(kind="list", operations=(("put", 1.0),)))
    with pytest.raises(TunerError, match="list state has no operation 'put'") as e:
        next(generate(w, "measure"))
    assert e.value.where == "states[0].operations"
