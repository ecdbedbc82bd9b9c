"""A trial that fails in any way is recorded as failed with its cause; its workdir is removed."""

from __future__ import annotations

from pathlib import Path

from tests.search import _targets
from tuner.search.isolation import run_isolated


def _workdir(tmp_path: Path) -> Path:
    d = tmp_path / "trial-db"
    d.mkdir()
    (d / "000001.sst").write_bytes(b"x" * 100)
    return d


def test_ok_result_comes_back(tmp_path: Path) -> None:
    d = _workdir(tmp_path)
    m = run_isolated(_targets.ok, {"value": 42.0}, workdir=d, timeout_s=60, rss_limit_bytes=None)
    assert m.status == "ok"
    assert m.metrics == {"ops_per_s": 42.0}
    assert m.rss_peak_bytes > 0
    assert not d.exists()


def test_exception_is_a_failed_trial_with_its_message(tmp_path: Path) -> None:
    d = _workdir(tmp_path)
    m = run_isolated(
        _targets.raises, {"message": "boom"}, workdir=d, timeout_s=60, rss_limit_bytes=None
    )
    assert m.status == "failed"
    assert m.reason == "RuntimeError: boom"
    assert not d.exists()


def test_kill_9_is_recorded(tmp_path: Path) -> None:
    d = _workdir(tmp_path)
    m = run_isolated(_targets.killed, {}, workdir=d, timeout_s=60, rss_limit_bytes=None)
    assert m.status == "failed"
    assert "SIGKILL" in m.reason
    assert not d.exists()


def test_segfault_is_recorded(tmp_path: Path) -> None:
    d = _workdir(tmp_path)
    m = run_isolated(_targets.segfault, {}, workdir=d, timeout_s=60, rss_limit_bytes=None)
    assert m.status == "failed"
    assert "SIGSEGV" in m.reason


def test_timeout_stops_the_child(tmp_path: Path) -> None:
    d = _workdir(tmp_path)
    m = run_isolated(
        _targets.sleeps, {"seconds": 30.0}, workdir=d, timeout_s=1.5, rss_limit_bytes=None
    )
    assert m.status == "failed"
    assert m.reason.startswith("timeout")
    assert m.wall_s < 20
    assert not d.exists()


def test_memory_watchdog_stops_a_trial_over_budget(tmp_path: Path) -> None:
    d = _workdir(tmp_path)
    m = run_isolated(
        _targets.hogs_memory, {"mib": 400}, workdir=d, timeout_s=60, rss_limit_bytes=200 << 20
    )
    assert m.status == "failed"
    assert m.reason.startswith("memory watchdog")
    assert m.rss_peak_bytes > 200 << 20
