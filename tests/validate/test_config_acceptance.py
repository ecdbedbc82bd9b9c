"""Emitted configuration files, read by real Flink: every key known, every value parsed.

Flink 2.3 reads config.yaml and Flink 1.20 flink-conf.yaml with their own loader; each key goes
through the typed ConfigOption that declares it (java/ConfigCheck.java), on the Flink 2.x and
1.20 installations of the ``flink2`` / ``flink120`` fixtures (tests/conftest.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.search._trials import BoundTrial
from tuner.flink import options as fo
from tuner.flink.catalog import load_catalog
from tuner.flink.emit import Setting, render_config_yaml, render_flink_conf
from tuner.search import space
from tuner.validate.acceptance import KeyVerdict, check_with_flink
from tuner.validate.flink import FlinkInstall
from tuner.workload import Memory

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def searched_settings() -> Iterator[dict[str, fo.FlinkValue]]:
    """Settings at both ends of every range, every categorical value, both memory modes."""
    n = max(len(space.COMPRESSION_LAYOUTS), 2)
    for mode in ("managed", "unmanaged"):
        memory = Memory(mode=mode)
        for high in (False, True):
            for choice in range(n):
                yield {
                    **fo.memory_settings(memory),
                    **space.suggest(BoundTrial(high, choice), memory),
                }


def _settings(values: dict[str, fo.FlinkValue], version: str) -> list[Setting]:
    catalog = load_catalog(version)
    out = [
        Setting("state.backend.type", "rocksdb", ""),
        Setting("execution.checkpointing.incremental", True, ""),
    ]
    out += [Setting(k, v, "") for k, v in values.items() if catalog.get(k) is not None]
    return out


def _write_rendered(tmp_path: Path, major: int) -> list[Path]:
    version = "2.3" if major == 2 else "1.20"
    name = "config.yaml" if major == 2 else "flink-conf.yaml"
    render = render_config_yaml if major == 2 else render_flink_conf
    catalog = load_catalog(version)
    files = []
    for i, values in enumerate(searched_settings()):
        path = tmp_path / f"rendered-{i}" / name
        path.parent.mkdir()
        path.write_text(render(_settings(values, version), catalog, f"rendered #{i}"))
        files.append(path)
    return files


def _problems(verdicts: list[KeyVerdict]) -> list[str]:
    return [f"{v.file}: {v.key}: {v.status} {v.detail}" for v in verdicts if not v.ok]


def _golden(tmp_path: Path, golden: str, name: str) -> Path:
    path = tmp_path / "golden" / name
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(GOLDEN / golden, path)
    return path


def test_search_space_covers_every_compression_layout() -> None:
    layouts = {s[fo.COMPRESSION_PER_LEVEL] for s in searched_settings()}
    assert layouts == set(space.COMPRESSION_LAYOUTS.values())
    keys = set().union(*(s.keys() for s in searched_settings()))
    assert set(space.searched_keys(Memory())) <= keys


def test_flink_2_accepts_emitted_config_yaml(flink2: FlinkInstall, tmp_path: Path) -> None:
    files = [
        _golden(tmp_path, "emit-2.3-config.yaml", "config.yaml"),
        *_write_rendered(tmp_path, 2),
    ]
    verdicts = check_with_flink(flink2, files, tmp_path / "work")
    assert _problems(verdicts) == []
    checked = {v.file for v in verdicts}
    assert checked == {str(f) for f in files}  # every file read, none silently empty
    typed = {v.key: v.detail for v in verdicts if v.file == str(files[0])}
    assert typed["state.backend.rocksdb.writebuffer.size"] == "32 mb"
    assert typed["state.backend.rocksdb.compression.per.level"] == (
        "[NO_COMPRESSION, NO_COMPRESSION, LZ4_COMPRESSION]"
    )


def test_flink_120_accepts_emitted_flink_conf(flink120: FlinkInstall, tmp_path: Path) -> None:
    files = [
        _golden(tmp_path, "emit-1.20-flink-conf.yaml", "flink-conf.yaml"),
        *_write_rendered(tmp_path, 1),
    ]
    verdicts = check_with_flink(flink120, files, tmp_path / "work")
    assert _problems(verdicts) == []
    assert {v.file for v in verdicts} == {str(f) for f in files}


@pytest.mark.parametrize("major", [2, 1])
def test_unknown_keys_and_bad_values_are_caught(
    major: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    flink: FlinkInstall = request.getfixturevalue("flink2" if major == 2 else "flink120")
    name = "config.yaml" if major == 2 else "flink-conf.yaml"
    path = tmp_path / "bad" / name
    path.parent.mkdir()
    path.write_text(
        "state.backend.rocksdb.writebuffer.size: 64 mb\n"
        "state.backend.rocksdb.writebufer.count: 3\n"  # misspelt: Flink would ignore it
        "state.backend.rocksdb.compaction.style: SIDEWAYS\n"
    )
    verdicts = {v.key: v for v in check_with_flink(flink, [path], tmp_path / "work")}
    assert verdicts["state.backend.rocksdb.writebuffer.size"].ok
    assert verdicts["state.backend.rocksdb.writebufer.count"].status == "UNKNOWN"
    assert verdicts["state.backend.rocksdb.compaction.style"].status == "INVALID"
    assert "SIDEWAYS" in verdicts["state.backend.rocksdb.compaction.style"].detail
