"""Replay on RocksDB (rocksdict): open with options, run state calls, checkpoint, read metrics."""

from tuner.engine.base import CheckpointStats, Engine, EngineClosedError
from tuner.engine.bench import BenchResult, run_bench
from tuner.engine.fake import FakeEngine
from tuner.engine.replay import ReplayResult, replay
from tuner.engine.rocksdict_engine import RocksdictEngine, unsupported_settings

__all__ = [
    "BenchResult",
    "CheckpointStats",
    "Engine",
    "EngineClosedError",
    "FakeEngine",
    "ReplayResult",
    "RocksdictEngine",
    "replay",
    "run_bench",
    "unsupported_settings",
]
