"""Flink's RocksDB key layout: golden bytes from real Flink and properties of the encoders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.flink.keys import (
    PAYLOAD,
    CompositeKey,
    KeyLayout,
    TimerKey,
    assign_key_groups,
    decode_composite_key,
    decode_timer_key,
    key_group_prefix_bytes,
    lz4_ratio,
    payload_pool,
    rows_to_bytes,
    value_headers,
)
from tuner.trace.ops import StateInfo

# Produced by Flink 2.3.0's own classes (flink-dist-2.3.0.jar):
# KeyGroupRangeAssignment.assignToKeyGroup, SerializedCompositeKeyBuilder with LongSerializer /
# StringSerializer (keys "%06d"),
# VoidNamespaceSerializer, TimeWindow.Serializer, and CompositeKeySerializationUtils.writeKeyGroup +
# TimerSerializer for timers. Columns: key type, max parallelism, key id, key group, void entry,
# windowed entry (long: TimeWindow(-5000, 55000); string: TimeWindow(1000, 2000)), map entry with
# user key 77 under VoidNamespace (long only), timer (long: ts -3, void; string: ts 1999, window).
GOLDEN = [
    (
        "long",
        128,
        0,
        94,
        "5e000000000000000000",
        "5e0000000000000000ffffffffffffec78000000000000d6d8",
        "5e000000000000000000000000000000004d",
        "5e7ffffffffffffffd000000000000000000",
    ),
    (
        "long",
        128,
        1,
        86,
        "56000000000000000100",
        "560000000000000001ffffffffffffec78000000000000d6d8",
        "56000000000000000100000000000000004d",
        "567ffffffffffffffd000000000000000100",
    ),
    (
        "long",
        128,
        42,
        29,
        "1d000000000000002a00",
        "1d000000000000002affffffffffffec78000000000000d6d8",
        "1d000000000000002a00000000000000004d",
        "1d7ffffffffffffffd000000000000002a00",
    ),
    (
        "long",
        128,
        -7,
        18,
        "12fffffffffffffff900",
        "12fffffffffffffff9ffffffffffffec78000000000000d6d8",
        "12fffffffffffffff900000000000000004d",
        "127ffffffffffffffdfffffffffffffff900",
    ),
    (
        "long",
        128,
        123456789012,
        123,
        "7b0000001cbe991a1400",
        "7b0000001cbe991a14ffffffffffffec78000000000000d6d8",
        "7b0000001cbe991a1400000000000000004d",
        "7b7ffffffffffffffd0000001cbe991a1400",
    ),
    (
        "long",
        128,
        9223372036854775807,
        108,
        "6c7fffffffffffffff00",
        "6c7fffffffffffffffffffffffffffec78000000000000d6d8",
        "6c7fffffffffffffff00000000000000004d",
        "6c7ffffffffffffffd7fffffffffffffff00",
    ),
    (
        "string6",
        128,
        0,
        77,
        "4d0730303030303000",
        "4d0730303030303000000000000003e800000000000007d0",
        "-",
        "4d80000000000007cf0730303030303000000000000003e800000000000007d0",
    ),
    (
        "string6",
        128,
        5,
        90,
        "5a0730303030303500",
        "5a0730303030303500000000000003e800000000000007d0",
        "-",
        "5a80000000000007cf0730303030303500000000000003e800000000000007d0",
    ),
    (
        "string6",
        128,
        99999,
        61,
        "3d0730393939393900",
        "3d0730393939393900000000000003e800000000000007d0",
        "-",
        "3d80000000000007cf0730393939393900000000000003e800000000000007d0",
    ),
    (
        "string6",
        128,
        31415,
        74,
        "4a0730333134313500",
        "4a0730333134313500000000000003e800000000000007d0",
        "-",
        "4a80000000000007cf0730333134313500000000000003e800000000000007d0",
    ),
    (
        "long",
        4096,
        0,
        2526,
        "09de000000000000000000",
        "09de0000000000000000ffffffffffffec78000000000000d6d8",
        "09de000000000000000000000000000000004d",
        "09de7ffffffffffffffd000000000000000000",
    ),
    (
        "long",
        4096,
        1,
        4054,
        "0fd6000000000000000100",
        "0fd60000000000000001ffffffffffffec78000000000000d6d8",
        "0fd6000000000000000100000000000000004d",
        "0fd67ffffffffffffffd000000000000000100",
    ),
    (
        "long",
        4096,
        42,
        3613,
        "0e1d000000000000002a00",
        "0e1d000000000000002affffffffffffec78000000000000d6d8",
        "0e1d000000000000002a00000000000000004d",
        "0e1d7ffffffffffffffd000000000000002a00",
    ),
    (
        "long",
        4096,
        -7,
        3218,
        "0c92fffffffffffffff900",
        "0c92fffffffffffffff9ffffffffffffec78000000000000d6d8",
        "0c92fffffffffffffff900000000000000004d",
        "0c927ffffffffffffffdfffffffffffffff900",
    ),
    (
        "long",
        4096,
        123456789012,
        2939,
        "0b7b0000001cbe991a1400",
        "0b7b0000001cbe991a14ffffffffffffec78000000000000d6d8",
        "0b7b0000001cbe991a1400000000000000004d",
        "0b7b7ffffffffffffffd0000001cbe991a1400",
    ),
    (
        "long",
        4096,
        9223372036854775807,
        2156,
        "086c7fffffffffffffff00",
        "086c7fffffffffffffffffffffffffffec78000000000000d6d8",
        "086c7fffffffffffffff00000000000000004d",
        "086c7ffffffffffffffd7fffffffffffffff00",
    ),
    (
        "string6",
        4096,
        0,
        1869,
        "074d0730303030303000",
        "074d0730303030303000000000000003e800000000000007d0",
        "-",
        "074d80000000000007cf0730303030303000000000000003e800000000000007d0",
    ),
    (
        "string6",
        4096,
        5,
        858,
        "035a0730303030303500",
        "035a0730303030303500000000000003e800000000000007d0",
        "-",
        "035a80000000000007cf0730303030303500000000000003e800000000000007d0",
    ),
    (
        "string6",
        4096,
        99999,
        317,
        "013d0730393939393900",
        "013d0730393939393900000000000003e800000000000007d0",
        "-",
        "013d80000000000007cf0730393939393900000000000003e800000000000007d0",
    ),
    (
        "string6",
        4096,
        31415,
        330,
        "014a0730333134313500",
        "014a0730333134313500000000000003e800000000000007d0",
        "-",
        "014a80000000000007cf0730333134313500000000000003e800000000000007d0",
    ),
]
# String keys of 130 characters (two-byte length varint) -> key group, per max parallelism.
GOLDEN_STRING130 = {
    128: {0: 58, 5: 21, 99999: 101, 31415: 90},
    4096: {0: 1210, 5: 3093, 99999: 2661, 31415: 2522},
}


def _one(matrix: np.ndarray[Any, Any]) -> bytes:
    return rows_to_bytes(matrix)[0]


@pytest.mark.parametrize(("kind", "mp", "key", "kg", "void", "window", "map_", "timer"), GOLDEN)
def test_layout_matches_flink(
    kind: str, mp: int, key: int, kg: int, void: str, window: str, map_: str, timer: str
) -> None:
    key_type, size = ("long", 8) if kind == "long" else ("string", 6)
    plain = KeyLayout(key_type, size, windowed=False, max_parallelism=mp)  # type: ignore[arg-type]
    windowed = KeyLayout(key_type, size, windowed=True, max_parallelism=mp)  # type: ignore[arg-type]
    assert int(plain.key_groups([key])[0]) == kg
    assert _one(plain.entry_keys([key], [-1], [-1])).hex() == void
    if kind == "long":
        assert _one(windowed.entry_keys([key], [-5000], [55000])).hex() == window
        mapped = KeyLayout("long", 8, user_key_size=8, max_parallelism=mp)
        assert _one(mapped.entry_keys([key], [-1], [-1], [77])).hex() == map_
        assert _one(plain.timer_keys([key], [-3], [-1], [-1])).hex() == timer
    else:
        assert _one(windowed.entry_keys([key], [1000], [2000])).hex() == window
        assert _one(windowed.timer_keys([key], [1999], [1000], [2000])).hex() == timer


@pytest.mark.parametrize("mp", [128, 4096])
def test_long_string_keys_match_flink(mp: int) -> None:
    layout = KeyLayout("string", 130, max_parallelism=mp)
    ids = list(GOLDEN_STRING130[mp])
    assert layout.key_groups(ids).tolist() == list(GOLDEN_STRING130[mp].values())
    entry = _one(layout.entry_keys([5], [-1], [-1]))
    # writeString stores length + 1 = 131 as the varint 0x83 0x01.
    assert entry[layout.prefix_bytes : layout.prefix_bytes + 2] == b"\x83\x01"
    assert len(entry) == layout.entry_bytes == layout.prefix_bytes + 2 + 130 + 1


def test_prefix_bytes_threshold() -> None:
    assert key_group_prefix_bytes(128) == 1
    assert key_group_prefix_bytes(129) == 2
    with pytest.raises(ValueError, match="max_parallelism"):
        key_group_prefix_bytes(0)


def test_string_keys_must_fit_their_width() -> None:
    with pytest.raises(ValueError, match=r"hold ids 0\.\.999"):
        assign_key_groups([1000], "string", 3, 128)
    with pytest.raises(ValueError, match="hold ids"):
        assign_key_groups([-1], "string", 3, 128)


def test_user_keys_narrower_than_a_long_keep_low_bytes() -> None:
    layout = KeyLayout("long", 8, user_key_size=2)
    assert _one(layout.serialize_user_keys([0x0102])) == b"\x01\x02"
    with pytest.raises(ValueError, match="fit in 2 bytes"):
        layout.serialize_user_keys([1 << 16])


def test_wide_user_keys_are_the_id_then_payload_bytes_chosen_by_it() -> None:
    wide = KeyLayout("long", 8, user_key_size=65)
    five, six, five_again = rows_to_bytes(wide.serialize_user_keys([5, 6, 5]))
    assert five[:8] == (5).to_bytes(8, "big") and len(five) == 65
    assert five == five_again  # a get finds its put
    assert five[8:] != six[8:]  # ids differ beyond their first bytes, as rows do
    assert five[8:] in PAYLOAD and five[8:] != bytes(57)
    # Ids still sort in numeric order.
    ids = [0, 1, 255, 256, 70_000, 1 << 40]
    assert sorted(rows_to_bytes(wide.serialize_user_keys(ids))) == rows_to_bytes(
        wide.serialize_user_keys(ids)
    )


@settings(max_examples=12, deadline=None)
@given(st.floats(1.0, 50.0))
def test_a_payload_pool_compresses_as_the_recording_measured(ratio: float) -> None:
    pool = payload_pool(ratio)
    assert len(pool) == len(PAYLOAD)
    assert lz4_ratio(pool) == pytest.approx(ratio, rel=0.01)


def test_payload_pools_without_a_measure_or_out_of_range() -> None:
    assert payload_pool(None) == PAYLOAD and lz4_ratio(PAYLOAD) == pytest.approx(2.21, abs=0.01)
    # Below 1 is noise (LZ4 cannot shrink it); above 50 is clamped, not refused.
    assert lz4_ratio(payload_pool(0.6)) == pytest.approx(1.0, abs=0.01)
    assert lz4_ratio(payload_pool(400.0)) == pytest.approx(50.0, rel=0.01)
    assert payload_pool(1.3) == payload_pool(1.3)  # deterministic: the Java side reads a copy


def test_wide_user_keys_take_the_layouts_payload() -> None:
    plain = KeyLayout("long", 8, user_key_size=65)
    like_rows = KeyLayout("long", 8, user_key_size=65, compressibility=1.3)
    a = rows_to_bytes(plain.serialize_user_keys([5]))[0]
    b = rows_to_bytes(like_rows.serialize_user_keys([5]))[0]
    assert a[:8] == b[:8] and a[8:] != b[8:]
    assert b[8:] in payload_pool(1.3)
    info = StateInfo("m", "map", user_key_size=65)
    assert KeyLayout.for_state(info, 128, 1.3) == like_rows


def test_value_headers() -> None:
    h = value_headers([1, -2], map_value=True, ttl=True)
    assert rows_to_bytes(h) == [
        b"\x00" + (1).to_bytes(8, "big"),
        b"\x00" + (-2).to_bytes(8, "big", signed=True),
    ]
    assert value_headers([1], map_value=False, ttl=False).shape == (1, 0)


def test_for_state_keeps_user_keys_for_map_state_only() -> None:
    assert KeyLayout.for_state(StateInfo("m", "map", user_key_size=4), 128).user_key_size == 4
    assert KeyLayout.for_state(StateInfo("v", "value", user_key_size=4), 128).user_key_size == 0


LONGS = st.integers(-(1 << 63), (1 << 63) - 1)
PARALLELISM = st.integers(1, 1 << 15)


@st.composite
def layouts(draw: st.DrawFn, map_state: bool = False) -> KeyLayout:
    string = draw(st.booleans())
    return KeyLayout(
        key_type="string" if string else "long",
        key_size=draw(st.integers(1, 200)) if string else 8,
        windowed=draw(st.booleans()),
        user_key_size=draw(st.integers(8, 16)) if map_state else 0,
        max_parallelism=draw(PARALLELISM),
    )


def _key_ids(layout: KeyLayout) -> st.SearchStrategy[int]:
    if layout.key_type == "long":
        return LONGS
    return st.integers(0, 10 ** min(layout.key_size, 18) - 1)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), map_state=st.booleans())
def test_decode_inverts_encode(data: st.DataObject, map_state: bool) -> None:
    layout = data.draw(layouts(map_state))
    n = data.draw(st.integers(1, 20))
    keys = data.draw(st.lists(_key_ids(layout), min_size=n, max_size=n))
    starts = data.draw(st.lists(LONGS, min_size=n, max_size=n))
    ends = data.draw(st.lists(LONGS, min_size=n, max_size=n))
    if not layout.windowed:
        starts, ends = [-1] * n, [-1] * n
    uks = data.draw(st.lists(st.integers(0, (1 << 63) - 1), min_size=n, max_size=n))
    encoded = rows_to_bytes(layout.entry_keys(keys, starts, ends, uks if map_state else None))
    groups = layout.key_groups(keys).tolist()
    for i, raw in enumerate(encoded):
        assert decode_composite_key(raw, layout) == CompositeKey(
            groups[i], keys[i], starts[i], ends[i], uks[i] if map_state else -1
        )
    timers = data.draw(st.lists(LONGS, min_size=n, max_size=n))
    for i, raw in enumerate(rows_to_bytes(layout.timer_keys(keys, timers, starts, ends))):
        assert decode_timer_key(raw, layout) == TimerKey(
            groups[i], timers[i], keys[i], starts[i], ends[i]
        )


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_key_starts_with_its_group_prefix(data: st.DataObject) -> None:
    layout = data.draw(layouts())
    keys = data.draw(st.lists(_key_ids(layout), min_size=1, max_size=30))
    groups = layout.key_groups(keys).tolist()
    assert all(0 <= g < layout.max_parallelism for g in groups)
    n = len(keys)
    entries = rows_to_bytes(layout.entry_keys(keys, [0] * n, [1] * n))
    timers = rows_to_bytes(layout.timer_keys(keys, [7] * n, [0] * n, [1] * n))
    for g, e, t in zip(groups, entries, timers, strict=True):
        assert e.startswith(layout.group_prefix(g))
        assert t.startswith(layout.group_prefix(g))


@settings(max_examples=100, deadline=None)
@given(
    key=LONGS,
    mp=PARALLELISM,
    timestamps=st.lists(LONGS, min_size=2, max_size=40, unique=True),
)
def test_timers_sort_by_timestamp_within_a_key_group(
    key: int, mp: int, timestamps: list[int]
) -> None:
    layout = KeyLayout("long", 8, max_parallelism=mp)
    n = len(timestamps)
    raw = rows_to_bytes(layout.timer_keys([key] * n, timestamps, [-1] * n, [-1] * n))
    by_bytes = [decode_timer_key(r, layout).timestamp for r in sorted(raw)]
    assert by_bytes == sorted(timestamps)


def test_timers_of_different_keys_in_one_group_order_by_timestamp_first() -> None:
    layout = KeyLayout("long", 8, max_parallelism=4)
    keys = np.arange(200)
    groups = layout.key_groups(keys)
    same = keys[groups == groups[0]][:10]
    ts = np.array([5, -1, 3, -(1 << 40), 0, 9, 2, 8, 1, 7][: same.size])
    raw = rows_to_bytes(layout.timer_keys(same, ts, np.full(same.size, -1), np.full(same.size, -1)))
    assert [decode_timer_key(r, layout).timestamp for r in sorted(raw)] == sorted(ts.tolist())


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    owners=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(-5, 5)), min_size=1, max_size=6, unique=True
    ),
)
def test_map_entries_of_one_key_and_namespace_are_contiguous(
    data: st.DataObject, owners: list[tuple[int, int]]
) -> None:
    layout = KeyLayout(
        "string", 7, windowed=True, user_key_size=8, max_parallelism=data.draw(PARALLELISM)
    )
    rows = []
    for key, window in owners:
        uks = data.draw(st.lists(st.integers(0, 1 << 40), min_size=1, max_size=8, unique=True))
        rows += [(key, window, uk) for uk in uks]
    k, w, u = (list(c) for c in zip(*rows, strict=True))
    start = [x * 1000 for x in w]
    end = [x * 1000 + 1000 for x in w]
    entries = rows_to_bytes(layout.entry_keys(k, start, end, u))
    prefixes = rows_to_bytes(layout.entry_keys(k, start, end))
    owner_of = dict(zip(entries, zip(k, w, strict=True), strict=True))
    prefix_of = dict(zip(zip(k, w, strict=True), prefixes, strict=True))
    ordered = [owner_of[e] for e in sorted(entries)]
    # Each owner's entries form one run in key order, all under the owner's prefix.
    runs = [o for i, o in enumerate(ordered) if i == 0 or ordered[i - 1] != o]
    assert len(runs) == len(set(runs))
    for e in entries:
        assert e.startswith(prefix_of[owner_of[e]])
        assert len(e) == layout.entry_bytes
