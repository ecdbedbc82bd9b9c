"""Hypothesis strategies shared by the fuzz tests: JSON values and byte-level edits."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Numbers a hostile writer would pick: bounds, NaN and infinities, huge and negative values.
_NUMBERS: list[int | float] = [0, -1, 1, -5, 63, 64, 128, 32767, 32768, 1 << 31, 1 << 63]
_NUMBERS += [10**30, -(10**30), 0.5, float("nan"), float("inf"), float("-inf"), 1e308, -0.0]
SPECIAL_NUMBERS = st.sampled_from(_NUMBERS)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    SPECIAL_NUMBERS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["abc", "", "value", "map", "timers", "bogus", "window", "8", "-3", "4e9"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
EDITS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=1 << 20),
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=0, max_value=255),
    ),
    min_size=1,
    max_size=6,
)


def json_object(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object over ``keys`` (known fields, so the values reach the checks) and a few
    random ones, each with a random JSON value."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), JSON, max_size=len(keys))


def with_overrides(base: dict[str, Any], keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some of ``keys`` replaced by random JSON values or removed."""
    return st.dictionaries(st.sampled_from(keys), JSON | st.just(_REMOVE), max_size=3).map(
        lambda changes: {
            k: v
            for k, v in {**base, **changes}.items()
            if not (k in changes and changes[k] is _REMOVE)
        }
    )


_REMOVE = object()
