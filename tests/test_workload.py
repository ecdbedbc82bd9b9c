"""Workload files: the schema, good and bad example files, and the loader's round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tuner.errors import TunerError
from tuner.flink import versions
from tuner.flink.catalog import load_catalog
from tuner.flink.memory import minimum_budget
from tuner.units import MIB, parse_duration_ms
from tuner.workload import (
    OPERATIONS,
    SUPPORTED_FLINK_VERSIONS,
    Memory,
    SizeDist,
    StateSpec,
    Window,
    Workload,
    column_family_count,
    dump_workload,
    load_schema,
    load_workload,
    loads_workload,
    parse_workload,
    timer_service,
    workload_to_dict,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "workloads").glob("*.yaml"))
GOOD = sorted((ROOT / "tests" / "data" / "workloads" / "good").glob("*.yaml"))
BAD = sorted((ROOT / "tests" / "data" / "workloads" / "bad").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


# --- the schema -------------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _object_schemas(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((path, node))
        for key, child in node.items():
            found.extend(_object_schemas(child, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found.extend(_object_schemas(child, f"{path}/{i}"))
    return found


def test_schema_closes_every_object_and_describes_every_property() -> None:
    objects = _object_schemas(load_schema())
    assert len(objects) > 10
    for path, obj in objects:
        assert obj.get("additionalProperties") is False, path
        for name, prop in obj["properties"].items():
            assert prop.get("description"), f"{path}/properties/{name}"


def test_schema_agrees_with_the_dataclasses() -> None:
    schema = load_schema()
    state = schema["$defs"]["state"]["properties"]
    assert set(state["kind"]["enum"]) == set(OPERATIONS)
    all_ops = {op for ops in OPERATIONS.values() for op in ops}
    assert set(state["operations"]["properties"]) == all_ops
    memory = schema["properties"]["memory"]["properties"]
    assert set(memory["mode"]["enum"]) == {"managed", "fixed-per-slot", "fixed-per-tm", "unmanaged"}
    # Every Memory field can be written, under its own name.
    assert {f.name for f in dataclasses.fields(Memory)} == set(memory)
    replay = schema["properties"]["replay"]["properties"]
    assert set(replay) == {"records", "preload_fraction", "records_per_second"}


@pytest.mark.parametrize("path", EXAMPLES + GOOD, ids=_ids(EXAMPLES + GOOD))
def test_example_and_good_files_validate_against_the_schema(
    path: Path, validator: Draft202012Validator
) -> None:
    data = yaml.safe_load(path.read_text())
    errors = [e.message for e in validator.iter_errors(data)]
    assert errors == []


# --- examples and good files ------------------------------------------------------------------


def test_the_required_examples_exist() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "quickstart",
        "keyed-aggregation-skewed",
        "tumbling-window-timers",
        "dedup-ttl",
        "interval-join",
        "session-map-state",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=_ids(EXAMPLES))
def test_examples_load_and_say_what_they_model(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# "), "an example opens with comments on the job it models"
    w = load_workload(path)
    assert w.name == path.stem
    assert w.description
    assert w.states
    # Modest enough to replay in well under a minute: production-size examples as their model
    # (the largest, production-dedup-ttl at 1/50: 720k records and 3.8M preloaded ids of 36
    # bytes, 21 s per trial measured).
    from tuner.scale import model_workload, read_scale

    w = model_workload(w, read_scale(path))
    assert w.replay.records <= 1_000_000
    preload = sum(
        s.keys * s.entries_per_key * s.elements_per_key * w.replay.preload_fraction
        for s in w.states
    )
    assert preload <= 4_000_000


def test_quickstart_is_small_and_its_budget_matters() -> None:
    w = load_workload(ROOT / "workloads" / "quickstart.yaml")
    assert len(w.states) == 2
    assert 60_000 <= w.replay.records <= 80_000
    assert 32 * MIB <= w.memory.budget <= 64 * MIB
    for s in w.states:
        assert 40_000 <= s.keys <= 60_000
        assert s.value_size.min >= 100 and s.value_size.max <= 200
    # The state outgrows the budget, so how it is split between cache and memtables matters.
    live = sum(s.keys * (s.value_size.value + 8) for s in w.states)
    assert live > w.memory.budget // 2


@pytest.mark.parametrize("path", GOOD, ids=_ids(GOOD))
def test_good_files_load(path: Path) -> None:
    w = load_workload(path)
    assert w.source == str(path)


def test_defaults_of_a_minimal_file() -> None:
    w = load_workload(ROOT / "tests/data/workloads/good/minimal.yaml")
    assert w.memory == Memory()
    assert w.seed == 0
    assert w.description == ""
    assert w.max_parallelism == 128
    assert w.states == (StateSpec(name="counts", kind="value", keys=1000),)


def test_every_shape_resolves_to_bytes_and_milliseconds() -> None:
    w = load_workload(ROOT / "tests/data/workloads/good/all-features.yaml")
    assert w.flink_version == "2.1"
    assert w.flink_major == 2
    assert w.memory.managed_per_slot == 1 << 30
    assert w.checkpointing.interval_ms == 30_000
    assert w.checkpointing.incremental is False
    assert w.replay.records == 1000
    v, lst, m, red, agg, sliding, in_records = w.states
    assert (v.key_type, v.key_size, v.ttl_ms) == ("string", 32, 3_600_000)
    assert v.value_size == SizeDist(kind="fixed", value=1024)
    assert v.accesses_per_record == 0.0
    assert lst.value_size == SizeDist(kind="uniform", value=15, min=10, max=20)
    assert lst.elements_per_key == 5
    assert lst.popularity.kind == "sequential"
    assert m.value_size == SizeDist(kind="normal", value=200, min=1, max=MIB, sigma=12.5)
    assert (m.entries_per_key, m.user_key_size) == (100, 16)
    assert m.timers is not None and (m.timers.delay_ms, m.timers.domain) == (5000, "processing")
    assert red.value_size == SizeDist(kind="lognormal", value=2048, min=100, max=64 << 10, sigma=1)
    assert (red.popularity.kind, red.popularity.exponent) == ("zipf", 0.8)
    assert red.timers is not None and red.timers.domain == "event"
    assert (agg.popularity.hot_fraction, agg.popularity.hot_share) == (0.05, 0.8)
    # 3000 / 1000 records at 250 records/s: a 12 s window sliding by 4 s.
    assert agg.window is not None and (agg.window.size_ms, agg.window.slide_ms) == (12_000, 4_000)
    assert agg.operations == (("read_update", 0.5), ("read", 0.5))
    assert sliding.window == Window(type="sliding", size_ms=600_000, slide_ms=60_000)
    # 500 records at 250 records/s.
    assert in_records.window == Window(type="tumbling", size_ms=2000, slide_ms=2000)


def test_fixed_sizes_above_the_default_clip_are_kept() -> None:
    w = loads_workload(_yaml(_minimal(value_size="4 mb")))
    assert w.states[0].value_size.value == 4 * MIB
    assert w.states[0].value_size.max >= 4 * MIB


def test_column_families_count_each_kind_of_timer_service_once() -> None:
    w = load_workload(ROOT / "workloads" / "tumbling-window-timers.yaml")
    # Two windowed states share the window timers; the silence detector has user timers.
    assert [timer_service(s) for s in w.states] == ["window", "window", "event"]
    assert column_family_count(w.states) == 3 + 2
    w = load_workload(ROOT / "tests/data/workloads/good/all-features.yaml")
    assert column_family_count(w.states) == 7 + 3


def test_the_budget_floor_is_flinks_minimum() -> None:
    # fixed-per-slot-tight.yaml has exactly the minimum; a byte less is refused.
    path = ROOT / "tests/data/workloads/good/fixed-per-slot-tight.yaml"
    w = load_workload(path)
    assert w.memory.budget == minimum_budget(3, 0.5)
    data = yaml.safe_load(path.read_text())
    data["memory"]["fixed_per_slot"] -= 1
    with pytest.raises(TunerError, match="fixed_per_slot must be at least 19 mb"):
        parse_workload(data, "tight.yaml")


@pytest.mark.parametrize("raw", ["1.20", "2", "2.0", "2.3", "2.x", 2, 2.0, 2.2, "2.3.0", "1.20.5"])
def test_supported_flink_versions(raw: object) -> None:
    w = parse_workload(_minimal(flink_version=raw), "v.yaml")
    assert versions.is_supported(w.flink_version)


@pytest.mark.parametrize(
    "text", ["1.20", "1.20.x", "1.20.5", "2", "2.x", "2.0", "2.3.0", "1.19", "2.4", "3", "2.3.0.1"]
)
def test_workload_and_check_config_agree_on_supported_versions(text: str) -> None:
    """One definition: a version a workload accepts is one check-config has a catalog for."""
    try:
        load_catalog(text)
        catalog_ok = True
    except TunerError:
        catalog_ok = False
    try:
        parse_workload(_minimal(flink_version=text), "v.yaml")
        workload_ok = True
    except TunerError:
        workload_ok = False
    assert workload_ok == catalog_ok == versions.is_supported(text)


@pytest.mark.parametrize("raw", ["1.19", "3.0", "2.4", "1.2", 1.2, 1, "latest"])
def test_unsupported_flink_versions_name_the_supported_ones(raw: object) -> None:
    with pytest.raises(TunerError, match=r"supported: 1\.20 \(1\.20\.x\) and 2\.x") as info:
        parse_workload(_minimal(flink_version=raw), "v.yaml")
    assert info.value.where == "flink_version"


# --- traces -----------------------------------------------------------------------------------


def _trace_workload(tmp_path: Path, trace_name: str) -> Path:
    path = tmp_path / "conf" / "w.yaml"
    path.parent.mkdir()
    path.write_text(
        "name: traced\nflink_version: '2.x'\nmemory: {managed_per_slot: 64 mb}\n"
        f"trace: ../traces/{trace_name}\nreplay: {{preload_fraction: 0.5}}\n"
        "checkpointing: {interval: 1 min, incremental: false}\n"
    )
    return path


def test_a_trace_is_resolved_relative_to_the_workload_file(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    trace = tmp_path / "traces" / "t.parquet"
    trace.write_bytes(b"")  # load only checks that it exists; the trace reader reads it
    w = load_workload(_trace_workload(tmp_path, "t.parquet"))
    assert w.trace == str(trace)
    assert w.states == ()
    assert w.replay.preload_fraction == 0.5
    assert w.checkpointing.interval_ms == 60_000
    again = loads_workload(dump_workload(w), "/elsewhere/w.yaml")
    assert again == dataclasses.replace(w, source=None)


def test_a_missing_trace_names_the_file(tmp_path: Path) -> None:
    path = _trace_workload(tmp_path, "gone.parquet")
    with pytest.raises(TunerError) as info:
        load_workload(path)
    assert str(path) in str(info.value)
    assert str(tmp_path / "traces" / "gone.parquet") in str(info.value)
    assert info.value.where == "trace"


# --- bad files --------------------------------------------------------------------------------


def _expectation(path: Path) -> tuple[str, str]:
    first, second = path.read_text().splitlines()[:2]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    assert second.startswith("# where: "), f"{path.name}: second line must be '# where: ...'"
    return first.removeprefix("# expect: "), second.removeprefix("# where:").strip()


def test_there_are_enough_bad_files() -> None:
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=_ids(BAD))
def test_bad_files_fail_with_file_field_and_reason(path: Path) -> None:
    expect, where = _expectation(path)
    with pytest.raises(TunerError) as info:
        load_workload(path)
    err = info.value
    message = str(err)
    assert err.file == str(path)
    assert message.startswith(str(path) + ": ")
    assert expect in message
    assert err.where == (where or None)
    if where:
        assert f": {where}: " in message


def test_an_unreadable_workload_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match="workload file not found") as info:
        load_workload(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe")
    with pytest.raises(TunerError, match="not UTF-8"):
        load_workload(binary)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_workload_says_so(text: str) -> None:
    with pytest.raises(TunerError, match="the workload file is empty"):
        loads_workload(text, "empty.yaml")


def test_schema_errors_are_reported_in_file_order() -> None:
    data = _minimal()
    data["states"] = [
        {"name": "a", "kind": "value", "keys": 0, "operations": {"read": 1}},
        {"name": "b", "kind": "value", "keys": 1, "operations": {"read": 1}, "bogus": 1},
    ]
    with pytest.raises(TunerError) as info:
        parse_workload(data, "order.yaml")
    assert info.value.where == "states[0].keys"


# --- round trip and property tests ------------------------------------------------------------


def _minimal(**overrides: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "name": "s",
        "kind": "value",
        "keys": 100,
        "operations": {"read": 1.0},
    }
    if "value_size" in overrides:
        state["value_size"] = overrides.pop("value_size")
    data: dict[str, Any] = {
        "name": "w",
        "flink_version": "1.20",
        "memory": {"managed_per_slot": "64 mb"},
        "states": [state],
    }
    data.update(overrides)
    return data


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize("path", EXAMPLES + GOOD, ids=_ids(EXAMPLES + GOOD))
def test_dump_round_trips_the_files(path: Path, validator: Draft202012Validator) -> None:
    w = load_workload(path)
    text = dump_workload(w)
    assert validator.is_valid(yaml.safe_load(text))
    assert loads_workload(text, str(path)) == dataclasses.replace(w, source=None)
    # Durations and sizes come out in Flink's syntax.
    assert isinstance(workload_to_dict(w)["checkpointing"]["interval"], str)


def test_dump_of_dataclasses_built_in_code_round_trips() -> None:
    w = Workload(
        name="code",
        description="built directly",
        flink_version="2.x",
        seed=3,
        memory=Memory(),
        states=(StateSpec(name="s", kind="value", keys=10),),
    )
    assert loads_workload(dump_workload(w)) == w


_names = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
_byte_sizes = st.integers(1, 1 << 20)
_duration_texts = st.sampled_from(["1 ms", "250 ms", "1 s", "10 s", "1 min", "2 h", "PT5M", "1 d"])


@st.composite
def _size(draw: st.DrawFn, lo: int = 1, hi: int = 1 << 20) -> int | str:
    n = draw(st.integers(lo, hi))
    if draw(st.booleans()):
        return n
    return draw(st.sampled_from([f"{n} b", f"{n}", f"{n} bytes", f"{n}b"]))


@st.composite
def _value_size(draw: st.DrawFn) -> int | str | dict[str, Any]:
    shape = draw(st.sampled_from(["fixed", "uniform", "normal", "lognormal"]))
    if shape == "fixed":
        return draw(_size())
    lo = draw(st.integers(1, 1000))
    hi = draw(st.integers(lo, 1 << 20))
    if shape == "uniform":
        return {"uniform": {"min": lo, "max": hi}}
    mean = draw(st.integers(lo, hi))
    sigma = draw(st.floats(0.01, 1000, allow_nan=False))
    return {shape: {"mean": mean, "sigma": sigma, "min": lo, "max": f"{hi} b"}}


@st.composite
def _shares(draw: st.DrawFn, ops: tuple[str, ...]) -> dict[str, float]:
    chosen = draw(st.lists(st.sampled_from(ops), min_size=1, max_size=len(ops), unique=True))
    weights = [draw(st.integers(1, 100)) for _ in chosen]
    total = sum(weights)
    return {op: w / total for op, w in zip(chosen, weights, strict=True)}


@st.composite
def _window(draw: st.DrawFn) -> dict[str, Any]:
    slide = draw(st.integers(1, 10_000))
    per = draw(st.integers(1, 10))
    return draw(
        st.sampled_from(
            [
                {"tumbling": draw(st.one_of(st.integers(1, 10**7), _duration_texts))},
                {"sliding": {"size": slide * per, "slide": slide}},
                {"tumbling_records": draw(st.integers(1_000, 10**6))},
                {"sliding_records": {"size": 1000 * per, "slide": 1000}},
            ]
        )
    )


@st.composite
def _state(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(OPERATIONS)))
    # At least two keys, so a hot set of half the keys holds one.
    s: dict[str, Any] = {"name": name, "kind": kind, "keys": draw(st.integers(2, 10**6))}
    if draw(st.booleans()):
        s["key_type"] = "string"
        s["key_size"] = draw(_size(1, 256))
    s["popularity"] = draw(
        st.one_of(
            st.sampled_from(["uniform", "sequential", "latest"]),
            st.builds(lambda e: {"zipf": {"exponent": e}}, st.floats(0.01, 3)),
            st.builds(
                lambda share: {"hotset": {"hot_fraction": 0.5, "hot_share": share}},
                st.floats(0.01, 1),
            ),
        )
    )
    s["value_size"] = draw(_value_size())
    s["accesses_per_record"] = draw(st.floats(0, 10))
    s["operations"] = draw(_shares(OPERATIONS[kind]))
    if kind == "map":
        s["entries_per_key"] = draw(st.integers(1, 1000))
        s["user_key_size"] = draw(_size(1, 64))
    if kind == "list":
        s["elements_per_key"] = draw(st.integers(1, 100))
    if draw(st.booleans()):
        s["window"] = draw(_window())
    if draw(st.booleans()):
        s["ttl"] = draw(st.one_of(st.integers(1, 10**9), _duration_texts))
    if "window" not in s and draw(st.booleans()):
        s["timers"] = {
            "per_record": draw(st.floats(0, 3)),
            "delay": draw(st.one_of(st.integers(0, 10**6), _duration_texts)),
            "domain": draw(st.sampled_from(["event", "processing"])),
        }
    return s


@st.composite
def _memory(draw: st.DrawFn) -> dict[str, Any]:
    # Budgets above the floor for up to 12 column families: the floor is tested on its own.
    mode = draw(st.sampled_from(["managed", "fixed-per-slot", "fixed-per-tm", "unmanaged"]))
    m: dict[str, Any] = {"mode": mode}
    key = {"fixed-per-slot": "fixed_per_slot", "fixed-per-tm": "fixed_per_tm"}.get(
        mode, "managed_per_slot"
    )
    m[key] = draw(st.sampled_from(["2 gb", 2 << 30, "4096 mb"]))
    m["slots_per_tm"] = draw(st.integers(1, 4))
    m["write_buffer_ratio"] = draw(st.floats(0.2, 0.8))
    m["high_prio_pool_ratio"] = draw(st.floats(0.01, 0.19))
    return m


@st.composite
def _workload(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    data: dict[str, Any] = {
        "name": draw(_names),
        "description": draw(st.text(max_size=40)),
        "flink_version": draw(st.sampled_from(SUPPORTED_FLINK_VERSIONS)),
        "seed": draw(st.integers(0, 2**32)),
        "max_parallelism": draw(st.integers(1, 32768)),
        "compressibility": draw(st.floats(0.5, 1000)),
        "memory": draw(_memory()),
        "checkpointing": {
            "interval": draw(st.one_of(st.integers(10, 10**7), _duration_texts.filter(_ge_10ms))),
            "incremental": draw(st.booleans()),
        },
        "replay": {
            "records": draw(st.integers(1, 10**7)),
            "preload_fraction": draw(st.floats(0, 1)),
            "records_per_second": draw(st.integers(1, 1000)),
        },
        "states": [draw(_state(n)) for n in names],
    }
    # Optional sections may be left out entirely.
    optional_keys = ("description", "seed", "max_parallelism", "compressibility", "checkpointing")
    for optional in (*optional_keys, "replay"):
        if draw(st.booleans()):
            del data[optional]
    return data


def _ge_10ms(text: str) -> bool:
    return parse_duration_ms(text) >= 10


_VALIDATOR = Draft202012Validator(load_schema())
_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_workload())
def test_generated_workloads_round_trip_through_dump_and_load(data: dict[str, Any]) -> None:
    w = parse_workload(data, "gen.yaml")
    text = dump_workload(w)
    again = loads_workload(text, "gen.yaml")
    assert again == w
    assert dump_workload(again) == text
    # The dump is itself a valid, schema-conforming workload file.
    assert _VALIDATOR.is_valid(yaml.safe_load(text))


def _objects(
    data: Any, path: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every mapping of a workload whose keys are fixed by the schema (not operations)."""
    found = []
    if isinstance(data, dict):
        if path[-1:] != ("operations",):
            found.append((path, data))
        for key, value in data.items():
            found.extend(_objects(value, (*path, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(_objects(value, (*path, i)))
    return found


def _typo(word: str, position: int, kind: int) -> str:
    i = position % len(word)
    if kind == 0:  # drop a letter
        return word[:i] + word[i + 1 :]
    if kind == 1:  # double a letter
        return word[:i] + word[i] + word[i:]
    j = min(i + 1, len(word) - 1)  # swap neighbours
    chars = list(word)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


@_SETTINGS
@given(_workload(), st.data())
def test_a_misspelt_key_is_rejected_with_a_suggestion(data: dict[str, Any], draw: Any) -> None:
    path, obj = draw.draw(st.sampled_from(_objects(data)))
    assume(obj)
    key = draw.draw(st.sampled_from(sorted(obj)))
    typo = _typo(key, draw.draw(st.integers(0, 50)), draw.draw(st.integers(0, 2)))
    valid_here = _schema_keys(path)
    assume(typo not in valid_here and len(key) >= 4)
    obj[typo] = obj.pop(key)
    with pytest.raises(TunerError) as info:
        parse_workload(data, "typo.yaml")
    err = info.value
    assert f'unknown key "{typo}"; did you mean "' in err.message
    suggestion = err.message.split('did you mean "')[1].rstrip('"?')
    assert suggestion in valid_here
    assert err.where is not None and err.where.endswith(typo)


@_SETTINGS
@given(_workload(), st.data(), st.from_regex(r"[a-z_]{1,20}", fullmatch=True))
def test_any_unknown_key_is_rejected(data: dict[str, Any], draw: Any, key: str) -> None:
    path, obj = draw.draw(st.sampled_from(_objects(data)))
    valid_here = _schema_keys(path)
    assume(key not in valid_here)
    obj[key] = 1
    with pytest.raises(TunerError, match=f'unknown key "{key}"') as info:
        parse_workload(data, "junk.yaml")
    assert info.value.where is not None and info.value.where.endswith(key)


@_SETTINGS
@given(_workload(), st.integers(0, 3), st.floats(0.01, 0.5))
def test_shares_that_do_not_sum_to_one_are_rejected(
    data: dict[str, Any], index: int, off: float
) -> None:
    state = data["states"][index % len(data["states"])]
    first = next(iter(state["operations"]))
    state["operations"][first] += off
    assume(state["operations"][first] <= 1)
    with pytest.raises(TunerError, match="shares must sum to 1"):
        parse_workload(data, "shares.yaml")


def _schema_keys(path: tuple[str | int, ...]) -> set[str]:
    """The keys the schema allows in the mapping at ``path`` of a workload."""
    schema = load_schema()
    node: dict[str, Any] = schema
    for part in path:
        node = node["items"] if isinstance(part, int) else node["properties"][part]
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return set(node["properties"])


def test_schema_file_is_plain_json() -> None:
    # Editors load it directly (yaml-language-server: $schema=...), so keep it strict JSON.
    json.loads((ROOT / "workloads" / "schema.json").read_text())
