"""Shared fixtures: both engines, and a helper that builds operation batches row by row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tuner.engine.base import Engine
from tuner.engine.fake import FakeEngine
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.trace.ops import COLUMNS, OpBatch, StateInfo, StreamHeader

HEADER = StreamHeader(
    states=(
        StateInfo("v", "value"),
        StateInfo("vt", "value", ttl=True),
        StateInfo("agg", "aggregating", key_type="string", key_size=6),
        StateInfo("l", "list", windowed=True),
        StateInfo("m", "map", user_key_size=8),
        StateInfo("_timer_state/event_window-timers", "timers", windowed=True),
        StateInfo("_timer_state/event_user-timers", "timers"),
    ),
    max_parallelism=128,
)
WINDOW_TIMERS = "_timer_state/event_window-timers"
USER_TIMERS = "_timer_state/event_user-timers"

_DEFAULTS = {"ns_start": -1, "ns_end": -1, "user_key": -1, "timer_ts": -1, "value_size": 0}


def batch(*rows: dict[str, Any], header: StreamHeader = HEADER) -> OpBatch:
    """Rows as dicts: ``state`` may be a state name; missing columns take neutral defaults."""
    names = header.names
    out: dict[str, list[int]] = {name: [] for name, _ in COLUMNS}
    for i, row in enumerate(rows):
        r = {"ts": i, **_DEFAULTS, **row}
        if isinstance(r["state"], str):
            r["state"] = names.index(r["state"])
        for name, _ in COLUMNS:
            out[name].append(int(r[name]))
    return OpBatch.from_columns(names, out)


ENGINES: dict[str, type[Engine]] = {"rocksdict": RocksdictEngine, "fake": FakeEngine}


@pytest.fixture(params=sorted(ENGINES))
def engine_cls(request: pytest.FixtureRequest) -> type[Engine]:
    return ENGINES[request.param]


def small_config(**kw: Any) -> RocksDBConfig:
    """Small memtables and files, so tests reach SST files and compactions on little data."""
    base: dict[str, Any] = {
        "write_buffer_size": 256 << 10,
        "target_file_size_base": 256 << 10,
        "max_bytes_for_level_base": 1 << 20,
        "block_cache_size": 1 << 20,
        "bloom_bits_per_key": 10.0,
    }
    base.update(kw)
    return RocksDBConfig(**base)


@pytest.fixture
def engine(engine_cls: type[Engine], tmp_path: Path) -> Iterator[Engine]:
    e = engine_cls()
    e.open(small_config(), HEADER, tmp_path / "db", timer_cache_size=2, sample_every=1)
    with e:
        yield e
