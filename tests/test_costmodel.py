"""The disk cost model prices counted I/O; slower disks never make a trial faster."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuner.costmodel import PRESETS, disk_from, modelled_ops_per_s, score
from tuner.errors import TunerError

BASE = {
    "ops": 100_000.0,
    "cpu_s": 1.0,
    "block_cache_misses": 10_000.0,
    "sst_bytes_read": 40e6,
    "compaction_bytes_read": 50e6,
    "compaction_bytes_written": 60e6,
    "flush_bytes_written": 20e6,
    "ops_per_s": 55_555.0,
}


def test_page_cache_is_cpu_only() -> None:
    assert modelled_ops_per_s(BASE, PRESETS["page-cache"]) == pytest.approx(100_000.0)


def test_misses_cost_latency_plus_transfer_on_nvme() -> None:
    # 10k misses x 90 µs = 0.9 s, plus the foreground bytes (40 MB read - 50 MB by compaction:
    # none left) on top of 1 s of CPU.
    assert modelled_ops_per_s(BASE, PRESETS["local-nvme"]) == pytest.approx(100_000 / 1.9)
    # 10k misses of 128 KiB blocks: 1.31 GB at 2.5 GB/s adds 0.52 s to the 0.9 s of latency.
    big = {**BASE, "sst_bytes_read": 50e6 + 10_000 * 131_072, "compaction_bytes_read": 50e6}
    want = 1 + 0.9 + 10_000 * 131_072 / 2.5e9
    assert modelled_ops_per_s(big, PRESETS["local-nvme"]) == pytest.approx(100_000 / want)


def test_a_large_block_miss_costs_more_than_a_small_one() -> None:
    small = {**BASE, "sst_bytes_read": 10_000 * 4096.0, "compaction_bytes_read": 0.0}
    large = {**BASE, "sst_bytes_read": 10_000 * 131_072.0, "compaction_bytes_read": 0.0}
    for name in ("local-nvme", "local-ssd", "network-ssd"):
        disk = PRESETS[name]
        assert modelled_ops_per_s(large, disk) < modelled_ops_per_s(small, disk), name


def test_background_io_binds_on_a_slow_disk() -> None:
    # hdd: 10k misses x 8 ms = 80 s foreground (latency binds before 150 IOPS would).
    hdd = PRESETS["hdd"]
    assert modelled_ops_per_s(BASE, hdd) == pytest.approx(100_000 / (1 + 10_000 * 0.008))
    no_misses = {**BASE, "block_cache_misses": 0.0}
    bg = 50e6 / hdd.read_bytes_per_s + 80e6 / hdd.write_bytes_per_s
    assert modelled_ops_per_s(no_misses, hdd) == pytest.approx(100_000 / max(1.0, bg))


def test_score_keeps_the_wall_clock_figure() -> None:
    out = score(BASE, PRESETS["local-nvme"])
    assert out["wall_ops_per_s"] == 55_555.0
    assert out["ops_per_s"] != 55_555.0
    again = score(out, PRESETS["hdd"])  # re-scoring never loses the wall-clock figure
    assert again["wall_ops_per_s"] == 55_555.0


def test_missing_counters_give_nan_not_a_number_we_did_not_measure() -> None:
    assert math.isnan(modelled_ops_per_s({"cpu_s": 1.0}, PRESETS["local-nvme"]))


def test_custom_and_unknown_disks() -> None:
    d = disk_from({"read_latency_us": 500, "read_iops": 5000, "read_mb_s": 200, "write_mb_s": 100})
    assert d.read_bytes_per_s == 200e6
    with pytest.raises(TunerError, match="unknown disk"):
        disk_from("floppy")
    with pytest.raises(TunerError, match="read_iops"):
        disk_from({"read_latency_us": 1, "read_mb_s": 1, "write_mb_s": 1})


@given(
    cpu=st.floats(0.01, 100),
    misses=st.floats(0, 1e6),
    read=st.floats(0, 1e9),
    written=st.floats(0, 1e9),
    preset=st.sampled_from(sorted(set(PRESETS) - {"page-cache"})),
    factor=st.floats(1, 100),
)
def test_a_disk_worse_in_every_figure_is_never_faster(
    cpu: float, misses: float, read: float, written: float, preset: str, factor: float
) -> None:
    m = {
        **BASE,
        "cpu_s": cpu,
        "block_cache_misses": misses,
        "sst_bytes_read": misses * 4096,
        "compaction_bytes_read": read,
        "compaction_bytes_written": written,
    }
    d = PRESETS[preset]
    worse = replace(
        d,
        read_latency_us=d.read_latency_us * factor,
        read_iops=d.read_iops / factor,
        read_bytes_per_s=d.read_bytes_per_s / factor,
        write_bytes_per_s=d.write_bytes_per_s / factor,
    )
    assert modelled_ops_per_s(m, worse) <= modelled_ops_per_s(m, d) * (1 + 1e-9)
    assert modelled_ops_per_s(m, d) <= modelled_ops_per_s(m, PRESETS["page-cache"]) * (1 + 1e-9)


def test_snappy_blocks_missed_cost_flinks_slower_decompression() -> None:
    # 100 MB of snappy data blocks decompressed after misses: 0.27 s more CPU on FRocksDB 8.10.
    snappy = {**BASE, "snappy_data_bytes_missed": 100e6}
    page = PRESETS["page-cache"]
    assert modelled_ops_per_s(snappy, page) == pytest.approx(100_000 / 1.27)
    assert score(snappy, page)["frocksdb_extra_cpu_s"] == pytest.approx(0.27)
    assert modelled_ops_per_s(BASE, page) == pytest.approx(100_000.0)  # older rows: unchanged
