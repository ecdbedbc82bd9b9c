"""Drawing: the figures show the data they are given (the numbers are tested in test_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer, ErrorbarContainer

from tuner.report import data, plots
from tuner.results import load_run


def test_figures_of_a_complete_run(complete_run: Path) -> None:
    run = load_run(complete_run)
    figs = plots.figures(run)
    # The fake run makes no minimal recommendation (its plot: tests/report/test_minimal.py).
    assert list(figs) == [name for name in plots.PLOT_FILES if name != "minimal"]
    history = figs["history"].axes[0]
    scatter = next(c for c in history.collections if isinstance(c, PathCollection))
    measured = run.search()
    assert len(np.asarray(scatter.get_offsets())) == int((measured["status"] == "ok").sum())
    # One dashed reference line per baseline.
    assert sum(ln.get_linestyle() == "--" for ln in history.lines) == 4
    assert len(figs["memory"].axes) == 2
    importance = figs["importance"].axes[0]
    assert len(importance.patches) == len(data.param_importances(run.study()) or {})


def test_spread_draws_error_bars_only_for_repeated_configurations() -> None:
    spread = pd.DataFrame(
        {
            "config": ["DEFAULT", "recommended (re-measured)"],
            "group": ["baseline", "re-measured"],
            "n": [1, 3],
            "median": [100.0, 130.0],
            "low": [100.0, 120.0],
            "high": [100.0, 140.0],
        }
    )
    ax = plots.spread_figure(spread).axes[0]
    bars, errorbar = ax.containers  # the bars, then one errorbar container
    assert isinstance(bars, BarContainer) and isinstance(errorbar, ErrorbarContainer)
    assert [r.get_height() for r in bars] == [100.0, 130.0]
    segments = errorbar.lines[2][0].get_segments()
    assert len(segments) == 1
    assert [tuple(p) for p in segments[0]] == [(1.0, 120.0), (1.0, 140.0)]


def test_save_plots_writes_pngs_and_only_those_with_data(
    two_baselines_run: Path, tmp_path: Path
) -> None:
    saved = plots.save_plots(load_run(two_baselines_run), tmp_path / "out")
    assert set(saved) == {"memory", "spread", "amplification"}
    for path in saved.values():
        assert path.parent == tmp_path / "out"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        plots.PLOT_FILES[n] for n in saved
    )
