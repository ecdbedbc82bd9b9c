"""Run directories claimed atomically, and atomic writes that survive a crash (their directory
synced after the rename)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tuner.errors import TunerError
from tuner.fileio import atomic_write_text, create_exclusive_text
from tuner.rundir import RunDir, claim_run_dir, new_run_dir

RACERS = 8


def _race(claim: Callable[[], RunDir]) -> tuple[list[RunDir], list[Exception]]:
    """``claim`` from RACERS threads released at once."""
    barrier = threading.Barrier(RACERS)
    won: list[RunDir] = []
    lost: list[Exception] = []

    def one() -> None:
        barrier.wait()
        try:
            won.append(claim())
        except TunerError as exc:
            lost.append(exc)

    threads = [threading.Thread(target=one) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, lost


@pytest.mark.parametrize("made_beforehand", [False, True])
def test_one_directory_is_claimed_by_one_run(tmp_path: Path, made_beforehand: bool) -> None:
    out = tmp_path / "run"
    if made_beforehand:  # mkdir out; tuner run --out out
        out.mkdir()
    won, lost = _race(lambda: claim_run_dir(out))
    assert len(won) == 1
    assert len(lost) == RACERS - 1
    assert all("exists and is not empty" in str(e) for e in lost)
    assert won[0].read_meta()["status"] == "running"


def test_a_claimed_directory_is_not_claimed_again(tmp_path: Path) -> None:
    claim_run_dir(tmp_path / "run")
    with pytest.raises(TunerError, match="exists and is not empty"):
        claim_run_dir(tmp_path / "run")


def test_runs_started_in_the_same_second_get_a_directory_each(tmp_path: Path) -> None:
    won, lost = _race(lambda: new_run_dir(tmp_path / "results", "w", now=0.0))
    assert not lost
    assert len({rd.path for rd in won}) == RACERS


def test_an_existing_file_is_never_replaced_by_an_exclusive_create(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("theirs")
    with pytest.raises(FileExistsError):
        create_exclusive_text(target, "ours")
    assert target.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary left


def _synced_directories(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Records (device, inode) of every directory fsync'ed from now on."""
    synced: list[tuple[int, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            synced.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def _ident(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def test_an_atomic_write_syncs_its_directory_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _synced_directories(monkeypatch)
    atomic_write_text(tmp_path / "trials.csv", "seq\n")
    assert _ident(tmp_path) in synced


def test_a_claimed_run_directory_is_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = _synced_directories(monkeypatch)
    rd = claim_run_dir(tmp_path / "run")
    assert _ident(rd.path) in synced  # run.json in it
    assert _ident(tmp_path) in synced  # it in its parent
