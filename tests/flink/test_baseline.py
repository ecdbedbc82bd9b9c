"""A user's config read as settings for the replay (tuner.flink.baseline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.flink.baseline import read_user_config, settings_from_json
from tuner.flink.config_check import check_config
from tuner.flink.memory import Memory
from tuner.units import KIB, MIB

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def test_config_yaml_becomes_typed_settings() -> None:
    user = read_user_config(CONFIGS / "good" / "config.yaml", "2.x")
    s = user.settings
    assert s[fo.WRITE_BUFFER_SIZE] == 64 * MIB
    assert s[fo.MAX_WRITE_BUFFER_NUMBER] == 3
    assert s[fo.BLOCK_SIZE] == 16 * KIB
    assert s[fo.USE_BLOOM_FILTER] is True
    assert s[fo.COMPRESSION_PER_LEVEL] == ("NO_COMPRESSION", "LZ4_COMPRESSION")
    # A catalog option the replay does not model is listed, not applied.
    assert "state.backend.rocksdb.compaction.filter.periodic-compaction-time" in user.ignored
    fo.resolve(s, Memory())  # the replay can open an instance with them


def test_deployment_and_legacy_files_are_read_too() -> None:
    deployment = read_user_config(CONFIGS / "good" / "flinkdeployment.yaml", "2.x")
    assert deployment.settings
    legacy = CONFIGS / "good" / "flink-1.20" / "flink-conf.yaml"
    assert read_user_config(legacy, "1.20").settings


def test_budget_keys_come_from_the_workload(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_text(
        "state.backend.rocksdb.memory.managed: false\nstate.backend.rocksdb.thread.num: 4\n"
    )
    user = read_user_config(f, "2.x")
    assert user.settings == {fo.THREAD_NUM: 4}
    assert fo.MEMORY_MANAGED in user.ignored


@pytest.mark.parametrize("name", ["unknown-key.yaml", "bad-enum.yaml", "set-twice.yaml"])
def test_a_bad_config_fails_with_check_configs_message(name: str) -> None:
    path = CONFIGS / "bad" / name
    expected = [str(p) for p in check_config(path, "2.x").problems]
    with pytest.raises(TunerError) as err:
        read_user_config(path, "2.x")
    assert all(e in str(err.value) for e in expected)


def test_settings_from_json_restores_tuples() -> None:
    assert settings_from_json({"a": ["X", "Y"], "b": 3}) == {"a": ("X", "Y"), "b": 3}
