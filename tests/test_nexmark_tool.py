"""tools/nexmark: which upstream sources are built, the SQL it runs, and the table it renders
(no JVM: the benchmark itself is run by hand, see tools/nexmark/README.md)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tuner.errors import TunerError
from tuner.promise import job_gain
from tuner.validate.flink import FlinkInstall

TOOL = Path(__file__).resolve().parents[1] / "tools" / "nexmark"


def _tool(name: str) -> ModuleType:
    if str(TOOL) not in sys.path:
        sys.path.insert(0, str(TOOL))
    return importlib.import_module(name)


def test_only_the_table_source_and_its_generator_are_compiled() -> None:
    build = _tool("build")
    java = "nexmark-flink/src/main/java/com/github/nexmark/flink/"
    kept = [
        "source/NexmarkTableSourceFactory.java",
        "source/NexmarkSourceReader.java",
        "generator/NexmarkGenerator.java",
        "generator/model/BidGenerator.java",
        "model/Bid.java",
        "NexmarkConfiguration.java",
        "utils/NexmarkUtils.java",
        "udf/CountChar.java",
    ]
    left_out = [
        "metric/FlinkRestClient.java",  # needs Apache httpclient, not in Flink's jars
        "generator/SideInputGenerator.java",
        "Benchmark.java",
        "QueryRunner.java",
        "utils/AutoClosableProcess.java",
        "workload/Workload.java",
    ]
    assert all(build.selected(java + p) for p in kept)
    assert not any(build.selected(java + p) for p in left_out)
    assert not build.selected("nexmark-flink/src/test/java/com/github/nexmark/flink/model/Bid.java")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def test_sources_are_read_alike_from_a_checkout_and_a_bare_git_directory(tmp_path: Path) -> None:
    build = _tool("build")
    checkout = tmp_path / "nexmark"
    src = checkout / "nexmark-flink" / "src" / "main" / "resources" / "queries"
    src.mkdir(parents=True)
    (src / "q1.sql").write_text("INSERT INTO x SELECT 1;")
    (checkout / "README.md").write_text("not read")
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".")
    _git(checkout, "commit", "-q", "-m", "x")
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(checkout), str(tmp_path / "bare")], check=True
    )
    from_checkout = build.read_sources(checkout)
    assert from_checkout == build.read_sources(tmp_path / "bare")
    assert list(from_checkout) == ["nexmark-flink/src/main/resources/queries/q1.sql"]
    with pytest.raises(TunerError, match=r"git clone https://github\.com/nexmark/nexmark"):
        build.read_sources(tmp_path)


def _fake_build(tmp_path: Path, query: str) -> Any:
    build = _tool("build")
    q = tmp_path / "queries"
    q.mkdir()
    (q / "ddl_gen.sql").write_text(
        "CREATE TABLE datagen (a INT) WITH (\n 'events.num' = '${EVENTS_NUM}',\n"
        " 'first-event.rate' = '${TPS}', 'bid.proportion' = '${BID_PROPORTION}');"
    )
    (q / "ddl_views.sql").write_text("CREATE VIEW bid AS SELECT a FROM ${NEXMARK_TABLE};")
    (q / "q5.sql").write_text(query)
    flink = FlinkInstall(home=tmp_path, version="2.3.0")
    return build.NexmarkBuild(jar=tmp_path / "x.jar", queries=q, flink=flink, classes=0)


def test_statements_set_upstreams_variables_and_end_with_the_insert(tmp_path: Path) -> None:
    run = _tool("run")
    nexmark = _fake_build(
        tmp_path,
        "-- Query 5; a comment with a semicolon\nCREATE TABLE s (a INT) WITH ('connector' = "
        "'blackhole');\n\nINSERT INTO s\nSELECT a FROM bid;",
    )
    out = run.statements(nexmark, "q5", events=2_000_000, tps=1000)
    assert out[0] == (
        "CREATE TABLE datagen (a INT) WITH (\n 'events.num' = '2000000',\n"
        " 'first-event.rate' = '1000', 'bid.proportion' = '46')"
    )
    assert out[1] == "CREATE VIEW bid AS SELECT a FROM datagen"
    assert out[-1] == "INSERT INTO s\nSELECT a FROM bid"
    assert len(out) == 4
    with pytest.raises(TunerError, match=r"no query 'q99'.*one of q5"):
        run.statements(nexmark, "q99", events=1)


def test_a_variable_the_runner_does_not_set_is_refused(tmp_path: Path) -> None:
    run = _tool("run")
    nexmark = _fake_build(tmp_path, "INSERT INTO s SELECT '${BOOTSTRAP_SERVERS}';")
    with pytest.raises(TunerError, match="BOOTSTRAP_SERVERS"):
        run.statements(nexmark, "q5", events=1)


def test_the_harness_sets_memory_backend_and_upstreams_table_settings(tmp_path: Path) -> None:
    run = _tool("run")
    s = run.harness_settings(tmp_path, "hashmap", 64 << 20)
    assert s["state.backend.type"] == "hashmap"
    assert s["taskmanager.memory.managed.size"] == f"{64 << 20}b"
    assert s["table.exec.mini-batch.enabled"] == "true"
    plain = run.harness_settings(tmp_path, "rocksdb", 1, nexmark_table_config=False)
    assert not any(k.startswith("table.") for k in plain)
    with pytest.raises(TunerError, match="rocksdb, hashmap"):
        run.harness_settings(tmp_path, "forst", 1)


def _row(bench: ModuleType, setting: str, repeat: int, eps: float) -> Any:
    return bench.RunRow("q8", setting, repeat, 1000, 1000, eps, 1000, 1.0, 1, "ok", "")


def _tuning(bench: ModuleType, **changes: object) -> Any:
    base = {
        "query": "q8",
        "recorded_events": 10,
        "recorded_share": 0.5,
        "record_net_runtime_ms": 1,
        "tune_seconds": 1.0,
        "state_gain": 1.0,
        "state_gain_low": 0.5,
        "state_gain_high": 1.5,
        "gain_engine": "flink-backend",
        "promised_job_gain": job_gain(1.0, 0.5),
        "best_predefined": "FLASH_SSD_OPTIMIZED",
        "best_predefined_replay_gain": 0.1,
        "recommendation_keys": 2,
        "headline": "h",
    }
    return bench.Tuning(**{**base, **changes})


def test_the_table_row_computes_gains_share_and_gap_per_round() -> None:
    bench = _tool("bench")
    rows = [
        _row(bench, "default", 1, 100.0),
        _row(bench, "recommended", 1, 130.0),
        _row(bench, "hashmap", 1, 200.0),
        _row(bench, "predefined", 1, 110.0),
        _row(bench, "recorder-sampled", 1, 98.0),
        _row(bench, "default", 2, 100.0),
        _row(bench, "recommended", 2, 140.0),
        _row(bench, "hashmap", 2, 200.0),
    ]
    row = bench.summarize(rows, _tuning(bench))
    assert job_gain(1.0, 0.5) == pytest.approx(1 / 3)
    assert row["promised job gain"] == "+33.3%"
    assert row["real job gain"] == "+35.0% (+30.0 .. +40.0%, 2)"
    assert row["promise holds"] == "yes"
    assert row["heap-measured share"] == "50.0% (50.0 .. 50.0%, 2)"
    assert row["gap closed"] == "35%"  # (135 - 100) / (200 - 100)
    assert row["best predefined"] == "FLASH_SSD_OPTIMIZED: +10.0% (+10.0 .. +10.0%, 1)"
    assert row["recorder overhead (sampled)"] == "+2.0% (+2.0 .. +2.0%, 1)"
    assert row["recorder overhead (every key)"] == "not measured"
    assert row["baseline gain"] == "no --baseline"
    assert row["default range events/s"] == "100 .. 100"
    assert row["recommended events/s"] == "130 .. 140"


def test_a_table_row_without_figures_says_why_and_holds_no_nan() -> None:
    bench = _tool("bench")
    rows = [_row(bench, "default", 1, 100.0), _row(bench, "hashmap", 1, 90.0)]
    tuning = _tuning(
        bench, recorded_share=None, state_gain=None, promised_job_gain=None, best_predefined=None
    )
    row = bench.summarize(rows, tuning)
    assert row["gap closed"] == "heap not faster than default"
    assert row["recorded share"] == "not measured by the recorder"
    assert row["promised job gain"] == "no figure"
    assert row["recommended events/s"] == "not measured"
    assert all(v and "nan" not in v.lower() and "inf" not in v.lower() for v in row.values())


def test_render_writes_the_table_from_files_alone(tmp_path: Path) -> None:
    bench = _tool("bench")
    (tmp_path / "q8").mkdir()
    (tmp_path / "q8" / bench.TUNING_JSON).write_text(json.dumps(asdict(_tuning(bench))))
    for r in [_row(bench, "default", 1, 100.0), _row(bench, "recommended", 1, 150.0)]:
        bench._append_row(tmp_path / bench.RUNS_CSV, r)
    md, csv_path, png = bench.render(tmp_path)
    assert "| q8 | 50.0% |" in md.read_text()
    assert "+50.0% (+50.0 .. +50.0%, 1)" in csv_path.read_text()
    # The plot: the query promised +33.3 % and gained +50.0 % (a miss, drawn in red).
    assert png.name == "promise.png" and png.read_bytes()[:4] == b"\x89PNG"
    ((query, promised, real),) = bench.promise_points(
        bench._read_rows(tmp_path / bench.RUNS_CSV), [_tuning(bench)]
    )
    assert query == "q8" and promised == pytest.approx(1 / 3) and real.median == 0.5
    assert not bench.promise_holds(promised, real.median)
    with pytest.raises(TunerError, match=r"run `bench\.py run` first"):
        bench.render(tmp_path / "q8")


def test_the_recorders_overhead_is_given_in_throughput_and_in_cpu_per_event(
    tmp_path: Path,
) -> None:
    bench = _tool("bench")

    def row(setting: str, repeat: int, eps: float, cpu_ms: int) -> Any:
        return bench.RunRow("q5", setting, repeat, 1000, 1000, eps, 1000, 1.0, 1, "ok", "", cpu_ms)

    rows = [
        row("default", 1, 100.0, 2000),
        row("recorder-sampled", 1, 90.0, 2020),  # 10 % slower, 1 % more CPU per event
        row("recorder-all", 1, 80.0, 2200),
        row("default", 2, 100.0, 2000),
        row("recorder-sampled", 2, 100.0, 2060),
        row("recorder-all", 2, 100.0, 0),  # a runner that did not report its CPU
    ]
    (table_row,) = bench.overhead_table(rows)
    assert table_row["throughput lost (sampled)"] == "+5.0% (+0.0 .. +10.0%, 2)"
    assert table_row["CPU per event added (sampled)"] == "+2.0% (+1.0 .. +3.0%, 2)"
    assert table_row["throughput lost (every key)"] == "+10.0% (+0.0 .. +20.0%, 2)"
    assert table_row["CPU per event added (every key)"] == "+10.0% (+10.0 .. +10.0%, 1)"
    # Best rounds: 2000 ms against 2020 ms of CPU for the same events.
    assert table_row["CPU added, best rounds (sampled)"] == "+1.0% (of 2 and 2)"
    assert table_row["CPU added, best rounds (every key)"] == "+10.0% (of 2 and 1)"
    assert bench.render_overhead(tmp_path) is None  # no runs.csv: nothing to render
    for r in rows:
        bench._append_row(tmp_path / bench.RUNS_CSV, r)
    md = bench.render_overhead(tmp_path)
    assert md is not None and "| q5 | 1,000 | 100 | +5.0%" in md.read_text()


def test_a_runs_csv_from_before_the_cpu_column_is_read_and_extended(tmp_path: Path) -> None:
    bench = _tool("bench")
    old = tmp_path / bench.RUNS_CSV
    header = "query,setting,repeat,events,net_runtime_ms,events_per_s,submit_to_end_ms,wall_s,"
    old.write_text(
        header + "rss_peak_bytes,status,reason\nq8,default,1,1000,1000,100.0,1000,1.0,1,ok,\n"
    )
    bench._append_row(old, _row(bench, "hashmap", 1, 200.0))
    rows = bench._read_rows(old)
    assert [(r.setting, r.job_cpu_ms) for r in rows] == [("default", 0), ("hashmap", 0)]
    assert old.read_text().splitlines()[0].endswith(",reason,job_cpu_ms")


def test_keep_your_configuration_is_the_same_job_not_a_promise_to_test() -> None:
    bench = _tool("bench")
    rows = [_row(bench, "default", 1, 100.0), _row(bench, "recommended", 1, 111.0)]
    tuning = _tuning(
        bench, gain_engine="flink-backend: keep your configuration", promised_job_gain=0.0
    )
    row = bench.summarize(rows, tuning)
    # Identical configurations 11 % apart: the noise, said as such, with the strict verdict.
    assert row["real job gain"] == "+11.0% (+11.0 .. +11.0%, 1)"
    assert row["promise holds"] == "same configuration (strictly: no)"


def test_promise_tolerance_is_a_quarter_or_five_points() -> None:
    bench = _tool("bench")
    assert bench.promise_holds(0.12, 0.10)  # within 5 points
    assert bench.promise_holds(1.0, 0.8)  # within 25% of the real gain
    assert not bench.promise_holds(0.5, 0.1)


def test_a_failed_tuning_run_is_a_row_that_says_so() -> None:
    bench = _tool("bench")
    tuning = _tuning(
        bench, state_gain=None, promised_job_gain=None, tune_ok=False, headline="exit 1"
    )
    row = bench.summarize([_row(bench, "default", 1, 100.0)], tuning)
    assert row["promised job gain"] == "tuner run failed (tune.log)"
    assert row["real job gain"] == "not measured"


def _write_run(run_dir: Path, recommendation: dict[str, Any]) -> None:
    run_dir.mkdir()
    (run_dir / "recommendation.json").write_text(json.dumps(recommendation))
    (run_dir / "trials.csv").write_text(
        "label,kind,status,ops_per_s\n"
        "DEFAULT,baseline,ok,100\n"
        "SPINNING_DISK_OPTIMIZED,baseline,ok,90\n"
        "FLASH_SSD_OPTIMIZED,baseline,ok,120\n"
        "FLASH_SSD_OPTIMIZED,baseline,ok,110\n"
        "trial-0,search,ok,500\n"
    )


def test_the_promise_is_the_runs_gain_through_the_recorded_share(tmp_path: Path) -> None:
    bench = _tool("bench")
    _write_run(
        tmp_path / "run",
        {
            "gain": {"median_gain": 1.0, "low": 0.5, "high": 1.5},
            "confirmation": {"engine": "flink-backend", "keep": False},
            "settings": {"a": 1, "b": 2},
            "headline": "+100%",
        },
    )
    t = bench.from_run(
        tmp_path / "run",
        query="q8",
        recorded_events=5,
        recorded_share=0.5,
        record_net_runtime_ms=1,
        tune_seconds=1.0,
    )
    assert t.promised_job_gain == pytest.approx(1 / 3)
    assert t.best_predefined == "FLASH_SSD_OPTIMIZED"  # median of 120 and 110 over 100
    assert t.best_predefined_replay_gain == pytest.approx(0.15)
    assert (t.gain_engine, t.recommendation_keys) == ("flink-backend", 2)


def test_the_promise_of_recommendation_json_is_read_as_the_run_states_it(tmp_path: Path) -> None:
    """A run with its one figure: the job gain it promised, not one recomputed here; without a
    trusted share it promises no job figure."""
    bench = _tool("bench")
    promise = {
        "label": "minimal",
        "engine": "flink-backend",
        "gain": 0.5,
        "low": 0.4,
        "high": 0.6,
        "job_gain": 0.2,
        "text": "+20.0% job throughput ...",
    }
    _write_run(tmp_path / "run", {"promise": promise, "settings": {"a": 1}, "gain": None})
    kw = {"query": "q8", "recorded_events": 5, "record_net_runtime_ms": 1, "tune_seconds": 1.0}
    t = bench.from_run(tmp_path / "run", recorded_share=0.9, **kw)
    assert (t.state_gain, t.promised_job_gain, t.gain_engine) == (0.5, 0.2, "flink-backend")
    assert t.headline.startswith("+20.0% job throughput")
    untrusted = {**promise, "job_gain": None}
    _write_run(tmp_path / "run2", {"promise": untrusted, "settings": {}, "gain": None})
    assert bench.from_run(tmp_path / "run2", recorded_share=0.9, **kw).promised_job_gain is None


def test_keep_your_configuration_promises_nothing(tmp_path: Path) -> None:
    bench = _tool("bench")
    _write_run(
        tmp_path / "run",
        {"gain": None, "confirmation": {"engine": "flink-backend", "keep": True}, "settings": {}},
    )
    t = bench.from_run(
        tmp_path / "run",
        query="q8",
        recorded_events=5,
        recorded_share=0.5,
        record_net_runtime_ms=1,
        tune_seconds=1.0,
    )
    assert (t.state_gain, t.promised_job_gain) == (0.0, 0.0)
    assert t.gain_engine == "flink-backend: keep your configuration"


def test_rounds_rotate_after_one_warm_up_run() -> None:
    bench = _tool("bench")
    assert bench.schedule(["default", "recommended", "hashmap"], 2) == [
        ("warmup", 0),
        ("default", 1),
        ("recommended", 1),
        ("hashmap", 1),
        ("recommended", 2),
        ("hashmap", 2),
        ("default", 2),
    ]
    assert bench.schedule(["default"], 0) == []


def test_rocksdb_metrics_are_the_last_report_per_scope_summed(tmp_path: Path) -> None:
    run = _tool("run")
    settings = run.metric_settings(["block-cache-miss", "estimate-live-data-size"])
    assert settings["state.backend.rocksdb.metrics.block-cache-miss"] == "true"
    assert settings["metrics.reporter.slf4j.interval"] == "1 s"
    scope = ".taskmanager.tm.job.Join[14].0"
    log = tmp_path / "flink.log"
    log.write_text(
        "16:41:04,997 INFO  Slf4jReporter - \n"
        f"{scope}.rocksdb_block_cache_miss: 10\n"
        f"{scope}.left-records.rocksdb_estimate-live-data-size: 100\n"
        f"{scope}.right-records.rocksdb_estimate-live-data-size: 5\n"
        f"{scope}.numRecordsIn: 7\n"
        f"{scope}.rocksdb_block_cache_hit: 99\n"
        f"{scope}.rocksdb_block_cache_miss: 30\n"
        f"{scope}.left-records.rocksdb_estimate-live-data-size: 300\n"
        ".taskmanager.tm.job.Agg[11].0.rocksdb_block_cache_miss: 2\n"
    )
    got = run.last_reported(log, ["block-cache-miss", "estimate-live-data-size"])
    assert got == {"block-cache-miss": 32.0, "estimate-live-data-size": 305.0}
