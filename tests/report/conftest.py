"""Fake run directories shared by the report tests (each built once per session: a run drives
the real StudyLoop and Optuna's SQLite storage, which takes a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.fakerun import make_run


@pytest.fixture(scope="session")
def complete_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run: 4 baselines, 12 trials (trial 5 fails, some skipped), 3 repeats."""
    return make_run(tmp_path_factory.mktemp("runs") / "complete", trials=12, fail_trials={5})


@pytest.fixture(scope="session")
def two_baselines_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run interrupted after its first two baselines: no search, no recommendation."""
    return make_run(tmp_path_factory.mktemp("runs") / "two-baselines", stop_after=2)


@pytest.fixture(scope="session")
def search_only_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run interrupted during the search: baselines and a few trials, never re-measured,
    with recommendation.json for its best trial so far and no study.db."""
    return make_run(
        tmp_path_factory.mktemp("runs") / "search-only",
        trials=12,
        stop_after=9,
        with_study=False,
    )
