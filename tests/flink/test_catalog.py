"""The option catalogs: extracted from Flink's jars, parsed and formatted as Flink does."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import flink_install
from tuner.errors import TunerError
from tuner.flink.catalog import Catalog, FlinkValue, RawValue, catalog_id, load_catalog
from tuner.units import MIB, parse_duration_ms

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_TSV = Path("/work/shared/reference/flink-2.3.0-rocksdb-options.tsv")


@pytest.fixture(scope="module")
def c23() -> Catalog:
    return load_catalog("2.3")


@pytest.fixture(scope="module")
def c120() -> Catalog:
    return load_catalog("1.20")


@pytest.mark.parametrize(
    ("given_version", "expected"),
    [
        ("1.20", "1.20"),
        ("1.20.x", "1.20"),
        ("1.20.1", "1.20"),
        ("2", "2.3"),
        ("2.x", "2.3"),
        ("2.0", "2.3"),
        ("2.1", "2.3"),
        ("2.2.0", "2.3"),
        ("2.3", "2.3"),
        (" 2.3.0 ", "2.3"),
    ],
)
def test_version_mapping(given_version: str, expected: str) -> None:
    assert catalog_id(given_version) == expected
    assert load_catalog(given_version).version == expected


@pytest.mark.parametrize("bad", ["1.19", "1.2", "2.4", "3", "", "latest", "1.20.x.1"])
def test_unsupported_version_names_the_supported_ones(bad: str) -> None:
    with pytest.raises(TunerError, match=r"supported are 1\.20") as info:
        load_catalog(bad)
    assert repr(bad) in str(info.value)


def test_releases_come_from_the_jars(c23: Catalog, c120: Catalog) -> None:
    assert c23.release == "2.3.0"
    assert c120.release.startswith("1.20.")


def _reference_default(spec_type: str, text: str) -> object:
    """The reference TSV prints defaults with Java's toString (PT720H, [A, B], null)."""
    if text == "null":
        return None
    if spec_type == "Duration":
        return parse_duration_ms(text)
    if spec_type == "List<Enum>":
        return tuple(item.strip() for item in text.strip("[]").split(","))
    return text


def test_2_3_catalog_matches_the_reference_tsv(c23: Catalog) -> None:
    with REFERENCE_TSV.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    reference = {row[0]: row for row in rows}
    rocksdb = {k for k in c23.options if k.startswith("state.backend.rocksdb.")}
    # The reference lists RocksDBConfigurableOptions and RocksDBOptions; the catalog also holds
    # the native-metric and manual-compaction classes, and nothing else beyond the reference.
    assert set(reference) <= rocksdb
    extra = rocksdb - set(reference)
    assert {k.split(".")[3] for k in extra} == {"metrics", "manual-compaction"}
    for key, (_, default, fallback, _description) in reference.items():
        spec = c23.options[key]
        expected = _reference_default(spec.type, default)
        if spec.type in ("Duration", "List<Enum>") or expected is None:
            assert c23.default_value(key) == expected, key
        else:
            assert c23.default_value(key) == c23.parse_value(key, default), key
        assert spec.fallback_keys + spec.deprecated_keys == tuple(filter(None, [fallback])), key


def test_checkpoint_and_backend_keys_per_version(c23: Catalog, c120: Catalog) -> None:
    for catalog in (c23, c120):
        incremental = catalog.spec("execution.checkpointing.incremental")
        assert incremental.type == "Boolean"
        assert incremental.deprecated_keys == ("state.backend.incremental",)
        assert catalog.get("state.backend.incremental") is incremental
        assert catalog.spec("execution.checkpointing.interval").type == "Duration"
        assert catalog.spec("state.backend.type").default == "hashmap"
    # The periodic compaction filter options arrived after 1.20.
    assert "state.backend.rocksdb.compaction.filter.periodic-compaction-time" in c23.options
    assert c120.get("state.backend.rocksdb.compaction.filter.periodic-compaction-time") is None


def test_descriptions_are_plain_text(c23: Catalog) -> None:
    for spec in c23.options.values():
        assert spec.description, spec.key
        assert not re.search(r"</?[a-z]+[ />]", spec.description), spec.key  # no HTML tags
        assert "Description@" not in spec.description, spec.key


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("state.backend.rocksdb.writebuffer.size", "64mb", 64 * MIB),
        ("state.backend.rocksdb.writebuffer.size", "64 MB", 64 * MIB),
        ("state.backend.rocksdb.writebuffer.size", 1024, 1024),
        ("state.backend.rocksdb.compaction.filter.periodic-compaction-time", "PT720H", 2592000000),
        ("state.backend.rocksdb.compaction.filter.periodic-compaction-time", 500, 500),
        ("state.backend.rocksdb.use-bloom-filter", "TRUE", True),
        ("state.backend.rocksdb.use-bloom-filter", "False", False),
        ("state.backend.rocksdb.use-bloom-filter", True, True),
        ("state.backend.rocksdb.thread.num", "+4", 4),
        ("state.backend.rocksdb.thread.num", 4, 4),
        ("state.backend.rocksdb.files.open", "-1", -1),
        (
            "state.backend.rocksdb.compaction.filter.query-time-after-num-entries",
            "2147483648",
            2**31,
        ),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "10", 10.0),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", " 7.5 ", 7.5),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "1e1", 10.0),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "10d", 10.0),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "0x1p3", 8.0),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "-Infinity", -math.inf),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", 12, 12.0),
        ("state.backend.rocksdb.compaction.style", "level", "LEVEL"),
        ("state.backend.rocksdb.compaction.style", "Universal", "UNIVERSAL"),
        ("state.backend.rocksdb.timer-service.factory", "heap", "HEAP"),
        (
            "state.backend.rocksdb.compression.per.level",
            "LZ4_COMPRESSION;ZSTD_COMPRESSION",
            ("LZ4_COMPRESSION", "ZSTD_COMPRESSION"),
        ),
        (
            "state.backend.rocksdb.compression.per.level",
            "lz4_compression; zstd_compression",
            ("LZ4_COMPRESSION", "ZSTD_COMPRESSION"),
        ),
        (
            "state.backend.rocksdb.compression.per.level",
            "[LZ4_COMPRESSION, ZSTD_COMPRESSION]",
            ("LZ4_COMPRESSION", "ZSTD_COMPRESSION"),
        ),
        (
            "state.backend.rocksdb.compression.per.level",
            "'LZ4_COMPRESSION';ZSTD_COMPRESSION",
            ("LZ4_COMPRESSION", "ZSTD_COMPRESSION"),
        ),
        ("state.backend.rocksdb.compression.per.level", "LZ4_COMPRESSION;", ("LZ4_COMPRESSION",)),
        ("state.backend.rocksdb.compression.per.level", "", ()),
        (
            "state.backend.rocksdb.compression.per.level",
            ["no_compression", "LZ4_COMPRESSION"],
            ("NO_COMPRESSION", "LZ4_COMPRESSION"),
        ),
        ("state.backend.rocksdb.localdir", "/data/rocksdb", "/data/rocksdb"),
        ("state.backend.incremental", "true", True),
    ],
)
def test_parse_value_accepts_what_flink_accepts(
    c23: Catalog, key: str, raw: RawValue, expected: FlinkValue
) -> None:
    assert c23.parse_value(key, raw) == expected


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        (
            "state.backend.rocksdb.writebuffer.size",
            "64 mib",
            'expected a memory size like "64 mb", "4 kb" or "1 gb", got \'64 mib\'',
        ),
        (
            "state.backend.rocksdb.writebuffer.size",
            True,
            'expected a memory size like "64 mb", "4 kb" or "1 gb", got True (bool)',
        ),
        ("state.backend.rocksdb.use-bloom-filter", "yes", "expected true or false, got 'yes'"),
        ("state.backend.rocksdb.use-bloom-filter", " true", "expected true or false, got ' true'"),
        ("state.backend.rocksdb.use-bloom-filter", 1, "expected true or false, got 1 (int)"),
        ("state.backend.rocksdb.thread.num", "4.0", "expected a whole number between"),
        ("state.backend.rocksdb.thread.num", " 4", "expected a whole number between"),
        ("state.backend.rocksdb.thread.num", "2147483648", "expected a whole number between"),
        ("state.backend.rocksdb.thread.num", "1_000", "expected a whole number between"),
        ("state.backend.rocksdb.thread.num", 4.0, "expected a whole number between"),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "ten", "expected a number like"),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "1_0", "expected a number like"),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", "nan", "expected a number like"),
        (
            "state.backend.rocksdb.compaction.style",
            "LEVEL ",
            "expected one of LEVEL, UNIVERSAL, FIFO, NONE (case-insensitive), got 'LEVEL '",
        ),
        (
            "state.backend.rocksdb.compression.per.level",
            "LZ4;ZSTD_COMPRESSION",
            "expected a ';'-separated list of NO_COMPRESSION, SNAPPY_COMPRESSION",
        ),
        ("state.backend.rocksdb.compression.per.level", "'LZ4_COMPRESSION", "expected a ';'"),
        (
            "state.backend.rocksdb.compaction.filter.periodic-compaction-time",
            "30 days ago",
            'expected a duration like "10 s"',
        ),
        ("state.backend.rocksdb.writebuffer.size", ["64 mb"], "expected a memory size"),
    ],
)
def test_parse_value_rejects_what_flink_rejects(
    c23: Catalog, key: str, raw: RawValue, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        c23.parse_value(key, raw)
    assert str(info.value).startswith(message)


def test_flink_1_20_does_not_read_iso_durations(c120: Catalog, c23: Catalog) -> None:
    key = "execution.checkpointing.interval"
    assert c23.parse_value(key, "PT10S") == 10_000
    with pytest.raises(ValueError, match="expected a duration"):
        c120.parse_value(key, "PT10S")
    assert c120.parse_value(key, "10 s") == 10_000


def test_parse_value_of_unknown_key_is_a_programming_error(c23: Catalog) -> None:
    with pytest.raises(ValueError, match=r"not an option of the Flink 2\.3 catalog"):
        c23.parse_value("state.backend.rocksdb.nope", "1")


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("state.backend.rocksdb.writebuffer.size", 64 * MIB, "64 mb"),
        ("state.backend.rocksdb.block.blocksize", 16 << 10, "16 kb"),
        ("state.backend.rocksdb.compaction.filter.periodic-compaction-time", 2592000000, "30 d"),
        ("execution.checkpointing.interval", 10_000, "10 s"),
        ("state.backend.rocksdb.use-bloom-filter", True, "true"),
        ("state.backend.rocksdb.thread.num", 4, "4"),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", 10.0, "10.0"),
        ("state.backend.rocksdb.bloom-filter.bits-per-key", 1e-05, "1e-05"),
        ("state.backend.rocksdb.memory.write-buffer-ratio", 1, "1.0"),
        ("state.backend.rocksdb.compaction.style", "UNIVERSAL", "UNIVERSAL"),
        (
            "state.backend.rocksdb.compression.per.level",
            ("NO_COMPRESSION", "LZ4_COMPRESSION"),
            "NO_COMPRESSION;LZ4_COMPRESSION",
        ),
        ("state.backend.type", "rocksdb", "rocksdb"),
    ],
)
def test_format_value(c23: Catalog, key: str, value: FlinkValue, text: str) -> None:
    assert c23.format_value(key, value) == text
    assert c23.parse_value(key, text) == value


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("state.backend.rocksdb.writebuffer.size", "64 mb"),
        ("state.backend.rocksdb.writebuffer.size", True),
        ("state.backend.rocksdb.use-bloom-filter", 1),
        ("state.backend.rocksdb.thread.num", 2**31),
        ("state.backend.rocksdb.compaction.style", "level"),
        ("state.backend.rocksdb.compression.per.level", "LZ4_COMPRESSION"),
        ("state.backend.rocksdb.compression.per.level", ("LZ4",)),
    ],
)
def test_format_value_rejects_wrong_python_types(c23: Catalog, key: str, value: Any) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        c23.format_value(key, value)


@pytest.mark.parametrize("version", ["2.3", "1.20"])
def test_every_default_round_trips(version: str) -> None:
    catalog = load_catalog(version)
    for key, spec in catalog.options.items():
        value = catalog.default_value(key)
        if value is None:
            assert spec.default is None
            continue
        assert catalog.parse_value(key, catalog.format_value(key, value)) == value, key


@given(st.floats(allow_nan=False))
def test_double_round_trip(number: float) -> None:
    catalog = load_catalog("2.3")
    key = "state.backend.rocksdb.memory.write-buffer-ratio"
    assert catalog.parse_value(key, catalog.format_value(key, number)) == number


@given(st.lists(st.sampled_from(["NO_COMPRESSION", "LZ4_COMPRESSION", "ZSTD_COMPRESSION"])))
def test_compression_list_round_trip(levels: list[str]) -> None:
    catalog = load_catalog("1.20")
    key = "state.backend.rocksdb.compression.per.level"
    value = tuple(levels)
    assert catalog.parse_value(key, catalog.format_value(key, value)) == value


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("state.backend.rocksdb.writebuffer.sise", "state.backend.rocksdb.writebuffer.size"),
        ("state.backend.rocksdb.block.cache_size", "state.backend.rocksdb.block.cache-size"),
        ("state.backend.rocksdb.bloomfilter", "state.backend.rocksdb.use-bloom-filter"),
        ("completely.unrelated", None),
    ],
)
def test_suggest(c23: Catalog, typo: str, expected: str | None) -> None:
    assert c23.suggest(typo) == expected


# --- regenerating the catalogs from the real jars -------------------------------------------


def _extractor() -> ModuleType:
    path = ROOT / "tools" / "catalog" / "extract_catalog.py"
    spec = importlib.util.spec_from_file_location("extract_catalog", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("version", ["2.3", "1.20"])
def test_shipped_catalog_matches_the_jars(version: str, tmp_path: Path) -> None:
    lib = flink_install(version).lib
    out = tmp_path / f"catalog-{version}.json"
    assert _extractor().main(["--pyflink-lib", str(lib), "--version", version, "-o", str(out)]) == 0
    shipped = ROOT / "tuner" / "flink" / "data" / f"catalog-{version}.json"
    assert json.loads(out.read_text()) == json.loads(shipped.read_text())
    assert out.read_text() == shipped.read_text()
