"""Production size as a scaled model: what scales, the errors for scales that cannot work, and the
steady-state replay's debt and space accounting (real RocksDB, small data)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tuner.cli import cli
from tuner.costmodel import disk_from
from tuner.engine.fake import FakeEngine
from tuner.engine.replay import replay
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.scale import (
    ROCKSDB_MIN_WRITE_BUFFER,
    ScaleSpec,
    check_footprint,
    head_share,
    load_scaled,
    matched_exponent,
    model_config,
    model_workload,
    parse_factor,
    read_scale,
)
from tuner.scale_transfer import Config, read_rows, render
from tuner.scale_transfer import run as run_transfer
from tuner.stats import spearman
from tuner.trace.generator import generate, stream_header
from tuner.workload import Memory, load_workload

PROD = """\
name: prod
flink_version: "2.x"
seed: 3
max_parallelism: 128
memory: {mode: managed, managed_per_slot: 2 gb, slots_per_tm: 4}
checkpointing: {interval: 60 s}
replay: {records: 6000000, records_per_second: 20000}
scale: 1/100
states:
  - name: agg
    kind: aggregating
    keys: 20000000
    popularity: {zipf: {exponent: 0.9}}
    value_size: 200 b
    operations: {read_update: 1.0}
"""


def _write(tmp_path: Path, text: str, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the scale field ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "factor"), [("1/100", 0.01), (0.5, 0.5), (1, 1.0), ("0.25", 0.25), (" 1/8 ", 0.125)]
)
def test_factors_parse(raw: object, factor: float) -> None:
    assert parse_factor(raw) == pytest.approx(factor)


@pytest.mark.parametrize("raw", [0, -0.5, 1.5, "1/0", "abc", True, "2/3x", math.nan])
def test_bad_factors_name_the_field(raw: object) -> None:
    with pytest.raises(TunerError) as info:
        parse_factor(raw, file="w.yaml", where="scale")
    assert info.value.where == "scale"
    assert "(0, 1]" in info.value.message


@given(st.integers(min_value=1, max_value=10**6))
def test_reciprocal_factors_round_trip_their_label(n: int) -> None:
    spec = ScaleSpec(parse_factor(f"1/{n}"))
    assert spec.label == f"1/{n}"


def test_scale_section_with_disk_budget(tmp_path: Path) -> None:
    text = PROD.replace("scale: 1/100", "scale: {factor: 0.05, disk_budget: 40 gb}")
    spec = read_scale(_write(tmp_path, text))
    assert spec == ScaleSpec(0.05, 40 << 30)


def test_a_workload_without_scale_is_full_size(tmp_path: Path) -> None:
    text = PROD.replace("scale: 1/100\n", "")
    assert read_scale(_write(tmp_path, text)) == ScaleSpec()


# --- the model ---------------------------------------------------------------------------------


def test_model_scales_keys_memory_and_rate_and_keeps_event_time(tmp_path: Path) -> None:
    w, spec = load_scaled(_write(tmp_path, PROD))
    m = model_workload(w, spec)
    assert m.states[0].keys == 200_000
    assert m.memory.budget == round((2 << 30) * 0.01)
    assert m.replay.records_per_second == 200
    assert m.replay.records == 60_000
    # Event time, sizes and key groups do not scale.
    assert m.replay.records / m.replay.records_per_second == 300
    assert m.checkpointing == w.checkpointing
    assert m.states[0].value_size == w.states[0].value_size
    assert m.max_parallelism == w.max_parallelism


def test_zipf_exponent_keeps_the_hot_share_the_cache_holds() -> None:
    full, model, a, share = 20_000_000, 200_000, 0.9, 0.05
    b = matched_exponent(full, model, a, share)
    assert b > a  # fewer keys: a steeper law for the same head
    target = head_share(full, round(share * full), a)
    assert head_share(model, round(share * model), b) == pytest.approx(target, abs=1e-3)
    # Unadjusted, the model's head would be measurably colder.
    assert head_share(model, round(share * model), a) < target - 0.01


def test_model_config_scales_sizes_in_the_replay_only() -> None:
    config = fo.resolve({fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM"}, _memory())
    scaled, clamped = model_config(config, 0.01)
    assert not clamped
    assert scaled.write_buffer_size == round((64 << 20) * 0.01)
    assert scaled.target_file_size_base == round((256 << 20) * 0.01)
    assert scaled.max_bytes_for_level_base == round((1024 << 20) * 0.01)
    assert scaled.block_size == config.block_size  # entries per block stay
    assert scaled.soft_pending_compaction_bytes_limit == round((64 << 30) * 0.01)
    assert model_config(config, 1.0) == (config, False)


@pytest.mark.parametrize("factor", [0.1, 0.01, 0.005, 0.0001])
def test_the_arena_block_keeps_its_share_of_the_model_write_buffer(factor: float) -> None:
    # Flink's default on FRocksDB 8.10: a 1 MiB arena block for a 64 MiB write buffer (1/64). A
    # model memtable opened with the production arena filled past its write buffer at once.
    config = fo.resolve({fo.PREDEFINED_OPTIONS: "DEFAULT"}, _memory())
    assert config.arena_block_size == 1 << 20
    scaled, _ = model_config(config, factor)
    assert scaled.arena_block_size % (4 << 10) == 0
    assert scaled.arena_block_size < scaled.write_buffer_size
    assert abs(scaled.arena_block_size - max(4 << 10, (1 << 20) * factor)) <= 2 << 10


def test_write_buffer_below_rocksdb_floor_is_clamped_and_flagged() -> None:
    config = RocksDBConfig(write_buffer_size=2 << 20)
    scaled, clamped = model_config(config, 0.01)
    assert clamped
    assert scaled.write_buffer_size == ROCKSDB_MIN_WRITE_BUFFER


def _memory() -> Memory:
    return Memory(mode="managed", managed_per_slot=2 << 30)


# --- scales that cannot work: exit 2 with the field and the smallest workable value ------------


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            ("keys: 20000000", "keys: 100000"),
            "states[0].keys 100000 becomes 100, fewer keys than the 128 key groups "
            "(max_parallelism); smallest workable scale: 1/781",
        ),
        (
            ("records_per_second: 20000", "records_per_second: 50"),
            "replay.records_per_second 50 becomes less than 1 record/s; smallest workable "
            "scale: 1/50",
        ),
        (
            ("managed_per_slot: 2 gb", "managed_per_slot: 16 mb"),
            "below one 64 KiB memtable (RocksDB's smallest) for each of 1 column families; "
            "smallest workable scale: 1/85",
        ),
    ],
)
def test_impossible_scales_exit_2_naming_the_smallest_workable(
    tmp_path: Path, edit: tuple[str, str], fragment: str
) -> None:
    path = _write(tmp_path, PROD.replace(*edit).replace("scale: 1/100", "scale: 1/1000"))
    with pytest.raises(TunerError) as info:
        load_scaled(path)
    assert info.value.where == "scale"
    assert fragment in info.value.message
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_smallest_workable_scale_does_work(tmp_path: Path) -> None:
    path = _write(tmp_path, PROD.replace("keys: 20000000", "keys: 100000"))
    path = _write(tmp_path, path.read_text().replace("scale: 1/100", "scale: 1/781"))
    w, spec = load_scaled(path)
    assert model_workload(w, spec).states[0].keys >= w.max_parallelism


def test_cli_scale_overrides_and_is_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, PROD)
    out = str(tmp_path / "r")
    result = CliRunner().invoke(cli, ["run", str(path), "--scale", "2", "--out", out])
    assert result.exit_code == 2
    assert "--scale: must be in (0, 1], got 2.0" in result.output
    result = CliRunner().invoke(cli, ["run", str(path), "--scale", "1/10000000"])
    assert result.exit_code == 2
    assert "smallest workable scale" in result.output


def _recording(tmp_path: Path, sample: float | None) -> Path:
    """A trace as `tuner trace import` writes it: calls, and the recording's metadata."""
    import json

    from tests.factories import VALUE_AND_LIST, value_and_list_calls
    from tuner.trace.parquet import write_trace

    path = tmp_path / f"rec-{sample}.parquet"
    meta = {} if sample is None else {"recording": json.dumps({"sample": sample})}
    calls = value_and_list_calls(0, 2000, 100, seed=1)
    write_trace(path, VALUE_AND_LIST, [], [calls], extra_metadata=meta)
    workload = tmp_path / f"rec-{sample}.yaml"
    workload.write_text(
        "name: rec\nflink_version: '2.x'\nmemory: {mode: managed, managed_per_slot: 64 mb}\n"
        f"trace: {path}\n"
    )
    return workload


def test_a_full_recording_cannot_be_scaled(tmp_path: Path) -> None:
    w = load_workload(_recording(tmp_path, None))
    with pytest.raises(TunerError, match=r"model of its own key sample \(1, "):
        model_workload(w, ScaleSpec(0.5))


def test_a_key_sampled_recording_is_a_model_of_its_sample(tmp_path: Path) -> None:
    """A recording of 1/10 of the keys replays under 1/10 of the budget (and the option sizes
    scaled with it): under the whole budget its keys would find a cache ten times their share."""
    path = _recording(tmp_path, 0.1)
    w, spec = load_scaled(path)
    assert spec.factor == pytest.approx(0.1)
    assert model_workload(w, spec).memory.budget == round(0.1 * (64 << 20))
    assert w.memory.budget == 64 << 20  # production units for the study and the files
    with pytest.raises(TunerError, match="not at scale 1/2"):
        load_scaled(path, 0.5)
    r = CliRunner().invoke(cli, ["compare", str(path), "DEFAULT", "--repeats", "1"])
    assert r.exit_code == 0, r.output


def test_footprint_names_the_largest_scale_that_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = 1 << 30
    monkeypatch.setattr(
        "tuner.scale.shutil.disk_usage", lambda _: shutil._ntuple_diskusage(free, 0, free)
    )
    w = load_workload(_write(tmp_path, PROD))  # 20M keys of ~224 B: ~27 GB with headroom
    with pytest.raises(TunerError) as info:
        check_footprint(w, ScaleSpec(1.0), tmp_path)
    assert "only 1024 MiB free" in info.value.message
    assert "the largest scale that fits is about 1/26" in info.value.message
    assert info.value.where == "scale"
    assert check_footprint(w, ScaleSpec(1 / 26), tmp_path) <= free


# --- steady state, debt, live bytes (real RocksDB) ---------------------------------------------

SMALL = """\
name: small
flink_version: "2.x"
seed: 5
memory: {mode: managed, managed_per_slot: 16 mb}
checkpointing: {interval: 1 s}
replay: {records: 20000, records_per_second: 5000}
states:
  - name: v
    kind: value
    keys: 20000
    value_size: 100 b
    operations: {read_update: 1.0}
"""


def _replay(tmp_path: Path, config: RocksDBConfig, **kw: object) -> dict[str, float]:
    w = load_workload(_write(tmp_path, SMALL))
    header = stream_header(w)
    engine = RocksdictEngine()
    engine.open(config, header, tmp_path / "db")
    try:
        r = replay(
            engine,
            header,
            generate(w, "preload"),
            generate(w, "measure"),
            1000,
            tmp_path,
            **kw,  # type: ignore[arg-type]
        )
    finally:
        engine.close()
    return r.as_dict()


def test_steady_state_replay_counts_live_bytes_and_pays_its_debt(tmp_path: Path) -> None:
    config = RocksDBConfig(
        write_buffer_size=256 << 10,
        target_file_size_base=256 << 10,
        max_bytes_for_level_base=1 << 20,
        compression_per_level=("kNoCompression",),
    )
    m = _replay(tmp_path, config, warmup_ops=10_000)
    # Every key holds one value: key-group prefix (1) + long key (8) + VoidNamespace (1) bytes,
    # 100 value bytes.
    assert m["live_bytes"] == 20_000 * (1 + 8 + 1 + 100)
    assert m["space_amplification"] == pytest.approx(m["total_sst_bytes"] / m["live_bytes"])
    assert m["pending_compaction_bytes_start"] == 0
    assert m["settled_end"] == 1.0
    assert m["compaction_debt_bytes"] == 0
    assert m["ops"] == 40_000 - 10_000  # the warm-up is not measured
    assert m["stall_risk"] >= 0


def test_settling_ends_when_rocksdb_reports_work_it_never_runs() -> None:
    class Stuck(FakeEngine):
        def storage(self) -> dict[str, int]:
            return {**super().storage(), "compaction_pending": 1}

    from tuner.trace.ops import StateInfo, StreamHeader

    header = StreamHeader(states=(StateInfo(name="s", kind="value", key_type="long"),))
    engine = Stuck()
    engine.open(RocksDBConfig(), header, Path("/nonexistent-fake"))
    assert engine.wait_for_background(timeout_s=30, quiet_s=0.1)
    engine.close()


# --- the benchmark's arithmetic ----------------------------------------------------------------


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9487, abs=1e-4)
    assert math.isnan(spearman([1], [2]))


def test_render_keeps_misses_and_scores_the_transfer() -> None:
    rows = [
        {"scale": s, "config": c, "ops_per_s": v}
        for s, c, v in [
            ("1", "a", "100"),
            ("1", "b", "90"),
            ("1", "c", "50"),
            ("0.1", "a", "80"),
            ("0.1", "b", "95"),
            ("0.1", "c", "nan"),
        ]
    ]
    table = render(rows)
    assert "| c | 50 (3) | failed |" in table
    assert "| 1/10 | 2 | -1.00 | b | 90.0% |" in table
    partial = render([*rows[:2], rows[4]])  # b's pick at 1/10, a and b at full only
    assert "| c | - |" not in partial
    assert "| 1/10 | 1 | +nan | b | 90.0% |" in partial
    assert Config("x", {}).label == "x"


def test_render_takes_the_median_of_repeats_and_shows_their_spread() -> None:
    rows = [
        {"scale": s, "config": c, "repeat": r, "ops_per_s": v}
        for s, c, r, v in [
            ("1", "a", "0", "100"),
            ("1", "a", "1", "120"),
            ("1", "a", "2", "110"),
            ("1", "b", "0", "200"),
            ("1", "b", "1", "nan"),
            ("0.1", "a", "0", "10"),
            ("0.1", "b", "0", "5"),
        ]
    ]
    table = render(rows)
    assert "| a | 110 (2) 3 runs, spread 18.2% | 10 (1) |" in table
    assert "| b | 200 (1) 1 runs, 1 failed | 5 (2) |" in table
    assert "| 1/10 | 2 | -1.00 | a | 55.0% |" in table


def test_render_sets_each_scaled_gain_beside_the_full_size_gain() -> None:
    rows = [
        {"scale": s, "config": c, "ops_per_s": v}
        for s, c, v in [
            ("1", "DEFAULT", "100"),
            ("1", "fast", "200"),
            ("1", "same", "105"),
            ("0.1", "DEFAULT", "50"),
            ("0.1", "fast", "85"),
            ("0.1", "same", "nan"),
        ]
    ]
    table = render(rows)
    assert "| fast | +100.0% | +70.0% | 0.70x |" in table
    # A failed measurement has no gain; a full-size gain under 10 % no ratio to speak of.
    assert "| same | +5.0% | - | - |" in table
    assert "gain over DEFAULT" not in render([r for r in rows if r["config"] != "DEFAULT"])


def test_a_cut_off_transfer_run_resumes_without_measuring_twice(tmp_path: Path) -> None:
    workload = load_workload(TINY)
    configs = [Config("DEFAULT", {fo.PREDEFINED_OPTIONS: "DEFAULT"}), Config("small", {})]
    out = tmp_path / "transfer.csv"
    logged: list[str] = []
    first = run_transfer(workload, [0.5], configs, disk_from("local-nvme"), out, repeats=1)
    assert [(r["config"], r["repeat"], r["status"]) for r in first] == [
        ("DEFAULT", "0", "ok"),
        ("small", "0", "ok"),
    ]
    rows = run_transfer(
        workload,
        [0.5],
        configs,
        disk_from("local-nvme"),
        out,
        repeats=2,
        earlier=read_rows(out),
        log=logged.append,
    )
    assert len(logged) == 2 and all("round 2/2" in line for line in logged)
    assert [(r["config"], r["repeat"]) for r in read_rows(out)] == [
        (r["config"], r["repeat"]) for r in rows
    ]
    assert len(rows) == 4 and rows[:2] == first
    assert not list(tmp_path.glob("*.part"))


# --- a scaled run end to end -------------------------------------------------------------------

TINY = Path(__file__).resolve().parent / "data" / "cli" / "tiny.yaml"


def test_scaled_run_keeps_its_scale_and_enforces_the_disk_budget(tmp_path: Path) -> None:
    text = TINY.read_text() + "scale: {factor: 1/2, disk_budget: 1 kb}\n"
    path = _write(tmp_path, text, "tiny-scaled.yaml")
    out = tmp_path / "run"
    args = ["run", str(path), "--trials", "1", "--repeats", "1", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "replaying a 1/2 model of the job" in result.output
    # Every measurement is over a 1 kb disk budget: infeasible, so nothing is recommended.
    rows = (out / "trials.csv").read_text()
    assert "over the disk budget" in rows
    assert not (out / "config.yaml").exists()
    # The run directory keeps the scale, so a resume replays the same model.
    assert read_scale(out / "workload.yaml") == ScaleSpec(0.5, 1024)
    trace_header_keys = load_workload(out / "workload.yaml").states[0].keys
    assert trace_header_keys == 3000  # production units in the run directory


def test_small_models_are_flagged(tmp_path: Path) -> None:
    from tuner.scale import model_warnings

    w, spec = load_scaled(_write(tmp_path, PROD))  # 1/100 of 2 gb: a 20 mb model
    warnings = model_warnings(model_workload(w, spec))
    assert any("memory budget is 20.5 MiB" in x for x in warnings), warnings
    assert model_warnings(model_workload(w, ScaleSpec(0.1))) == []


@pytest.mark.parametrize(
    ("command", "module"),
    [
        (["compare", "{w}", "DEFAULT", "--repeats", "1"], "tuner.compare"),
        (["size", "{w}", "--repeats", "1", "--factors", "1", "-o", "{out}"], "tuner.sizing"),
    ],
)
def test_compare_and_size_replay_the_scaled_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], module: str
) -> None:
    """`scale:` holds for every command that measures, not only `tuner run` and `noise`: the
    replayed workload is the model (1/100 of the keys and memory) and the factor reaches the
    measurement, which scales the option values from production units."""
    import importlib

    from tuner.engine.base import Measurement

    seen: list[tuple[int, int, float]] = []

    def measured(w: object, *_: object, scale: float = 1.0, **__: object) -> Measurement:
        assert hasattr(w, "states") and hasattr(w, "memory")
        seen.append((w.states[0].keys, w.memory.budget, scale))
        return Measurement(status="failed", reason="not measured: the test looks at its input")

    monkeypatch.setattr(importlib.import_module(module), "measure_isolated", measured)
    path = _write(tmp_path, PROD)
    args = [a.format(w=path, out=tmp_path / "size") for a in command]
    CliRunner().invoke(cli, args)
    assert seen, "nothing was measured"
    production = load_workload(path)
    keys, budget, factor = seen[0]
    assert factor == pytest.approx(0.01)
    assert keys == production.states[0].keys // 100
    assert budget == pytest.approx(production.memory.budget / 100, rel=0.05)


def test_flink_keys_of_a_model_scale_the_sizes_model_config_scales() -> None:
    """flink-backend is configured by Flink's keys: scaled here as the replay's options are."""
    from tuner.scale import model_settings

    settings: dict[str, fo.FlinkValue] = {
        fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM",
        fo.WRITE_BUFFER_SIZE: 8 << 20,
    }
    keys = model_settings(settings, 0.1)
    assert keys[fo.PREDEFINED_OPTIONS] == "SPINNING_DISK_OPTIMIZED_HIGH_MEM"  # not a size
    assert model_settings(settings, 1.0) == settings
    model_memory = Memory(managed_per_slot=64 << 20)
    replayed, _ = model_config(fo.resolve(settings, model_memory), 0.1)
    flink = fo.resolve(keys, model_memory)
    for name in ("write_buffer_size", "target_file_size_base", "max_bytes_for_level_base"):
        assert getattr(flink, name) == getattr(replayed, name), name
    tiny = model_settings({}, 1 / 10_000)
    assert tiny[fo.WRITE_BUFFER_SIZE] == ROCKSDB_MIN_WRITE_BUFFER  # RocksDB's floor


@given(st.integers(1, 1 << 20), st.floats(1e-6, 1.0))
def test_a_models_timer_cache_holds_its_share_of_a_key_groups_timers(
    cache: int, factor: float
) -> None:
    """A key group of the model holds ``factor`` of the job's timers; its cache as many fewer."""
    from tuner.scale import model_settings, model_timer_cache_size

    scaled = model_timer_cache_size(cache, factor)
    assert 1 <= scaled <= cache
    assert abs(scaled - cache * factor) <= max(0.5, 1 - cache * factor)
    assert model_timer_cache_size(cache, 1.0) == cache
    if factor < 1.0:
        keys = model_settings({fo.TIMER_SERVICE_CACHE_SIZE: cache}, factor)
        assert keys[fo.TIMER_SERVICE_CACHE_SIZE] == scaled


def test_flinks_default_timer_cache_is_scaled_too() -> None:
    from tuner.scale import model_settings, model_timer_cache_size

    assert model_settings({}, 1 / 3)[fo.TIMER_SERVICE_CACHE_SIZE] == 43  # Nexmark q11's model
    assert model_timer_cache_size(128, 1 / 1000) == 1


def test_a_model_smaller_than_a_tenth_is_said_to_rank_less_reliably() -> None:
    from tuner.scale import transfer_warning

    assert transfer_warning(ScaleSpec(factor=0.1)) == ""
    assert transfer_warning(ScaleSpec(factor=1.0)) == ""
    said = transfer_warning(ScaleSpec(factor=0.01))
    assert said.startswith("a 1/100 model is smaller than 1/10")
    assert "Spearman +0.88 at 1/10, +0.56 at 1/100" in said
