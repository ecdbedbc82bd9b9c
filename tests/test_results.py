"""The read API: a run directory as DataFrames, and its refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.report.fakerun import make_run, ops, rec
from tuner.errors import TunerError
from tuner.recommend import measure_gain
from tuner.results import list_runs, load_run, trials_frame
from tuner.rundir import RUN_FORMAT_VERSION, RunDir
from tuner.search.study import pareto_front

WB = "state.backend.rocksdb.writebuffer.size"
BLOOM = "state.backend.rocksdb.use-bloom-filter"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results directory with a complete run, an interrupted one and a non-run folder."""
    root = tmp_path_factory.mktemp("results")
    make_run(root / "old-complete", trials=6, repeats=2, fail_trials={2})
    make_run(root / "new-partial", trials=6, stop_after=3, meta={"created_at": 1_800_000_000.0})
    (root / "notes").mkdir()
    return root


def test_trials_frame_types_and_filters(results: Path) -> None:
    run = load_run(results / "old-complete")
    t = run.trials
    assert len(t) == len(run.records)
    assert t["ops_per_s"].dtype == "float64"
    assert t["trial_number"].dtype == "Int64"
    assert t[WB].dtype == "float64"  # sizes as numbers, NaN for baselines
    assert t[BLOOM].dtype == "boolean"
    assert isinstance(t["settings"].iloc[0], dict)
    assert set(run.baselines()["kind"]) == {"baseline"}
    assert len(run.baselines()) == 4
    assert set(run.search()["kind"]) == {"search"}
    again = run.remeasured()
    assert sorted(again["label"]) == ["DEFAULT", "DEFAULT", "recommended", "recommended"]
    assert run.search()["status"].eq("failed").sum() == 1


def test_pareto_gain_and_best_match_the_library(results: Path) -> None:
    run = load_run(results / "old-complete")
    ok = [r for r in run.records if r.candidate.kind == "search" and r.ok]
    assert list(run.pareto()["seq"]) == [r.seq for r in pareto_front(ok)]
    assert run.gain() == measure_gain(run.records)
    best = run.best_search()
    assert best is not None
    assert best["ops_per_s"] == max(r.metrics["ops_per_s"] for r in ok)


def test_study_is_opened_read_only(results: Path) -> None:
    run = load_run(results / "old-complete")
    db = RunDir(run.path).study_db
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    study = run.study()
    assert study is not None
    assert len(study.trials) >= 6
    with pytest.raises(optuna.exceptions.StorageInternalError) as err:
        study.set_user_attr("x", 1)
    assert "readonly" in str(err.value.__cause__)
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def test_recommendation_is_read_when_there_is_one(results: Path) -> None:
    assert load_run(results / "old-complete").recommendation() is not None
    assert load_run(results / "new-partial").recommendation() is None


def test_a_run_with_no_study_db_has_no_study(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", trials=3, repeats=1, with_study=False))
    assert run.study() is None


def test_list_runs_newest_first_and_skips_non_runs(results: Path) -> None:
    runs = list_runs(results)
    assert list(runs["name"]) == ["new-partial", "old-complete"]
    complete = runs.set_index("name").loc["old-complete"]
    run = load_run(results / "old-complete")
    gain = run.gain()
    assert gain is not None
    assert complete["status"] == "complete"
    assert complete["trials"] == int(run.search()["status"].eq("ok").sum())
    assert complete["failed"] == 1
    assert complete["gain"] == pytest.approx(gain.median_gain)
    assert complete["best_ops_per_s"] == run.best_search()["ops_per_s"]  # type: ignore[index]
    partial = runs.set_index("name").loc["new-partial"]
    assert partial["status"] == "incomplete"
    assert pd.isna(partial["gain"])


def test_list_runs_shows_an_unreadable_run_with_its_reason(results: Path, tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    os.symlink(results / "old-complete", tmp_path / "fine")
    runs = list_runs(tmp_path).set_index("name")
    assert runs.loc["broken", "status"] == "unreadable"
    assert "not valid JSON" in str(runs.loc["broken", "error"])
    assert runs.loc["fine", "status"] == "complete"


def test_list_runs_of_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match="no such results directory"):
        list_runs(tmp_path / "nope")


def test_load_run_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match="no such run directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(TunerError, match=r"no run\.json"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TunerError, match="not a tuner run"):
        load_run(tmp_path)


def test_load_run_refuses_a_newer_format(tmp_path: Path) -> None:
    RunDir(tmp_path).write_meta({"status": "complete"})
    meta = json.loads((tmp_path / "run.json").read_text())
    meta["version"] = RUN_FORMAT_VERSION + 1
    (tmp_path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(TunerError, match="newer than this tuner reads"):
        load_run(tmp_path)


def test_load_run_reports_a_malformed_trials_csv(tmp_path: Path) -> None:
    RunDir(tmp_path).write_meta({"status": "running"})
    (tmp_path / "trials.csv").write_text("seq,label\n0,DEFAULT\n")
    with pytest.raises(TunerError, match="missing columns"):
        load_run(tmp_path)


def test_a_run_that_has_measured_nothing_yet(tmp_path: Path) -> None:
    RunDir(tmp_path).write_meta({"status": "running"})
    run = load_run(tmp_path)
    assert run.trials.empty and "ops_per_s" not in run.trials
    assert {"seq", "label", "kind", "status", "reason"} <= set(run.trials.columns)
    assert run.pareto().empty
    assert run.best_search() is None and run.gain() is None


def test_a_metric_named_like_a_fixed_column_is_not_duplicated() -> None:
    t = trials_frame([rec(0, "DEFAULT", "baseline", ops(1.0, wall_s=9.0), rss=5)])
    assert list(t.columns).count("wall_s") == 1
    assert t["wall_s"].iloc[0] == 1.0  # the worker's, not the engine's
