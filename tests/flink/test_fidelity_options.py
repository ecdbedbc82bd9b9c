"""What a Flink version's FRocksDB does by itself: its arena block rule and its table format."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.flink import memory as mem
from tuner.flink import options as fo
from tuner.workload import Memory

from ..engine.conftest import HEADER
from .test_options_file import parse_options

MB = 1 << 20


def test_arena_block_follows_each_frocksdb() -> None:
    # FRocksDB 8.10 caps it at 1 MiB; FRocksDB 6.20 takes size / 8; both align to 4 KiB.
    assert mem.arena_block_size(128 * MB, flink_major=2) == 1 * MB
    assert mem.arena_block_size(4 * MB, flink_major=2) == 512 << 10
    assert mem.arena_block_size(128 * MB, flink_major=1) == 16 * MB
    assert mem.arena_block_size(1000, flink_major=1) == 4096


def test_large_write_buffer_on_small_budget_runs_on_flink_2_but_not_on_1_20() -> None:
    # 32 MiB at ratio 0.1: the write buffer manager holds 2.1 MiB, mutable limit 1.9 MiB. A 128
    # MiB buffer's arena block is 1 MiB on FRocksDB 8.10 (fits) and 16 MiB on 6.20 (flushes on
    # every write).
    settings = {fo.WRITE_BUFFER_SIZE: 128 * MB, fo.WRITE_BUFFER_RATIO: 0.1}
    memory = Memory(managed_per_slot=32 * MB)
    assert fo.invalid_reason(settings, memory, 2, "2.x") is None
    reason = fo.invalid_reason(settings, memory, 2, "1.20")
    assert reason is not None and "writebuffer.size/8" in reason


@pytest.mark.parametrize(
    ("version", "arena", "checksum"),
    [("2.x", 1 * MB, "kXXH3"), ("1.20", 8 * MB, "kCRC32c")],
)
def test_replay_opens_rocksdb_as_the_versions_frocksdb_would(
    tmp_path: Path, version: str, arena: int, checksum: str
) -> None:
    config = fo.resolve({}, Memory(managed_per_slot=32 * MB), version)
    e = RocksdictEngine()
    e.open(config, HEADER, tmp_path / "db")
    e.close()
    saved = parse_options(sorted((tmp_path / "db").glob("OPTIONS-*"))[-1].read_text())
    for family in ("default", *HEADER.names):
        assert saved[f'CFOptions "{family}"']["arena_block_size"] == str(arena)
        table = saved[f'TableOptions/BlockBasedTable "{family}"']
        assert table["format_version"] == "5"  # the Java BlockBasedTableConfig's, not 9.8's 6
        assert table["checksum"] == checksum


def test_fixed_per_tm_checks_the_arena_against_the_taskmanagers_write_buffer_manager() -> None:
    # 256 MiB per TM, 4 slots, ratio 0.4, Flink 1.20 (arena = size / 8): one slot's share would
    # hold a 17 MiB manager (limit 14.9 MiB), the TM's holds 68 MiB (limit 59.7 MiB). A 256 MiB
    # buffer's 32 MiB arena fits the TM's manager, which is the one Flink creates.
    memory = Memory(
        mode="fixed-per-tm", fixed_per_tm=256 * MB, slots_per_tm=4, write_buffer_ratio=0.4
    )
    settings = {fo.WRITE_BUFFER_SIZE: 256 * MB}
    assert fo.invalid_reason(settings, memory, 3, "1.20") is None
    assert fo.invalid_reason({fo.WRITE_BUFFER_SIZE: 512 * MB}, memory, 3, "1.20") is not None
