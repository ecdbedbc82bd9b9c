"""The search space draws only settings Flink accepts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuner.flink import memory as mem
from tuner.flink import options as fo
from tuner.search import space
from tuner.workload import Memory

from ._trials import BoundTrial


@pytest.mark.parametrize(
    ("r", "hp", "accepted"),
    [
        (0.5, 0.1, True),
        (0.6, 0.45, True),  # r + hp > 1, yet 2r/(3-r) + hp = 0.95: Flink accepts it
        (0.8, 0.3, False),  # 0.727 + 0.3 >= 1: RocksDBMemoryConfiguration.validate refuses
        (0.75, 1 - 1.5 / 2.25, False),  # exactly 1: refused (>= 1)
    ],
)
def test_flinks_ratio_rule(r: float, hp: float, accepted: bool) -> None:
    assert mem.ratios_accepted(r, hp) is accepted


@given(st.floats(min_value=0.01, max_value=0.85))
def test_the_search_never_draws_a_ratio_flink_refuses(hp: float) -> None:
    memory = Memory(mode="managed", high_prio_pool_ratio=hp)
    for high in (False, True):
        drawn = space.suggest(BoundTrial(high, 0), memory)
        r = drawn[fo.WRITE_BUFFER_RATIO]
        assert isinstance(r, float)
        if mem.max_write_buffer_ratio(hp) >= 0.1:
            assert mem.ratios_accepted(r, hp), (r, hp)


def test_max_ratio_is_the_largest_accepted_step() -> None:
    top = mem.max_write_buffer_ratio(0.3)
    assert mem.ratios_accepted(top, 0.3)
    assert not mem.ratios_accepted(round(top + 0.05, 2), 0.3)


@pytest.mark.parametrize(
    ("restore", "keys"),
    [
        ("none", set()),
        ("restore", {fo.CHECKPOINT_TRANSFER_THREADS}),
        (
            "rescale",
            {
                fo.CHECKPOINT_TRANSFER_THREADS,
                fo.RESTORE_OVERLAP_FRACTION,
                fo.DELETE_FILES_IN_RANGE,
                fo.INGEST_DB_RESTORE,
            },
        ),
    ],
)
def test_restore_options_are_searched_only_where_asked(
    restore: space.RestoreSearch, keys: set[str]
) -> None:
    memory = Memory(mode="managed")
    restore_keys = {
        fo.CHECKPOINT_TRANSFER_THREADS,
        fo.RESTORE_OVERLAP_FRACTION,
        fo.DELETE_FILES_IN_RANGE,
        fo.INGEST_DB_RESTORE,
    }
    for high in (False, True):
        drawn = space.suggest(BoundTrial(high, 0), memory, restore=restore)
        assert set(drawn) & restore_keys == keys
        assert set(drawn) <= set(space.searched_keys(memory, restore=restore))
        # Every value is one Flink accepts for the key (its type and range).
        assert fo.invalid_reason(drawn, memory, 3) is None
