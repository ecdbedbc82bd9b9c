"""The run's one figure: the gain of exactly the emitted configuration, from the most faithful
engine that measured it, as a job gain where a trusted recorded share allows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tuner.confirm import decide
from tuner.promise import Promise, StateShare, job_gain, promise_of, state_share
from tuner.recommend import Gain
from tuner.search.study import Candidate, TrialRecord
from tuner.trace.ops import StateInfo, StreamHeader
from tuner.trace.parquet import write_trace
from tuner.workload import load_workload

REPLAY = Gain("ops_per_s", 3, 100.0, 110.6, 0.106, 0.05, 0.15)
TRUSTED = StateShare(0.4)
NO_SHARE = StateShare(None, "the workload is not a recording of the job")


def _confirmed() -> list[TrialRecord]:
    def rec(label: str, repeat: int, ops: float) -> TrialRecord:
        cand = Candidate(label, "remeasure", {}, None, repeat)
        return TrialRecord(0, cand, "ok", "", {"ops_per_s": ops}, 1.0, 0, 0.0)

    rounds = {"DEFAULT": [100, 101, 99], "minimal": [157, 156, 158]}
    return [rec(label, i, v) for label, vals in rounds.items() for i, v in enumerate(vals)]


def test_amdahl_turns_a_state_call_gain_into_the_jobs() -> None:
    # The field case: +56.7 % confirmed on state calls, about 40 % of the job's time in them.
    assert job_gain(0.567, 0.4) == pytest.approx(0.169, abs=1e-3)
    assert job_gain(0.5, 1.0) == pytest.approx(0.5)
    assert job_gain(3.0, 0.0) == 0.0


def test_the_confirmations_figure_for_the_emitted_config_is_the_promise() -> None:
    confirmation = decide(_confirmed())
    p = promise_of("minimal", TRUSTED, confirmation=confirmation, replay_gain=REPLAY)
    assert p is not None and p.label == "minimal" and p.engine == "flink-backend"
    assert p.gain == pytest.approx(0.57)
    assert p.job is not None and p.job[0] == pytest.approx(job_gain(0.57, 0.4))
    text = p.describe()
    assert text.startswith(f"{job_gain(0.57, 0.4):+.1%} job throughput")
    assert "+10.6%" not in text  # the replay's figure is not the promise


def test_without_a_confirmation_the_replay_figure_is_stated_as_a_state_call_gain() -> None:
    p = promise_of("search trial 4", NO_SHARE, confirmation=None, replay_gain=REPLAY)
    assert p is not None and p.job is None
    text = p.describe()
    assert text.startswith("+10.6% on state calls over Flink's default for search trial 4")
    assert "not a job-level figure: the workload is not a recording" in text


def test_a_doubted_share_gives_no_job_figure() -> None:
    doubted = StateShare(0.042, "the job iterates map state")
    p = promise_of("minimal", doubted, confirmation=None, replay_gain=REPLAY)
    assert p is not None and p.job is None
    assert "not a job-level figure: the job iterates map state" in p.describe()


def test_a_disk_bound_run_promises_no_number() -> None:
    p = promise_of("minimal", TRUSTED, confirmation=None, replay_gain=REPLAY, read_wait=0.8)
    assert p is not None
    assert p.describe().startswith("no gain can be promised for minimal: the job is disk-bound")
    below = promise_of("minimal", TRUSTED, confirmation=None, replay_gain=REPLAY, read_wait=0.2)
    assert below is not None and below.disk_bound is None


def test_a_figure_measured_on_a_model_says_so() -> None:
    """A key sample or scale: the gain is the model's, and the line says which model."""
    full = promise_of("minimal", TRUSTED, confirmation=None, replay_gain=REPLAY)
    model = promise_of("minimal", TRUSTED, confirmation=None, replay_gain=REPLAY, model=0.1)
    assert full is not None and model is not None
    assert "model of the job" not in full.describe()
    assert "(modelled ops/s) on a 1/10 model of the job, 3 interleaved rounds" in model.describe()
    assert model.as_dict()["model"] == 0.1 and model.job == full.job


def test_no_figure_that_is_not_a_number() -> None:
    nan = Gain("ops_per_s", 1, 100.0, math.nan, math.nan, math.nan, math.nan)
    assert promise_of("minimal", TRUSTED, confirmation=None, replay_gain=nan) is None
    p = Promise("x", "rocksdict", "DEFAULT", 0.1, 0.0, 0.2, 2, False, StateShare(None, "why"))
    d = p.as_dict()
    assert d["job_gain"] is None and "nan" not in json.dumps(d)


def test_the_share_comes_from_the_recording_the_workload_replays(tmp_path: Path) -> None:
    header = StreamHeader(states=(StateInfo("counts", "value"),))
    trace = tmp_path / "t.parquet"
    meta = {"state_cpu_share": 0.35, "state_cpu_share_doubt": ""}
    write_trace(trace, header, [], [], extra_metadata={"recording": json.dumps(meta)})
    wl = tmp_path / "w.yaml"
    wl.write_text(
        f"name: w\nflink_version: '2.x'\nmemory: {{managed_per_slot: 64 mb}}\ntrace: {trace}\n"
    )
    assert state_share(load_workload(wl)) == StateShare(0.35, "")
    meta["state_cpu_share_doubt"] = "the timed state calls took longer"
    write_trace(trace, header, [], [], extra_metadata={"recording": json.dumps(meta)})
    assert not state_share(load_workload(wl)).trusted


def test_the_importer_doubts_a_share_it_cannot_have_measured() -> None:
    from tuner.trace.recording import StateTimeShare

    fine = StateTimeShare(state_calls=1000, estimated_state_cpu_s=0.4, task_cpu_s=1.0)
    assert fine.share == pytest.approx(0.4) and fine.doubt(iterations=0) == ""
    # The GROUP BY job: the timed calls outlasted the thread's CPU time (printed as 100 %).
    over = StateTimeShare(state_calls=1000, estimated_state_cpu_s=1.3, task_cpu_s=1.0)
    assert "add up to more than the threads' CPU time" in over.doubt(iterations=0)
    # The join: an older recorder timed only the start of an iteration (printed as 4.2 %);
    # today's times the entries read, so its iterations raise no doubt.
    older = StateTimeShare(1000, 0.4, 1.0, iterations_timed=False)
    assert "iterates map state (12 recorded" in older.doubt(iterations=12)
    assert fine.doubt(iterations=12) == ""
    assert "no task time" in StateTimeShare(0, 0.0, 0.0).doubt(iterations=0)


def test_the_share_is_of_the_jobs_recorded_time_where_recorded() -> None:
    """Nexmark q5 (1M events, 64 mb): 11.24 s of state calls, 12.68 s of the state-calling
    threads' CPU, 19.55 s from first to last call; the job on hashmap vs RocksDB said 42 %."""
    from tuner.trace.recording import StateTimeShare

    q5 = StateTimeShare(3_598_154, 11.24, 12.68, True, job_wall_s=19.55)
    assert q5.share == pytest.approx(0.575, abs=1e-3) and q5.doubt(iterations=0) == ""
    no_wall = StateTimeShare(3_598_154, 11.24, 12.68)
    assert no_wall.share == pytest.approx(0.886, abs=1e-3)  # an older recording: CPU time
    overlapping = StateTimeShare(10, 30.0, 40.0, True, job_wall_s=20.0)
    assert "more than the job's recorded time" in overlapping.doubt(iterations=0)


def test_the_share_is_the_pace_setting_subtasks_not_the_sum_of_subtasks_side_by_side() -> None:
    """The demo job at parallelism 1 (100k records): two state-calling operators, each its own
    thread, 3.23 s and 2.04 s of state calls in 4.89 s; the job on hashmap vs RocksDB said
    65.6 %. Summed they outlast the job; the job runs at its most state-bound thread's pace."""
    from types import SimpleNamespace
    from typing import cast

    from tuner.recorder.format import Recording
    from tuner.trace.recording import state_time_share

    def subtask(state_ns: int, calls: int) -> Recording:
        timed = calls // 64
        # Only the footer is read: a stand-in for a recording file.
        return cast(
            Recording,
            SimpleNamespace(
                footer={
                    "wall_ns": 4_890_000_000,
                    "task_cpu_ns": state_ns + 200_000_000,
                    "state_calls": calls,
                    "timer_cost_ns": 0,
                    "timed_log2_ns": {"11": [timed, state_ns / calls * timed]},
                    "timed_iter_ns": 0,
                }
            ),
        )

    share = state_time_share([subtask(3_230_000_000, 919_346), subtask(2_040_000_000, 681_992)])
    assert share.estimated_state_cpu_s == pytest.approx(5.27)
    assert share.share == pytest.approx(3.23 / 4.89) and share.doubt(iterations=0) == ""
    # The same job at parallelism 4: four subtasks of each, side by side, the same share.
    four = state_time_share([subtask(3_230_000_000, 919_346)] * 4 + [subtask(2_040_000_000, 1)] * 4)
    assert four.share == pytest.approx(3.23 / 4.89)


def test_long_calls_count_with_their_cpu_time_not_as_preemption() -> None:
    """Nexmark q20 (a join, 500k events, every key recorded): the footer's own figures. 428 of
    21,774 timed calls were map reads of 1.6 ms, 90 % of the timed time; left out as preempted
    they made the share 16.8 % of a thread busy 90 % of the job's 59.5 s."""
    from types import SimpleNamespace
    from typing import cast

    from tuner.recorder.format import Recording
    from tuner.trace.recording import state_time_share

    q20 = {
        "wall_ns": 59_456_402_015,
        "task_cpu_ns": 53_545_763_830,
        "state_calls": 1_398_468,
        "timer_cost_ns": 46,
        "timed_iter_ns": 82_562_259,
        "timed_log2_ns": {
            "4": [2911, 79026], "5": [2266, 121139], "6": [1282, 94931], "7": [537, 100125],
            "8": [157, 51626], "9": [118, 97384], "10": [3156, 5278978], "11": [6069, 17280163],
            "12": [3352, 18992770], "13": [873, 9597305], "14": [442, 9775671],
            "15": [120, 5220400], "16": [23, 1886284], "17": [2, 404781], "18": [4, 1297437],
            "20": [428, 695334332], "21": [7, 17060082], "22": [1, 4985639],
        },
    }  # fmt: skip

    def share(footer: dict[str, object]) -> float:
        value = state_time_share([cast(Recording, SimpleNamespace(footer=footer))]).share
        assert value is not None
        return value

    # A recorder before the CPU time of long calls: they are left out.
    assert share(q20) == pytest.approx(0.168, abs=0.001)
    # Busy calls: their CPU time is their wall time, and they are most of the job's time.
    busy = {**q20, "long_calls": 436, "long_wall_ns": 717_380_053, "long_cpu_ns": 700_000_000}
    assert 0.85 < share(busy) < 0.95
    # Descheduled calls: little CPU, and the share stays where the short calls put it.
    preempted = {**busy, "long_cpu_ns": 2_000_000}
    assert share(preempted) == pytest.approx(0.168, abs=0.01)
