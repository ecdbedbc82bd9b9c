"""check-config: good and bad Flink config files, each bad one with the exact problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.errors import TunerError
from tuner.flink.config_check import Problem, check_config, check_config_file, read_config_entries
from tuner.units import MIB

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
COMPRESSIONS = (
    "NO_COMPRESSION, SNAPPY_COMPRESSION, ZLIB_COMPRESSION, BZLIB2_COMPRESSION, LZ4_COMPRESSION, "
    "LZ4HC_COMPRESSION, XPRESS_COMPRESSION, ZSTD_COMPRESSION, DISABLE_COMPRESSION_OPTION"
)
MEMORY = 'expected a memory size like "64 mb", "4 kb" or "1 gb"'
RDB = "state.backend.rocksdb."


def test_good_config_yaml_flattens_nested_keys() -> None:
    result = check_config(CONFIGS / "good" / "config.yaml", "2.x")
    assert result.dialect == "config.yaml"
    assert result.problems == []
    assert result.unchecked_keys == ["parallelism.default", "taskmanager.memory.process.size"]
    assert result.values == {
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": True,
        "execution.checkpointing.interval": 30_000,
        RDB + "writebuffer.size": 64 * MIB,
        RDB + "writebuffer.count": 3,
        RDB + "block.cache-size": 256 * MIB,
        RDB + "block.blocksize": 16 << 10,
        RDB + "use-bloom-filter": True,
        RDB + "bloom-filter.bits-per-key": 10.0,
        RDB + "compaction.style": "LEVEL",
        RDB + "compression.per.level": ("NO_COMPRESSION", "LZ4_COMPRESSION"),
        RDB + "compaction.filter.periodic-compaction-time": 720 * 3_600_000,
    }


def test_good_flink_conf_uses_the_legacy_line_parser() -> None:
    result = check_config(CONFIGS / "good" / "flink-1.20" / "flink-conf.yaml", "1.20")
    assert result.dialect == "flink-conf.yaml"
    assert result.problems == []
    assert result.unchecked_keys == ["jobmanager.rpc.address"]
    assert result.values == {
        "state.backend.type": "rocksdb",
        # set through its deprecated key, state.backend.incremental
        "execution.checkpointing.incremental": True,
        "execution.checkpointing.interval": 120_000,
        RDB + "writebuffer.size": 32 * MIB,
        RDB + "compression.per.level": ("NO_COMPRESSION", "LZ4_COMPRESSION"),
        RDB + "timer-service.factory": "HEAP",
        RDB + "memory.write-buffer-ratio": 0.4,
    }


def test_good_flink_deployment_reads_spec_flink_configuration() -> None:
    result = check_config(CONFIGS / "good" / "flinkdeployment.yaml", "2.1")
    assert result.dialect == "FlinkDeployment"
    assert result.problems == []
    assert result.unchecked_keys == ["taskmanager.numberOfTaskSlots"]
    assert result.values == {
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": True,
        RDB + "writebuffer.size": 128 * MIB,
        RDB + "thread.num": 4,
    }


BAD_CASES: list[tuple[str, str, list[tuple[str, int, str]]]] = [
    (
        "unknown-key.yaml",
        "2.3",
        [
            (
                RDB + "writebuffer.sise",
                2,
                "unknown option for Flink 2.3 (Flink silently ignores it); "
                "did you mean 'state.backend.rocksdb.writebuffer.size'?",
            )
        ],
    ),
    ("bad-memory-unit.yaml", "2.3", [(RDB + "block.cache-size", 1, f"{MEMORY}, got '64 mib'")]),
    (
        "bad-enum.yaml",
        "2.3",
        [
            (
                RDB + "compaction.style",
                1,
                "expected one of LEVEL, UNIVERSAL, FIFO, NONE (case-insensitive), got 'LEVELED'",
            )
        ],
    ),
    (
        "yes-is-not-a-boolean.yaml",
        "2.3",
        [(RDB + "use-bloom-filter", 2, "expected true or false, got 'yes'")],
    ),
    (
        "bad-compression-list.yaml",
        "2.3",
        [
            (
                RDB + "compression.per.level",
                1,
                f"expected a ';'-separated list of {COMPRESSIONS} (case-insensitive), "
                "got 'LZ4;SNAPPY_COMPRESSION'",
            )
        ],
    ),
    (
        "nested-fraction-for-int.yaml",
        "2.3",
        [
            (
                RDB + "thread.num",
                4,
                "expected a whole number between -2147483648 and 2147483647, got 2.5 (float)",
            )
        ],
    ),
    (
        "set-twice.yaml",
        "2.3",
        [
            (
                RDB + "writebuffer.count",
                6,
                "state.backend.rocksdb.writebuffer.count is set more than once (first on line 1); "
                "Flink uses the last value",
            )
        ],
    ),
    ("no-value.yaml", "2.3", [(RDB + "localdir", 1, "has no value")]),
    (
        "only-in-2x.yaml",
        "1.20",
        [
            (
                RDB + "compaction.filter.periodic-compaction-time",
                1,
                "unknown option for Flink 1.20 (Flink silently ignores it); "
                "it is an option of Flink 2.3 only",
            )
        ],
    ),
    (
        "legacy-quoted/flink-conf.yaml",
        "1.20",
        [
            (
                RDB + "writebuffer.size",
                1,
                f"{MEMORY}, got '\"64 mb\"' "
                "(flink-conf.yaml keeps quotes as part of the value; remove them)",
            )
        ],
    ),
    (
        "legacy-missing-space/flink-conf.yaml",
        "1.20",
        [("line 2", 2, "not a 'key: value' line (missing space after ':'?); Flink ignores it")],
    ),
    (
        "legacy-iso-duration/flink-conf.yaml",
        "1.20",
        [
            (
                "execution.checkpointing.interval",
                1,
                'expected a duration like "10 s", "500 ms", "1 min" or "2 h", got \'PT10S\'',
            )
        ],
    ),
    (
        "deployment-unquoted-number.yaml",
        "2.3",
        [
            (RDB + "thread.num", 7, "flinkConfiguration values must be strings, got 4; quote it"),
            (RDB + "block.blocksize", 8, f"{MEMORY}, got '4 kbytes'"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "version", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_config_reports_the_exact_problem(
    name: str, version: str, expected: list[tuple[str, int, str]]
) -> None:
    path = CONFIGS / "bad" / name
    problems = check_config_file(path, version)
    assert problems == [
        Problem(str(path), where, message, line) for where, line, message in expected
    ]


def test_every_bad_file_has_a_case() -> None:
    files = {p.relative_to(CONFIGS / "bad").as_posix() for p in (CONFIGS / "bad").rglob("*.yaml")}
    assert files == {name for name, _, _ in BAD_CASES}


def test_problem_prints_file_line_and_key() -> None:
    problem = Problem("conf.yaml", RDB + "thread.num", "expected a whole number", 3)
    assert str(problem) == "conf.yaml:3: state.backend.rocksdb.thread.num: expected a whole number"


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("syntax-error.yaml", "line 3, column 20", "invalid YAML: expected ',' or ']'"),
        ("not-a-mapping.yaml", "line 1, column 1", "a Flink config.yaml must be a mapping"),
        ("not-utf8.yaml", None, "cannot read the config file: 'utf-8' codec can't decode"),
        ("missing.yaml", None, "cannot read the config file: [Errno 2]"),
    ],
)
def test_unreadable_files_raise_tuner_error(name: str, where: str | None, message: str) -> None:
    path = CONFIGS / "error" / name
    with pytest.raises(TunerError) as info:
        check_config_file(path, "2.3")
    assert info.value.file == str(path)
    assert info.value.where == where
    assert info.value.message.startswith(message)


def test_unsupported_version_is_a_tuner_error() -> None:
    with pytest.raises(TunerError, match=r"unsupported Flink version '1\.18'"):
        check_config_file(CONFIGS / "good" / "config.yaml", "1.18")


def test_legacy_parser_quirks(tmp_path: Path) -> None:
    path = tmp_path / "flink-conf.yaml"
    path.write_text(
        "# comment\n"
        "a.key: value # trailing comment\n"
        "url: http://host:8081/x#frag\n"
        "  spaced.key  :   spaced value  \n"
        "empty.value: \n"
        "\n",
        encoding="utf-8",
    )
    entries = [(e.key, e.value, e.line) for e in read_config_entries(path)]
    assert entries == [
        ("a.key", "value", 2),
        # the first ": " splits; "#" starts a comment even inside a URL
        ("url", "http://host:8081/x", 3),
        ("spaced.key", "spaced value", 4),
    ]
    problems = [(p.where, p.line, p.message) for p in check_config(path, "1.20").problems]
    assert problems == [("empty.value", 5, "has no value; Flink ignores the line")]


def test_config_yaml_is_read_as_yaml_1_2(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "a: yes\nb: 1_000\nc: 010\nd: 2024-01-01\ne: ~\nf: [x, 1]\ng: 0x10\n", encoding="utf-8"
    )
    values = {e.key: e.value for e in read_config_entries(path)}
    assert values == {
        "a": "yes",
        "b": "1_000",
        "c": 10,
        "d": "2024-01-01",
        "e": None,
        "f": ["x", 1],
        "g": 16,
    }


def test_empty_config_yaml_has_no_entries(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# nothing set\n", encoding="utf-8")
    assert check_config(path, "2.3").values == {}


@pytest.mark.parametrize("version", ["2.x", "1.20"])
def test_native_metric_and_manual_compaction_keys_are_known(tmp_path: Path, version: str) -> None:
    """RocksDBNativeMetricOptions and RocksDBManualCompactionOptions are in the catalogs."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "state.backend.rocksdb.metrics.block-cache-usage: true\n"
        "state.backend.rocksdb.metrics.estimate-pending-compaction-bytes: true\n"
        "state.backend.rocksdb.metrics.column-family-as-variable: true\n"
        "state.backend.rocksdb.manual-compaction.min-interval: 10 min\n"
        "state.backend.rocksdb.manual-compaction.max-files-to-compact: 30\n"
    )
    result = check_config(path, version, dialect="config.yaml")
    assert result.problems == []
    assert result.values["state.backend.rocksdb.manual-compaction.min-interval"] == 600_000
