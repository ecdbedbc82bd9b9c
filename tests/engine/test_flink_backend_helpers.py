"""The flink-backend engine's helpers that need no JVM: its counters from RocksDB's statistics
dump, and when the engine counts as available."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tuner.engine.flink_backend as fb
import tuner.validate.flink as vf
from tuner.engine.flink_backend import LEVEL_READ_TICKERS, storage_counters
from tuner.errors import TunerError

FROCKSDB_8 = """\
rocksdb.block.cache.bytes.write COUNT : 4000
rocksdb.compact.read.bytes COUNT : 1000
rocksdb.last.level.read.bytes COUNT : 2500
rocksdb.non.last.level.read.bytes COUNT : 700
rocksdb.db.get.micros P50 : 1.0 P95 : 2.0 P99 : 3.0 P100 : 4.0 COUNT : 10 SUM : 20
"""
# FRocksDB 6.20 (Flink 1.20) has no per-level read tickers.
FROCKSDB_6 = """\
rocksdb.block.cache.bytes.write COUNT : 4000
rocksdb.compact.read.bytes COUNT : 1000
"""


def test_level_read_bytes_are_taken_as_counted_when_rocksdb_counts_them() -> None:
    c = storage_counters(FROCKSDB_8)
    assert (c[LEVEL_READ_TICKERS[0]], c[LEVEL_READ_TICKERS[1]]) == (2500.0, 700.0)
    assert "sst_bytes_read_estimated" not in c
    assert c["rocksdb.db.get.micros.count"] == 10 and c["rocksdb.db.get.micros.sum"] == 20


def test_without_level_tickers_sst_reads_are_estimated_and_marked() -> None:
    c = storage_counters(FROCKSDB_6)
    # Compaction input plus the bytes of the blocks the cache took in.
    assert c[LEVEL_READ_TICKERS[0]] + c[LEVEL_READ_TICKERS[1]] == 5000.0
    assert c["sst_bytes_read_estimated"] == 1.0
    assert storage_counters("") == {}  # no statistics, nothing made up


@pytest.mark.parametrize(
    ("jdk", "installed", "line", "expected"),
    [
        (False, {"2.x", "1.20"}, "2.x", False),  # no JDK, no engine
        (True, {"2.x"}, "2.x", True),
        (True, set(), "2.x", False),
        (True, {"1.20"}, "1.20", True),  # Flink 1.20 here: its own backend
        (True, {"2.x"}, "1.20", True),  # the flink extra: 1.20's jars fetched on first use
        (True, set(), "1.20", False),  # no Flink at all: nothing fetched behind the user's back
    ],
)
def test_availability_follows_the_workloads_flink_line(
    monkeypatch: pytest.MonkeyPatch, jdk: bool, installed: set[str], line: str, expected: bool
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}" if jdk else None)

    def find_flink(version: str) -> vf.FlinkInstall:
        if version not in installed:
            raise TunerError(f"no Flink {version}")
        return vf.FlinkInstall(Path("/nowhere"), "2.3.0" if version == "2.x" else "1.20.5")

    monkeypatch.setattr(vf, "find_flink", find_flink)
    assert fb.available(line) is expected


def test_flinks_backend_gets_the_replays_arena_block_only_where_rocksdb_would_derive_another() -> (
    None
):
    from tuner.flink import options as fo
    from tuner.flink.memory import Memory
    from tuner.scale import model_config

    job = fo.resolve({}, Memory(managed_per_slot=64 << 20), "2.x")
    assert fb.model_arena_block_size(job, 2) == 0  # the job's own: RocksDB derives 1 MiB itself
    model, _ = model_config(job, 1 / 3)  # Nexmark q11's 1/3 key sample
    assert model.arena_block_size == 340 << 10  # scaled with the write buffer, 4 KiB aligned
    assert fb.model_arena_block_size(model, 2) == 340 << 10  # FRocksDB would take 1 MiB


def test_a_threads_cpu_time_is_read_in_nanoseconds_where_the_kernel_has_them(
    tmp_path: Path,
) -> None:
    task = tmp_path / "123"
    task.mkdir()
    # utime 14 and stime 1 ticks; the scheduler's run time says 0.1437 s.
    (task / "stat").write_text("123 (rocksdb:low) S " + " ".join(["0"] * 10) + " 14 1 0 0\n")
    (task / "schedstat").write_text("143700000 2000 3\n")
    assert fb.thread_cpu_s(task) == pytest.approx(0.1437)
    (task / "schedstat").unlink()
    assert fb.thread_cpu_s(task) == pytest.approx(15 / os.sysconf("SC_CLK_TCK"))
    (task / "stat").unlink()
    with pytest.raises(OSError):  # the thread ended: the caller skips it
        fb.thread_cpu_s(task)


def test_the_running_process_reads_the_same_cpu_time_both_ways() -> None:
    me = Path(f"/proc/self/task/{os.getpid()}")
    burn = sum(i * i for i in range(200_000))  # a little CPU, so neither reads zero
    assert burn > 0
    ns = fb.thread_cpu_s(me)
    stat = (me / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    assert ns > 0 and abs(ns - ticks) < 0.1 + 0.1 * ticks
