"""The flink-backend engine: Flink's own keyed state backend in a JVM, behind the engine contract.

The shared contract tests that do not inspect the Python executor run here against it, and a
small stream replayed on it and on rocksdict must agree on what both count the same way.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import IN_CI
from tests.engine.conftest import HEADER, batch, small_config
from tests.engine.test_contract import (  # noqa: F401 - collected here, on this engine
    test_calls_a_state_kind_does_not_have_are_rejected,
    test_checkpoint_reports_only_new_sst_bytes,
    test_closed_engine_refuses_work,
    test_counters_grow_with_work,
    test_shared_memory_config_opens_and_charges_memtables,
)
from tuner.cli import cli
from tuner.engine.base import Engine
from tuner.engine.flink_backend import JEMALLOC, FlinkBackendEngine, HarnessError, available
from tuner.engine.replay import replay
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.flink import options as fo
from tuner.search.measure import make_engine
from tuner.trace.generator import generate, stream_header
from tuner.trace.ops import Op
from tuner.workload import load_workload

TINY = Path(__file__).resolve().parents[1] / "data" / "cli" / "tiny.yaml"


@pytest.fixture(autouse=True)
def _need_flink() -> None:
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK (java/javac) on PATH")
    if not available():
        pytest.skip("no Flink 2.x installation (pip install -e '.[flink]')")


@pytest.fixture
def engine_cls() -> type[Engine]:
    return FlinkBackendEngine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = FlinkBackendEngine({fo.WRITE_BUFFER_SIZE: 256 << 10}, managed_bytes=64 << 20)
    e.open(small_config(), HEADER, tmp_path / "db", timer_cache_size=2, sample_every=1)
    with e:
        yield e


def test_the_backend_opens_under_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tuner run` writes under the relative results/ by default; the JVM, started inside the
    work directory, was handed the relative spec path again and every confirmation failed."""
    monkeypatch.chdir(tmp_path)
    e = FlinkBackendEngine(managed_bytes=64 << 20)
    e.open(small_config(), HEADER, Path("results") / "db")
    with e:
        assert e.memory()["block_cache_usage"] >= 0


def test_flink_settings_reach_flinks_backend(tmp_path: Path) -> None:
    # A value Flink refuses proves the keys go through Flink's own configuration parsing.
    e = FlinkBackendEngine({fo.BLOCK_SIZE: "not a size"})
    with pytest.raises(HarnessError, match="block"):
        e.open(small_config(), HEADER, tmp_path / "db")
    e.close()


def test_direct_reads_reach_flinks_rocksdb_through_its_options_factory(tmp_path: Path) -> None:
    e = FlinkBackendEngine(managed_bytes=64 << 20, direct_reads=True)
    e.open(small_config(), HEADER, tmp_path / "db")
    with e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(500)]
            )
        )
        e.flush()
        e.apply(batch(*[{"state": "v", "op": Op.GET, "key": k} for k in range(0, 500, 5)]))
        options = sorted((tmp_path / "db").rglob("OPTIONS-*"))
        assert options, "Flink's RocksDB wrote no OPTIONS file"
        assert "use_direct_reads=true" in options[-1].read_text()


def test_a_models_arena_block_reaches_flinks_rocksdb_through_its_options_factory(
    tmp_path: Path,
) -> None:
    # A scaled model's arena block (tuner.scale.model_config) is one FRocksDB would not derive
    # from the model's write buffer: set through the harness's options factory.
    e = FlinkBackendEngine({fo.WRITE_BUFFER_SIZE: 256 << 10}, managed_bytes=64 << 20)
    e.open(small_config(arena_block_size=12 << 10), HEADER, tmp_path / "db")
    with e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(500)]
            )
        )
        e.flush()
        options = sorted((tmp_path / "db").rglob("OPTIONS-*"))
        assert options, "Flink's RocksDB wrote no OPTIONS file"
        assert "arena_block_size=12288" in options[-1].read_text()


def test_list_appends_use_the_merge_operator(engine: Engine) -> None:
    w = {"ns_start": 0, "ns_end": 1000}
    engine.apply(
        batch(*[{"state": "l", "op": Op.ADD, "key": 3, "value_size": 10, **w} for _ in range(5)])
    )
    engine.apply(batch({"state": "l", "op": Op.GET, "key": 3, **w}))
    c = engine.snapshot_counters()
    # RocksDBListState.add is one merge; get is one point lookup that folds the operands.
    assert c["rocksdb.number.keys.read"] == 1
    assert c["rocksdb.number.keys.written"] == 5
    assert c["rocksdb.read.num.merge_operands.sum"] == 5


def _counters(engine: Engine, tmp_path: Path, rows: list[dict[str, int]]) -> dict[str, float]:
    engine.open(small_config(), HEADER, tmp_path, timer_cache_size=128)
    with engine:
        engine.apply(batch(*rows))
        return engine.snapshot_counters()


def test_value_and_aggregating_calls_make_the_same_rocksdb_calls_on_both_engines(
    tmp_path: Path,
) -> None:
    rows: list[dict[str, Any]] = []
    for k in range(300):
        rows.append({"state": "v", "op": Op.UPDATE, "key": k, "value_size": 40})
        rows.append({"state": "agg", "op": Op.ADD, "key": k % 50, "value_size": 16})
        rows.append({"state": "v", "op": Op.GET, "key": (k * 7) % 300})
        if k % 10 == 0:
            rows.append({"state": "v", "op": Op.CLEAR, "key": k})
    a = _counters(RocksdictEngine(), tmp_path / "a", rows)
    b = _counters(FlinkBackendEngine(), tmp_path / "b", rows)
    for name in ("state.ops", "rocksdb.number.keys.written", "rocksdb.number.keys.read"):
        assert a[name] == b[name], name


@pytest.mark.parametrize("line", ["2.x", "1.20"])
def test_a_generated_stream_replays_with_the_same_call_counts_on_both_engines(
    tmp_path: Path, line: str, request: pytest.FixtureRequest
) -> None:
    # The flink-backend engine runs the workload's own Flink line: FRocksDB 6.20 for 1.20.
    if line == "1.20":
        request.getfixturevalue("flink120")  # fetched once into tuner's cache when missing
    w = replace(load_workload(TINY), flink_version=line)
    header = stream_header(w)
    results = {}
    # Flink's rescaling options with it (what --objective recovery --rescale searches on Flink's
    # backend): Flink must restore under them.
    restore = {
        fo.CHECKPOINT_TRANSFER_THREADS: 2,
        fo.DELETE_FILES_IN_RANGE: True,
        fo.INGEST_DB_RESTORE: True,
        fo.RESTORE_OVERLAP_FRACTION: 0.25,
    }
    for name in ("rocksdict", "flink-backend"):
        e = make_engine(name, w, restore)
        e.open(fo.resolve({}, w.memory), header, tmp_path / name / "db")
        try:
            r = replay(
                e,
                header,
                generate(w, "preload"),
                generate(w, "measure"),
                w.checkpointing.interval_ms,
                tmp_path / name,
                rescale=2,
            )
        finally:
            e.close()
        results[name] = r.as_dict()
        if name == "flink-backend":
            assert isinstance(e, FlinkBackendEngine)
            assert e.flink_version.startswith("1.20." if line == "1.20" else "2.")
    a, b = results["rocksdict"], results["flink-backend"]
    calls = [k for k in a if k.startswith("state_calls_")]
    assert calls and all(a[k] == b[k] for k in calls)
    assert a["ops"] == b["ops"] and a["records"] == b["records"]
    assert a["checkpoint_count"] == b["checkpoint_count"] >= 1
    assert b["cpu_s"] > 0 and b["ops_per_s"] > 0
    # Where the engines differ by construction (README: the flink-backend engine): ListState
    # (merge vs put + scan) and timers (Flink's cached priority queue) change keys written and
    # read, so those only have to be of the same order here.
    assert 0.5 < b["user_bytes_written"] / a["user_bytes_written"] < 2
    # Recovery and real memory: both engines restore from a checkpoint of the end state; Flink's
    # backend runs in a JVM whose own memory (Native Memory Tracking) is told apart from RSS.
    # (--rescale 2: the restore is subtask 0 of 2's, through Flink's rescaling restore there).
    assert a["restore_s"] > 0 and b["restore_s"] > 0 and b["restore_bytes"] > 0
    assert a["restore_rescale"] == b["restore_rescale"] == 2
    assert 0 < b["jvm_committed_bytes"] < b["jvm_anon_bytes"] <= b["rss_peak_bytes"]
    assert b["native_bytes"] == b["jvm_anon_bytes"] - b["jvm_committed_bytes"]
    assert "native_bytes" not in a
    # With jemalloc installed it is preloaded, as Flink's Docker image does; CI installs it.
    assert b["native_allocator_jemalloc"] == float(JEMALLOC.is_file())
    assert JEMALLOC.is_file() or not IN_CI


@pytest.mark.parametrize(("line", "ingest"), [("2.x", False), ("2.x", True), ("1.20", True)])
def test_a_scaled_in_restore_merges_the_old_subtasks_handles(
    tmp_path: Path, line: str, ingest: bool, request: pytest.FixtureRequest
) -> None:
    # --rescale 1/3 on Flink's backend: the checkpoint split into three old subtasks' handles,
    # merged by Flink's rescaling restore, through temporary instances or (ingest) by importing
    # their files; either way the one subtask left holds every entry again.
    if line == "1.20":
        request.getfixturevalue("flink120")
    e = FlinkBackendEngine(
        {fo.WRITE_BUFFER_SIZE: 256 << 10, fo.INGEST_DB_RESTORE: ingest},
        managed_bytes=64 << 20,
        flink_line=line,
    )
    e.open(small_config(), HEADER, tmp_path / "db")
    with e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(3000)]
            )
        )
        cp = e.flush_and_checkpoint(tmp_path / "chk")
        whole = e.restore_from(tmp_path / "chk", tmp_path / "r1")
        merged = e.restore_from(tmp_path / "chk", tmp_path / "r2", rescale=1 / 3)
        again = e.restore_from(tmp_path / "chk", tmp_path / "r3", rescale=1 / 3)
    assert whole is not None and merged is not None and again is not None
    assert merged.duration_s > 0 and merged.bytes == again.bytes  # split once, restored twice
    assert 0.5 * cp.total_sst_bytes < merged.bytes < 2 * cp.total_sst_bytes + (1 << 20)
    assert whole.entries is not None and merged.entries is not None
    assert 2900 <= whole.entries <= 3100 and 2900 <= merged.entries <= 3100
    # Each old subtask's files hold its own key groups only (Flink's range check), so that
    # ingest mode imports every handle rather than falling back to copying it.
    assert merged.handles == merged.handles_in_range == 3


def test_run_confirms_on_flink_backend_and_labels_every_gain(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(TINY), "--trials", "1", "--repeats", "2", "--confirm-top", "1"]
    r = CliRunner().invoke(cli, [*args, "--confirm", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((out / "confirmation.csv").open()))
    # 2 rounds of: the default, the minimal recommendation (when it differs from the trial),
    # the best trial, the best other predefined set.
    labels = {row["label"] for row in rows}
    assert [row["label"] for row in rows[:1]] == ["DEFAULT"]
    # The one search trial (numbered after the option sets told to the study first).
    trial = next(
        row["label"]
        for row in csv.DictReader((out / "trials.csv").open())
        if row["kind"] == "search" and row["status"] == "ok"
    )
    assert {"DEFAULT", trial} <= labels and len(labels) in (3, 4)
    assert len(rows) == 2 * len(labels) and all(row["status"] == "ok" for row in rows)
    rec = json.loads((out / "recommendation.json").read_text())
    conf = rec["confirmation"]
    assert conf["engine"] == "flink-backend" and conf["rounds"] == 2
    # The headline is the promise, from the confirmation: the engine that measured config.yaml.
    assert rec["headline"] == rec["promise"]["text"]
    assert rec["promise"]["engine"] == "flink-backend"
    assert "flink-backend" in r.output
    if conf["keep"]:
        assert rec["trial_number"] is None and "keep your configuration" in r.output
    report = (out / "report.md").read_text()
    assert "## Confirmation on Flink's own state backend" in report
    assert "measured on the rocksdict replay" in report  # the search's gain names its engine


def test_a_key_sampled_recording_is_confirmed_on_its_model(tmp_path: Path) -> None:
    """A --sample 0.1 recording replays as a 1/10 model; the confirmation measures the same
    model on Flink's backend (1/10 of the memory, the sizes of Flink's keys scaled alike)."""
    from tests.test_scale import _recording

    out = tmp_path / "run"
    args = ["run", str(_recording(tmp_path, 0.1)), "--trials", "1", "--repeats", "1"]
    args += ["--minimal-repeats", "0", "--confirm-top", "1", "--confirm", "--out", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "replaying a 1/10 model of the job" in r.output
    rec = json.loads((out / "recommendation.json").read_text())
    assert rec["confirmation"]["engine"] == "flink-backend"
    rows = list(csv.DictReader((out / "confirmation.csv").open()))
    assert rows and all(row["status"] == "ok" for row in rows)
    assert {float(row["scale"]) for row in rows} == {0.1}


def test_with_a_baseline_the_confirmation_measures_against_current(tmp_path: Path) -> None:
    config = tmp_path / "current.yaml"
    config.write_text("state.backend.rocksdb.thread.num: 4\n")
    out = tmp_path / "run"
    args = ["run", str(TINY), "--trials", "1", "--repeats", "2", "--confirm-top", "1"]
    # Without the minimal recommendation (the test above confirms one): what is checked here
    # is the reference, the user's configuration.
    args += ["--minimal-repeats", "0", "--baseline", str(config)]
    r = CliRunner().invoke(cli, [*args, "--confirm", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((out / "confirmation.csv").open()))
    assert rows[0]["label"] == "current" and "DEFAULT" in {row["label"] for row in rows}
    rec = json.loads((out / "recommendation.json").read_text())
    conf = rec["confirmation"]
    assert conf["reference"] == "current"
    # The headline is the promise: the confirmation's own figure for what config.yaml holds.
    promise = rec["promise"]
    assert "your current configuration" in rec["headline"] == promise["text"]
    assert (promise["engine"], promise["reference"]) == (conf["engine"], "current")
    if not conf["keep"]:
        chosen = next(c for c in conf["configs"] if c["label"] == conf["chosen"])
        assert promise["label"] == chosen["label"]
        assert promise["gain"] == pytest.approx(chosen["gain"])
    if conf["keep"]:
        # Keep: the user's configuration as it is, every key marked unchanged.
        assert rec["settings"]["state.backend.rocksdb.thread.num"] == 4
    assert "running your current configuration first" in (out / "report.md").read_text()
