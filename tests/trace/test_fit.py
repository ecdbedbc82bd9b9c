"""`tuner workload fit`: a fit recovers the workload a trace was generated from, writes a file
the loader accepts, and reports recording vs fitted stream."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tuner.cli import cli
from tuner.errors import TunerError
from tuner.flink.memory_config import memory_from_config
from tuner.trace.fit import fit_to_file, fit_trace
from tuner.trace.generator import generate, stream_header
from tuner.trace.parquet import read_trace, write_trace
from tuner.trace.source import operation_stream
from tuner.workload import load_workload, loads_workload, parse_workload

SOURCE = """
name: source
flink_version: "2.x"
seed: 3
memory: {mode: managed, managed_per_slot: 64 mb}
replay: {records: 40000, preload_fraction: 0.0, records_per_second: 1000}
states:
  - name: profile
    kind: value
    keys: 3000
    popularity: {zipf: {exponent: 1.0}}
    value_size: 120 b
    accesses_per_record: 1.0
    operations: {read: 0.3, read_update: 0.7}
    timers: {per_record: 0.5, delay: 2 s}
  - name: events
    kind: map
    keys: 3000
    popularity: uniform
    value_size: {lognormal: {mean: 200 b, sigma: 0.5, min: 50 b, max: 2 kb}}
    accesses_per_record: 0.5
    operations: {get: 0.5, put: 0.4, remove: 0.1}
    entries_per_key: 4
  - name: counts
    kind: reducing
    keys: 3000
    popularity: uniform
    value_size: 16 b
    accesses_per_record: 1.0
    operations: {update: 1.0}
    window: {tumbling_records: 5000}
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = loads_workload(SOURCE)
    path = tmp_path_factory.mktemp("fit") / "source.parquet"
    write_trace(path, stream_header(w), generate(w, "preload"), generate(w, "measure"))
    return path


def test_fit_recovers_the_generating_workload(generated: Path) -> None:
    fit = fit_trace(generated)
    states = {s["name"]: s for s in fit.workload["states"]}
    assert set(states) == {"profile", "events", "counts"}
    profile = states["profile"]
    assert profile["kind"] == "value"
    assert 2500 <= profile["keys"] <= 3000
    assert profile["popularity"]["zipf"]["exponent"] == pytest.approx(1.0, abs=0.15)
    assert profile["operations"]["read_update"] == pytest.approx(0.7, abs=0.03)
    assert profile["value_size"] == "120 b"
    assert profile["timers"]["per_record"] == pytest.approx(0.5, abs=0.03)
    assert profile["timers"]["domain"] == "event"
    events = states["events"]
    assert events["popularity"] == "uniform"
    assert events["entries_per_key"] == 4
    assert events["accesses_per_record"] == pytest.approx(0.5, rel=0.1)
    assert events["value_size"]["lognormal"]["sigma"] == pytest.approx(0.5, abs=0.1)
    counts = states["counts"]
    assert counts["operations"] == {"update": 1.0}
    assert "window" in counts


def test_a_measured_compressibility_goes_from_trace_to_workload_to_replay(
    generated: Path, tmp_path: Path
) -> None:
    trace = read_trace(generated)
    measured = tmp_path / "measured.parquet"
    header = dataclasses.replace(trace.header, compressibility=1.4)
    write_trace(measured, header, trace.batches("preload"), trace.batches("measure"))
    fit = fit_trace(measured)
    assert fit.workload["compressibility"] == 1.4
    w = parse_workload(fit.workload, "fitted.yaml")
    assert operation_stream(w).header.compressibility == 1.4
    # A trace workload takes the trace's own measure, unless the workload says otherwise.
    recorded = dataclasses.replace(w, states=(), trace=str(measured), compressibility=None)
    assert operation_stream(recorded).header.compressibility == 1.4
    told = dataclasses.replace(recorded, compressibility=3.0)
    assert operation_stream(told).header.compressibility == 3.0
    assert "compressibility" not in fit_trace(generated).workload


def test_fitted_file_loads_and_report_compares(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "fitted.yaml"
    outcome = fit_to_file(generated, out)
    w = load_workload(out)
    assert {s.name for s in w.states} == {"profile", "events", "counts"}
    assert "| profile | calls |" in outcome.report
    assert "top-1% key share" in outcome.report
    data = yaml.safe_load(out.read_text())
    assert data["memory"]["managed_per_slot"] == "256 mb"


def test_cli_fit_with_flink_conf(generated: Path, tmp_path: Path) -> None:
    conf = tmp_path / "flink-conf.yaml"
    conf.write_text("taskmanager.memory.managed.size: 512m\ntaskmanager.numberOfTaskSlots: 4\n")
    out = tmp_path / "w.yaml"
    result = CliRunner().invoke(
        cli, ["workload", "fit", str(generated), "-o", str(out), "--flink-conf", str(conf)]
    )
    assert result.exit_code == 0, result.output
    assert load_workload(out).memory.managed_per_slot == 128 << 20
    result = CliRunner().invoke(cli, ["workload", "fit", str(tmp_path / "no"), "-o", str(out)])
    assert result.exit_code == 2 and "no such trace file" in result.output


@pytest.mark.parametrize(
    ("text", "per_slot"),
    [
        # Flink's shipped default: 1728m process -> 1280m Flink memory -> 512m managed
        ("taskmanager.memory.process.size: 1728m\n", 512 << 20),
        (
            "taskmanager.memory.flink.size: 1g\ntaskmanager.numberOfTaskSlots: 2\n",
            int((1 << 30) * 0.4) // 2,
        ),
        ("taskmanager.memory.managed.size: 300m\ntaskmanager.numberOfTaskSlots: 3\n", 100 << 20),
    ],
)
def test_memory_from_config(tmp_path: Path, text: str, per_slot: int) -> None:
    conf = tmp_path / "config.yaml"
    conf.write_text(text)
    m = memory_from_config(conf).memory
    from tuner.units import parse_memory_size

    assert m["mode"] == "managed"
    assert parse_memory_size(m["managed_per_slot"]) == pytest.approx(per_slot, rel=1e-6)


def test_memory_from_config_fixed_and_errors(tmp_path: Path) -> None:
    conf = tmp_path / "config.yaml"
    conf.write_text("state.backend.rocksdb.memory.fixed-per-slot: 96m\n")
    assert memory_from_config(conf).memory["mode"] == "fixed-per-slot"
    conf.write_text("taskmanager.numberOfTaskSlots: 2\n")
    with pytest.raises(TunerError, match="no TaskManager memory size"):
        memory_from_config(conf)
    conf.write_text("taskmanager.memory.process.size: lots\n")
    with pytest.raises(TunerError, match=r"taskmanager\.memory\.process\.size"):
        memory_from_config(conf)


def test_from_config_writes_a_runnable_trace_workload(generated: Path, tmp_path: Path) -> None:
    conf = tmp_path / "config.yaml"
    conf.write_text("taskmanager.memory.process.size: 1728m\n")
    out = tmp_path / "w.yaml"
    result = CliRunner().invoke(
        cli, ["workload", "from-config", str(conf), "--trace", str(generated), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    w = load_workload(out)
    assert w.trace == str(generated) and w.memory.managed_per_slot == 512 << 20


def test_rank_agreement_measures_every_predefined_set_on_both(tmp_path: Path) -> None:
    from tuner.flink import options as fo
    from tuner.search.fit_check import rank_agreement

    small = SOURCE.replace("records: 40000", "records: 3000").replace("keys: 3000", "keys: 300")
    w = loads_workload(small)
    trace = tmp_path / "small.parquet"
    write_trace(trace, stream_header(w), generate(w, "preload"), generate(w, "measure"))
    out = tmp_path / "fitted.yaml"
    fit_to_file(trace, out, memory={"mode": "managed", "managed_per_slot": "32 mb"})
    sets = ("DEFAULT", "SPINNING_DISK_OPTIMIZED_HIGH_MEM")
    agreement = rank_agreement(trace, load_workload(out), predefined=sets)
    assert agreement.labels == sets and set(sets) <= set(fo.PREDEFINED)
    assert all(v > 0 for v in agreement.recorded + agreement.fitted)
    assert "Spearman over" in agreement.render()
