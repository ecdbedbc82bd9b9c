"""Fuzzing the trace reader and `trace inspect`'s summary: exit 2 (TunerError) or success,
never another exception. Random bytes, edits of a valid trace file, and random JSON as its
``header`` metadata (the rows then checked against it as they are read)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz._budget import budget, mutate, refused_or_read
from tests.fuzz.strategies import EDITS, JSON, json_object
from tests.hostile import _trace
from tests.trace._workloads import state, stream, workload
from tuner.trace.generator import stream_header
from tuner.trace.inspect import render_text, summarize
from tuner.trace.parquet import PHASES, read_trace, write_trace

STATE_KEYS = ["name", "kind", "key_type", "key_size", "windowed", "user_key_size", "ttl"]


def _valid() -> bytes:
    w = workload(state("v", keys=50), state("m", kind="map", keys=20), records=200)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.parquet"
        batches = [stream(w, "preload")], [stream(w, "measure")]
        write_trace(f, stream_header(w), *batches)
        return f.read_bytes()


VALID = _valid()


def _inspect(path: Path) -> None:
    def run() -> None:
        t = read_trace(path)
        for phase in PHASES:
            render_text(summarize(t.header, t.batches(phase)))

    refused_or_read(run)


def _inspect_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.parquet"
        f.write_bytes(data)
        _inspect(f)


@budget(40)
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    _inspect_bytes(b"PAR1" + data + b"PAR1" if data[:1] == b"P" else data)


@budget(80)
@given(EDITS)
def test_edited_trace(edits: list[tuple[int, int, int]]) -> None:
    _inspect_bytes(mutate(VALID, edits))


@budget(100)
@given(
    states=st.lists(json_object(STATE_KEYS) | JSON, max_size=3),
    max_parallelism=JSON,
    nulls=st.sets(st.sampled_from(["key", "state", "op", "ts", "value_size"]), max_size=2),
)
def test_random_json_header(states: list[Any], max_parallelism: Any, nulls: set[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.parquet"
        _trace(states=states, max_parallelism=max_parallelism, nulls=frozenset(nulls))(f)
        _inspect(f)


@budget(40)
@given(header=JSON, raw=st.binary(max_size=40))
def test_any_header_metadata(header: Any, raw: bytes) -> None:
    """The ``header`` metadata as any JSON value, or as any bytes."""
    with tempfile.TemporaryDirectory() as d:
        for i, value in enumerate((json.dumps(header).encode(), raw)):
            f = Path(d) / f"t{i}.parquet"
            _trace(raw_header=value)(f)
            _inspect(f)
