"""The binary stream file the Flink job reads, and the job spec (Java properties)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tuner.errors import TunerError
from tuner.trace.ops import COLUMNS, OpBatch
from tuner.validate.stream import (
    HEADER_BYTES,
    MAGIC,
    RECORD_BYTES,
    read_ops_file,
    state_entries,
    write_job_spec,
    write_ops_file,
)

from ._streams import batch, tiny_header


def _random_batch(
    rng: np.random.Generator, n: int, n_states: int, names: tuple[str, ...]
) -> OpBatch:
    big = np.iinfo(np.int64)
    cols: dict[str, npt.ArrayLike] = {
        "ts": rng.integers(big.min, big.max, n, dtype=np.int64),
        "state": rng.integers(0, n_states, n),
        "op": rng.integers(0, 11, n),
        "key": rng.integers(big.min, big.max, n, dtype=np.int64),
        "ns_start": rng.integers(-1, 1 << 40, n),
        "ns_end": rng.integers(-1, 1 << 40, n),
        "user_key": rng.integers(-1, 1 << 62, n),
        "value_size": rng.integers(0, 1 << 31, n),
        "timer_ts": rng.integers(big.min, big.max, n, dtype=np.int64),
    }
    return OpBatch.from_columns(names, cols)


def test_round_trip_keeps_every_column_and_phase(tmp_path: Path) -> None:
    header = tiny_header()
    rng = np.random.default_rng(3)
    pre = [_random_batch(rng, n, 2, header.names) for n in (5, 0, 17)]
    meas = [_random_batch(rng, n, 2, header.names) for n in (9, 31)]
    info = write_ops_file(tmp_path / "ops.bin", header, pre, meas)
    assert (info.preload_rows, info.measure_rows, info.n_states) == (22, 40, 2)
    assert (tmp_path / "ops.bin").stat().st_size == HEADER_BYTES + 62 * RECORD_BYTES

    got_info, batches = read_ops_file(tmp_path / "ops.bin", header.names, batch_rows=7)
    assert got_info == info
    got = list(batches)
    for phase, want in ((0, pre), (1, meas)):
        back = OpBatch.concat([b for p, b in got if p == phase])
        expected = OpBatch.concat([b for b in want if len(b)])
        for name, _ in COLUMNS:
            np.testing.assert_array_equal(getattr(back, name), getattr(expected, name), name)


def test_layout_is_little_endian_fixed_width(tmp_path: Path) -> None:
    # What ReplayJob.OpsFile reads: fields at fixed offsets, little-endian.
    header = tiny_header()
    b = batch(header, [(258, 1, 2, -2, 1000, 2000, 7, 300, 1999)])
    write_ops_file(tmp_path / "ops.bin", header, [], [b])
    raw = (tmp_path / "ops.bin").read_bytes()
    assert raw[:8] == MAGIC
    assert int.from_bytes(raw[8:12], "little") == 1
    assert int.from_bytes(raw[12:16], "little") == RECORD_BYTES
    assert int.from_bytes(raw[16:24], "little") == 0
    assert int.from_bytes(raw[24:32], "little") == 1
    rec = raw[HEADER_BYTES:]
    assert int.from_bytes(rec[0:8], "little", signed=True) == 258
    assert int.from_bytes(rec[8:16], "little", signed=True) == -2
    assert int.from_bytes(rec[16:24], "little") == 1000
    assert int.from_bytes(rec[24:32], "little") == 2000
    assert int.from_bytes(rec[32:40], "little") == 7
    assert int.from_bytes(rec[40:48], "little") == 1999
    assert int.from_bytes(rec[48:52], "little") == 300
    assert int.from_bytes(rec[52:54], "little") == 1
    assert rec[54] == 2
    assert rec[55] == 1  # measure phase


def test_writer_refuses_batches_of_another_state_table(tmp_path: Path) -> None:
    header = tiny_header()
    other = OpBatch.from_columns(("x",), {name: [0] for name, _ in COLUMNS})
    with pytest.raises(ValueError, match="names states"):
        write_ops_file(tmp_path / "ops.bin", header, [other], [])
    assert not list(tmp_path.iterdir())  # no half-written file left behind


def test_reader_refuses_a_truncated_file(tmp_path: Path) -> None:
    header = tiny_header()
    b = batch(header, [(1, 0, 0, 1, -1, -1, -1, 0, -1)] * 3)
    path = tmp_path / "ops.bin"
    write_ops_file(path, header, [b], [])
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(TunerError, match="must hold for 3 rows"):
        read_ops_file(path, header.names)


def test_reader_refuses_another_file(tmp_path: Path) -> None:
    path = tmp_path / "ops.bin"
    path.write_bytes(b"PAR1" + bytes(100))
    with pytest.raises(TunerError, match="bad magic"):
        read_ops_file(path, ("a",))


def test_state_entries_describe_every_state() -> None:
    entries = state_entries(tiny_header())
    assert entries["states.count"] == 2
    assert entries["state.1.kind"] == "list"
    assert entries["state.1.windowed"] is True
    assert entries["state.1.ttl"] is True
    assert entries["state.0.key_type"] == "long"


_READ_PROPERTIES = """
import java.io.*;
import java.util.*;
public class ReadProps {
    public static void main(String[] a) throws Exception {
        Properties p = new Properties();
        try (InputStream in = new FileInputStream(a[0])) { p.load(in); }
        for (String k : new TreeSet<>(p.stringPropertyNames())) {
            System.out.print(k + "\\u0000" + p.getProperty(k) + "\\u0000");
        }
    }
}
"""


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH")
def test_job_spec_reads_back_through_java_properties(tmp_path: Path) -> None:
    values: dict[str, str | int | bool] = {
        "plain": "abc",
        "with=equals:colon": "a=b:c",
        "conf.path": "/tmp/dir with space/x",
        "hash": "#not a comment",
        "lead": " leading space",
        "unicode": "naïve → ok",
        "backslash": "C:\\dir\\file",
        "flag": True,
        "n": 42,
    }
    spec = tmp_path / "spec.properties"
    write_job_spec(spec, values)
    src = tmp_path / "ReadProps.java"
    src.write_text(_READ_PROPERTIES)
    out = subprocess.run(
        ["java", str(src), str(spec)], capture_output=True, check=True, timeout=120
    ).stdout.decode("utf-8")
    parts = out.split("\0")[:-1]
    got = dict(zip(parts[::2], parts[1::2], strict=True))
    expected = {k: ("true" if v is True else str(v)) for k, v in values.items()}
    assert got == expected
