"""Where SPINNING_DISK_OPTIMIZED_HIGH_MEM's Flink gap sits: the CPU one block-cache miss costs.

    python tools/blockread/bench.py [--keys 400000] [--gets 100000] [--cache-mb 8]

Writes one database per block size (4 KiB, Flink's default; 128 KiB, HIGH_MEM's) with rocksdict
(format 5, snappy, as Flink's table config), then reads the same random keys from it twice: through
rocksdict (RocksDB 9.8, the replay) and through FRocksDB 8.10's JNI from Flink's own jar (the
RocksDB Flink runs, without Flink around it), each with an LRU cache far smaller than the data so
nearly every get misses. Prints, per library and block size, the reading thread's CPU per get and
per block-cache miss, and bytes read per miss.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rocksdict as rd

from tuner.engine.rocksdict_engine import parse_statistics
from tuner.flink.keys import PAYLOAD
from tuner.validate.flink import find_flink

HERE = Path(__file__).resolve().parent


CHECKSUM = "xxh3"  # crc32c for FRocksDB 6.20 (Flink 1.20), which cannot read XXH3 tables


def _table(block_size: int, cache: rd.Cache) -> rd.BlockBasedOptions:
    t = rd.BlockBasedOptions()
    t.set_format_version(5)
    t.set_checksum_type(getattr(rd.ChecksumType, CHECKSUM)())
    t.set_block_size(block_size)
    t.set_block_cache(cache)
    t.set_cache_index_and_filter_blocks(True)
    t.set_pin_l0_filter_and_index_blocks_in_cache(True)
    return t


def build(path: Path, keys: int, block_size: int, compression: str) -> None:
    """A database of ``keys`` 8-byte keys with 150-byte values, compacted to one level."""
    opts = rd.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_compression_type(getattr(rd.DBCompressionType, compression)())
    opts.set_block_based_table_factory(_table(block_size, rd.Cache(8 << 20)))
    db = rd.Rdict(str(path), opts)
    wb = rd.WriteBatch(raw_mode=True)
    for i in range(keys):
        off = (i * 7919) % (len(PAYLOAD) - 150)
        wb.put(i.to_bytes(8, "big"), PAYLOAD[off : off + 150])
        if len(wb) >= 10_000:
            db.write(wb)
            wb = rd.WriteBatch(raw_mode=True)
    db.write(wb)
    db.flush(True)
    db.compact_range(None, None)
    db.close()


def read_rocksdict(
    path: Path, keys: list[bytes], cache_bytes: int, block_size: int
) -> dict[str, float]:
    """Point reads through rocksdict; the reading thread's CPU over the last 90 %."""
    opts = rd.Options(raw_mode=True)
    opts.enable_statistics()
    opts.set_block_based_table_factory(_table(block_size, rd.Cache(cache_bytes)))
    db = rd.Rdict(str(path), opts, access_type=rd.AccessType.read_only())
    warm = len(keys) // 10
    for k in keys[:warm]:
        db.get(k)
    t0, _ = parse_statistics(opts.get_statistics() or "")
    cpu0 = time.thread_time()
    found = sum(1 for k in keys[warm:] if db.get(k) is not None)
    cpu = time.thread_time() - cpu0
    t1, _ = parse_statistics(opts.get_statistics() or "")
    db.close()

    def d(name: str) -> float:
        return t1.get(name, 0.0) - t0.get(name, 0.0)

    return {
        "gets": len(keys) - warm,
        "found": found,
        "cpu_s": cpu,
        "misses": d("rocksdb.block.cache.miss"),
        "bytes_read": d("rocksdb.last.level.read.bytes") + d("rocksdb.non.last.level.read.bytes"),
    }


def read_frocksdb(
    path: Path, keys_file: Path, cache_bytes: int, block_size: int, classes: Path
) -> dict[str, float]:
    """The same reads through FRocksDB's JNI (Flink's jar), in a JVM."""
    flink = find_flink()
    jar = next(flink.lib.glob("flink-dist-*.jar"))
    out = subprocess.run(
        [
            "java",
            "-cp",
            f"{classes}:{jar}",
            "BlockReadBench",
            str(path),
            str(keys_file),
            str(cache_bytes),
            str(block_size),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    vals = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return {k: float(v) for k, v in vals.items() if k != "library"}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=400_000)
    p.add_argument("--gets", type=int, default=100_000)
    p.add_argument("--cache-mb", type=int, default=8)
    p.add_argument("--compression", default="snappy", choices=("snappy", "none", "lz4"))
    p.add_argument("--checksum", default="xxh3", choices=("xxh3", "crc32c"))
    args = p.parse_args(argv)
    global CHECKSUM
    CHECKSUM = args.checksum
    flink = find_flink()
    jar = next(flink.lib.glob("flink-dist-*.jar"))
    with tempfile.TemporaryDirectory(prefix="blockread-") as tmp:
        root = Path(tmp)
        classes = root / "classes"
        classes.mkdir()
        subprocess.run(
            ["javac", "-cp", str(jar), "-d", str(classes), str(HERE / "BlockReadBench.java")],
            check=True,
        )
        rng = np.random.default_rng(1)
        ids = rng.integers(0, args.keys, size=args.gets)
        keys = [int(i).to_bytes(8, "big") for i in ids]
        keys_file = root / "keys.bin"
        keys_file.write_bytes(b"".join(keys))
        cache = args.cache_mb << 20
        head = ("library", "block", "µs/get", "misses/get", "µs/miss", "B read/miss")
        print(f"{head[0]:<16} {head[1]:>7} {head[2]:>8} {head[3]:>10} {head[4]:>8} {head[5]:>11}")
        for block in (4096, 131072):
            db = root / f"db-{block}"
            build(db, args.keys, block, args.compression)
            for name, res in (
                ("rocksdict 9.8", read_rocksdict(db, keys, cache, block)),
                (f"Flink {flink.version} JNI", read_frocksdb(db, keys_file, cache, block, classes)),
            ):
                gets, misses = res["gets"], max(res["misses"], 1.0)
                print(
                    f"{name:<16} {block // 1024:>5}Ki {1e6 * res['cpu_s'] / gets:>8.1f} "
                    f"{misses / gets:>10.2f} {1e6 * res['cpu_s'] / misses:>8.1f} "
                    f"{res['bytes_read'] / misses:>11,.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
