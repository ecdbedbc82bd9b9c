"""Plot and table data: exact numbers on hand-made records, shapes on a fake run."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.report.fakerun import ops, rec
from tuner.report import data
from tuner.results import load_run, trials_frame
from tuner.units import MIB


@pytest.fixture
def trials() -> pd.DataFrame:
    """Baselines out of Flink's order, trials with a failure and a skip, 2 re-measured pairs."""
    records = [
        rec(0, "FLASH_SSD_OPTIMIZED", "baseline", ops(110, write_amplification=5.0)),
        rec(1, "DEFAULT", "baseline", ops(100, write_amplification=6.0, space_amplification=1.2)),
        rec(2, "SPINNING_DISK_OPTIMIZED", "baseline", status="failed", reason="Timeout"),
        rec(3, "trial-0", "search", ops(90, read_p99_us=200.0), trial=0),
        rec(4, "trial-1", "search", status="skipped", reason="over budget", trial=1),
        rec(5, "trial-2", "search", ops(130, read_p99_us=300.0), trial=2),
        rec(6, "trial-3", "search", status="failed", reason="RocksDBError: x", trial=3),
        rec(7, "trial-4", "search", ops(120, read_p99_us=150.0), trial=4),
        rec(8, "DEFAULT", "remeasure", ops(98, write_amplification=6.2), trial=2, repeat=0),
        rec(9, "recommended", "remeasure", ops(125, write_amplification=4.0), trial=2, repeat=0),
        rec(10, "DEFAULT", "remeasure", ops(104, write_amplification=6.0), trial=2, repeat=1),
        rec(11, "recommended", "remeasure", ops(135, write_amplification=4.4), trial=2, repeat=1),
    ]
    return trials_frame(records)


def test_stat_of_ignores_nan_and_reports_the_range() -> None:
    assert data.Stat.of([3.0, math.nan, 1.0, 2.0]) == data.Stat(3, 2.0, 1.0, 3.0)
    empty = data.Stat.of([math.nan])
    assert empty.n == 0 and math.isnan(empty.median)


def test_summarize_orders_configurations_and_counts_runs(trials: pd.DataFrame) -> None:
    s = data.summarize(trials, ["ops_per_s", "no_such_metric"])
    assert [x.config for x in s] == [
        "DEFAULT",
        "SPINNING_DISK_OPTIMIZED",
        "FLASH_SSD_OPTIMIZED",
        "best trial (trial-2)",
        "DEFAULT (re-measured)",
        "recommended (re-measured)",
    ]
    by = {x.config: x for x in s}
    assert by["SPINNING_DISK_OPTIMIZED"].ok == 0 and by["SPINNING_DISK_OPTIMIZED"].runs == 1
    assert by["recommended (re-measured)"].stats["ops_per_s"] == data.Stat(2, 130.0, 125.0, 135.0)
    assert by["DEFAULT"].stats["no_such_metric"].n == 0


def test_summary_frame_is_summarize_as_a_table(trials: pd.DataFrame) -> None:
    df = data.summary_frame(trials, ["ops_per_s"]).set_index("config")
    assert list(df.columns) == [
        "group",
        "ok",
        "runs",
        "ops_per_s",
        "ops_per_s_min",
        "ops_per_s_max",
    ]
    assert df.loc["recommended (re-measured)", "ops_per_s"] == 130.0
    assert df.loc["recommended (re-measured)", "ops_per_s_min"] == 125.0
    assert df.loc["SPINNING_DISK_OPTIMIZED", "ok"] == 0
    assert df["ops_per_s"].isna()["SPINNING_DISK_OPTIMIZED"]


def test_history_is_the_running_best_of_measured_trials(trials: pd.DataFrame) -> None:
    h = data.optimisation_history(trials)
    assert h.trial_numbers == (0, 2, 4)
    assert h.values == (90.0, 130.0, 120.0)
    assert h.best_so_far == (90.0, 130.0, 130.0)
    assert h.failed == (3,)
    # The failed baseline has no value to draw.
    assert h.references == {"DEFAULT": 100.0, "FLASH_SSD_OPTIMIZED": 110.0}


def test_config_spread_has_error_range_only_from_repeats(trials: pd.DataFrame) -> None:
    spread = data.config_spread(trials).set_index("config")
    assert "SPINNING_DISK_OPTIMIZED" not in spread.index  # failed: nothing to draw
    default = spread.loc["DEFAULT"]
    assert (default["n"], default["low"], default["high"]) == (1, 100.0, 100.0)
    again = spread.loc["DEFAULT (re-measured)"]
    assert (again["n"], again["median"], again["low"], again["high"]) == (2, 101.0, 98.0, 104.0)
    assert spread.loc["best trial (trial-2)", "group"] == "best trial"


def test_amplification_uses_the_remeasured_recommendation(trials: pd.DataFrame) -> None:
    amp = data.amplification(trials)
    assert list(amp["config"]) == ["DEFAULT", "FLASH_SSD_OPTIMIZED", "recommended (re-measured)"]
    row = amp.set_index("config").loc["recommended (re-measured)"]
    assert row["write_amplification"] == pytest.approx(4.2)
    assert pd.isna(row["space_amplification"])


def test_amplification_falls_back_to_the_best_trial_before_remeasurement(
    trials: pd.DataFrame,
) -> None:
    amp = data.amplification(trials[trials["kind"] != "remeasure"])
    assert list(amp["config"]) == ["DEFAULT", "FLASH_SSD_OPTIMIZED"]  # trial-2 has no amp metric
    with_amp = trials.copy()
    with_amp.loc[with_amp["label"] == "trial-2", "write_amplification"] = 3.0
    amp = data.amplification(with_amp[with_amp["kind"] != "remeasure"])
    assert amp["config"].iloc[-1] == "best trial (trial-2)"


def test_pareto_points_flag_the_front(trials: pd.DataFrame) -> None:
    pts = data.pareto_points(trials, front_seqs=[5, 7])
    assert list(pts["label"]) == ["trial-0", "trial-4", "trial-2"]  # by throughput
    assert list(pts["on_front"]) == [False, True, True]


def test_memory_points_use_rocksdb_accounting_when_every_point_has_it() -> None:
    mem = {"block_cache_usage": 10.0 * MIB, "memtables_bytes": 4.0 * MIB}
    records = [
        rec(0, "DEFAULT", "baseline", ops(100, **mem, table_readers_bytes=1.0 * MIB), rss=999),
        rec(1, "trial-0", "search", ops(120, **mem), trial=0, rss=999),
        rec(2, "DEFAULT", "remeasure", ops(100, **mem), rss=999),  # repeats a baseline
        rec(3, "trial-1", "search", status="failed", trial=1, rss=999),
    ]
    m = data.memory_points(trials_frame(records))
    assert m.source == "rocksdb"
    assert list(m.points["label"]) == ["DEFAULT", "trial-0"]
    assert list(m.points["memory_bytes"]) == [15.0 * MIB, 14.0 * MIB]


def test_memory_points_fall_back_to_rss_when_a_point_lacks_rocksdb_memory() -> None:
    records = [
        rec(0, "DEFAULT", "baseline", ops(100, block_cache_usage=1.0, memtables_bytes=1.0), rss=5),
        rec(1, "trial-0", "search", ops(120), trial=0, rss=7),
    ]
    m = data.memory_points(trials_frame(records))
    assert m.source == "rss"
    assert list(m.points["memory_bytes"]) == [5.0, 7.0]


def test_failures_list_failed_and_skipped_with_reasons(trials: pd.DataFrame) -> None:
    f = data.failures(trials)
    assert list(f["label"]) == ["SPINNING_DISK_OPTIMIZED", "trial-1", "trial-3"]
    assert list(f["reason"]) == ["Timeout", "over budget", "RocksDBError: x"]


def test_every_function_copes_with_a_run_that_measured_nothing() -> None:
    empty = trials_frame([])
    assert data.summarize(empty, ["ops_per_s"]) == []
    assert data.optimisation_history(empty).values == ()
    assert data.config_spread(empty).empty
    assert data.amplification(empty).empty
    assert data.pareto_points(empty, []).empty
    assert data.memory_points(empty).points.empty
    assert data.failures(empty).empty


def test_importance_needs_a_study_with_three_completed_trials() -> None:
    assert data.param_importances(None) is None
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert data.param_importances(study) is None


def test_importance_explains_high_throughput_not_low() -> None:
    """PED-ANOVA looks at what makes the target low; for a maximised objective the top trials
    must be explained: here ``a`` decides how high a value gets, ``b`` only which are lowest."""

    def objective(t: optuna.Trial) -> float:
        a = t.suggest_float("a", 0, 1)
        b = t.suggest_float("b", 0, 1)
        return a - (100.0 if b < 0.15 else 0.0)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=200)
    imp = data.param_importances(study)
    assert imp is not None
    assert list(imp) == ["a", "b"]
    assert imp["a"] > 2 * imp["b"]


def test_importance_maps_optuna_params_to_flink_keys(complete_run: Path) -> None:
    imp = data.param_importances(load_run(complete_run).study())
    assert imp is not None
    assert all(k.startswith("state.backend.rocksdb.") for k in imp)
    assert not any(k.endswith(".log2") for k in imp)
    assert sum(imp.values()) == pytest.approx(1.0)
    assert list(imp.values()) == sorted(imp.values(), reverse=True)
    # The fake's throughput grows with the write buffer size: the search must see it.
    assert "state.backend.rocksdb.writebuffer.size" in list(imp)[:2]
