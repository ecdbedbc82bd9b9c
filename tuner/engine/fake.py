"""A fake engine: Python dicts instead of RocksDB, and counters from a small cost model of the
config, so the search loop's tests run in milliseconds. It replays the same Flink semantics as
the real engine (the shared :class:`~tuner.flink.state_ops.StateOpExecutor`) and passes the same
contract suite; its numbers are deterministic, not measurements.

Cost model (per column family, all deterministic):

* bytes written by users = key + value bytes of every put and delete (``rocksdb.bytes.written``);
* a flush writes the memtable's bytes times the compression ratio of the first level;
* compaction rewrites flushed bytes once per level below L0 the data spans (levelled: levels
  grow by 10x from ``max_bytes_for_level_base``; universal: half of that; fifo: never);
* a get hits the block cache with probability ``min(1, cache / data)``, counted as a fraction.
"""

from __future__ import annotations

import bisect
import json
import math
from pathlib import Path

from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.flink.state_ops import ColumnOps, Entry, WriteOp
from tuner.trace.ops import StreamHeader

from .base import Engine

# Rough compressed/raw size ratios for the payloads the executor writes.
_COMPRESSION_RATIO = {
    "kNoCompression": 1.0,
    "kSnappyCompression": 0.6,
    "kLZ4Compression": 0.6,
    "kLZ4HCCompression": 0.5,
    "kZSTD": 0.45,
}


class _FakeColumn:
    """An ordered dict of bytes with byte counters."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []  # sorted
        self.user_bytes = 0
        self.memtable_bytes = 0
        self.gets = 0
        self.get_hits = 0
        self.bytes_read = 0

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        self.gets += 1
        v = self.data.get(key)
        if v is None:
            return default
        self.get_hits += 1
        self.bytes_read += len(v)
        return v

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.data:
            bisect.insort(self.keys, key)
        self.data[key] = value
        n = len(key) + len(value)
        self.user_bytes += n
        self.memtable_bytes += n

    def delete(self, key: bytes) -> None:
        if self.data.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]
        self.user_bytes += len(key)
        self.memtable_bytes += len(key)

    def scan(self, start: bytes, prefix: bytes, limit: int) -> list[Entry]:
        out: list[Entry] = []
        i = bisect.bisect_left(self.keys, start)
        keys = self.keys
        while i < len(keys) and keys[i].startswith(prefix):
            out.append((keys[i], self.data[keys[i]]))
            if len(out) == limit:
                break
            i += 1
        return out

    def write(self, ops: list[WriteOp]) -> None:
        for k, v in ops:
            if v is None:
                self.delete(k)
            else:
                self.put(k, v)

    def live_bytes(self) -> int:
        return sum(len(k) + len(v) for k, v in self.data.items())


class FakeEngine(Engine):
    """Dicts plus a deterministic cost model; see the module docstring."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self._cols: dict[str, _FakeColumn] = {}
        self._cfg = RocksDBConfig()
        self._flush_bytes = 0.0
        self._compact_bytes = 0.0
        self._sst_bytes = 0.0
        self._last_checkpoint_sst = 0.0

    def _open_columns(
        self, config: RocksDBConfig, header: StreamHeader, path: Path
    ) -> dict[str, ColumnOps]:
        path.mkdir(parents=True, exist_ok=True)
        self._cfg = config
        self._cols = {s.name: _FakeColumn() for s in header.states}
        return {
            n: ColumnOps(get=c.get, put=c.put, delete=c.delete, scan=c.scan, write=c.write)
            for n, c in self._cols.items()
        }

    def _ratio(self) -> float:
        first = self._cfg.compression_per_level[0] if self._cfg.compression_per_level else None
        return _COMPRESSION_RATIO.get(first or "kNoCompression", 1.0)

    def _levels_below_l0(self, data_bytes: float) -> float:
        cfg = self._cfg
        if cfg.compaction_style == "fifo":
            return 0.0
        levels = max(
            1.0, math.ceil(math.log10(max(data_bytes, 1) / cfg.max_bytes_for_level_base) + 1)
        )
        return levels / 2 if cfg.compaction_style == "universal" else levels

    def _flush_storage(self) -> None:
        ratio = self._ratio()
        for c in self._cols.values():
            if not c.memtable_bytes:
                continue
            flushed = c.memtable_bytes * ratio
            self._flush_bytes += flushed
            self._compact_bytes += flushed * self._levels_below_l0(c.live_bytes())
            self._sst_bytes += flushed
            c.memtable_bytes = 0

    def _checkpoint(self, dest: Path) -> tuple[int, int]:
        dest.mkdir(parents=True)
        new = int(self._sst_bytes - self._last_checkpoint_sst)
        self._last_checkpoint_sst = self._sst_bytes
        (dest / "FAKE-CHECKPOINT.json").write_text(
            json.dumps({"new_sst_bytes": new, "total_sst_bytes": int(self._sst_bytes)})
        )
        return new, int(self._sst_bytes)

    def _cache_bytes(self) -> int:
        cfg = self._cfg
        if cfg.shared_cache_bytes is not None:
            return cfg.shared_cache_bytes
        return cfg.block_cache_size * len(self._cols)

    def _storage_counters(self) -> dict[str, float]:
        cols = self._cols.values()
        live = sum(c.live_bytes() for c in cols) * self._ratio()
        hit_p = min(1.0, self._cache_bytes() / live) if live else 1.0
        gets = sum(c.gets for c in cols)
        bloom = self._cfg.bloom_bits_per_key is not None
        # Misses of absent keys cost no block read with a bloom filter.
        block_reads = sum((c.get_hits if bloom else c.gets) for c in cols)
        return {
            "rocksdb.bytes.written": float(sum(c.user_bytes for c in cols)),
            "rocksdb.bytes.read": float(sum(c.bytes_read for c in cols)),
            "rocksdb.number.keys.read": float(gets),
            "rocksdb.flush.write.bytes": self._flush_bytes,
            "rocksdb.compact.write.bytes": self._compact_bytes,
            "rocksdb.compact.read.bytes": self._compact_bytes,
            "rocksdb.block.cache.hit": block_reads * hit_p,
            "rocksdb.block.cache.miss": block_reads * (1 - hit_p),
            "rocksdb.non.last.level.read.bytes": block_reads * (1 - hit_p) * self._cfg.block_size,
            "rocksdb.last.level.read.bytes": 0.0,
            "rocksdb.stall.micros": 0.0,
        }

    def memory(self) -> dict[str, int]:
        """Modelled: the cache full up to the data size, memtables as unflushed bytes."""
        cols = self._cols.values()
        live = int(sum(c.live_bytes() for c in cols) * self._ratio())
        return {
            "block_cache_usage": min(self._cache_bytes(), live),
            "block_cache_pinned_usage": 0,
            "memtables_bytes": sum(c.memtable_bytes for c in cols),
            "table_readers_bytes": 0,
            "rss_bytes": 0,
        }

    def storage(self) -> dict[str, int]:
        """Modelled: SST bytes as flushed bytes; nothing ever pending."""
        live = int(sum(c.live_bytes() for c in self._cols.values()) * self._ratio())
        return {
            "total_sst_bytes": int(self._sst_bytes),
            "live_data_bytes": live,
            "compaction_pending": 0,
            "running_compactions": 0,
            "running_flushes": 0,
        }

    def _close_storage(self) -> None:
        self._cols = {}
