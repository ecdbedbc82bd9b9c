"""`tuner trace import`: the conversion rules, and errors as one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tuner.cli import cli
from tuner.errors import TunerError
from tuner.recorder.format import read_recording, recording_files, write_recording
from tuner.trace.ops import Op, OpBatch
from tuner.trace.parquet import read_trace
from tuner.trace.recording import import_recording

from ._recordings import STATES, events, footer, header, write_dir


def _rows(path: Path) -> OpBatch:
    t = read_trace(path)
    assert t.phase_rows["preload"] == 0
    return OpBatch.concat(list(t.batches("measure")))


def test_import_follows_the_rules(tmp_path: Path) -> None:
    rec = write_dir(tmp_path, n=3000, files=2)
    out = tmp_path / "t.parquet"
    stats = import_recording(rec, out)
    raw = np.concatenate([read_recording(f).events for f in recording_files(rec)])
    b = _rows(out)
    assert stats.events == len(b) == raw.shape[0] == 6000
    names = read_trace(out).header.names
    assert names == ("count", "recent", "_timer_state/event_user-timers", "agg")
    # ts: processing time from the first call, merged across files in time order
    assert b.ts[0] == 0 and np.all(np.diff(b.ts) >= 0)
    assert b.ts[-1] == raw["ts"].max() - raw["ts"].min()
    # keys: dense ids over the distinct hashes
    assert set(np.unique(b.key).tolist()) == set(range(len(np.unique(raw["key"]))))
    # per-state op counts are kept exactly
    for i in range(4):
        for op in np.unique(raw["op"][raw["state"] == i]).tolist():
            want = int(((raw["state"] == i) & (raw["op"] == op)).sum())
            assert int(((b.state == i) & (b.op == op)).sum()) == want
    # map user keys are dense ids; -1 elsewhere
    assert set(np.unique(b.user_key[b.state == 1]).tolist()) <= set(range(5))
    assert np.all(b.user_key[b.state != 1] == -1)
    # timers keep their timestamps; windows their namespaces
    t = b.state == 2
    assert np.all(b.timer_ts[t] == b.ts[t] + raw["ts"].min() + 500)
    assert np.all(b.ns_end[b.state == 3] - b.ns_start[b.state == 3] == 60_000)
    assert np.all(b.ns_start[b.state != 3] == -1)
    # sizes: TTL's 8 bytes removed; unknown aggregating sizes get the state's median; reads 0
    assert set(b.value_size[(b.state == 0) & (b.op == Op.UPDATE)].tolist()) == {8}
    assert set(b.value_size[b.state == 3].tolist()) == {24}
    assert np.all(b.value_size[b.op == Op.GET] == 0)
    info = {s.name: s for s in read_trace(out).header.states}
    assert info["count"].ttl and info["agg"].windowed and info["count"].key_type == "long"
    assert stats.time_share is not None and stats.time_share.share is not None


def test_the_recorded_compressibility_reaches_the_traces_header(tmp_path: Path) -> None:
    job = tmp_path / "rec" / "job1"
    job.mkdir(parents=True)
    # Two subtasks' samples: 96 KiB and 32 KiB raw, 64 KiB and 32 KiB after LZ4: 128/96.
    for i, (raw, packed) in enumerate([(96 << 10, 64 << 10), (32 << 10, 32 << 10)]):
        f = {**footer(500), "payload_raw_bytes": raw, "payload_lz4_bytes": packed}
        write_recording(job / f"Op_abc.{i}.0.1.tunerrec", header(i), STATES, events(500, i), f)
    out = tmp_path / "t.parquet"
    stats = import_recording(tmp_path / "rec", out)
    assert stats.compressibility == pytest.approx(128 / 96)
    assert stats.compressibility_bytes == 128 << 10
    assert read_trace(out).header.compressibility == pytest.approx(128 / 96)
    result = CliRunner().invoke(cli, ["trace", "import", str(tmp_path / "rec"), "-o", str(out)])
    assert "compress 1.33x (LZ4 in 4 KB blocks, 0.1 MiB sampled)" in result.output


def test_keys_longer_than_64_bytes_are_sized_by_their_mean(tmp_path: Path) -> None:
    # The recorder's histograms stop at 65 (= "65 or more") and sum the longer ones' bytes: a
    # join's 120-byte rows as user keys are replayed as 120 bytes, not 65.
    job = tmp_path / "rec" / "job1"
    job.mkdir(parents=True)
    f = {
        **footer(500),
        "key_lengths": {"65": 400, "8": 100},
        "key_long_bytes": 400 * 80,
        "user_key_lengths": {"1": {"65": 300, "64": 10}},
        "user_key_long_bytes": {"1": 300 * 120 + 150},
    }
    write_recording(job / "Op_abc.0.0.1.tunerrec", header(0), STATES, events(500), f)
    out = tmp_path / "t.parquet"
    import_recording(tmp_path / "rec", out)
    info = {s.name: s for s in read_trace(out).header.states}
    assert info["recent"].user_key_size == 120
    assert info["count"].key_type == "string" and info["count"].key_size == 79  # 80 - varint
    # Longer than the replay lays out: one line naming the state.
    huge = {**f, "user_key_long_bytes": {"1": 300 * 100_000}}
    write_recording(job / "Op_abc.0.0.1.tunerrec", header(0), STATES, events(500), huge)
    with pytest.raises(TunerError, match=r"state 'recent' has keys or map user keys of 100,000"):
        import_recording(tmp_path / "rec", out)
    # A recorder before the sums: the bucket's own 65, as before.
    legacy = {**footer(500), "user_key_lengths": {"1": {"65": 300}}}
    write_recording(job / "Op_abc.0.0.1.tunerrec", header(0), STATES, events(500), legacy)
    import_recording(tmp_path / "rec", out)
    assert {s.name: s for s in read_trace(out).header.states}["recent"].user_key_size == 65


def test_too_small_a_compressibility_sample_is_not_used(tmp_path: Path) -> None:
    # Under 16 blocks, or a recorder before the measure: the replay keeps its fixed pool.
    job = tmp_path / "rec" / "job1"
    job.mkdir(parents=True)
    f = {**footer(500), "payload_raw_bytes": 8 << 10, "payload_lz4_bytes": 4 << 10}
    write_recording(job / "Op_abc.0.0.1.tunerrec", header(0), STATES, events(500), f)
    out = tmp_path / "t.parquet"
    stats = import_recording(tmp_path / "rec", out)
    assert stats.compressibility is None and stats.compressibility_bytes == 8 << 10
    assert read_trace(out).header.compressibility is None
    result = CliRunner().invoke(cli, ["trace", "import", str(tmp_path / "rec"), "-o", str(out)])
    assert "compressibility not measured" in result.output


def test_subtask_filter_and_state_name_clash(tmp_path: Path) -> None:
    rec = write_dir(tmp_path, n=500, files=2)
    other = [dict(s) for s in STATES[:1]]
    write_recording(
        rec / "job1" / "Other.0.0.1.tunerrec",
        header(0, operator="Other_def_(1/1)"),
        other,
        events(100)[:0],
        footer(0),
    )
    out = tmp_path / "t.parquet"
    stats = import_recording(rec, out, subtask=1)
    assert stats.files == 1 and stats.events == 500
    import_recording(rec, out)
    names = read_trace(out).header.names
    assert "Op_abc/count" in names and "Other_def/count" in names


def test_two_jobs_are_refused(tmp_path: Path) -> None:
    rec = write_dir(tmp_path, n=10, files=1)
    write_recording(rec / "x.tunerrec", header(0, job="job2"), STATES, events(5), footer(5))
    with pytest.raises(TunerError, match="2 jobs"):
        import_recording(rec, tmp_path / "t.parquet")


def test_a_non_parallel_operator_beside_keyed_ones_is_imported(tmp_path: Path) -> None:
    """Nexmark q5: a global aggregate runs with max parallelism 1 beside operators of 128; the
    import refused the whole recording ("import them separately", which no option does)."""
    rec = write_dir(tmp_path, n=10, files=1)
    solo = {**header(0, operator="Global_def_(1/1)"), "max_parallelism": 1}
    write_recording(rec / "job1" / "Global_def.0.0.1.tunerrec", solo, STATES, events(5), footer(5))
    stats = import_recording(rec, tmp_path / "t.parquet")
    assert stats.max_parallelisms == (1, 128)
    assert read_trace(tmp_path / "t.parquet").header.max_parallelism == 128


def _one_line_exit_2(args: list[str], *fragments: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_cli_import_and_inspect(tmp_path: Path) -> None:
    rec = write_dir(tmp_path, n=400, files=2)
    out = tmp_path / "t.parquet"
    result = CliRunner().invoke(cli, ["trace", "import", str(rec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "800 events from 2 files" in result.output
    result = CliRunner().invoke(cli, ["trace", "inspect", str(out)])
    assert result.exit_code == 0, result.output
    assert "rows: 800" in result.output


def test_cli_import_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "t.parquet")
    _one_line_exit_2(["trace", "import", str(tmp_path / "missing"), "-o", out], "missing")
    rec = write_dir(tmp_path, n=400, files=1)
    f = recording_files(rec)[0]
    data = f.read_bytes()
    f.write_bytes(data[:-10])
    _one_line_exit_2(["trace", "import", str(rec), "-o", out], str(f), "offset", "truncated")
    write_recording(f, header(), STATES, events(10), footer(10), version=9)
    _one_line_exit_2(["trace", "import", str(rec), "-o", out], str(f), "version 9")
    assert not Path(out).exists()


def test_recorder_config_lines() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "recorder",
            "config",
            "--dir",
            "/data/rec",
            "--sample",
            "0.25",
            "--max-events",
            "1000",
            "--flink-version",
            "1.20",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = dict(
        line.split(": ", 1) for line in result.output.splitlines() if not line.startswith("#")
    )
    assert lines["state.backend.type"] == "TunerRecorderFactory"
    assert lines["tuner.recorder.dir"] == "/data/rec"
    assert lines["tuner.recorder.sample"] == "0.25"
    assert lines["tuner.recorder.max-events"] == "1000"
    assert len(lines["tuner.recorder.secret"]) == 32
    assert "flink-conf.yaml" in result.output
    _one_line_exit_2(["recorder", "config", "--dir", "/x", "--sample", "0"], "--sample")
    _one_line_exit_2(["recorder", "config", "--dir", "/x", "--flink-version", "1.19"], "1.19")
    _one_line_exit_2(["recorder", "config", "--dir", "/a:b"], "/a:b")
    # A newline would end tuner.recorder.dir's line and start a config line of its own.
    _one_line_exit_2(["recorder", "config", "--dir", "/data\nextra"], "--dir", "\\n")
    _one_line_exit_2(
        ["recorder", "config", "--dir", "/x", "--max-bytes", str(5 << 30)], "max-bytes"
    )
