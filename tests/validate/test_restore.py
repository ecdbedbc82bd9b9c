"""The restore check of ``tuner validate --restore``: real restores beside the run's figures."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tuner.search.study import DEFAULT_LABEL, RECOMMENDED_LABEL
from tuner.validate.job import FlinkRun, RealRestore, rocksdb_restore_seconds
from tuner.validate.restore import render_restore, restore_checks

from .test_run import _record

TINY = Path(__file__).resolve().parents[1] / "data" / "cli" / "tiny.yaml"


def _run(label: str, repeat: int, restore_s: float | None) -> FlinkRun:
    return FlinkRun(
        label=label,
        repeat=repeat,
        records_per_s=1000.0,
        measure_s=1.0,
        measure_rows=1000,
        settled=True,
        settle_s=0.0,
        preload_s=0.0,
        wall_s=5.0,
        startup_s=1.0,
        rss_peak_bytes=1,
        checkpoints=[],
        tickers={},
        properties={},
        counts=np.zeros((1, 1), dtype=np.int64),
        timer_fires_event=0,
        timer_fires_after_end=0,
        restore=None if restore_s is None else RealRestore(restore_s, restore_s + 0.2, 0.040),
    )


def test_each_configuration_sets_its_real_restores_beside_the_runs_figures() -> None:
    runs = [
        _run(DEFAULT_LABEL, 0, 0.100),
        _run(DEFAULT_LABEL, 1, 0.120),
        _run(DEFAULT_LABEL, 2, 0.110),
        _run(RECOMMENDED_LABEL, 0, 0.080),
        _run("FLASH_SSD_OPTIMIZED", 0, None),  # measured without --restore: left out
    ]
    records = [
        replace(_record(0, DEFAULT_LABEL, "baseline", 1.0), metrics={"restore_s": 0.090}),
        replace(_record(1, DEFAULT_LABEL, "remeasure", 1.0), metrics={"restore_s": 0.070}),
        replace(_record(2, "trial-3", "search", 1.0), metrics={"restore_s": 0.050}),
    ]
    # config.yaml holds trial-3 (the confirmation's pick): its figure predicts `recommended`.
    checks = restore_checks(runs, records, recommended_as="trial-3")
    assert [c.label for c in checks] == [DEFAULT_LABEL, RECOMMENDED_LABEL]
    d, r = checks
    assert (d.real_s, d.real_min_s, d.real_max_s, d.real_runs) == (0.110, 0.100, 0.120, 3)
    assert d.run_s == pytest.approx(0.080)
    assert d.off_by(d.run_s) == pytest.approx(0.080 / 0.110 - 1)
    assert r.run_s == pytest.approx(0.050)
    assert math.isnan(d.backend_s) and math.isnan(d.off_by(d.backend_s))
    text = "\n".join(render_restore(checks))
    assert (
        "| DEFAULT | 110 ms (100 ms .. 120 ms, 3) | 40 ms | 80 ms | -27% (outside ±25%) |" in text
    )
    assert "not measured" in text  # no confirmation: said, not a NaN
    assert "nan" not in text.lower()


def test_no_real_restore_no_section() -> None:
    assert restore_checks([_run(DEFAULT_LABEL, 0, None)], []) == []
    assert render_restore([]) == []


def test_the_rocksdb_part_is_read_from_the_last_restore_in_flinks_log() -> None:
    log = "\n".join(
        [
            "10:00:00,100 INFO  RocksDBKeyedStateBackendBuilder - Finished building RocksDB "
            "keyed state-backend at /a.",  # the first job's fresh backend: no restore
            "10:00:05,000 INFO  RocksDBIncrementalRestoreOperation - Starting RocksDB "
            "incremental recovery in operator x target key-group range [0, 127].",
            "10:00:05,020 INFO  RocksDBIncrementalRestoreOperation - Finished RocksDB "
            "incremental recovery in operator x",
            "10:00:05,042 INFO  RocksDBKeyedStateBackendBuilder - Finished building RocksDB "
            "keyed state-backend at /b.",
        ]
    )
    assert rocksdb_restore_seconds(log) == pytest.approx(0.042)
    assert math.isnan(rocksdb_restore_seconds(log.split("\n")[0]))
    across_midnight = log.replace("10:00:05,042", "00:00:00,010").replace(
        "10:00:05,0", "23:59:59,9"
    )
    assert rocksdb_restore_seconds(across_midnight) == pytest.approx(0.110)


def test_a_run_measured_after_a_rescale_is_not_set_beside_an_unrescaled_real_restore(
    tmp_path: Path,
) -> None:
    import shutil

    from click.testing import CliRunner

    from tuner.cli import cli
    from tuner.rundir import claim_run_dir

    rd = claim_run_dir(tmp_path / "run")
    shutil.copy(TINY, rd.workload_yaml)
    rd.write_meta({"status": "complete", "settings": {"rescale": 0.5}})
    r = CliRunner().invoke(cli, ["validate", str(rd.path), "--restore"])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "settings.rescale" in lines[0] and "--rescale 1/2" in lines[0]
    assert "needs a run without --rescale" in lines[0]
