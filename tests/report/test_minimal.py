"""The report's minimal-recommendation section and plot, from a recommendation.json payload."""

from __future__ import annotations

import math
from typing import Any

from tuner.flink import options as fo
from tuner.report.minimal import contributions, headline_extra, section
from tuner.report.plots import minimal_figure


def _rec() -> dict[str, Any]:
    effects = [
        {"key": fo.BLOCK_SIZE, "value": 16384, "baseline": 4096, "n": 2, "cost": 0.2,
         "low": 0.18, "high": 0.22, "decision": "kept: reverting it costs more", "kept": True},
        {"key": fo.THREAD_NUM, "value": 1, "baseline": 4, "n": 2, "cost": 0.001,
         "low": -0.01, "high": 0.01, "decision": "dropped: within noise", "kept": False},
    ]  # fmt: skip
    return {
        "settings": {fo.BLOCK_SIZE: 16384},
        "importances": {fo.BLOCK_SIZE: 0.1, fo.THREAD_NUM: 0.6},
        "baseline": {"source": "mine.yaml", "settings": {fo.THREAD_NUM: 4}},
        "gain_vs_default": {"median_gain": 0.3, "low": 0.25, "high": 0.35},
        "search_winner": {"trial_number": 3, "settings": {fo.BLOCK_SIZE: 16384, fo.THREAD_NUM: 1}},
        "minimal": {
            "noise": 0.01,
            "repeats": 2,
            "measurements": 7,
            "metric": "ops_per_s",
            "effects": effects,
            "inert": {fo.MAX_SIZE_LEVEL_BASE: "a level-compaction option"},
            "kept": [fo.BLOCK_SIZE],
        },
    }


def test_section_shows_contribution_beside_importance_and_the_full_winner() -> None:
    text = "\n".join(section(_rec()))
    assert (
        "| `block.blocksize` | `16 kb` | `4 kb` | +20.0% (+18.0% .. +22.0%) | 10% | **kept**"
        in text
    )
    assert "| `thread.num` | `1` | `4` |" in text and "| 60% | dropped" in text
    assert "`compaction.level.max-size-level-base`: a level-compaction option" in text
    assert "mine.yaml" in text and "full search winner (trial 3, 2 keys" in text
    extra = "\n".join(headline_extra(_rec()))
    assert "Against Flink's default the same recommendation measured +30.0%" in extra
    assert "changes **1 key(s)** against your configuration" in extra


def test_contributions_frame_and_plot() -> None:
    df = contributions(_rec())
    assert df["key"].tolist() == ["block.blocksize", "thread.num"]
    assert df["importance"].tolist() == [0.1, 0.6]
    assert contributions({"settings": {}}).empty
    assert math.isnan(contributions({**_rec(), "importances": {}})["importance"][0])
    fig = minimal_figure(df)
    assert len(fig.axes) == 2


def test_the_minimal_key_count_is_shown_only_when_config_yaml_holds_the_minimal_set() -> None:
    """The field case: the confirmation chose search trial 6, and the headline still counted
    the minimal recommendation's keys as if config.yaml held it."""
    confirmed_other = {**_rec(), "promise": {"label": "trial-6"}}
    extra = "\n".join(headline_extra(confirmed_other))
    assert "key(s)**" not in extra
    assert "config.yaml holds trial-6, which the confirmation chose over the minimal" in extra
    kept = {**_rec(), "promise": {"label": "your configuration", "gain": None}}
    assert "config.yaml keeps your configuration, as the confirmation decided" in "\n".join(
        headline_extra(kept)
    )
    minimal = {**_rec(), "promise": {"label": "minimal"}}
    assert "changes **1 key(s)**" in "\n".join(headline_extra(minimal))
