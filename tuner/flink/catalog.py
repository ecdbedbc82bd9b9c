"""Flink's option catalog per Flink version, read from the JSON files in tuner/flink/data/.

The JSON files are extracted from the real Flink jars by tools/catalog/extract_catalog.py: every
``state.backend.rocksdb.*`` option plus the few other keys tuner's emitted config uses. A
``Catalog`` knows each option's type and parses and formats values the way Flink's
``ConfigurationUtils`` does, so a value that passes here is one Flink accepts.

Typed values: MemorySize -> int bytes, Duration -> int ms, Boolean -> bool, Integer/Long ->
int, Double -> float, String -> str, Enum -> the constant's name, List<Enum> -> tuple of names.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Literal, cast

import yaml

from tuner.errors import TunerError
from tuner.flink.versions import CATALOG_IDS, catalog_id
from tuner.units import format_duration, format_memory_size, parse_duration_ms, parse_memory_size
from tuner.yamlio import bounded_load

__all__ = [
    "FORMAT_VERSION",
    "SUPPORTED_VERSIONS",
    "Catalog",
    "FlinkValue",
    "OptionSpec",
    "RawValue",
    "ValueType",
    "catalog_id",
    "load_catalog",
]

FORMAT_VERSION: Final = 1
# Catalog files shipped in tuner/flink/data/, by catalog id (defined in tuner.flink.versions).
SUPPORTED_VERSIONS: Final = CATALOG_IDS

ValueType = Literal[
    "MemorySize", "Integer", "Long", "Double", "Boolean", "Duration", "String", "Enum", "List<Enum>"
]
FlinkValue = int | float | bool | str | tuple[str, ...]
# What a config file can hand over for a key: text, or a YAML scalar or list (Flink 2.x).
RawValue = str | int | float | bool | list[Any]

_INT_RANGE: Final = {"Integer": (-(2**31), 2**31 - 1), "Long": (-(2**63), 2**63 - 1)}
# Java's Integer.parseInt / Long.parseLong: an optional sign and ASCII digits, nothing else.
_JAVA_INT: Final = re.compile(r"[+-]?[0-9]+", re.ASCII)
# Java's Double.parseDouble grammar (decimal, hex, NaN, Infinity, optional f/d suffix);
# Flink's ConfigurationUtils.convertToDouble calls it on the trimmed text.
_JAVA_DOUBLE: Final = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?",
    re.ASCII,
)


@dataclass(frozen=True)
class OptionSpec:
    """One Flink ConfigOption: its key, value type, default and documentation."""

    key: str
    type: ValueType
    default: str | None  # as Flink prints it; None when the option has no default
    description: str
    declared_in: str  # the Java class and field, e.g. "...RocksDBOptions.USE_MANAGED_MEMORY"
    enum_values: tuple[str, ...] = ()
    fallback_keys: tuple[str, ...] = ()
    deprecated_keys: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.type in ("Enum", "List<Enum>"):
            allowed = ", ".join(self.enum_values)
            if self.type == "Enum":
                return f"one of {allowed} (case-insensitive)"
            return f"a ';'-separated list of {allowed} (case-insensitive)"
        return _EXPECTED[self.type]


_EXPECTED: Final[dict[str, str]] = {
    "MemorySize": 'a memory size like "64 mb", "4 kb" or "1 gb"',
    "Duration": 'a duration like "10 s", "500 ms", "1 min" or "2 h"',
    "Boolean": "true or false",
    "Integer": "a whole number between -2147483648 and 2147483647",
    "Long": "a whole number between -9223372036854775808 and 9223372036854775807",
    "Double": 'a number like "0.5" or "10"',
    "String": "a string",
}


class Catalog:
    """The options one Flink version declares, with Flink's parsing and formatting rules."""

    def __init__(self, version: str, release: str, options: Mapping[str, OptionSpec]) -> None:
        self.version = version
        self.release = release
        self.options: Mapping[str, OptionSpec] = MappingProxyType(dict(options))
        # Flink reads an option from its deprecated and fallback keys too.
        self._aliases = {
            alias: spec.key
            for spec in options.values()
            for alias in (*spec.fallback_keys, *spec.deprecated_keys)
        }

    def __repr__(self) -> str:
        return f"Catalog(version={self.version!r}, {len(self.options)} options)"

    def get(self, key: str) -> OptionSpec | None:
        """The option for ``key``, also when ``key`` is one of its deprecated or fallback keys."""
        spec = self.options.get(key)
        if spec is None and key in self._aliases:
            spec = self.options[self._aliases[key]]
        return spec

    def spec(self, key: str) -> OptionSpec:
        """Like ``get``, but a missing key is a programming error (ValueError)."""
        spec = self.get(key)
        if spec is None:
            raise ValueError(f"{key!r} is not an option of the Flink {self.version} catalog")
        return spec

    def suggest(self, key: str) -> str | None:
        """The catalog key closest to a misspelled ``key``, or None when nothing is close."""
        matches = difflib.get_close_matches(key, list(self.options), n=1, cutoff=0.6)
        return matches[0] if matches else None

    def parse_value(self, key: str, text: RawValue) -> FlinkValue:
        """Parse a configured value of ``key`` as Flink would, into the typed Python value.

        ``text`` is the value as a config file holds it: a string, or the scalar or list a
        YAML parser produced (Flink 2.x's config.yaml), which Flink reads through its string
        form. Raises ValueError saying what was expected and quoting the value.
        """
        spec = self.spec(key)
        try:
            return _parse(spec, text, iso8601=not self.version.startswith("1."))
        except _Unexpected:
            raise ValueError(f"expected {spec.expected}, got {_show(text)}") from None

    def format_value(self, key: str, value: FlinkValue) -> str:
        """Format a typed value of ``key`` in the syntax Flink parses (``"64 mb"``, ``"A;B"``).

        A value of the wrong Python type is a programming error and raises ValueError.
        """
        spec = self.spec(key)
        text = _format(spec, value)
        if text is None:
            raise ValueError(f"{key}: cannot format {value!r} as {spec.type} ({spec.expected})")
        return text

    def default_value(self, key: str) -> FlinkValue | None:
        """The option's default as a typed value, or None when it has none."""
        spec = self.spec(key)
        return None if spec.default is None else self.parse_value(key, spec.default)


class _Unexpected(Exception):
    """A value does not have the option's syntax; turned into a ValueError by parse_value."""


def _show(value: RawValue) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _java_string(value: RawValue) -> str:
    """The text Flink converts, as Java's toString would print a YAML-parsed value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_string(item) for item in value) + "]"
    return str(value)


def _parse(spec: OptionSpec, raw: RawValue, *, iso8601: bool) -> FlinkValue:
    if spec.type == "List<Enum>":
        items = raw if isinstance(raw, list) else _split_list(_java_string(raw))
        return tuple(_parse_enum(spec, _java_string(item)) for item in items)
    if isinstance(raw, list):
        raise _Unexpected
    text = _java_string(raw)
    try:
        match spec.type:
            case "MemorySize":
                return parse_memory_size(text)
            case "Duration":
                return parse_duration_ms(text, iso8601=iso8601)
            case "Boolean":
                # ConfigurationUtils.convertToBoolean: "true"/"false" in any case, nothing else.
                if text.upper() in ("TRUE", "FALSE"):
                    return text.upper() == "TRUE"
                raise _Unexpected
            case "Integer" | "Long":
                low, high = _INT_RANGE[spec.type]
                if isinstance(raw, float) or not _JAVA_INT.fullmatch(text):
                    raise _Unexpected
                number = int(text)
                if not low <= number <= high:
                    raise _Unexpected
                return number
            case "Double":
                return _parse_java_double(text)
            case "Enum":
                return _parse_enum(spec, text)
            case "String":
                return text
    except ValueError:
        raise _Unexpected from None
    raise AssertionError(f"unknown option type {spec.type!r}")


def _parse_java_double(text: str) -> float:
    # Double.parseDouble trims like String.trim: chars <= U+0020.
    trimmed = text.strip("".join(chr(c) for c in range(0x21)))
    if not _JAVA_DOUBLE.fullmatch(trimmed):
        raise _Unexpected
    body = trimmed.rstrip("fFdD") if not trimmed.endswith("Infinity") else trimmed
    sign = -1.0 if body.startswith("-") else 1.0
    unsigned = body.lstrip("+-")
    if unsigned == "NaN":
        return math.nan
    if unsigned == "Infinity":
        return sign * math.inf
    if unsigned[:2] in ("0x", "0X"):
        return sign * float.fromhex(unsigned)
    return sign * float(unsigned)


def _parse_enum(spec: OptionSpec, text: str) -> str:
    # ConfigurationUtils.convertToEnum: compares toString() upper-cased (Locale.ROOT) with the
    # value upper-cased, without trimming.
    wanted = text.upper()
    for name in spec.enum_values:
        if name.upper() == wanted:
            return name
    raise _Unexpected


def _split_list(text: str) -> list[str]:
    """Split a list option's text as Flink 1.20/2.x do: YAML flow "[A, B]" or "A;B".

    Items are trimmed, may be quoted with ' or ", and a trailing ';' adds no item
    (ConfigurationUtils.convertToList, StructuredOptionsSplitter.splitEscaped).
    """
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            items = bounded_load(stripped, "<value>", yaml.SafeLoader)
        except TunerError:
            raise _Unexpected from None
        if not isinstance(items, list):
            raise _Unexpected
        return [_java_string(cast(RawValue, item)) for item in items]
    tokens: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in stripped:
        if quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "'\"":
            quote = char
        elif char == ";":
            tokens.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quote is not None:
        raise _Unexpected
    last = "".join(current).strip()
    if last:
        tokens.append(last)
    return tokens


def _format(spec: OptionSpec, value: FlinkValue) -> str | None:
    """The Flink text for ``value``, or None when ``value`` has the wrong Python type."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    match spec.type:
        case "MemorySize" if is_int:
            return format_memory_size(cast(int, value))
        case "Duration" if is_int:
            return format_duration(cast(int, value))
        case "Boolean" if isinstance(value, bool):
            return "true" if value else "false"
        case "Integer" | "Long" if is_int:
            low, high = _INT_RANGE[spec.type]
            return str(value) if low <= cast(int, value) <= high else None
        case "Double" if is_int or isinstance(value, float):
            number = float(cast(float, value))
            if math.isnan(number):
                return "NaN"
            if math.isinf(number):
                return "Infinity" if number > 0 else "-Infinity"
            return repr(number)
        case "String" if isinstance(value, str):
            return value
        case "Enum" if isinstance(value, str) and value in spec.enum_values:
            return value
        case "List<Enum>" if isinstance(value, tuple) and all(
            isinstance(item, str) and item in spec.enum_values for item in value
        ):
            return ";".join(value)
    return None


def _option_from_json(data: Mapping[str, Any]) -> OptionSpec:
    return OptionSpec(
        key=data["key"],
        type=data["type"],
        default=data["default"],
        description=data["description"],
        declared_in=data["declared_in"],
        enum_values=tuple(data.get("enum_values", ())),
        fallback_keys=tuple(data["fallback_keys"]),
        deprecated_keys=tuple(data["deprecated_keys"]),
    )


@cache
def _load(catalog: str) -> Catalog:
    source = resources.files("tuner.flink").joinpath("data", f"catalog-{catalog}.json")
    data = json.loads(source.read_text(encoding="utf-8"))
    if data["format_version"] > FORMAT_VERSION:
        raise TunerError(
            f"catalog format {data['format_version']} is newer than this tuner reads "
            f"({FORMAT_VERSION}); upgrade tuner",
            file=str(source),
        )
    options = {option["key"]: _option_from_json(option) for option in data["options"]}
    return Catalog(data["flink_version"], data["flink_release"], options)


def load_catalog(flink_version: str) -> Catalog:
    """The option catalog for ``flink_version`` ("1.20", "1.20.x", "2", "2.x", "2.0" to "2.3")."""
    return _load(catalog_id(flink_version))
