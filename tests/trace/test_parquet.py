from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.trace._workloads import same, state, stream, workload
from tuner.errors import TunerError
from tuner.trace.generator import generate, stream_header
from tuner.trace.ops import COLUMNS, Op, OpBatch, StateInfo, StreamHeader
from tuner.trace.parquet import VERSION, read_trace, write_trace
from tuner.workload import Popularity, Timers, Window

HEADER = StreamHeader(
    states=(
        StateInfo("a", "value"),
        StateInfo("b", "map", key_type="string", key_size=12, ttl=True),
    ),
    max_parallelism=256,
)


def batch(n: int = 10, *, state: int = 0, op: int = 0) -> OpBatch:
    cols = {name: np.zeros(n, dtype=dtype) for name, dtype in COLUMNS}
    cols["state"][:] = state
    cols["op"][:] = op
    cols["key"] = np.arange(n)
    return OpBatch.from_columns(HEADER.names, cols)


@st.composite
def op_batches(draw: st.DrawFn) -> OpBatch:
    n = draw(st.integers(0, 50))
    cols: dict[str, Any] = {}
    for name, dtype in COLUMNS:
        if name == "op":
            elements = st.integers(0, max(Op))
        elif name == "state":
            elements = st.integers(0, len(HEADER.states) - 1)
        else:
            elements = None
        cols[name] = draw(hnp.arrays(np.dtype(dtype), n, elements=elements))
    return OpBatch.from_columns(HEADER.names, cols)


@settings(max_examples=60, deadline=None)
@given(pre=st.lists(op_batches(), max_size=3), meas=st.lists(op_batches(), max_size=3))
def test_any_batches_round_trip_exactly(
    tmp_path_factory: pytest.TempPathFactory, pre: list[OpBatch], meas: list[OpBatch]
) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.parquet"
    write_trace(path, HEADER, pre, meas)
    trace = read_trace(path)
    assert trace.header == HEADER
    for phase, written in (("preload", pre), ("measure", meas)):
        back = list(trace.batches(phase))  # type: ignore[arg-type]
        nonempty = [b for b in written if len(b)]
        assert len(back) == len(nonempty)  # one row group per (non-empty) batch
        for a, b in zip(nonempty, back, strict=True):
            assert same(a, b)
            assert all(b.columns()[n].dtype == np.dtype(d) for n, d in COLUMNS)
        assert trace.phase_rows[phase] == sum(len(b) for b in written)


def test_a_replayed_trace_is_the_generated_stream(tmp_path: Path) -> None:
    w = workload(
        state("v", popularity=Popularity("zipf", 1.1), ttl_ms=3_000),
        state("w", kind="list", window=Window("sliding", 2_000, 1_000)),
        state("t", kind="map", timers=Timers(per_record=0.5, delay_ms=500)),
        records=30_000,
    )
    path = tmp_path / "trace.parquet"
    header = stream_header(w)
    write_trace(path, header, generate(w, "preload", 7_000), generate(w, "measure", 7_000))
    trace = read_trace(path)
    assert trace.header == header
    for phase in ("preload", "measure"):
        assert same(OpBatch.concat(list(trace.batches(phase))), stream(w, phase))
    meta = pq.ParquetFile(path).metadata.metadata
    assert meta[b"format"] == b"tuner-trace" and meta[b"version"] == str(VERSION).encode()
    phases = pq.read_table(path, columns=["phase"]).column("phase").to_numpy()
    assert np.array_equal(
        phases, np.repeat([0, 1], [trace.phase_rows["preload"], trace.phase_rows["measure"]])
    )


def test_write_is_atomic_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_trace(path, HEADER, [batch()], [batch(5)])
    before = path.read_bytes()

    def failing() -> Iterator[OpBatch]:
        yield batch()
        raise RuntimeError("generator broke")

    with pytest.raises(RuntimeError):
        write_trace(path, HEADER, [batch(3)], failing())
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["t.parquet"]


# -- errors: each names the file -------------------------------------------------------------


def expect_error(path: Path, match: str) -> None:
    with pytest.raises(TunerError, match=match) as e:
        trace = read_trace(path)
        for phase in ("preload", "measure"):
            list(trace.batches(phase))
    assert e.value.file == str(path)


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.parquet", "no such trace file")


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_text("ts,state,op\n1,2,3\n")
    expect_error(path, "not a Parquet file")


@pytest.mark.parametrize("cut", [1, 100, 2_000])
def test_truncated_file(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "t.parquet"
    w = workload(state(), records=5_000)
    write_trace(path, stream_header(w), generate(w, "preload"), generate(w, "measure"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])
    expect_error(path, "truncated")


def write_raw(path: Path, table: pa.Table, meta: dict[str, str]) -> None:
    pq.write_table(table.replace_schema_metadata(meta), path)


def good_table(**override: np.ndarray[Any, Any]) -> pa.Table:
    cols = {name: np.zeros(3, dtype=dtype) for name, dtype in COLUMNS}
    cols["phase"] = np.ones(3, dtype=np.int8)
    cols.update(override)
    return pa.table(cols)


def good_meta(**override: str) -> dict[str, str]:
    header = {"max_parallelism": 128, "states": [{"name": "a", "kind": "value"}]}
    meta = {
        "format": "tuner-trace",
        "version": "1",
        "header": json.dumps(header),
    }
    meta.update(override)
    return meta


def test_the_hand_written_good_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_raw(path, good_table(), good_meta())
    trace = read_trace(path)
    assert [len(b) for b in trace.batches("measure")] == [3]
    assert trace.header.states == (StateInfo("a", "value"),)


@pytest.mark.parametrize(
    ("table", "meta", "match"),
    [
        (good_table(), {}, "not a tuner trace: metadata `format`"),
        (good_table(), good_meta(format="parquet"), "not a tuner trace"),
        (good_table(), good_meta(version="2"), "version 2 is newer than this tuner reads"),
        (good_table(), good_meta(version="x"), "`version` must be an integer"),
        (good_table(), good_meta(header="{"), "malformed `header`"),
        (good_table().drop_columns(["op", "key"]), good_meta(), "missing columns: op, key"),
        (good_table(op=np.zeros(3, np.int64)), good_meta(), "column `op` must be int8"),
        (good_table(op=np.array([0, 11, 1], np.int8)), good_meta(), r"`0 <= op <= 10`.*op=11"),
        (good_table(op=np.array([-1, 0, 1], np.int8)), good_meta(), "op=-1"),
        (
            good_table(state=np.array([0, 1, 0], np.int16)),
            good_meta(),
            r"`0 <= state <= 0`.*state=1",
        ),
        (good_table(phase=np.array([0, 1, 1], np.int8)), good_meta(), "mixes phases"),
    ],
)
def test_bad_files(tmp_path: Path, table: pa.Table, meta: dict[str, str], match: str) -> None:
    path = tmp_path / "bad.parquet"
    write_raw(path, table, meta)
    expect_error(path, match)


def test_a_header_keeps_its_compressibility(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    measured = dataclasses.replace(HEADER, compressibility=1.31)
    write_trace(path, measured, [], [batch()])
    assert read_trace(path).header == measured
    write_trace(path, HEADER, [], [batch()])  # not measured: no field, as older traces
    assert read_trace(path).header.compressibility is None


@pytest.mark.parametrize("value", ["1.3", True, 0.1, 5000, None])
def test_a_compressibility_out_of_range_is_refused(tmp_path: Path, value: object) -> None:
    header = {"max_parallelism": 128, "states": [{"name": "a", "kind": "value"}]}
    path = tmp_path / "bad.parquet"
    write_raw(
        path, good_table(), good_meta(header=json.dumps({**header, "compressibility": value}))
    )
    if value is None:
        assert read_trace(path).header.compressibility is None
    else:
        expect_error(path, "header.compressibility: must be a number from 0.5 to 1000.0")


def test_measured_row_groups_before_preload_ones_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    with pq.ParquetWriter(path, good_table().schema.with_metadata(good_meta())) as w:
        w.write_table(good_table())  # measure
        w.write_table(good_table(phase=np.zeros(3, np.int8)))  # preload after it
    expect_error(path, "must all come before")
