"""How much the replay machinery costs over bare RocksDB calls.

A fixed stream (one value state, long keys, 100-byte values, half ``value()`` half ``update()``)
goes once through :class:`RocksdictEngine` (encoding, dispatch, latency sampling included) and
once as the same RocksDB calls made directly on a bare rocksdict column family with the same
options, keys and values precomputed. The ratio is the share of bare speed the engine keeps.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rocksdict as rd

from tuner.flink.keys import PAYLOAD, KeyLayout, rows_to_bytes
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.trace.ops import Op, OpBatch, StateInfo, StreamHeader

from .rocksdict_engine import RocksdictEngine, _apply_cf_options, _table_options

BATCH = 50_000
VALUE_SIZE = 100


@dataclass(frozen=True)
class BenchResult:
    """Ops per second through the engine and bare, and their ratio (engine / bare)."""

    n_ops: int
    engine_ops_per_s: float
    bare_ops_per_s: float

    @property
    def ratio(self) -> float:
        """Engine speed as a fraction of bare speed."""
        return self.engine_ops_per_s / self.bare_ops_per_s

    def render(self) -> str:
        """One line for people: both speeds and the ratio."""
        return (
            f"{self.n_ops} ops: engine {self.engine_ops_per_s:,.0f} ops/s, bare rocksdict "
            f"{self.bare_ops_per_s:,.0f} ops/s, ratio {self.ratio:.2f}"
        )


def bench_stream(n_ops: int, seed: int = 0) -> tuple[StreamHeader, list[OpBatch]]:
    """The fixed stream: uniform keys over ``max(1, n_ops // 4)`` ids, GET and UPDATE alternating
    at random, in batches of 50k."""
    rng = np.random.default_rng(seed)
    header = StreamHeader(states=(StateInfo("bench", "value"),), max_parallelism=128)
    keys = rng.integers(0, max(1, n_ops // 4), size=n_ops, dtype=np.int64)
    ops = np.where(rng.random(n_ops) < 0.5, Op.GET, Op.UPDATE).astype(np.int8)
    batches = []
    for s in range(0, n_ops, BATCH):
        e = min(n_ops, s + BATCH)
        n = e - s
        batches.append(
            OpBatch.from_columns(
                header.names,
                {
                    "ts": np.arange(s, e),
                    "state": np.zeros(n),
                    "op": ops[s:e],
                    "key": keys[s:e],
                    "ns_start": np.full(n, -1),
                    "ns_end": np.full(n, -1),
                    "user_key": np.full(n, -1),
                    "value_size": np.where(ops[s:e] == Op.UPDATE, VALUE_SIZE, 0),
                    "timer_ts": np.full(n, -1),
                },
            )
        )
    return header, batches


def _run_engine(header: StreamHeader, batches: list[OpBatch], path: Path) -> float:
    engine = RocksdictEngine()
    engine.open(RocksDBConfig(), header, path)
    try:
        t0 = time.perf_counter()
        for b in batches:
            engine.apply(b)
        return time.perf_counter() - t0
    finally:
        engine.close()


def _run_bare(header: StreamHeader, batches: list[OpBatch], path: Path) -> float:
    config = RocksDBConfig()
    db_opts = rd.Options(raw_mode=True)
    db_opts.create_if_missing(True)
    db_opts.create_missing_column_families(True)
    db_opts.enable_statistics()
    db_opts.set_max_background_jobs(config.max_background_jobs)
    db_opts.set_max_open_files(config.max_open_files)
    _apply_cf_options(db_opts, config, _table_options(config, rd.Cache(config.block_cache_size)))
    cf_opts = rd.Options(raw_mode=True)
    _apply_cf_options(cf_opts, config, _table_options(config, rd.Cache(config.block_cache_size)))
    default_opts = rd.Options(raw_mode=True)
    _apply_cf_options(
        default_opts, config, _table_options(config, rd.Cache(config.block_cache_size))
    )
    name = header.states[0].name
    db = rd.Rdict(str(path), db_opts, column_families={"default": default_opts, name: cf_opts})
    wo = rd.WriteOptions()
    wo.disable_wal = True  # type: ignore[method-assign,assignment]  # a property at runtime
    cf = db.get_column_family(name)
    cf.set_write_options(wo)
    layout = KeyLayout.for_state(header.states[0], header.max_parallelism)
    prepared = []
    for b in batches:
        keys = rows_to_bytes(layout.entry_keys(b.key, b.ns_start, b.ns_end))
        vals = [PAYLOAD[(i * 7919) % 1000 : (i * 7919) % 1000 + VALUE_SIZE] for i in range(len(b))]
        prepared.append((keys, vals, b.op.tolist()))
    get, put, update = cf.get, cf.put, int(Op.UPDATE)
    try:
        t0 = time.perf_counter()
        for keys, vals, ops in prepared:
            for k, v, o in zip(keys, vals, ops, strict=True):
                if o == update:
                    put(k, v)
                else:
                    get(k)
        return time.perf_counter() - t0
    finally:
        del cf
        db.close()


def run_bench(n_ops: int, workdir: Path | None = None) -> BenchResult:
    """Replay the fixed stream of ``n_ops`` calls through the engine and bare; bare runs first
    and the engine second, each on a fresh database."""
    if n_ops < 1:
        raise ValueError(f"`n_ops >= 1` must hold, but got {n_ops=}")
    header, batches = bench_stream(n_ops)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        bare_s = _run_bare(header, batches, Path(tmp) / "bare")
        engine_s = _run_engine(header, batches, Path(tmp) / "engine")
    return BenchResult(
        n_ops=n_ops, engine_ops_per_s=n_ops / engine_s, bare_ops_per_s=n_ops / bare_s
    )
