"""validate_run's orchestration, files and report, with the Flink run replaced by a fake.

The real job is exercised in test_flink_e2e.py; here the fake returns rates per configuration
so that the interleaving, validation.csv, validation.md and the fidelity figures are checked
in milliseconds.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tuner.errors import TunerError
from tuner.rundir import RunDir
from tuner.search.study import Candidate, TrialRecord
from tuner.validate import run as vrun
from tuner.validate.flink import FlinkInstall
from tuner.validate.job import FlinkRun, PreparedStream
from tuner.workload import (
    Memory,
    Replay,
    SizeDist,
    StateSpec,
    Workload,
    dump_workload,
    load_workload,
)

FLINK_RATES = {
    "DEFAULT": 50.0,
    "SPINNING_DISK_OPTIMIZED": 45.0,
    "SPINNING_DISK_OPTIMIZED_HIGH_MEM": 48.0,
    "FLASH_SSD_OPTIMIZED": 52.0,
    "recommended": 60.0,
}
REPLAY_RATES = {
    "DEFAULT": 100.0,
    "SPINNING_DISK_OPTIMIZED": 90.0,
    "SPINNING_DISK_OPTIMIZED_HIGH_MEM": 95.0,
    "FLASH_SSD_OPTIMIZED": 105.0,
}


def _workload() -> Workload:
    return Workload(
        name="validate-run",
        description="",
        flink_version="2.3",
        seed=1,
        memory=Memory(managed_per_slot=64 << 20),
        states=(
            StateSpec(name="v", kind="value", keys=50, value_size=SizeDist(kind="fixed", value=20)),
        ),
        replay=Replay(records=300, records_per_second=100),
    )


def _record(seq: int, label: str, kind: str, ops: float, repeat: int = 0) -> TrialRecord:
    return TrialRecord(
        seq=seq,
        candidate=Candidate(label, kind, {}, None, repeat),  # type: ignore[arg-type]
        status="ok",
        reason="",
        metrics={"ops_per_s": ops},
        wall_s=1.0,
        rss_peak_bytes=1,
        started_at=0.0,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.write_meta({"workload": "validate-run", "status": "complete"})
    rd.workload_yaml.write_text(dump_workload(_workload()))
    records = [_record(i, lb, "baseline", v) for i, (lb, v) in enumerate(REPLAY_RATES.items())]
    for rep in range(2):
        records.append(_record(10 + rep, "DEFAULT", "remeasure", 100.0, rep))
        records.append(_record(20 + rep, "recommended", "remeasure", 120.0, rep))
    rd.write_records(records)
    (rd.path / "config.yaml").write_text("state.backend.rocksdb.writebuffer.count: 3\n")
    return rd


class FakeFlink:
    """Stands in for run_config: records what it was asked and returns fixed rates."""

    def __init__(self, wrong_counts: bool = False) -> None:
        self.calls: list[tuple[str, int, str | None, dict[str, str]]] = []
        self.workdirs: list[Path] = []
        self.wrong_counts = wrong_counts
        self.versions_asked: list[str | None] = []

    def __call__(
        self,
        flink: FlinkInstall,
        classes: Path,
        stream: PreparedStream,
        label: str,
        repeat: int,
        config_yaml: str | None,
        base: dict[str, str],
        **kw: Any,
    ) -> FlinkRun:
        self.calls.append((label, repeat, config_yaml, dict(base)))
        self.workdirs.append(Path(kw["workdir"]))
        self.stream = stream
        counts = stream.counts.copy()
        if self.wrong_counts:
            counts[0, 0] += 1
        return make_run(label, repeat, FLINK_RATES[label] + repeat, counts, stream.ops.measure_rows)


def make_run(
    label: str,
    repeat: int,
    rate: float,
    counts: npt.NDArray[np.int64],
    measure_rows: int,
    checkpoints: list[dict[str, Any]] | None = None,
) -> FlinkRun:
    """A FlinkRun with plausible fixed figures."""
    if checkpoints is None:
        checkpoints = [
            {
                "status": "COMPLETED",
                "end_to_end_ms": 300,
                "checkpointed_size": 1000,
                "state_size": 5000,
                "sync_ms": 20,
                "async_ms": 30,
                "lag_rows": 10,
            },
        ]
    return FlinkRun(
        label=label,
        repeat=repeat,
        records_per_s=rate,
        measure_s=1.0,
        measure_rows=measure_rows,
        settled=True,
        settle_s=0.1,
        preload_s=0.2,
        wall_s=12.0,
        startup_s=5.0,
        rss_peak_bytes=400 << 20,
        checkpoints=checkpoints,
        tickers={"rocksdb.block.cache.hit": 90.0, "rocksdb.block.cache.miss": 10.0},
        properties={"rocksdb.block-cache-capacity": 1.0},
        counts=counts,
        timer_fires_event=0,
        timer_fires_after_end=0,
        rocksdb_log={"version": "8.10.0"},
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeFlink:
    f = FakeFlink()
    monkeypatch.setattr(vrun, "run_config", f)

    def find_flink(version: str | None = None) -> FlinkInstall:
        f.versions_asked.append(version)
        return FlinkInstall(Path("/nowhere"), "2.3.0")

    monkeypatch.setattr(vrun, "find_or_install_flink", find_flink)
    monkeypatch.setattr(vrun, "compile_job", lambda flink: Path("/nowhere/classes"))
    return f


def test_the_job_runs_on_the_flink_line_the_workload_targets(
    run_dir: RunDir, fake: FakeFlink
) -> None:
    # A 1.20 workload's options were searched under 1.20's rules (its arena size, catalog):
    # judging them on another line's RocksDB would not validate them.
    result = vrun.validate_run(run_dir.path, ["default"], repeats=1)
    assert fake.versions_asked == [load_workload(run_dir.workload_yaml).flink_version]
    assert result.flink_version == "2.3.0"


def test_runs_are_interleaved_and_configs_reach_the_job(run_dir: RunDir, fake: FakeFlink) -> None:
    result = vrun.validate_run(run_dir.path, ["default", "recommended", "predefined"], repeats=2)
    labels = [
        "DEFAULT",
        "recommended",
        "SPINNING_DISK_OPTIMIZED",
        "SPINNING_DISK_OPTIMIZED_HIGH_MEM",
        "FLASH_SSD_OPTIMIZED",
    ]
    assert [(c[0], c[1]) for c in fake.calls] == [(lb, r) for r in range(2) for lb in labels]
    yamls = {c[0]: c[2] for c in fake.calls}
    assert yamls["DEFAULT"] is None  # Flink's defaults: no RocksDB keys at all
    assert yamls["recommended"] == "state.backend.rocksdb.writebuffer.count: 3\n"
    assert yamls["FLASH_SSD_OPTIMIZED"] == (
        "state.backend.rocksdb.predefined-options: FLASH_SSD_OPTIMIZED\n"
    )
    # The workload's memory facts go to every run.
    assert fake.calls[0][3]["state.backend.rocksdb.memory.managed"] == "true"
    assert len(result.runs) == 10
    assert not result.mismatches
    assert not any(p.name.startswith(".validate-") for p in run_dir.path.iterdir())


def test_files_and_fidelity(run_dir: RunDir, fake: FakeFlink) -> None:
    result = vrun.validate_run(run_dir.path, ["default", "recommended", "predefined"], repeats=2)
    rows = list(csv.DictReader(io.StringIO((run_dir.path / "validation.csv").read_text())))
    assert len(rows) == 10
    assert rows[0]["format_version"] == "1"
    assert rows[0]["label"] == "DEFAULT" and rows[0]["repeat"] == "0"
    assert float(rows[1]["records_per_s"]) == 60.0
    assert float(rows[0]["block_cache_hit_ratio"]) == pytest.approx(0.9)
    assert float(rows[0]["checkpoint_incremental_bytes_mean"]) == 1000.0

    f = result.fidelity
    by = {c.label: c for c in f.configs}
    assert by["DEFAULT"].flink_records_per_s == pytest.approx(50.5)
    assert by["recommended"].replay_ops_per_s == 120.0
    # Replay and fake Flink rank the five configurations identically.
    assert f.ranked == 5 and f.spearman == pytest.approx(1.0)
    assert f.predicted_gain == pytest.approx(0.2)
    assert f.real_gain == pytest.approx(60.5 / 50.5 - 1)

    md = (run_dir.path / "validation.md").read_text()
    assert md.startswith("## Validation on real Flink 2.3.0")
    assert "| recommended | 120 | 60 |" in md
    assert "**+1.00**" in md
    assert "executed exactly the stream's state calls" in md
    text = result.summary()
    assert "Spearman" in text and "predicted +20.0%" in text


def test_count_mismatch_is_reported(run_dir: RunDir, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = FakeFlink(wrong_counts=True)
    monkeypatch.setattr(vrun, "run_config", wrong)
    monkeypatch.setattr(
        vrun, "find_or_install_flink", lambda *a, **k: FlinkInstall(Path("/nowhere"), "2.3.0")
    )
    monkeypatch.setattr(vrun, "compile_job", lambda flink: Path("/nowhere/classes"))
    result = vrun.validate_run(run_dir.path, ["default"], repeats=1)
    n = int(wrong.stream.counts[0, 0])
    assert n > 0
    assert result.mismatches == (f"DEFAULT #0: v: GET stream={n} flink={n + 1}",)
    assert "differ from the stream" in (run_dir.path / "validation.md").read_text()


def test_records_caps_the_measured_rows(run_dir: RunDir, fake: FakeFlink) -> None:
    result = vrun.validate_run(run_dir.path, ["default"], records=25, repeats=1)
    assert result.runs[0].measure_rows == 25


def test_recommended_needs_a_config_yaml(run_dir: RunDir, fake: FakeFlink) -> None:
    (run_dir.path / "config.yaml").unlink()
    with pytest.raises(TunerError, match=r"no config\.yaml"):
        vrun.validate_run(run_dir.path, ["recommended"], repeats=1)
    assert fake.calls == []


def test_config_labels() -> None:
    assert vrun.config_labels(["predefined", "default"]) == list(vrun.CONFIG_GROUPS["predefined"])
    assert vrun.config_labels([" Recommended "]) == ["recommended"]
    with pytest.raises(TunerError, match="unknown configuration 'best'"):
        vrun.config_labels(["best"])


def test_not_a_run_directory(tmp_path: Path, fake: FakeFlink) -> None:
    with pytest.raises(TunerError, match="not a tuner run directory"):
        vrun.validate_run(tmp_path, ["default"])


def test_csv_leaves_missing_numbers_empty() -> None:
    r = make_run("DEFAULT", 0, 42.0, np.zeros((1, 11), dtype=np.int64), 5, checkpoints=[])
    rows = list(csv.DictReader(io.StringIO(vrun.runs_to_csv([r]))))
    assert rows[0]["checkpoint_p50_s"] == ""
    assert rows[0]["checkpoint_count"] == "0"
    assert float(rows[0]["records_per_s"]) == 42.0


def test_flink_works_in_a_short_directory_whatever_the_run_directory(
    run_dir: RunDir, fake: FakeFlink
) -> None:
    # RocksDB names its LOG after the flattened instance path (Flink adds ~160 bytes of job,
    # operator and uuid directories): a run directory deep in a tree once passed the 255-byte
    # file-name limit and failed every run of interval-join.
    vrun.validate_run(run_dir.path, ["default"], repeats=1)
    (work,) = fake.workdirs
    assert run_dir.path not in work.parents
    assert len(str(work / "rocksdb")) <= 60


def test_a_kept_configuration_is_predicted_as_the_reference_not_as_the_search_winner(
    run_dir: RunDir, fake: FakeFlink
) -> None:
    # The confirmation kept the configuration: config.yaml holds no RocksDB change, so the
    # prediction to check is the default's own (a gain of 0), not the search winner's +20 %.
    (run_dir.path / "recommendation.json").write_text(
        json.dumps({"confirmation": {"engine": "flink-backend", "chosen": None}})
    )
    result = vrun.validate_run(run_dir.path, ["default", "recommended"], repeats=1)
    assert result.fidelity.predicted_gain == 0.0
    assert "holds `DEFAULT`" in (run_dir.path / "validation.md").read_text()
    # A predefined set chosen instead: its replay figure stands for the recommendation.
    (run_dir.path / "recommendation.json").write_text(
        json.dumps({"confirmation": {"engine": "flink-backend", "chosen": "FLASH_SSD_OPTIMIZED"}})
    )
    result = vrun.validate_run(run_dir.path, ["default", "recommended"], repeats=1)
    by = {c.label: c for c in result.fidelity.configs}
    assert by["recommended"].replay_ops_per_s == REPLAY_RATES["FLASH_SSD_OPTIMIZED"]


def test_recommended_stand_in_follows_the_confirmation(tmp_path: Path) -> None:
    def said(conf: dict[str, Any] | None) -> str | None:
        (tmp_path / "recommendation.json").write_text(json.dumps({"confirmation": conf}))
        return vrun.recommended_stand_in(tmp_path)

    assert vrun.recommended_stand_in(tmp_path) is None  # no recommendation yet
    assert said({"status": "unconfirmed", "reason": "x"}) is None
    assert said({"engine": "flink-backend", "chosen": "minimal"}) is None
    assert said({"engine": "flink-backend", "chosen": None, "reference": "current"}) == "current"
    assert said({"engine": "flink-backend", "chosen": "trial-3"}) == "trial-3"
