"""Memory sizes and durations in Flink's configuration syntax.

Inside the library sizes are ints in bytes and durations ints in milliseconds; these functions
convert at the edges. Parsing accepts what Flink accepts, and formatting produces text that both
Flink 1.20 and 2.x parse back to the same value.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "GIB",
    "KIB",
    "MEGABYTE",
    "MIB",
    "format_duration",
    "format_memory_size",
    "parse_duration_ms",
    "parse_memory_size",
]

# The units table, one meaning each. Flink's "mb" is binary (MemorySize), so memory sizes use
# KIB/MIB/GIB; disk rates are quoted in decimal megabytes per second, as vendors quote them.
KIB: Final = 1 << 10
MIB: Final = 1 << 20
GIB: Final = 1 << 30
MEGABYTE: Final = 1_000_000

# Flink holds both as a Java long.
_LONG_MAX: Final = 2**63 - 1

# MemorySize.MemoryUnit: every unit is binary, the first label of each is what Flink prints.
# (flink-core/src/main/java/org/apache/flink/configuration/MemorySize.java)
_MEMORY_UNITS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (1, ("b", "bytes")),
    (1 << 10, ("k", "kb", "kibibytes")),
    (1 << 20, ("m", "mb", "mebibytes")),
    (1 << 30, ("g", "gb", "gibibytes")),
    (1 << 40, ("t", "tb", "tebibytes")),
)
_MEMORY_MULTIPLIER: Final = {label: mult for mult, labels in _MEMORY_UNITS for label in labels}
# What Flink's MemorySize.toString prints for each unit (its second label).
_MEMORY_PRINTED: Final = {1: "bytes", 1 << 10: "kb", 1 << 20: "mb", 1 << 30: "gb", 1 << 40: "tb"}

# TimeUtils.TimeUnit labels in nanoseconds; "m" for minutes exists in 1.20 and 2.x.
# (flink-core/src/main/java/org/apache/flink/util/TimeUtils.java)
_NS_PER_MS: Final = 1_000_000
_TIME_UNITS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (86_400_000 * _NS_PER_MS, ("d", "day", "days")),
    (3_600_000 * _NS_PER_MS, ("h", "hour", "hours")),
    (60_000 * _NS_PER_MS, ("min", "m", "minute", "minutes")),
    (1_000 * _NS_PER_MS, ("s", "sec", "secs", "second", "seconds")),
    (_NS_PER_MS, ("ms", "milli", "millis", "millisecond", "milliseconds")),
    (1_000, ("µs", "micro", "micros", "microsecond", "microseconds")),
    (1, ("ns", "nano", "nanos", "nanosecond", "nanoseconds")),
)
_TIME_NANOS: Final = {label: ns for ns, labels in _TIME_UNITS for label in labels}
# The units format_duration picks from, largest first, as TimeUtils.formatWithHighestUnit does.
_TIME_PRINTED: Final = (
    (86_400_000, "d"),
    (3_600_000, "h"),
    (60_000, "min"),
    (1_000, "s"),
    (1, "ms"),
)

# java.time.Duration.parse's grammar (days, hours, minutes, seconds with up to 9 fraction
# digits; signs on the whole and on each part), which Flink 2.x's TimeUtils falls back to.
_ISO_DURATION: Final = re.compile(
    r"([-+]?)P(?:([-+]?[0-9]+)D)?"
    r"(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?",
    re.IGNORECASE | re.ASCII,
)

_EXPECTED_MEMORY: Final = 'a memory size like "64 mb", "4 kb", "1 gb" or a number of bytes'
_EXPECTED_DURATION: Final = 'a duration like "10 s", "500 ms", "1 min", "2 h" or "1 d"'


def _java_trim(text: str) -> str:
    # Java's String.trim strips every char <= U+0020, and only those; Python's strip differs.
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _split_number(text: str) -> tuple[str, str]:
    """Split ``text`` into its leading ASCII digits and the rest, lower-cased and trimmed."""
    pos = 0
    while pos < len(text) and "0" <= text[pos] <= "9":
        pos += 1
    # Flink lower-cases with Locale.US; for the ASCII labels it accepts, str.lower agrees.
    return text[:pos], _java_trim(text[pos:]).lower()


def parse_memory_size(value: str | int) -> int:
    """Parse a Flink memory size (``"64mb"``, ``"64 MB"``, ``"1g"``, ``"100"``) into bytes.

    A bare number, or an int, is bytes. Units are binary (1 kb = 1024 bytes), as in Flink's
    ``MemorySize.parseBytes``. Raises ValueError quoting the bad value.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected {_EXPECTED_MEMORY}, but got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= _LONG_MAX:
            raise ValueError(f"a memory size must be between 0 and {_LONG_MAX} bytes, got {value}")
        return value
    trimmed = _java_trim(value)
    number, unit = _split_number(trimmed)
    if not number:
        raise ValueError(f"expected {_EXPECTED_MEMORY}, but got {value!r}")
    multiplier = _MEMORY_MULTIPLIER.get(unit, 1 if not unit else 0)
    if multiplier == 0:
        raise ValueError(
            f"unknown memory unit {unit!r} in {value!r}: expected one of "
            f"{', '.join(_MEMORY_MULTIPLIER)}"
        )
    result = int(number) * multiplier
    if result > _LONG_MAX:
        raise ValueError(f"memory size {value!r} does not fit in 64 bits")
    return result


def format_memory_size(n: int) -> str:
    """Format bytes as Flink writes a memory size: the largest unit that divides it exactly.

    ``64 << 20`` -> ``"64 mb"``, ``4096`` -> ``"4 kb"``, ``100`` -> ``"100 bytes"``. Unlike
    Flink's ``MemorySize.toString``, a whole number of tebibytes prints as ``"1 tb"`` (Flink
    prints those in bytes); both parse back to the same size.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _LONG_MAX:
        raise ValueError(f"a memory size must be an int between 0 and {_LONG_MAX}, got {n!r}")
    if n == 0:
        return "0 bytes"
    for multiplier in sorted(_MEMORY_PRINTED, reverse=True):
        if n % multiplier == 0:
            return f"{n // multiplier} {_MEMORY_PRINTED[multiplier]}"
    raise AssertionError("unreachable: every int is a whole number of bytes")


def _parse_iso_duration_ns(text: str) -> int | None:
    match = _ISO_DURATION.fullmatch(text)
    if match is None:
        return None
    sign, days, time_part, hours, minutes, seconds, fraction = match.groups()
    # Java rejects "P" and "PT" with nothing after them.
    if days is None and hours is None and minutes is None and seconds is None:
        return None
    if time_part is not None and time_part.upper() == "T":
        return None
    total = 0
    for part, unit_ns in ((days, 86_400 * 10**9), (hours, 3_600 * 10**9), (minutes, 60 * 10**9)):
        if part is not None:
            total += int(part) * unit_ns
    if seconds is not None:
        whole = int(seconds)
        frac_ns = int((fraction or "").ljust(9, "0")) if fraction else 0
        # A fraction takes the sign of its seconds: "PT-1.5S" is minus 1.5 s.
        total += whole * 10**9 + (-frac_ns if seconds.startswith("-") else frac_ns)
    return -total if sign == "-" else total


def parse_duration_ms(value: str | int, *, iso8601: bool = True) -> int:
    """Parse a Flink duration (``"10 s"``, ``"500ms"``, ``"1 min"``, ``"2 h"``, ``"PT720H"``) to ms.

    A bare number, or an int, is milliseconds. Unit labels are case-insensitive. ISO-8601 text
    is accepted by Flink 2.x's ``TimeUtils.parseDuration`` only; pass ``iso8601=False`` to
    reject it as Flink 1.x does. Sub-millisecond parts are dropped, as ``Duration.toMillis``
    does. Raises ValueError quoting the bad value.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected {_EXPECTED_DURATION}, but got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= _LONG_MAX:
            raise ValueError(f"a duration must be between 0 and {_LONG_MAX} ms, got {value}")
        return value
    trimmed = _java_trim(value)
    number, unit = _split_number(trimmed)
    if not number:
        nanos = _parse_iso_duration_ns(trimmed) if iso8601 else None
        if nanos is None:
            expected = _EXPECTED_DURATION + (' or ISO-8601 like "PT10S"' if iso8601 else "")
            raise ValueError(f"expected {expected}, but got {value!r}")
        if nanos < 0:
            raise ValueError(f"a duration must not be negative, got {value!r}")
    elif not unit:
        nanos = int(number) * _NS_PER_MS
    elif unit in _TIME_NANOS:
        nanos = int(number) * _TIME_NANOS[unit]
    else:
        raise ValueError(
            f"unknown time unit {unit!r} in {value!r}: expected one of {', '.join(_TIME_NANOS)}"
        )
    millis = nanos // _NS_PER_MS
    if millis > _LONG_MAX:
        raise ValueError(f"duration {value!r} does not fit in 64 bits of milliseconds")
    return millis


def format_duration(ms: int) -> str:
    """Format milliseconds with the largest unit that divides them exactly (``"10 s"``, ``"30 d"``).

    The labels (d, h, min, s, ms) are parsed by Flink 1.20 and 2.x alike; ISO-8601 is avoided
    because Flink 1.x does not read it.
    """
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= _LONG_MAX:
        raise ValueError(f"a duration must be an int of ms between 0 and {_LONG_MAX}, got {ms!r}")
    if ms == 0:
        return "0 ms"
    for unit_ms, label in _TIME_PRINTED:
        if ms % unit_ms == 0:
            return f"{ms // unit_ms} {label}"
    raise AssertionError("unreachable: every int is a whole number of ms")
