"""The fidelity math: ranks with ties, Spearman, gains, per-configuration medians."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuner.search.study import Candidate, TrialRecord
from tuner.validate.fidelity import (
    ConfigFidelity,
    compute_fidelity,
    medians,
    pairwise_gains,
    replay_rates,
    resolved_pairs,
    spearman,
)


def test_spearman_of_same_and_reversed_order() -> None:
    xs = [1.0, 2.0, 3.0, 4.0]
    assert spearman(xs, [10.0, 20.0, 35.0, 90.0]) == pytest.approx(1.0)
    assert spearman(xs, [9.0, 7.0, 3.0, 1.0]) == pytest.approx(-1.0)


def test_spearman_with_ties_matches_the_pearson_of_average_ranks() -> None:
    # ranks x: 1, 2.5, 2.5, 4 ; ranks y: 1, 2, 3, 4 -> r = 4.5 / sqrt(4.5 * 5)
    got = spearman([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    assert got == pytest.approx(4.5 / math.sqrt(4.5 * 5.0))


@given(
    st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=2, max_size=30).filter(
        lambda ps: len({x for x, _ in ps}) > 1 and len({y for _, y in ps}) > 1
    )
)
def test_spearman_is_a_rank_statistic(pairs: list[tuple[int, int]]) -> None:
    xs = [float(x) for x, _ in pairs]
    ys = [float(y) for _, y in pairs]
    rho = spearman(xs, ys)
    assert -1.0 - 1e-9 <= rho <= 1.0 + 1e-9
    assert spearman(ys, xs) == pytest.approx(rho)
    # any strictly increasing transform keeps the ranks, so the statistic
    assert spearman([x**3 + 7 for x in xs], ys) == pytest.approx(rho)
    assert spearman([-x for x in xs], ys) == pytest.approx(-rho)


def test_spearman_undefined_without_a_ranking() -> None:
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="must hold"):
        spearman([1.0, 2.0], [1.0])


def _rec(label: str, kind: str, ops: float, repeat: int = 0, ok: bool = True) -> TrialRecord:
    return TrialRecord(
        seq=0,
        candidate=Candidate(label, kind, {}, None, repeat),  # type: ignore[arg-type]
        status="ok" if ok else "failed",
        reason="",
        metrics={"ops_per_s": ops},
        wall_s=1.0,
        rss_peak_bytes=0,
        started_at=0.0,
    )


RECORDS = [
    _rec("DEFAULT", "baseline", 100.0),
    _rec("FLASH_SSD_OPTIMIZED", "baseline", 120.0),
    _rec("SPINNING_DISK_OPTIMIZED", "baseline", 90.0),
    _rec("trial-3", "search", 500.0),  # a search draw: not a configuration we validate
    _rec("DEFAULT", "remeasure", 104.0, 0),
    _rec("recommended", "remeasure", 130.0, 0),
    _rec("DEFAULT", "remeasure", 96.0, 1),
    _rec("recommended", "remeasure", 126.0, 1),
    _rec("DEFAULT", "remeasure", 1.0, 2, ok=False),  # failed: ignored
]


def test_replay_rates_take_baselines_and_remeasurements_only() -> None:
    rates = replay_rates(RECORDS)
    assert rates["DEFAULT"] == [100.0, 104.0, 96.0]
    assert "trial-3" not in rates
    assert medians(rates) == {
        "DEFAULT": 100.0,
        "FLASH_SSD_OPTIMIZED": 120.0,
        "SPINNING_DISK_OPTIMIZED": 90.0,
        "recommended": 128.0,
    }


def test_pairwise_gains_pair_by_repeat() -> None:
    flink = {"DEFAULT": {0: 50.0, 1: 40.0, 2: 45.0}, "recommended": {0: 60.0, 1: 40.0}}
    assert pairwise_gains(flink, "recommended") == pytest.approx([0.2, 0.0])


def test_compute_fidelity_figures() -> None:
    flink = {
        "DEFAULT": {0: 50.0, 1: 54.0, 2: 52.0},
        "SPINNING_DISK_OPTIMIZED": {0: 45.0, 1: 47.0, 2: 46.0},
        "FLASH_SSD_OPTIMIZED": {0: 60.0, 1: 58.0, 2: 62.0},
        "recommended": {0: 55.0, 1: 57.0, 2: 56.0},
    }
    f = compute_fidelity(RECORDS, flink)
    by = {c.label: c for c in f.configs}
    assert by["DEFAULT"].replay_ops_per_s == 100.0
    assert by["DEFAULT"].flink_records_per_s == 52.0
    assert (by["DEFAULT"].flink_min, by["DEFAULT"].flink_max) == (50.0, 54.0)
    assert by["DEFAULT"].flink_over_replay == pytest.approx(0.52)
    # Replay order: SPINNING 90 < DEFAULT 100 < FLASH 120 < recommended 128;
    # Flink order:  SPINNING 46 < DEFAULT 52 < recommended 56 < FLASH 60.
    assert f.ranked == 4
    assert f.spearman == pytest.approx(0.8)
    # Predicted: interleaved re-measurements, median 128 / 100 - 1.
    assert f.predicted_gain == pytest.approx(0.28)
    assert f.real_gain == pytest.approx(56.0 / 52.0 - 1)
    assert f.real_gain_low == pytest.approx(57.0 / 54.0 - 1)
    assert f.real_gain_high == pytest.approx(55.0 / 50.0 - 1)


def test_compute_fidelity_without_a_replay_figure_for_a_config() -> None:
    f = compute_fidelity([], {"DEFAULT": {0: 10.0}, "recommended": {0: 12.0}})
    assert all(math.isnan(c.replay_ops_per_s) for c in f.configs)
    assert math.isnan(f.configs[0].flink_over_replay)
    assert f.ranked == 0 and math.isnan(f.spearman)
    assert math.isnan(f.predicted_gain)
    assert f.real_gain == pytest.approx(0.2)


def test_only_pairs_flink_tells_apart_count_and_the_replay_must_order_them_alike() -> None:
    def c(label: str, replay: float, lo: float, hi: float, runs: int = 3) -> ConfigFidelity:
        return ConfigFidelity(label, replay, (lo + hi) / 2, lo, hi, runs)

    configs = [
        c("DEFAULT", 100, 90, 100),
        c("A", 105, 95, 110),  # overlaps DEFAULT: a tie on Flink, whatever the replay says
        c("B", 150, 120, 130),  # above both on Flink and on the replay
        c("C", 160, 112, 118),  # above DEFAULT and A on Flink, but below B there: discordant
        c("D", 500, 200, 300, runs=1),  # one run has no range: never resolved
        c("E", math.nan, 400, 500),  # no replay figure
    ]
    resolved, concordant, discordant = resolved_pairs(configs)
    assert (resolved, concordant) == (5, 4)
    assert discordant == ("B > C on Flink, not on the replay",)
