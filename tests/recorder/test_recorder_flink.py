"""The recorder on real Flink 2.3 and 1.20 (PyPI): a keyed job with Value, Map and List state,
timers and a window operator, recorded through configuration alone; the imported trace's
per-state, per-call counts equal the job's own counters."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tuner.cli import cli
from tuner.recorder.demo import COUNTER_CALLS, DemoRun, run_demo
from tuner.recorder.format import read_recording, recording_files
from tuner.trace.ops import OP_NAMES, Op, OpBatch
from tuner.trace.parquet import read_trace
from tuner.trace.recording import import_recording
from tuner.validate.flink import FlinkInstall
from tuner.workload import load_workload

pytestmark = pytest.mark.slow


def _calls(trace: Path) -> Counter[tuple[str, str]]:
    t = read_trace(trace)
    b = OpBatch.concat(list(t.batches("measure")))
    names = t.header.names
    pairs = Counter(zip(b.state.tolist(), b.op.tolist(), strict=True))
    return Counter({(names[s], OP_NAMES[Op(o)]): n for (s, o), n in pairs.items()})


@pytest.fixture(scope="module", params=["2.x", "1.20"])
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DemoRun, Path]:
    version = str(request.param)
    # conftest's fixtures: this machine's Flink of that line, else fetched once (never skipped
    # under CI)
    request.getfixturevalue("flink2" if version == "2.x" else "flink120")
    work = tmp_path_factory.mktemp(f"demo-{version}")
    run = run_demo(work, flink_version=version, records=6000, keys=150, parallelism=2)
    trace = work / "trace.parquet"
    import_recording(work / "rec", trace)
    return run, trace


def test_recorded_calls_equal_the_jobs_counters(recorded: tuple[DemoRun, Path]) -> None:
    run, trace = recorded
    calls = _calls(trace)
    for counter, call in COUNTER_CALLS.items():
        assert calls[call] == run.counts[counter], (counter, call)
    # WindowOperator.java: every element registers the trigger's and the cleanup timer.
    assert (
        calls[("_timer_state/event_window-timers", "register_timer")] == 2 * run.counts["window.in"]
    )
    fired = calls[("_timer_state/event_window-timers", "fire_timer")]
    assert fired == calls[("window-contents", "clear")] > 0
    header = read_trace(trace).header
    info = {s.name: s for s in header.states}
    assert info["window-contents"].windowed and info["window-contents"].kind == "reducing"
    assert info["recent"].kind == "map" and info["buffer"].kind == "list"
    assert info["count"].key_type == "long" and header.max_parallelism == 128


def test_one_file_per_operator_subtask_with_timing(recorded: tuple[DemoRun, Path]) -> None:
    run, _ = recorded
    assert run.recording_dir is not None
    recs = [read_recording(f) for f in recording_files(run.recording_dir)]
    ops = Counter((r.operator.split("_")[0], r.subtask) for r in recs)
    assert ops == {
        ("KeyedProcessOperator", 0): 1,
        ("KeyedProcessOperator", 1): 1,
        ("WindowOperator", 0): 1,
        ("WindowOperator", 1): 1,
    }
    for r in recs:
        assert r.footer["stopped"] is None and r.footer["task_cpu_ns"] > 0
        # One call in 64 at random (a fixed stride would time the same call of every record).
        assert 0.5 < r.footer["timed_calls"] / (r.footer["state_calls"] / 64) < 1.5
        assert r.footer["state_threads"] == 1
        # Calls of a millisecond or more: counted with their wall and thread CPU time, the CPU
        # never above the wall by more than the clock reads around it.
        long = r.footer["long_calls"]
        assert long >= 0 and r.footer["long_cpu_ns"] <= r.footer["long_wall_ns"] + long * 100_000
        assert (long == 0) == (r.footer["long_wall_ns"] == 0)
        if r.operator.startswith("KeyedProcessOperator"):
            # Its timers iterate the map state: the entries read are timed with the call.
            assert r.footer["timed_iter_ns"] > 0
        assert r.header["hash"] == "siphash-2-4" and not r.header["random_secret"]
        # Compressibility: whole 4 KB blocks of sampled writes, each through LZ4 (in flink-dist).
        raw, packed = r.footer["payload_raw_bytes"], r.footer["payload_lz4_bytes"]
        assert raw % 4096 == 0 and (raw == 0) == (packed == 0) and packed <= raw
        # Lengths over 64 bytes are summed beside their histogram bucket (none in this job).
        assert r.footer["key_long_bytes"] == 0
        assert set(r.footer["user_key_long_bytes"]) == set(r.footer["user_key_lengths"])
    assert sum(r.footer["payload_raw_bytes"] for r in recs) >= 4096


def test_sampling_keeps_whole_keys_and_limits_stop_cleanly(
    flink2: FlinkInstall, tmp_path: Path
) -> None:
    run = run_demo(tmp_path / "a", records=6000, keys=150, sample=0.4, max_events=2500)
    assert run.counts["value.get"] == 6000  # the job ran to its end
    assert run.recording_dir is not None
    recs = [read_recording(f) for f in recording_files(run.recording_dir)]
    assert all(r.events.shape[0] <= 2500 for r in recs)
    stopped = [r for r in recs if r.footer["stopped"] == "max-events"]
    assert stopped and all(r.footer["dropped_events"] > 0 for r in stopped)
    # Per-key sampling: a key is in or out; in the value state (get + update per record) every
    # sampled key that was not cut off by the limit has as many gets as updates.
    for r in recs:
        if r.footer["stopped"] is not None or not r.states:
            continue
        ids = {s["name"]: s["id"] for s in r.states}
        if "count" not in ids:
            continue
        ev = r.events[r.events["state"] == ids["count"]]
        gets = Counter(ev["key"][ev["op"] == Op.GET].tolist())
        updates = Counter(ev["key"][ev["op"] == Op.UPDATE].tolist())
        assert gets == updates
    sampled = sum(r.footer["sampled_key_switches"] for r in recs)
    total = sum(r.footer["key_switches"] for r in recs)
    assert 0 < sampled < total
    assert np.isfinite(sampled / total)


def test_recording_fits_and_tunes(
    recorded: tuple[DemoRun, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The whole path a user takes: fit the imported recording, then a short study on the
    recording itself with memory from a Flink config (one version suffices for the study)."""
    _, trace = recorded
    fitted = tmp_path / "fitted.yaml"
    result = CliRunner().invoke(cli, ["workload", "fit", str(trace), "-o", str(fitted)])
    assert result.exit_code == 0, result.output
    w = load_workload(fitted)
    by_name = {s.name: s for s in w.states}
    assert by_name["count"].operations == (("read_update", 1.0),)
    # the job reads user keys i % 7 and writes i % 5: seven distinct user keys per key
    assert by_name["recent"].entries_per_key == 7
    assert by_name["buffer"].timers is not None and by_name["window-contents"].window is not None
    if "1.20" in request.node.callspec.id:
        return
    conf = tmp_path / "config.yaml"
    conf.write_text("taskmanager.memory.managed.size: 64m\ntaskmanager.numberOfTaskSlots: 2\n")
    on_trace = tmp_path / "recorded.yaml"
    args = ["workload", "from-config", str(conf), "--trace", str(trace), "-o", str(on_trace)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "run"
    args = ["run", str(on_trace), "--trials", "1", "--repeats", "1", "--out", str(run_dir)]
    # The confirmation on Flink's backend is tested in tests/validate/test_flink_backend.py,
    # the minimal recommendation in tests/search/test_ablation.py: here they would only replay
    # the recording 30 times more (two and a half minutes).
    result = CliRunner().invoke(cli, [*args, "--no-confirm", "--minimal-repeats", "0"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "config.yaml").exists() and (run_dir / "report.md").exists()


def test_a_full_disk_stops_the_recording_and_the_import_keeps_what_was_written(
    tmp_path: Path, flink2: FlinkInstall
) -> None:
    """Issue 18: after a failed write a partial block stayed before the footer, and the importer
    refused the whole recording for it. The recording directory is a 600 KiB tmpfs here: the
    files fill it, their writes fail, and each must end after its last whole block."""
    import os
    import subprocess

    rec = tmp_path / "rec"
    rec.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(rec)], check=True)
    try:
        run = run_demo(tmp_path, records=6000, keys=150, parallelism=2)
        assert run.recording_dir is not None
        recs = [read_recording(f) for f in recording_files(run.recording_dir)]
        stopped = [str(r.footer["stopped"]) for r in recs]
        assert any(s.startswith("io-error") for s in stopped), stopped
        stats = import_recording(run.recording_dir, tmp_path / "trace.parquet")
        assert stats.events > 0 and stats.dropped_events > 0
    finally:
        subprocess.run(["umount", str(rec)], check=False)
