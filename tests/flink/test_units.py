"""Flink memory-size and duration syntax: examples checked against Flink 2.3's own parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuner.units import format_duration, format_memory_size, parse_duration_ms, parse_memory_size

KB, MB, GB, TB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
LONG_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64mb", 64 * MB),
        ("64 mb", 64 * MB),
        ("64 MB", 64 * MB),
        ("  64   Mb ", 64 * MB),
        ("1g", GB),
        ("2 gb", 2 * GB),
        ("3 gibibytes", 3 * GB),
        ("4 kb", 4 * KB),
        ("4k", 4 * KB),
        ("7 kibibytes", 7 * KB),
        ("5 mebibytes", 5 * MB),
        ("1 tebibytes", TB),
        ("1t", TB),
        ("100", 100),
        ("100 b", 100),
        ("100 bytes", 100),
        ("0", 0),
        (4096, 4096),
    ],
)
def test_parse_memory_size(text: str | int, expected: int) -> None:
    assert parse_memory_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a memory size"),
        ("mb", "expected a memory size"),
        ("-1 mb", "expected a memory size"),
        ("1.5 mb", "unknown memory unit '.5 mb'"),
        ("64 mib", "unknown memory unit 'mib'"),
        ("10 s", "unknown memory unit 's'"),
        ("9223372036854775807 kb", "does not fit in 64 bits"),
        (-1, "between 0 and"),
    ],
)
def test_parse_memory_size_rejects(text: str | int, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_memory_size(text)
    if isinstance(text, str) and text:
        assert repr(text) in str(info.value)


def test_parse_memory_size_rejects_bool() -> None:
    with pytest.raises(ValueError, match="expected a memory size"):
        parse_memory_size(True)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (100, "100 bytes"),
        (4 * KB, "4 kb"),
        (64 * MB, "64 mb"),
        (GB, "1 gb"),
        (1536 * KB, "1536 kb"),
        (TB, "1 tb"),
        (MB + 1, f"{MB + 1} bytes"),
    ],
)
def test_format_memory_size(n: int, text: str) -> None:
    assert format_memory_size(n) == text


@pytest.mark.parametrize("n", [-1, LONG_MAX + 1])
def test_format_memory_size_rejects_out_of_range(n: int) -> None:
    with pytest.raises(ValueError, match="between 0 and"):
        format_memory_size(n)


@given(st.integers(min_value=0, max_value=LONG_MAX))
def test_memory_size_round_trip(n: int) -> None:
    assert parse_memory_size(format_memory_size(n)) == n


@given(
    st.integers(min_value=0, max_value=1 << 20),
    st.sampled_from(["b", "bytes", "k", "kb", "kibibytes", "m", "mb", "mebibytes", "g", "gb"]),
    st.text(alphabet=" \t", max_size=3),
    st.text(alphabet=" \t", max_size=3),
    st.lists(st.booleans(), min_size=10, max_size=10),
)
def test_memory_size_case_and_space_variants(
    number: int, unit: str, before: str, between: str, upper: list[bool]
) -> None:
    cased = "".join(c.upper() if up else c for c, up in zip(unit, upper, strict=False))
    canonical = parse_memory_size(f"{number}{unit}")
    assert parse_memory_size(f"{before}{number}{between}{cased}{before}") == canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 s", 10_000),
        ("10s", 10_000),
        ("10S", 10_000),
        ("3 secs", 3_000),
        ("500 ms", 500),
        ("500", 500),
        ("1 min", 60_000),
        ("5 m", 300_000),
        ("1 MIN", 60_000),
        ("2 h", 7_200_000),
        ("2 hours", 7_200_000),
        (" 1 d ", 86_400_000),
        ("1500 µs", 1),
        ("999999 ns", 0),
        ("PT720H", 720 * 3_600_000),
        ("pt720h", 720 * 3_600_000),
        ("P1DT2H", 26 * 3_600_000),
        ("PT1,5S", 1_500),
        ("PT0.5S", 500),
        ("PT1M30S", 90_000),
        (250, 250),
    ],
)
def test_parse_duration_ms(text: str | int, expected: int) -> None:
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a duration"),
        ("-5 s", "expected a duration"),
        ("1.5 s", "unknown time unit '.5 s'"),
        ("64 mb", "unknown time unit 'mb'"),
        ("P1W", "expected a duration"),
        ("PT", "expected a duration"),
        ("P", "expected a duration"),
        ("-PT5S", "must not be negative"),
        ("PT-5S", "must not be negative"),
        ("9223372036854775807 d", "does not fit"),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_duration_ms(text)
    if text:
        assert repr(text) in str(info.value)


def test_iso8601_can_be_refused_as_flink_1_does() -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration_ms("PT720H", iso8601=False)
    assert parse_duration_ms("720 h", iso8601=False) == 720 * 3_600_000


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0 ms"),
        (500, "500 ms"),
        (10_000, "10 s"),
        (90_000, "90 s"),
        (60_000, "1 min"),
        (7_200_000, "2 h"),
        (720 * 3_600_000, "30 d"),
        (1_001, "1001 ms"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@given(st.integers(min_value=0, max_value=LONG_MAX))
def test_duration_round_trip(ms: int) -> None:
    text = format_duration(ms)
    assert parse_duration_ms(text) == ms
    assert parse_duration_ms(text, iso8601=False) == ms


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["d", "day", "h", "hours", "min", "m", "minutes", "s", "sec", "ms", "millis"]),
    st.text(alphabet=" \t", max_size=3),
    st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_duration_case_and_space_variants(
    number: int, unit: str, between: str, upper: list[bool]
) -> None:
    cased = "".join(c.upper() if up else c for c, up in zip(unit, upper, strict=False))
    assert parse_duration_ms(f" {number}{between}{cased} ") == parse_duration_ms(f"{number}{unit}")
