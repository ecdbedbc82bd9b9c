"""Fuzzing the workload loader: exit 2 (TunerError) or success, never another exception.
Random text, edits of the example workloads, and random values in a workload's fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz._budget import budget, mutate, refused_or_read
from tests.fuzz.strategies import EDITS, JSON
from tuner.workload import loads_workload, parse_workload

EXAMPLES = sorted((Path(__file__).parents[2] / "workloads").glob("*.yaml"))
TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
STATE_KEYS = ["name", "kind", "keys", "key_type", "key_size", "popularity", "value_size"]
STATE_KEYS += ["operations", "window", "ttl", "timers", "entries_per_key", "user_key_size"]
TOP_KEYS = ["name", "flink_version", "memory", "replay", "states", "max_parallelism", "seed"]


@budget(60)
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    refused_or_read(lambda: loads_workload(text))


@budget(100)
@given(st.sampled_from(range(len(TEXTS))), EDITS)
def test_edited_example(which: int, edits: list[tuple[int, int, int]]) -> None:
    text = mutate(TEXTS[which].encode(), edits).decode("utf-8", errors="replace")
    refused_or_read(lambda: loads_workload(text))


_SIZES = st.sampled_from(["3 gb", "2 gb", "2047 mb", "0 b", "-1 b", "1 tb", "64 kb", "abc"])


@budget(150)
@given(
    state=st.dictionaries(st.sampled_from(STATE_KEYS), JSON | _SIZES, max_size=4),
    top=st.dictionaries(st.sampled_from(TOP_KEYS), JSON, max_size=2),
)
def test_random_values_in_fields(state: dict[str, Any], top: dict[str, Any]) -> None:
    base_state = {
        "name": "s",
        "kind": "value",
        "keys": 1000,
        "operations": {"read": 0.5, "update": 0.5},
    }
    data = {
        "name": "fuzz",
        "flink_version": "2.3",
        "memory": {"managed_per_slot": "512 mb"},
        "states": [{**base_state, **state}],
        **top,
    }
    refused_or_read(lambda: parse_workload(data, "fuzz.yaml"))
