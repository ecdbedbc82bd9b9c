"""How workload errors are worded: field paths, values as the user wrote them, suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

FieldPath = tuple[str | int, ...]


def field_path(path: Sequence[str | int]) -> str | None:
    """``states[1].value_size`` for the path ("states", 1, "value_size"); None for the root."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or None


def describe(value: object) -> str:
    """A value as the user wrote it in YAML, with the YAML type name."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def one_of(names: Sequence[str]) -> str:
    """'"a", "b" or "c"': the choices, quoted, for a message."""
    quoted = [f'"{n}"' for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def suggest(word: str, choices: Sequence[str]) -> str:
    """'; did you mean "x"?' for the closest choice, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def count_of(n: int, one: str, many: str) -> str:
    """'1 state', '3 states'."""
    return f"{n} {one if n == 1 else many}"
