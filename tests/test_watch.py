"""What to watch in production: the metric keys the emitted files carry commented out, their
figures from the emitted configuration's own measurements, and the report's section."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.config_files import measured_as_emitted, watch_settings
from tuner.flink import options as fo
from tuner.flink.config_check import check_config
from tuner.flink.watch import WATCHES, measured_figures
from tuner.search.study import Candidate, TrialRecord
from tuner.units import MIB
from tuner.workload import load_workload

TINY = Path(__file__).resolve().parent / "data" / "cli" / "tiny.yaml"


def _record(label: str, settings: fo.FlinkSettings, hits: float, ok: bool = True) -> TrialRecord:
    return TrialRecord(
        seq=0,
        candidate=Candidate(label, "baseline", settings),
        status="ok" if ok else "failed",
        reason="",
        metrics={"block_cache_hits": hits, "block_cache_misses": 100.0, "state_ops": 10_000.0},
        wall_s=1.0,
        rss_peak_bytes=0,
        started_at=0.0,
    )


def test_figures_come_from_the_same_rocksdb_configuration_however_spelled() -> None:
    workload = load_workload(TINY)
    records = [
        _record("DEFAULT", {}, 900.0),
        _record("spelled out", {fo.PREDEFINED_OPTIONS: "DEFAULT"}, 700.0),
        _record("HIGH_MEM", {fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM"}, 1.0),
        _record("failed default", {}, 5.0, ok=False),
    ]
    measured = measured_as_emitted(records, {}, workload)
    assert measured["block_cache_hits"] == 800.0  # the two defaults' median, not the others
    figures = measured_figures(measured)
    assert figures["block-cache-hit"] == "88.9% of block reads hit the cache"
    assert figures["block-cache-miss"] == "10.0 misses per 1,000 state calls"


def test_byte_figures_of_a_scaled_model_are_in_production_units() -> None:
    figures = measured_figures({"live_bytes": 3.0 * MIB, "rocksdb_memory_peak_bytes": MIB}, 0.01)
    assert figures["estimate-live-data-size"] == "300.0 MiB"
    assert figures["block-cache-usage"] == "peak 100.0 MiB"


def test_unmeasured_watches_say_so_instead_of_a_number() -> None:
    comments = {s.key: s.comment for s in watch_settings(measured_figures({}))}
    assert all("Not measured by tuner." in c for c in comments.values())
    assert "nan" not in " ".join(comments.values()).lower()


@pytest.mark.parametrize("version", ["2.3", "1.20"])
def test_every_watch_key_is_one_flink_has_and_accepts_once_uncommented(
    version: str, tmp_path: Path
) -> None:
    path = tmp_path / "watch.yaml"
    path.write_text("".join(f"{w.key}: true\n" for w in WATCHES))
    result = check_config(path, version)
    assert result.problems == [] and result.unchecked_keys == []
    assert result.values == {w.key: True for w in WATCHES}
