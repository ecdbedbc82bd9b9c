"""notebooks/review.ipynb runs top to bottom on a fake run and shows what it promises."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.report.fakerun import make_run
from tests.report.test_minimal import _rec as minimal_payload
from tuner.report import plots
from tuner.results import load_run
from tuner.sizing import SizeAdvice, SizePoint, SizingResult
from tuner.sizing_report import write_sizing

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "review.ipynb"


def _execute(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run every cell in a fresh kernel started in ``cwd``; a cell error fails the test."""
    # The kernel is another process: it finds tuner through PYTHONPATH, not our sys.path.
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + (os.pathsep + path if path else ""))
    nb = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": cwd}}
    ).execute()
    return nb


def _text(nb: Any) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", ""))
            out += [str(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(out)


def _images(nb: Any) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_notebook_runs_on_the_run_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = make_run(tmp_path / "run", trials=6, repeats=2, fail_labels={"FLASH_SSD_OPTIMIZED"})
    # A minimal recommendation and a sizing, as `tuner run` and `tuner size --run` leave them.
    rec_path = run_dir / "recommendation.json"
    rec_path.write_text(json.dumps({**json.loads(rec_path.read_text()), **minimal_payload()}))
    point = SizePoint("recommended", 1.0, 256 << 20, (1000.0, 1010.0), (), "")
    advice = SizeAdvice("recommended", 256 << 20, 128 << 20, 0.5, 1005.0, 990.0, 0.05, {}, 1)
    sized = SizingResult("fake", 256 << 20, (), (point,), advice, 2, "page-cache")
    write_sizing(sized, run_dir, "tuner size fake.yaml --run x")
    monkeypatch.setenv("TUNER_RUN_DIR", str(run_dir))
    nb = _execute(tmp_path, monkeypatch)
    text = _text(nb)
    run = load_run(run_dir)
    gain = run.gain()
    assert gain is not None
    assert f"run: {run_dir}" in text
    assert gain.describe() in text
    assert "recommended (re-measured)" in text  # the baselines table
    assert "TimeoutError: fake timeout" in text  # the failures table
    assert "block.blocksize" in text  # the minimal recommendation's contributions
    assert "128 mb per slot" in text  # the sizing advice
    expected = len(plots.figures(run))
    assert f"{expected} plots" in text
    assert _images(nb) == expected


def test_notebook_picks_the_newest_run_under_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNER_RUN_DIR", raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    make_run(tmp_path / "results" / "a", trials=3, repeats=1, meta={"created_at": 1.0})
    newest = make_run(tmp_path / "results" / "b", trials=3, stop_after=2, meta={"created_at": 2.0})
    nb = _execute(tmp_path / "notebooks", monkeypatch)
    text = _text(nb)
    assert f"run: {newest}" in text
    assert "status: incomplete" in text
    assert "Not re-measured" in text
