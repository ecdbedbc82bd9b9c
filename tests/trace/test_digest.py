"""The stream digest a shared study compares across machines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuner.trace.digest import stream_sha256
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import read_trace, write_trace
from tuner.workload import Workload, load_workload

TINY = Path(__file__).resolve().parents[1] / "data" / "cli" / "tiny.yaml"


def _digest(w: Workload, path: Path) -> str:
    write_trace(path, stream_header(w), generate(w, "preload"), generate(w, "measure"))
    return stream_sha256(read_trace(path))


def test_the_same_workload_gives_the_same_digest_and_another_seed_another(tmp_path: Path) -> None:
    w = load_workload(TINY)
    first = _digest(w, tmp_path / "a.parquet")
    assert _digest(w, tmp_path / "b.parquet") == first
    assert _digest(replace(w, seed=w.seed + 1), tmp_path / "c.parquet") != first
