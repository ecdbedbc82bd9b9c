"""The search space draws only settings Flink accepts."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import given, settings
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


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    mode=st.sampled_from(["managed", "unmanaged"]),
    timers=st.booleans(),
    restore=st.sampled_from(["none", "restore", "rescale"]),
)
def test_every_drawn_configuration_is_its_own_point(
    seed: int, mode: str, timers: bool, restore: space.RestoreSearch
) -> None:
    # What the warm start relies on: a configuration the search can draw is told to it as
    # exactly the parameters that drew it.
    memory = Memory(mode=mode, managed_per_slot=256 << 20)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed))
    trial = study.ask()
    drawn = space.suggest(trial, memory, timers, restore)
    point = space.point_of(drawn, memory, "2.3", timers, restore)
    assert point is not None
    assert dict(point.params) == trial.params
    for name, dist in point.distributions.items():
        assert dist._contains(dist.to_internal_repr(trial.params[name]))
    assert space.off_space(drawn, memory, "2.3", timers, restore) == []


@pytest.mark.parametrize("version", ["2.3", "1.20"])
def test_flinks_option_sets_are_points_except_high_mem(version: str) -> None:
    memory = Memory(mode="managed")
    for name in ("DEFAULT", "SPINNING_DISK_OPTIMIZED", "FLASH_SSD_OPTIMIZED"):
        point = space.point_of({fo.PREDEFINED_OPTIONS: name}, memory, version)
        assert point is not None, name
    preset = {fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM"}
    assert space.point_of(preset, memory, version) is None
    # Its 128 KiB blocks are off the range; its merge of 3 memtables is one the search pins to 1
    # (facebook/rocksdb#12094).
    assert space.off_space(preset, memory, version) == [
        "writebuffer.number-to-merge = 3",
        "block.blocksize = 128 kb",
    ]


def test_the_search_never_merges_memtables() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        drawn = space.suggest(study.ask(), Memory(mode="managed"))
        assert drawn[fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE] == 1


def test_a_configuration_with_an_option_the_search_leaves_alone_is_no_point() -> None:
    # Its figure was measured with 8 KiB metadata blocks, which no search point has.
    user = {fo.METADATA_BLOCK_SIZE: 8 << 10, fo.WRITE_BUFFER_SIZE: 32 << 20}
    memory = Memory(mode="managed")
    assert space.point_of(user, memory) is None
    assert space.off_space(user, memory) == []
    assert space.point_of({fo.WRITE_BUFFER_SIZE: 32 << 20}, memory) is not None
