"""What only the real engine does: RocksDB options applied as configured, statistics parsed,
settings rocksdict cannot apply reported."""

from __future__ import annotations

from pathlib import Path

from tuner.engine.rocksdict_engine import RocksdictEngine, parse_statistics, unsupported_settings
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.trace.ops import Op

from ..flink.test_options_file import parse_options
from .conftest import HEADER, batch, small_config


def test_every_column_family_runs_with_the_config(tmp_path: Path) -> None:
    config = small_config(
        compaction_style="universal",
        write_buffer_size=3 << 20,
        max_write_buffer_number=3,
        min_write_buffer_number_to_merge=2,
        compression_per_level=("kNoCompression", "kLZ4Compression"),
        block_size=8 << 10,
        metadata_block_size=2 << 10,
        bloom_bits_per_key=7.0,
        partitioned_index_filters=True,
        cache_index_and_filter_blocks=True,
        pin_l0_filter_and_index_blocks_in_cache=True,
        max_background_jobs=3,
        max_open_files=300,
    )
    e = RocksdictEngine()
    e.open(config, HEADER, tmp_path / "db")
    e.close()
    saved = parse_options(sorted((tmp_path / "db").glob("OPTIONS-*"))[-1].read_text())
    assert saved["DBOptions"]["max_background_jobs"] == "3"
    assert saved["DBOptions"]["max_open_files"] == "300"
    families = ["default", *HEADER.names]
    for family in families:
        cf = saved[f'CFOptions "{family}"']
        assert cf["compaction_style"] == "kCompactionStyleUniversal"
        assert cf["write_buffer_size"] == str(3 << 20)
        assert cf["max_write_buffer_number"] == "3"
        assert cf["min_write_buffer_number_to_merge"] == "2"
        assert cf["compression_per_level"] == "kNoCompression:kLZ4Compression"
        t = saved[f'TableOptions/BlockBasedTable "{family}"']
        assert t["block_size"] == str(8 << 10)
        assert t["metadata_block_size"] == str(2 << 10)
        assert t["index_type"] == "kTwoLevelIndexSearch"
        assert t["partition_filters"] == "true"
        assert t["cache_index_and_filter_blocks"] == "true"
        assert t["pin_l0_filter_and_index_blocks_in_cache"] == "true"
        assert t["filter_policy"].startswith("bloomfilter")


def test_per_family_caches_without_shared_memory(tmp_path: Path) -> None:
    e = RocksdictEngine()
    e.open(small_config(block_cache_size=3 << 20), HEADER, tmp_path / "db")
    with e:
        db = e._db
        for name in HEADER.names:
            cf = db.get_column_family(name)
            assert cf.property_int_value("rocksdb.block-cache-capacity") == 3 << 20
            del cf


def test_shared_cache_is_one_cache_for_all_families(tmp_path: Path) -> None:
    e = RocksdictEngine()
    cfg = small_config(shared_cache_bytes=6 << 20, write_buffer_manager_bytes=2 << 20)
    e.open(cfg, HEADER, tmp_path / "db")
    with e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(3000)]
            )
        )
        db = e._db
        for name in HEADER.names:
            cf = db.get_column_family(name)
            assert cf.property_int_value("rocksdb.block-cache-capacity") == 6 << 20
            del cf
        # Memtables are charged to the shared cache by the write buffer manager.
        assert e.memory()["block_cache_usage"] >= e.memory()["memtables_bytes"] > 0


def test_wal_is_off(tmp_path: Path) -> None:
    e = RocksdictEngine()
    e.open(small_config(), HEADER, tmp_path / "db")
    with e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(1000)]
            )
        )
        logs = list((tmp_path / "db").glob("*.log"))
        assert logs and all(p.stat().st_size == 0 for p in logs)


def test_direct_reads_bypass_the_page_cache_and_still_read_the_data(tmp_path: Path) -> None:
    e = RocksdictEngine(direct_reads=True)
    e.open(small_config(block_cache_size=1 << 20), HEADER, tmp_path / "db")
    with e:
        e.apply(
            batch(
                *[{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 500} for k in range(4000)]
            )
        )
        e.flush()
        e.apply(batch(*[{"state": "v", "op": Op.GET, "key": k} for k in range(0, 4000, 7)]))
        assert e.snapshot_counters()["rocksdb.block.cache.data.miss"] > 0
    saved = parse_options(sorted((tmp_path / "db").glob("OPTIONS-*"))[-1].read_text())
    assert saved["DBOptions"]["use_direct_reads"] == "true"
    plain = RocksdictEngine()
    plain.open(small_config(), HEADER, tmp_path / "plain")
    plain.close()
    saved = parse_options(sorted((tmp_path / "plain").glob("OPTIONS-*"))[-1].read_text())
    assert saved["DBOptions"]["use_direct_reads"] == "false"


def test_statistics_parse() -> None:
    text = (
        "rocksdb.block.cache.miss COUNT : 28\n"
        "rocksdb.db.get.micros P50 : 1.5 P95 : 2.7 P99 : 5.8 P100 : 36.0 COUNT : 1000 SUM : 2157\n"
    )
    tickers, hists = parse_statistics(text)
    assert tickers == {"rocksdb.block.cache.miss": 28.0}
    assert hists["rocksdb.db.get.micros"]["p99"] == 5.8
    assert hists["rocksdb.db.get.micros"]["count"] == 1000.0


def test_unsupported_settings_are_reported() -> None:
    assert unsupported_settings(RocksDBConfig(avoid_flush_during_shutdown=False)) == []
    shared = RocksDBConfig(
        shared_cache_bytes=1 << 20,
        write_buffer_manager_bytes=1 << 19,
        high_prio_pool_ratio=0.1,
        cache_index_and_filter_blocks=True,
        cache_index_and_filter_blocks_with_high_priority=False,
    )
    notes = unsupported_settings(shared)
    assert len(notes) == 3
    assert any("high_pri_pool_ratio=0.1" in n for n in notes)
    assert any("cache_index_and_filter_blocks_with_high_priority=false" in n for n in notes)
    assert any("avoid_flush_during_shutdown" in n for n in notes)


def test_snappy_data_bytes_are_counted_only_under_snappy(tmp_path: Path) -> None:
    from tuner.engine.rocksdict_engine import SNAPPY_DATA_BYTES

    rows = [{"state": "v", "op": Op.UPDATE, "key": k, "value_size": 100} for k in range(3000)]
    gets = [{"state": "v", "op": Op.GET, "key": k} for k in range(0, 3000, 7)]
    seen = {}
    for codec in ("kSnappyCompression", "kLZ4Compression"):
        e = RocksdictEngine()
        e.open(
            small_config(compression_per_level=(codec,), block_cache_size=64 << 10),
            HEADER,
            tmp_path / codec,
        )
        with e:
            e.apply(batch(*rows))
            e.flush()
            e.apply(batch(*gets))
            seen[codec] = e.snapshot_counters()[SNAPPY_DATA_BYTES]
    assert seen["kSnappyCompression"] > 0
    assert seen["kLZ4Compression"] == 0


def test_list_reads_consult_the_bloom_filter_as_flinks_point_gets_do(tmp_path: Path) -> None:
    # Flink's ListState.get is a point get that the bloom filter answers per file; the
    # replay's prefix scan must consult the filter for the same `key|ns` (the list's prefix).
    appends = [
        {"state": "l", "op": Op.ADD, "key": k, "ns_start": 0, "ns_end": 10, "value_size": 50}
        for k in range(0, 4000, 2)
    ]
    absent = [
        {"state": "l", "op": Op.GET, "key": k, "ns_start": 0, "ns_end": 10}
        for k in range(1, 4000, 2)
    ]
    useful = {}
    for bits in (10.0, None):
        e = RocksdictEngine()
        e.open(small_config(bloom_bits_per_key=bits), HEADER, tmp_path / str(bits))
        with e:
            e.apply(batch(*appends))
            e.flush()
            e.apply(batch(*absent))
            tickers, _ = e.statistics()
        useful[bits] = sum(
            tickers.get(f"rocksdb.{level}.seek.filtered", 0.0)
            for level in ("last.level", "non.last.level")
        )
    assert useful[10.0] >= len(absent) * 0.9  # nearly every absent list skipped by its filter
    assert useful[None] == 0  # no filter configured, none consulted
