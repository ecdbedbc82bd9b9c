"""The rendered OPTIONS file loads in real RocksDB (rocksdict) with the values it states."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import rocksdict as rd

from tuner.flink.options_file import (
    cf_options,
    db_options,
    render_options_file,
    table_options,
)
from tuner.flink.rocksdb_config import RocksDBConfig

CONFIGS = {
    "defaults": RocksDBConfig(),
    "tuned": RocksDBConfig(
        max_background_jobs=4,
        max_open_files=500,
        level_compaction_dynamic_level_bytes=True,
        target_file_size_base=32 << 20,
        max_bytes_for_level_base=128 << 20,
        write_buffer_size=3 << 20,
        max_write_buffer_number=4,
        min_write_buffer_number_to_merge=2,
        compression_per_level=("kNoCompression", "kLZ4Compression", "kZSTD"),
        block_size=16 << 10,
        metadata_block_size=8 << 10,
        block_cache_size=5 << 20,
        bloom_bits_per_key=9.5,
        cache_index_and_filter_blocks=True,
        cache_index_and_filter_blocks_with_high_priority=False,
        pin_l0_filter_and_index_blocks_in_cache=True,
        partitioned_index_filters=True,
        pin_top_level_index_and_filter=True,
    ),
    "universal": RocksDBConfig(compaction_style="universal", write_buffer_size=1 << 20),
    "shared-fifo": RocksDBConfig(
        shared_cache_bytes=64 << 20,
        write_buffer_manager_bytes=16 << 20,
        high_prio_pool_ratio=0.1,
        compaction_style="fifo",
        compression_per_level=(),
    ),
}
FAMILIES = ["value-state", "_timer_state/event_window-timers"]


def parse_options(text: str) -> dict[str, dict[str, str]]:
    """An OPTIONS file as {section title: {key: value}}."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            current = sections.setdefault(m.group(1), {})
            continue
        assert current is not None, f"entry outside a section: {line!r}"
        key, _, value = line.partition("=")
        current[key] = value
    return sections


def _load_and_reopen(text: str, tmp_path: Path) -> tuple[dict[str, dict[str, str]], rd.Rdict]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "OPTIONS-000001").write_text(text)
    opts, families = rd.Options.load_latest(str(src))
    opts.create_if_missing(True)
    db = rd.Rdict(str(tmp_path / "db"), opts, column_families=families)
    written = sorted((tmp_path / "db").glob("OPTIONS-*"))[-1]
    return parse_options(written.read_text()), db


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_rocksdb_loads_the_file_with_its_values(name: str, tmp_path: Path) -> None:
    config = CONFIGS[name]
    text = render_options_file(config, FAMILIES)
    saved, db = _load_and_reopen(text, tmp_path)
    try:
        # RocksDB re-serialises what it loaded into its own OPTIONS file: compare entry by entry.
        for key, value in db_options(config).items():
            if key.startswith("create_"):
                continue  # open-time flags, not persisted
            assert saved["DBOptions"][key] == value, key
        for family in ["default", *FAMILIES]:
            for key, value in cf_options(config).items():
                assert saved[f'CFOptions "{family}"'][key] == value, (family, key)
            table = saved[f'TableOptions/BlockBasedTable "{family}"']
            for key, value in table_options(config).items():
                assert table[key] == value, (family, key)
    finally:
        db.close()


def test_sections_are_in_rocksdb_spelling() -> None:
    text = render_options_file(CONFIGS["tuned"], ["s"])
    sections = list(parse_options(text))
    assert sections == [
        "Version",
        "DBOptions",
        'CFOptions "default"',
        'TableOptions/BlockBasedTable "default"',
        'CFOptions "s"',
        'TableOptions/BlockBasedTable "s"',
    ]
    parsed = parse_options(text)
    assert parsed['TableOptions/BlockBasedTable "s"']["filter_policy"] == "bloomfilter:9.5:false"
    assert (
        parsed['CFOptions "s"']["compression_per_level"] == "kNoCompression:kLZ4Compression:kZSTD"
    )


def test_shared_memory_is_stated_in_comments_not_as_per_family_caches() -> None:
    text = render_options_file(CONFIGS["shared-fifo"], ["s"])
    assert "ONE LRU block cache of 67108864 bytes" in text
    assert "high_pri_pool_ratio: 0.1" in text
    assert "block_cache" not in text.replace("block cache", "")
    assert "own LRU block cache" in render_options_file(RocksDBConfig(), ["s"])
    assert "filter_policy=nullptr" in text


def test_default_family_is_written_once_and_names_are_checked() -> None:
    text = render_options_file(RocksDBConfig(), ["default", "a"])
    assert text.count('[CFOptions "default"]') == 1
    with pytest.raises(ValueError, match="unique"):
        render_options_file(RocksDBConfig(), ["a", "a"])
    with pytest.raises(ValueError, match="cannot be written"):
        render_options_file(RocksDBConfig(), ['bad"name'])
