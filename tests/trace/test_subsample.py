"""A recording too big for the time budget is replayed as a key sample of itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import VALUE_AND_LIST, recorded_workload_file, value_and_list_calls
from tuner.launch import open_run
from tuner.scale import recorded_sample
from tuner.trace.parquet import read_trace, recording_meta, write_trace
from tuner.trace.subsample import (
    CALLS_PER_BUDGET_SECOND,
    LARGER_MODEL_STRETCH,
    kept_keys,
    key_sample_to_fit,
    sample_trace,
    trace_size,
)
from tuner.workload import load_workload


def _recording(path: Path, calls: int, keys: int, sample: float = 1.0) -> Path:
    meta = {"records": calls // 2, "sample": sample, "state_cpu_share": 0.4}
    write_trace(
        path,
        VALUE_AND_LIST,
        [value_and_list_calls(0, calls // 4, keys, 1)],
        [value_and_list_calls(10**6, calls - calls // 4, keys, 2)],
        extra_metadata={"recording": json.dumps(meta)},
    )
    return path


@given(
    st.lists(st.integers(0, 2**62), min_size=1, max_size=200),
    st.floats(0.001, 1.0),
)
def test_a_key_is_kept_or_left_wherever_it_appears(keys: list[int], keep: float) -> None:
    key = np.array(keys + keys[::-1], dtype=np.int64)
    mask = kept_keys(key, keep)
    decided: dict[int, bool] = {}
    for k, m in zip(key.tolist(), mask.tolist(), strict=True):
        assert decided.setdefault(k, m) == m
    assert kept_keys(key, 1.0).all()


def test_a_sample_keeps_about_its_share_of_keys() -> None:
    key = np.arange(200_000, dtype=np.int64)
    assert kept_keys(key, 0.1).mean() == pytest.approx(0.1, abs=0.005)
    # Smaller samples are inside larger ones: a 1/20 model's keys are among a 1/10 model's.
    assert not (kept_keys(key, 0.05) & ~kept_keys(key, 0.1)).any()


def test_the_sampled_trace_holds_every_call_of_its_keys_in_order(tmp_path: Path) -> None:
    src = _recording(tmp_path / "rec.parquet", 40_000, 5_000, sample=0.5)
    dst = tmp_path / "sampled.parquet"
    written = sample_trace(src, dst, 0.25)
    full, part = read_trace(src), read_trace(dst)
    assert part.header == full.header
    assert written == sum(part.phase_rows.values())
    for phase in ("preload", "measure"):
        whole = [b for b in full.batches(phase)]
        kept = [b for b in part.batches(phase)]
        want = np.concatenate([b.key[kept_keys(b.key, 0.25)] for b in whole])
        got = np.concatenate([b.key for b in kept])
        assert np.array_equal(got, want)
        ts = np.concatenate([b.ts for b in kept])
        assert (np.diff(ts) >= 0).all()
    assert 0.2 < written / 40_000 < 0.3
    meta = recording_meta(dst)
    # The model is of the recorder's sample of the sample, and the share of time goes along.
    assert meta["sample"] == pytest.approx(0.125) and meta["state_cpu_share"] == 0.4
    assert trace_size(src) == (40_000, 5_000)


def test_a_recording_is_sampled_only_when_it_does_not_fit_the_budget(tmp_path: Path) -> None:
    src = _recording(tmp_path / "rec.parquet", 40_000, 5_000)
    assert key_sample_to_fit(src, None).keep == 1.0
    assert key_sample_to_fit(src, 40_000 / CALLS_PER_BUDGET_SECOND).keep == 1.0
    third = key_sample_to_fit(src, 15_000 / CALLS_PER_BUDGET_SECOND)
    assert third.keep == pytest.approx(1 / 3) and third.label == "1/3"
    # Never fewer than 1,000 keys: 5,000 keys allow 1/5 at most.
    assert key_sample_to_fit(src, 1_000 / CALLS_PER_BUDGET_SECOND).keep == pytest.approx(1 / 5)


def test_a_larger_model_is_kept_when_the_budgets_would_not_be_trusted(tmp_path: Path) -> None:
    src = _recording(tmp_path / "rec.parquet", 40_000, 5_000)
    fits = 15_000 / CALLS_PER_BUDGET_SECOND  # the budget alone: 1/3
    half = key_sample_to_fit(src, fits, least_keep=0.5)
    assert half.keep == pytest.approx(1 / 2) and half.budget_keep == pytest.approx(1 / 3)
    # The whole recording is 2.7x the budget's calls, past LARGER_MODEL_STRETCH: the budget's.
    assert LARGER_MODEL_STRETCH < 40_000 / 15_000
    whole = key_sample_to_fit(src, fits, least_keep=1.0)
    assert whole.keep == pytest.approx(1 / 3) and whole.budget_keep is None
    # A model the budget makes large enough is left as it is.
    assert key_sample_to_fit(src, fits, least_keep=0.2).budget_keep is None


def test_tuner_run_replays_a_small_recording_whole_rather_than_a_model_under_48_mb(
    tmp_path: Path,
) -> None:
    calls = round(80 * CALLS_PER_BUDGET_SECOND * 1.5)  # 1.5x what an 80 s budget measures
    src = _recording(tmp_path / "rec.parquet", calls, 20_000)
    wl = recorded_workload_file(tmp_path, src, "64 mb")
    # The budget alone would replay 1/2: a 32 MiB model. Replayed whole instead, and said so.
    launch = open_run(wl, {"time_budget": 80.0}, {"time_budget"}, out=tmp_path / "run")
    assert launch.settings.scale.factor == 1.0 and launch.workload.trace == str(src)
    note = next(n for n in launch.notes if n.startswith("the recording holds"))
    assert "a 1/2 sample would make a 1/2 model (a 32.0 MiB memory budget" in note
    assert note.endswith("replaying it whole, so the search measures fewer candidates")
    # With 256 mb a 1/2 model holds 128 MiB: the budget's sample stands.
    wl = recorded_workload_file(tmp_path, src, "256 mb")
    big = open_run(wl, {"time_budget": 80.0}, {"time_budget"}, out=tmp_path / "big")
    assert big.settings.scale.factor == pytest.approx(1 / 2)


def test_a_budget_sample_under_48_mb_says_the_budget_of_a_trusted_model(tmp_path: Path) -> None:
    from tuner.launch import _run_notes

    # Every key at 64 mb, 3x what an 80 s budget measures: a 1/3 model (21 MiB); the whole
    # recording is past twice the budget, so the sample stands and the run says what would do.
    src = _recording(tmp_path / "rec.parquet", 80 * CALLS_PER_BUDGET_SECOND * 3, 20_000)
    wl = recorded_workload_file(tmp_path, src, "64 mb")
    launch = open_run(wl, {"time_budget": 80.0}, {"time_budget"}, out=tmp_path / "run")
    assert launch.settings.scale.label == "1/3"
    notes = _run_notes(launch, False, True)
    trusted = [n for n in notes if "trusted to rank" in n]
    # 75 % of 600k calls is 450k: 180 s of budget.
    assert trusted == [
        "warning: --time-budget '3 min' replays a model trusted to rank as the job does "
        "(75% of the job's keys: at least 1/10 of them and 48 mb of memory)"
    ]


def test_tuner_run_replays_a_key_sample_of_a_recording_too_big_for_its_budget(
    tmp_path: Path,
) -> None:
    calls = 80 * CALLS_PER_BUDGET_SECOND * 2 + 1  # twice what an 80 s budget measures
    src = _recording(tmp_path / "rec.parquet", calls, 20_000)
    wl = recorded_workload_file(tmp_path, src, "64 mb")
    launch = open_run(wl, {"time_budget": 80.0}, {"time_budget"}, out=tmp_path / "run")
    assert launch.settings.scale.factor == pytest.approx(1 / 3)
    assert any("replaying 1/3 of its keys" in n for n in launch.notes)
    # The run directory names the sample it replays, so a resumed run replays the same model.
    again = load_workload(launch.run_dir.workload_yaml)
    assert again.trace == str((tmp_path / "run" / "trace.parquet").resolve())
    assert recorded_sample(again) == pytest.approx(1 / 3)
    assert launch.workload.trace == again.trace
    # Without a budget the recording is replayed whole.
    whole = open_run(wl, {"time_budget": None}, {"time_budget"}, out=tmp_path / "whole")
    assert whole.settings.scale.factor == 1.0 and whole.workload.trace == str(src)


def test_a_model_below_a_tenth_of_the_job_says_so_and_the_budget_that_gives_one(
    tmp_path: Path,
) -> None:
    from tuner.launch import _run_notes

    # Recorded with --sample 0.25, then sampled to 1/3 by an 80 s budget: a 1/12 model.
    src = _recording(tmp_path / "rec.parquet", 80 * CALLS_PER_BUDGET_SECOND * 2 + 1, 20_000, 0.25)
    wl = recorded_workload_file(tmp_path, src, "64 mb")
    launch = open_run(wl, {"time_budget": 80.0}, {"time_budget"}, out=tmp_path / "run")
    assert launch.settings.scale.label == "1/12"
    notes = _run_notes(launch, False, True)
    small = [n for n in notes if "smaller than 1/10" in n]
    assert len(small) == 1 and small[0].startswith("warning: a 1/12 model is smaller than 1/10")
    # The model replays about 133k calls; a 1/10 model, 1.2x as many: 160k calls, 64 s of budget.
    assert "--time-budget '2 min' replays a 1/10 model" in small[0]
    # At 1/10 or larger, nothing is said.
    big = open_run(wl, {"time_budget": None}, {"time_budget"}, out=tmp_path / "whole")
    assert not any("smaller than 1/10" in n for n in _run_notes(big, False, True))
