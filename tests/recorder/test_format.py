"""The recording format: round trip, and every kind of damage named with file and offset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.errors import TunerError
from tuner.recorder.format import read_recording, recording_files, write_recording

from ._recordings import STATES, events, footer, header


def _write(path: Path, n: int = 300, **kw: object) -> bytes:
    write_recording(path, header(), STATES, events(n), footer(n), block_events=100, **kw)  # type: ignore[arg-type]
    return path.read_bytes()


def test_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "a.tunerrec"
    ev = events(1234)
    write_recording(f, header(), STATES, ev, footer(1234), block_events=97)
    r = read_recording(f)
    assert r.states == tuple(STATES)
    assert np.array_equal(r.events, ev)
    assert r.footer["events"] == 1234
    assert r.subtask == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_any_truncation_is_refused_with_its_offset(tmp_path: Path, cut: int) -> None:
    f = tmp_path / "t.tunerrec"
    data = _write(f)
    f.write_bytes(data[: cut % len(data)])
    with pytest.raises(TunerError, match=r"offset \d+: .*truncated") as e:
        read_recording(f)
    assert str(f) in str(e.value)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(at=st.integers(min_value=0, max_value=10_000), bit=st.integers(min_value=0, max_value=7))
def test_a_flipped_bit_is_refused(tmp_path: Path, at: int, bit: int) -> None:
    f = tmp_path / "c.tunerrec"
    data = bytearray(_write(f))
    data[at % len(data)] ^= 1 << bit
    f.write_bytes(bytes(data))
    with pytest.raises(TunerError, match=r"offset \d+"):
        read_recording(f)


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "v.tunerrec"
    _write(f, version=2)
    with pytest.raises(TunerError, match="offset 8: recording format version 2"):
        read_recording(f)


def test_no_footer_is_truncated(tmp_path: Path) -> None:
    f = tmp_path / "n.tunerrec"
    write_recording(f, header(), STATES, events(10), None)
    with pytest.raises(TunerError, match="no footer"):
        read_recording(f)


def test_a_compressed_sample_larger_than_lz4_can_make_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.tunerrec"
    bad = {**footer(10), "payload_raw_bytes": 4096, "payload_lz4_bytes": 9000}
    write_recording(f, header(), STATES, events(10), bad)
    with pytest.raises(TunerError, match="payload_lz4_bytes"):
        read_recording(f)
    ok = {**footer(10), "payload_raw_bytes": 4096, "payload_lz4_bytes": 1500}
    write_recording(f, header(), STATES, events(10), ok)
    assert read_recording(f).footer["payload_lz4_bytes"] == 1500


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match="no such recording directory"):
        recording_files(tmp_path / "nope")
    with pytest.raises(TunerError, match="no recording files"):
        recording_files(tmp_path)
