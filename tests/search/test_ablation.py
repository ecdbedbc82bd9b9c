"""The minimal recommendation (tuner.search.ablation) on made-up throughput functions: which
keys it keeps, the greedy step, inert keys, resume and the bound on measurements."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import optuna
import pytest

from tests.factories import FAKE_WORKLOAD
from tuner.engine.base import Measurement
from tuner.flink import options as fo
from tuner.flink.inert import INERT_RULES, inert_keys, without_inert
from tuner.rundir import claim_run_dir
from tuner.search.ablation import NOISE_FLOOR, Ablation, Minimizer, changed_keys, measured_noise
from tuner.search.study import (
    RECOMMENDED_LABEL,
    Candidate,
    StudyConfig,
    StudyLoop,
    TrialRecord,
    create_study,
)
from tuner.units import KIB, MIB
from tuner.workload import Memory

optuna.logging.set_verbosity(optuna.logging.WARNING)

WORKLOAD = FAKE_WORKLOAD
Speed = Callable[[Mapping[str, fo.FlinkValue]], float]


class Batch:
    """A run_batch that measures with ``speed`` and appends records, counting calls."""

    def __init__(self, speed: Speed, records: list[TrialRecord]) -> None:
        self.speed = speed
        self.records = records
        self.measured: list[Candidate] = []

    def __call__(self, candidates: Sequence[Candidate]) -> list[TrialRecord]:
        out = []
        for c in candidates:
            self.measured.append(c)
            metrics = {"ops_per_s": self.speed(fo.effective(c.settings))}
            rec = TrialRecord(len(self.records), c, "ok", "", metrics, 0.0, 0, 0.0)
            self.records.append(rec)
            out.append(rec)
        return out


def _run(
    winner: Mapping[str, fo.FlinkValue],
    speed: Speed,
    baseline: Mapping[str, fo.FlinkValue] | None = None,
    records: list[TrialRecord] | None = None,
    repeats: int = 2,
    max_measurements: int = 80,
) -> tuple[Ablation, Batch]:
    recs = records if records is not None else []
    batch = Batch(speed, recs)
    m = Minimizer(WORKLOAD, baseline, repeats=repeats, max_measurements=max_measurements)
    out = m(winner, recs, batch, lambda: False)
    assert out is not None
    settings, ab = out
    assert isinstance(ab, Ablation)
    assert dict(ab.settings) == settings
    return ab, batch


WINNER: dict[str, fo.FlinkValue] = {
    fo.WRITE_BUFFER_SIZE: 16 * MIB,
    fo.BLOCK_SIZE: 16 * KIB,
    fo.THREAD_NUM: 3,
    fo.USE_BLOOM_FILTER: True,
    fo.BLOOM_FILTER_BITS_PER_KEY: 12.0,
    fo.COMPACTION_STYLE: "UNIVERSAL",
    fo.MAX_SIZE_LEVEL_BASE: 512 * MIB,
    fo.TARGET_FILE_SIZE_BASE: 8 * MIB,
}


def _speed(v: Mapping[str, fo.FlinkValue]) -> float:
    """Only the block size (+20 %) and the bloom filter (+10 %) matter."""
    return (
        1000.0
        * (1.2 if v[fo.BLOCK_SIZE] == 16 * KIB else 1.0)
        * (1.1 if v[fo.USE_BLOOM_FILTER] else 1.0)
    )


def test_keeps_the_keys_that_matter_and_drops_the_rest() -> None:
    ab, batch = _run(WINNER, _speed)
    assert set(ab.kept) == {fo.BLOCK_SIZE, fo.USE_BLOOM_FILTER}
    assert ab.kept[0] == fo.BLOCK_SIZE  # largest contribution first
    effects = {e.key: e for e in ab.effects}
    assert effects[fo.BLOCK_SIZE].cost == pytest.approx(0.2)
    assert effects[fo.THREAD_NUM].cost == pytest.approx(0.0)
    # The minimal set is Flink's default plus the kept keys.
    assert fo.effective(ab.settings)[fo.BLOCK_SIZE] == 16 * KIB
    assert fo.THREAD_NUM not in ab.settings and fo.WRITE_BUFFER_SIZE not in ab.settings
    assert ab.minimal_median == pytest.approx(ab.winner_median)
    assert ab.measurements == len(batch.measured)


def test_level_keys_under_universal_compaction_are_never_measured_nor_kept() -> None:
    ab, batch = _run(WINNER, _speed)
    for key in (fo.MAX_SIZE_LEVEL_BASE, fo.TARGET_FILE_SIZE_BASE):
        assert key in ab.inert
        assert key not in ab.kept
        assert not any(key in c.label or c.settings.get(key) == 8 * MIB for c in batch.measured)


def test_bloom_bits_without_the_filter_are_inert() -> None:
    dead = inert_keys({fo.USE_BLOOM_FILTER: False, fo.BLOOM_FILTER_BITS_PER_KEY: 8.0}, Memory())
    assert set(dead) == {fo.BLOOM_FILTER_BITS_PER_KEY}
    on = {fo.USE_BLOOM_FILTER: True, fo.BLOOM_FILTER_BITS_PER_KEY: 8.0}
    assert inert_keys(on, Memory()) == {}
    level: dict[str, fo.FlinkValue] = {
        fo.COMPACTION_STYLE: "LEVEL",
        fo.MAX_SIZE_LEVEL_BASE: 512 * MIB,
    }
    assert without_inert(level, Memory()) == level
    # Every rule names real Flink keys.
    assert all(k in fo.DEFAULTS for rule in INERT_RULES for k in rule.keys)


def test_block_cache_size_is_inert_under_managed_memory_only() -> None:
    s = {fo.BLOCK_CACHE_SIZE: 64 * MIB}
    assert fo.BLOCK_CACHE_SIZE in inert_keys(s, Memory(mode="managed"))
    assert inert_keys(s, Memory(mode="unmanaged")) == {}


def test_greedy_keeps_one_of_two_keys_that_only_matter_together() -> None:
    def either(v: Mapping[str, fo.FlinkValue]) -> float:
        return 1000.0 if v[fo.THREAD_NUM] == 3 or v[fo.BLOCK_SIZE] == 16 * KIB else 800.0

    winner = {fo.THREAD_NUM: 3, fo.BLOCK_SIZE: 16 * KIB}
    ab, _ = _run(winner, either)
    assert len(ab.kept) == 1
    kept = {e.key: e for e in ab.effects}[ab.kept[0]]
    assert "together" in kept.decision
    assert either(fo.effective(ab.settings)) == 1000.0


def test_reverts_to_the_users_configuration_not_flinks_default() -> None:
    current: dict[str, fo.FlinkValue] = {fo.THREAD_NUM: 3, fo.BLOCK_SIZE: 8 * KIB}
    ab, _ = _run({**WINNER, fo.THREAD_NUM: 3}, _speed, baseline=current)
    # thread.num equals the baseline's: not a change at all.
    assert fo.THREAD_NUM not in {e.key for e in ab.effects}
    assert {e.key: e for e in ab.effects}[fo.BLOCK_SIZE].baseline == 8 * KIB
    assert ab.settings[fo.THREAD_NUM] == 3  # the user's keys stay


def test_resume_reuses_every_earlier_measurement() -> None:
    records: list[TrialRecord] = []
    first, _ = _run(WINNER, _speed, records=records)
    again, batch2 = _run(WINNER, _speed, records=records)
    assert batch2.measured == []
    assert again.kept == first.kept


OUT_OF_TIME = "kept: not tried, the time budget was reached"


def test_the_minimal_recommendation_stops_where_the_time_budget_has_no_room_left() -> None:
    records: list[TrialRecord] = []
    batch = Batch(_speed, records)
    changed, _ = changed_keys(WINNER, {}, WORKLOAD)
    # Room for the one-at-a-time step (the winner twice, each key reverted once) and two more.
    limit = len(changed) + 2 + 2

    def room(measurements: int) -> bool:
        return len(batch.measured) + measurements <= limit

    out = Minimizer(WORKLOAD, None, repeats=1)(WINNER, records, batch, lambda: False, room)
    assert out is not None
    settings, ab = out
    assert isinstance(ab, Ablation)
    assert len(batch.measured) == limit
    assert sum(c.label.startswith("minimal:greedy-") for c in batch.measured) == 2
    untried = [e for e in ab.effects if e.decision == OUT_OF_TIME]
    assert ab.untried_for_time == len(untried) >= 1
    # A key kept untried stays in the recommendation: nothing unmeasured is dropped.
    assert all(fo.effective(settings)[e.key] == e.value for e in untried)


def test_a_one_at_a_time_step_out_of_time_keeps_the_keys_it_could_not_try() -> None:
    records: list[TrialRecord] = []
    batch = Batch(_speed, records)
    out = Minimizer(WORKLOAD, None, repeats=1)(
        WINNER, records, batch, lambda: False, lambda n: len(batch.measured) < 3
    )
    assert out is not None
    settings, ab = out
    assert isinstance(ab, Ablation)
    assert len(batch.measured) == 3  # the winner, then two reverts
    untried = [e for e in ab.effects if e.decision == OUT_OF_TIME]
    # The four keys whose revert was never measured, and the two measured ones, as within the
    # noise alone they would go to the greedy step, which has no time either.
    assert len(untried) == ab.untried_for_time == len(changed_keys(WINNER, {}, WORKLOAD)[0])
    assert sum(e.n == 0 for e in untried) == len(untried) - 2
    assert all(fo.effective(settings)[e.key] == e.value for e in untried)


def test_measurements_are_bounded_and_planned_in_advance() -> None:
    changed, _ = changed_keys(WINNER, {}, WORKLOAD)
    m = Minimizer(WORKLOAD, None, repeats=5, max_measurements=20)
    assert m.planned(WINNER) <= 20
    ab, batch = _run(WINNER, _speed, repeats=5, max_measurements=20)
    assert len(batch.measured) <= m.planned(WINNER)
    assert ab.repeats == 20 // (2 * len(changed) + 1)


def test_study_loop_re_measures_the_minimal_set(tmp_path: Path) -> None:
    rd = claim_run_dir(tmp_path / "run")
    config = StudyConfig(trials=6, seed=1, repeats=2)
    study = create_study(rd.storage_url, "t", config)
    calls: list[Candidate] = []

    def measure(c: Candidate) -> Measurement:
        calls.append(c)
        return Measurement("ok", "", {"ops_per_s": _speed(fo.effective(c.settings))}, 0.01, 1)

    refine = Minimizer(WORKLOAD, None, repeats=1)
    loop = StudyLoop(WORKLOAD, study, config, measure, lambda r: None, refine=refine)
    outcome = loop.run()
    assert isinstance(outcome.refinement, Ablation)
    assert outcome.recommended_settings == dict(outcome.refinement.settings)
    rec = [c for c in calls if c.label == RECOMMENDED_LABEL]
    assert rec and all(dict(c.settings) == outcome.recommended_settings for c in rec)
    assert any(c.kind == "ablation" for c in calls)
    # The progress total counted the ablation's measurements.
    assert loop._total() >= len([c for c in calls])


def test_noise_is_the_median_spread_of_every_repeated_configuration() -> None:
    runs = [[100.0, 110.0], [100.0, 102.0], [50.0, 51.0], [7.0]]
    assert measured_noise(runs) == pytest.approx(2 / 101)
    assert measured_noise([[100.0, 100.0]]) == NOISE_FLOOR


def test_a_revert_flink_would_refuse_is_never_measured() -> None:
    # Reverting writebuffer.count to the user's 2 under number-to-merge 3 breaks RocksDB's rule.
    current: dict[str, fo.FlinkValue] = {fo.MAX_WRITE_BUFFER_NUMBER: 2}
    winner: dict[str, fo.FlinkValue] = {
        fo.MAX_WRITE_BUFFER_NUMBER: 4,
        fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 3,
        fo.BLOCK_SIZE: 16 * KIB,
    }
    ab, batch = _run(winner, _speed, baseline=current)
    effect = {e.key: e for e in ab.effects}[fo.MAX_WRITE_BUFFER_NUMBER]
    assert effect.kept and "invalid (writebuffer.number-to-merge must be below" in effect.decision
    assert not any(c.label == "minimal:-writebuffer.count" for c in batch.measured)
    assert fo.invalid_reason(ab.settings, WORKLOAD.memory, 1) is None


def test_a_revert_to_a_baselines_merge_of_memtables_is_never_measured() -> None:
    # The user's configuration merges 2 memtables; the search's winner merges 1 (pinned there:
    # a merge can hang a checkpoint's flush). Reverting to 2 is never a recommendation.
    current: dict[str, fo.FlinkValue] = {
        fo.MAX_WRITE_BUFFER_NUMBER: 4,
        fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 2,
    }
    winner = {**current, fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 1, fo.BLOCK_SIZE: 16 * KIB}
    ab, batch = _run(winner, _speed, baseline=current)
    effect = {e.key: e for e in ab.effects}[fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE]
    assert effect.kept and "facebook/rocksdb#12094" in effect.decision
    assert not any("number-to-merge" in c.label for c in batch.measured)
    assert ab.settings[fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE] == 1


def test_a_kept_key_made_inert_by_a_dropped_one_is_dropped_too() -> None:
    # Measured noise can credit bloom bits while use-bloom-filter itself measures as nothing:
    # the minimal set must not then emit the bits without the filter (CI found it, issue 11).
    def bits_only(v: Mapping[str, fo.FlinkValue]) -> float:
        return 1000.0 * (1.1 if v[fo.BLOOM_FILTER_BITS_PER_KEY] == 12.0 else 1.0)

    winner = {fo.USE_BLOOM_FILTER: True, fo.BLOOM_FILTER_BITS_PER_KEY: 12.0}
    ab, _ = _run(winner, bits_only)
    assert inert_keys(ab.settings, WORKLOAD.memory) == {}
    assert ab.kept == ()
    bits = {e.key: e for e in ab.effects}[fo.BLOOM_FILTER_BITS_PER_KEY]
    assert not bits.kept and "does nothing" in bits.decision
