"""The flink-backend engine's counters from RocksDB's statistics dump (no JVM needed)."""

from __future__ import annotations

from tuner.engine.flink_backend import LEVEL_READ_TICKERS, storage_counters

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
