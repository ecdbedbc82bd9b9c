"""tuner compare: contenders, interleaving, the table with spread; one real run on tiny data."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from tuner.cli import cli
from tuner.compare import compare, contender
from tuner.costmodel import PRESETS
from tuner.engine.base import Measurement
from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "cli" / "tiny.yaml"
BAD = ROOT / "tests" / "data" / "configs" / "bad" / "unknown-key.yaml"


def _config(tmp_path: Path, text: str = "state.backend.rocksdb.thread.num: 4\n") -> Path:
    f = tmp_path / "config.yaml"
    f.write_text(text)
    return f


def test_contenders_are_predefined_sets_files_or_run_directories(tmp_path: Path) -> None:
    assert contender("DEFAULT", "2.x").settings == {fo.PREDEFINED_OPTIONS: "DEFAULT"}
    f = _config(tmp_path)
    assert contender(str(f), "2.x").settings == {fo.THREAD_NUM: 4}
    # A run directory: its recommendation as re-measured (complete, with the user's keys).
    run = tmp_path / "run"
    run.mkdir()
    minimal = {"settings": {fo.THREAD_NUM: 4, fo.COMPRESSION_PER_LEVEL: ["LZ4_COMPRESSION"]}}
    (run / "recommendation.json").write_text(json.dumps({"settings": {}, "minimal": minimal}))
    from_run = contender(str(run), "2.x")
    assert from_run.settings == {fo.THREAD_NUM: 4, fo.COMPRESSION_PER_LEVEL: ("LZ4_COMPRESSION",)}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TunerError, match=r"no recommendation\.json"):
        contender(str(empty), "2.x")
    with pytest.raises(TunerError, match="neither a file"):
        contender("HIGH_MEM", "2.x")
    with pytest.raises(TunerError, match="did you mean"):
        contender(str(BAD), "2.x")


class Fake:
    """Throughput from the thread count; the third call fails."""

    def __init__(self) -> None:
        self.order: list[Mapping[str, fo.FlinkValue]] = []

    def __call__(self, settings: Mapping[str, fo.FlinkValue], workdir: Path) -> Measurement:
        self.order.append(settings)
        if len(self.order) == 3:
            return Measurement("failed", "crashed: SIGKILL")
        threads = float(fo.effective(settings)[fo.THREAD_NUM])  # type: ignore[arg-type]
        n = len(self.order)
        return Measurement("ok", metrics={"ops_per_s": 1000.0 * threads + n})


def test_measurements_are_interleaved_and_summarised_with_spread(tmp_path: Path) -> None:
    a = contender("DEFAULT", "2.x")
    b = contender("FLASH_SSD_OPTIMIZED", "2.x")  # thread.num 4
    fake = Fake()
    w = load_workload(TINY)
    result = compare(w, [a, b], 3, PRESETS["page-cache"], measure=fake)
    assert [s.get(fo.PREDEFINED_OPTIONS) for s in fake.order] == [
        "DEFAULT",
        "FLASH_SSD_OPTIMIZED",
    ] * 3
    sa, sb = result.spread("DEFAULT"), result.spread("FLASH_SSD_OPTIMIZED")
    assert sa is not None and sb is not None
    assert (sa.n, sa.low, sa.high) == (2, 2001.0, 2005.0)  # the third call failed
    assert sb.n == 3 and sb.median == 4004.0
    table = result.render()
    assert "+99.9%" in table.splitlines()[2]  # against the first configuration
    assert "(1 failed)" in table.splitlines()[1]
    with pytest.raises(TunerError, match="named twice"):
        compare(w, [a, a], 1, PRESETS["page-cache"], measure=fake)


def test_compare_command_on_real_rocksdb(tmp_path: Path) -> None:
    f = _config(tmp_path)
    out = tmp_path / "m.csv"
    args = ["compare", str(TINY), "DEFAULT", str(f), "--repeats", "1", "--csv", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "median ops/s" in r.output and str(f) in r.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [row["configuration"] for row in rows] == ["DEFAULT", str(f)]
    assert all(float(row["ops_per_s"]) > 0 for row in rows)


def test_compare_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["compare", str(TINY), "DEFAULT", str(BAD)])
    assert r.exit_code == 2
    assert "did you mean" in r.output and "Traceback" not in r.output
