"""tuner size: the advice rule, the Flink keys per memory mode, the outputs; one real run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tuner.cli import cli
from tuner.compare import Contender
from tuner.costmodel import PRESETS
from tuner.engine.base import Measurement
from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.sizing import (
    JVM_OVERHEAD_MIN,
    MANAGED_SIZE,
    ContainerAdvice,
    SizePoint,
    advise,
    flink_keys,
    scaled,
    size_memory,
)
from tuner.sizing_report import write_sizing
from tuner.units import MIB
from tuner.workload import Workload, load_workload

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "cli" / "tiny.yaml"


def _w(slots: int = 2) -> Workload:
    w = load_workload(TINY)  # managed, 32 mb per slot
    return replace(w, memory=replace(w.memory, slots_per_tm=slots))


def _pt(mib: int, *ops: float) -> SizePoint:
    return SizePoint("rec", mib / 32, mib * MIB, tuple(ops), (), "")


def test_advice_is_the_smallest_size_within_tolerance_all_the_way_to_the_budget() -> None:
    points = [_pt(8, 940.0), _pt(16, 900.0), _pt(24, 960.0), _pt(32, 1000.0), _pt(64, 1010.0)]
    a = advise(points, "rec", _w(), 0.05)
    assert a is not None
    # 16 mb is 10 % slower: 8 mb (within 6 %) is not reachable past it.
    assert a.recommended == 24 * MIB
    assert a.keys == {MANAGED_SIZE: "48 mb"}  # two slots per TaskManager
    assert a.saves_per_tm == 2 * 8 * MIB
    assert "Saves 16 mb" in a.describe()
    loose = advise(points, "rec", _w(), 0.15)
    assert loose is not None and loose.recommended == 8 * MIB


def test_keep_the_budget_when_nothing_smaller_holds() -> None:
    a = advise([_pt(16, 500.0), _pt(32, 1000.0)], "rec", _w(), 0.05)
    assert a is not None and a.recommended == 32 * MIB and "keep 32 mb" in a.describe()
    assert advise([_pt(16, 500.0)], "rec", _w(), 0.05) is None


def test_the_container_holds_what_rocksdb_measured_beyond_managed_memory() -> None:
    # 30 % over a 256 mb slot, 4 slots: about 307 MiB per TaskManager beyond managed memory,
    # which the JVM overhead must hold on top of Flink's 192 MiB floor.
    advice = ContainerAdvice(1.3, 256 * MIB, 4)
    assert advice.overshoot_per_tm == pytest.approx(4 * 0.3 * 256 * MIB, abs=4)
    assert advice.jvm_overhead_min == 192 * MIB + 308 * MIB
    assert f"{JVM_OVERHEAD_MIN}: 500 mb" in advice.describe()
    within = ContainerAdvice(0.9, 256 * MIB, 4)
    assert within.overshoot_per_tm == 0
    assert "no JVM-overhead change" in within.describe()


def test_flink_keys_per_memory_mode() -> None:
    w = _w()
    fixed = replace(w, memory=replace(w.memory, mode="fixed-per-slot", fixed_per_slot=32 * MIB))
    assert flink_keys(fixed, 16 * MIB, None) == {fo.MEMORY_FIXED_PER_SLOT: "16 mb"}
    keys = flink_keys(w, 16 * MIB, 1024 * MIB)
    assert keys["taskmanager.memory.managed.fraction"] == "0.031"
    assert scaled(fixed, 8 * MIB).memory.budget == 8 * MIB
    with pytest.raises(TunerError, match="managed or fixed"):
        scaled(replace(w, memory=replace(w.memory, mode="unmanaged")), MIB)


def test_sizes_flink_would_refuse_are_not_run_and_the_rest_interleaved(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    def fake(w: Workload, settings: Mapping[str, fo.FlinkValue], wd: Path) -> Measurement:
        seen.append((str(settings.get(fo.PREDEFINED_OPTIONS, "rec")), w.memory.budget))
        return Measurement("ok", metrics={"ops_per_s": 1000.0 + w.memory.budget / MIB})

    a = Contender("DEFAULT", {fo.PREDEFINED_OPTIONS: "DEFAULT"}, "predefined")
    b = Contender("rec", {fo.WRITE_BUFFER_SIZE: 4 * MIB}, "x")
    # Flink 1.20 (FRocksDB 6.20): the arena block is write_buffer_size / 8, so DEFAULT's 64 mb
    # write buffers do not fit a 16 mb budget's write buffer manager. (Flink 2.x caps the arena
    # at 1 MiB: there they fit.)
    w120 = replace(_w(), flink_version="1.20")
    result = size_memory(
        w120, [a, b], factors=(0.5, 1.0), repeats=2, disk=PRESETS["page-cache"], measure=fake
    )
    default16 = [p for p in result.points if p.config == "DEFAULT" and p.budget == 16 * MIB]
    assert default16[0].not_run and not default16[0].values
    assert seen == [("DEFAULT", 32 * MIB), ("rec", 32 * MIB), ("rec", 16 * MIB)] * 2
    assert result.advice is not None and result.advice.config == "rec"
    assert result.advice.recommended == 16 * MIB  # 1016 vs 1032 ops/s: within 5 %
    files = write_sizing(result, tmp_path / "out", "tuner size x")
    assert [f.name for f in files] == ["sizing.csv", "sizing.md", "sizing.png"]
    md = (tmp_path / "out" / "sizing.md").read_text()
    assert "not run: the arena block (writebuffer.size/8)" in md and "**Advice:**" in md


def test_size_command_on_real_rocksdb(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("state.backend.rocksdb.writebuffer.size: 4 mb\n")
    out = tmp_path / "out"
    args = ["size", str(TINY), "--config", str(config), "--factors", "0.5,1", "--repeats", "1"]
    r = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "per slot" in r.output and (out / "sizing.png").stat().st_size > 0
    assert "taskmanager.memory.managed.size" in (out / "sizing.md").read_text()
