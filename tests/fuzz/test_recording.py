"""Fuzzing the recording reader and the import: exit 2 (TunerError) or success, never another
exception. Random bytes, edits of a valid recording, and random JSON in its header, state
definitions and footer (with valid CRCs, so the values reach the checks)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz._budget import budget, mutate, refused_or_read
from tests.fuzz.strategies import EDITS, JSON, with_overrides
from tests.recorder._recordings import STATES, events, footer, header
from tuner.recorder.format import EVENT_DTYPE, read_recording, write_recording
from tuner.trace.recording import import_recording

HEADER_KEYS = ["job_id", "operator", "subtask", "max_parallelism", "sample", "flink_version"]
STATE_KEYS = ["id", "name", "kind", "namespace", "ttl"]
FOOTER_KEYS = [
    "events",
    "dropped_events",
    "stopped",
    "sampled_key_switches",
    "state_calls",
    "timer_cost_ns",
    "timed_log2_ns",
    "task_cpu_ns",
    "key_lengths",
    "user_key_lengths",
]


def _valid() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "a.tunerrec"
        write_recording(f, header(), STATES, events(30), footer(30), block_events=8)
        return f.read_bytes()


VALID = _valid()


def _import(data: bytes) -> None:
    """Read the bytes as a recording file, then import it (a trace written and checked)."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "rec" / "job" / "Op.0.0.1.tunerrec"
        f.parent.mkdir(parents=True)
        f.write_bytes(data)
        refused_or_read(lambda: read_recording(f))
        refused_or_read(lambda: import_recording(Path(d) / "rec", Path(d) / "t.parquet"))


@budget(40)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _import(b"TUNERREC" + data if data[:1] == b"T" else data)


@budget(60)
@given(EDITS)
def test_edited_recording(edits: list[tuple[int, int, int]]) -> None:
    _import(mutate(VALID, edits))


@budget(120)
@given(
    head=with_overrides(header(), HEADER_KEYS),
    first_state=with_overrides(STATES[1], STATE_KEYS),
    foot=with_overrides(footer(30), FOOTER_KEYS),
    sizes=st.lists(st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1), max_size=3),
    buckets=st.dictionaries(st.text(max_size=12), JSON, max_size=3),
)
def test_random_json_in_header_states_and_footer(
    head: dict[str, Any],
    first_state: dict[str, Any],
    foot: dict[str, Any],
    sizes: list[int],
    buckets: dict[str, Any],
) -> None:
    ev = events(30)
    ev["size"][: len(sizes)] = sizes
    if buckets:
        foot = {**foot, "timed_log2_ns": buckets}
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "a.tunerrec"
        write_recording(f, head, [STATES[0], first_state, *STATES[2:]], ev, foot)
        _import(f.read_bytes())


@budget(40)
@given(states=st.lists(JSON, max_size=5), foot=JSON)
def test_any_json_as_states_and_footer(states: list[Any], foot: Any) -> None:
    """Not even objects: state definitions and a footer of any JSON value."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "a.tunerrec"
        ev = np.zeros(0, dtype=EVENT_DTYPE)
        write_recording(f, header(), states, ev, foot)
        _import(f.read_bytes())
