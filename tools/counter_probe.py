"""Replay one configuration of a workload and print RocksDB's tickers over the measured phase.

    python tools/counter_probe.py WORKLOAD [--predefined NAME] [--set KEY=VALUE ...]

The counterpart of the Flink validation job's tickers (validation.csv), with block-cache misses
split by block type, so a difference between the replay and Flink can be traced to data, index
or filter blocks. Prints one ``ticker value`` line each, per 1,000 state calls and absolute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tuner.engine.replay import replay
from tuner.engine.rocksdict_engine import RocksdictEngine
from tuner.flink import options as fo
from tuner.flink.catalog import load_catalog
from tuner.trace.generator import generate, stream_header
from tuner.workload import load_workload

TICKERS = (
    "rocksdb.block.cache.hit",
    "rocksdb.block.cache.miss",
    "rocksdb.block.cache.data.hit",
    "rocksdb.block.cache.data.miss",
    "rocksdb.block.cache.index.hit",
    "rocksdb.block.cache.index.miss",
    "rocksdb.block.cache.filter.hit",
    "rocksdb.block.cache.filter.miss",
    "rocksdb.block.cache.data.bytes.insert",
    "rocksdb.block.cache.index.bytes.insert",
    "rocksdb.block.cache.filter.bytes.insert",
    "rocksdb.last.level.read.bytes",
    "rocksdb.non.last.level.read.bytes",
    "rocksdb.compact.read.bytes",
    "rocksdb.flush.write.bytes",
    "rocksdb.compact.write.bytes",
    "rocksdb.bloom.filter.useful",
    "rocksdb.number.keys.read",
)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", type=Path)
    p.add_argument("--predefined", default=None, help="one of Flink's predefined option sets")
    p.add_argument("--set", action="append", default=[], help="a Flink key=value (repeatable)")
    args = p.parse_args(argv)
    w = load_workload(args.workload)
    catalog = load_catalog("2.3")
    settings: dict[str, fo.FlinkValue] = {}
    if args.predefined:
        settings[fo.PREDEFINED_OPTIONS] = args.predefined
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key.strip()] = catalog.parse_value(key.strip(), value.strip())
    config = fo.resolve(settings, w.memory, w.flink_version)
    cache_size = fo.effective(settings)[fo.TIMER_SERVICE_CACHE_SIZE]
    assert isinstance(cache_size, int)
    header = stream_header(w)
    with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
        engine = RocksdictEngine()
        engine.open(config, header, Path(tmp) / "db", timer_cache_size=cache_size)
        with engine:
            for batch in generate(w, "preload"):
                engine.apply(batch)
            engine.flush()
            engine.wait_for_background(120.0)
            before, _ = engine.statistics()
            result = replay(
                engine,
                header,
                [],
                generate(w, "measure"),
                w.checkpointing.interval_ms,
                Path(tmp) / "work",
            )
            after, _ = engine.statistics()
    print(f"config {config}")
    print(f"ops {result.ops} cpu_s {result.cpu_s:.3f}")
    for t in TICKERS:
        d = after.get(t, 0.0) - before.get(t, 0.0)
        print(f"{t} {d:,.0f} per_k {1000 * d / result.ops:,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
