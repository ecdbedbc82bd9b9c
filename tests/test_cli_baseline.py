"""tuner run --baseline end to end on real RocksDB (tiny data): the user's config measured as
`current`, the headline gain against it, the minimal recommendation, and resume keeping it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tuner.cli import cli
from tuner.flink import options as fo
from tuner.flink.baseline import read_user_config
from tuner.flink.config_check import check_config
from tuner.flink.inert import inert_keys
from tuner.runner import resume_run
from tuner.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "cli" / "tiny.yaml"
BAD = ROOT / "tests" / "data" / "configs" / "bad" / "unknown-key.yaml"
CURRENT = """\
# what the team runs today
state.backend.type: rocksdb
state.backend.rocksdb.thread.num: 4
state.backend.rocksdb.block.blocksize: 8 kb
state.backend.rocksdb.compaction.style: LEVEL
"""


def test_a_bad_baseline_exits_2_with_check_configs_message(tmp_path: Path) -> None:
    results = tmp_path / "results"
    r = CliRunner().invoke(
        cli, ["run", str(TINY), "--baseline", str(BAD), "--results-dir", str(results)]
    )
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output
    (problem,) = check_config(BAD, "2.x").problems
    assert str(problem) in lines[0]
    assert "did you mean" in lines[0]
    assert not results.exists() or not any(results.iterdir())


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("baseline")
    config = tmp / "config.yaml"
    config.write_text(CURRENT)
    out = tmp / "run"
    args = ["run", str(TINY), "--baseline", str(config), "--trials", "1", "--repeats", "1"]
    # Two at once: this test checks what is measured and written, not the figures. The
    # confirmation against `current` has its own test (tests/validate/test_flink_backend.py).
    r = CliRunner().invoke(
        cli, [*args, "--minimal-repeats", "1", "-j", "2", "--no-confirm", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "your current configuration" in r.output
    return out


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "trials.csv").open() as f:
        return list(csv.DictReader(f))


def test_current_is_measured_beside_flinks_option_sets(baseline_run: Path) -> None:
    rows = _rows(baseline_run)
    current = [r for r in rows if r["label"] == "current"]
    kinds = sorted(r["kind"] for r in current)
    assert kinds == ["baseline", "remeasure"]
    assert json.loads(current[0]["settings"])[fo.THREAD_NUM] == 4
    assert any(r["kind"] == "ablation" for r in rows)


def test_headline_and_minimal_recommendation_are_against_current(baseline_run: Path) -> None:
    rec = json.loads((baseline_run / "recommendation.json").read_text())
    assert rec["gain"]["reference"] == "current"
    assert "your current configuration" in rec["headline"]
    assert rec["baseline"]["settings"][fo.THREAD_NUM] == 4
    assert rec["search_winner"]["settings"]  # the full winner stays available
    minimal = rec["minimal"]
    # The files are the complete measured configuration: the kept changes, then the user's
    # other keys marked unchanged.
    changed = {k for k, why in rec["comments"].items() if why.startswith("searched:")}
    assert changed == set(minimal["kept"])
    unchanged = {k for k, why in rec["comments"].items() if why.startswith("unchanged")}
    assert unchanged == set(rec["baseline"]["settings"]) - changed
    assert all(rec["settings"][k] == minimal["settings"][k] for k in changed | unchanged)
    # The header: the comment lines above the first key, wrapped in the file.
    lines = (baseline_run / "config.yaml").read_text().splitlines()
    top = lines[: next(i for i, ln in enumerate(lines) if not ln.startswith("#"))]
    header = " ".join(ln.removeprefix("# ") for ln in top)
    assert f"Changes {len(changed)} key(s) of your current configuration" in header
    for e in minimal["effects"]:
        if e["key"] == fo.THREAD_NUM:
            assert e["baseline"] == 4  # reverted to the user's value, not Flink's default
    assert inert_keys(rec["settings"], load_workload(TINY).memory) == {}
    report = (baseline_run / "report.md").read_text()
    assert "## Minimal recommendation" in report
    assert "over your current configuration" in report
    assert "| current (re-measured) |" in report


def test_resume_keeps_the_baseline_even_when_the_file_is_gone(baseline_run: Path) -> None:
    meta = json.loads((baseline_run / "run.json").read_text())
    source = Path(meta["settings"]["baseline_source"])
    expected = read_user_config(source, "2.x").settings
    source.unlink()
    resumed = resume_run(baseline_run)
    assert resumed.settings.baseline == expected
    assert "baseline" in resumed.kept
