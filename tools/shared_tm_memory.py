"""What one TaskManager-wide cache changes under ``fixed-per-tm`` (issue 7, difference 9).

Flink allocates ``state.backend.rocksdb.memory.fixed-per-tm`` once per TaskManager: one LRU cache
and one write buffer manager that the RocksDB instance of every slot shares. The replay (and
every one-slot Flink run of validation and flink-backend) measures one slot with its share,
fixed-per-tm / slots, as if the slots' caches were separate.

This benchmark replays one TaskManager's stream (the workload's keys, records and rate times the
slots, split over the slots by key group as Flink's KeyGroupRangeAssignment does) on one RocksDB
instance per slot, in one process, interleaved batch by batch, twice per configuration:

* shared: every instance uses one cache and one write buffer manager of the whole
  TaskManager's size (Flink);
* per slot: every instance has its own of the slot's share (the replay's model);

and prints the counted quantities per 1,000 state calls, for the whole TaskManager and for the
slot that differs most. A workload in another memory mode is measured as ``fixed-per-tm`` with
``--slots`` slots and the same budget per slot.

    python tools/shared_tm_memory.py workloads/interval-join.yaml workloads/quickstart.yaml
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from tuner.engine.rocksdict_engine import RocksdictEngine, TaskManagerMemory
from tuner.flink import options as fo
from tuner.flink.keys import KeyLayout
from tuner.flink.memory import cache_capacity, write_buffer_manager_capacity
from tuner.search.study import BASELINES
from tuner.trace.generator import generate, stream_header
from tuner.trace.ops import OpBatch, StreamHeader
from tuner.workload import Workload, load_workload

# RocksDB tickers compared, with the label printed.
COUNTERS = (
    ("rocksdb.block.cache.miss", "block-cache misses"),
    ("rocksdb.block.cache.data.miss", "data-block misses"),
    ("rocksdb.flush.write.bytes", "flush bytes"),
    ("rocksdb.compact.write.bytes", "compaction bytes written"),
    ("rocksdb.stall.micros", "stall µs"),
)


def task_manager_workload(w: Workload, slots: int) -> Workload:
    """``w`` (one slot) as one TaskManager of ``slots`` such slots under ``fixed-per-tm``: the
    keys, records and rate of all slots, the TaskManager's memory shared by all of them."""
    memory = replace(
        w.memory, mode="fixed-per-tm", fixed_per_tm=w.memory.budget * slots, slots_per_tm=slots
    )
    states = tuple(replace(s, keys=s.keys * slots) for s in w.states)
    rp = replace(
        w.replay,
        records=w.replay.records * slots,
        records_per_second=w.replay.records_per_second * slots,
    )
    return replace(w, states=states, replay=rp, memory=memory)


def slot_of_rows(batch: OpBatch, header: StreamHeader, slots: int) -> np.ndarray:
    """The slot (operator index) of every row: its key's key group, assigned to slots in
    contiguous ranges (KeyGroupRangeAssignment.computeOperatorIndexForKeyGroup)."""
    groups = np.zeros(len(batch), dtype=np.int64)
    for i, info in enumerate(header.states):
        rows = batch.state == i
        if rows.any():
            layout = KeyLayout.for_state(info, header.max_parallelism)
            groups[rows] = layout.key_groups(batch.key[rows])
    return groups * slots // header.max_parallelism


def _select(batch: OpBatch, rows: np.ndarray) -> OpBatch:
    return OpBatch.from_columns(batch.states, {k: v[rows] for k, v in batch.columns().items()})


def _split(batches: Iterator[OpBatch], header: StreamHeader, slots: int) -> Iterator[list[OpBatch]]:
    for batch in batches:
        slot = slot_of_rows(batch, header, slots)
        yield [_select(batch, slot == i) for i in range(slots)]


def measure(
    w: Workload, slots: int, settings: Mapping[str, fo.FlinkValue], shared: bool, work: Path
) -> list[dict[str, float]]:
    """Measured-phase counters of every slot of one TaskManager (see the module docstring)."""
    tm = task_manager_workload(w, slots)
    header = stream_header(tm)
    config = fo.resolve(settings, tm.memory, tm.flink_version)  # one slot's share
    total = tm.memory.fixed_per_tm
    assert total is not None
    memory = (
        TaskManagerMemory(
            cache_capacity(total, tm.memory.write_buffer_ratio),
            write_buffer_manager_capacity(total, tm.memory.write_buffer_ratio),
        )
        if shared
        else None
    )
    engines = [RocksdictEngine(tm_memory=memory) for _ in range(slots)]
    cache_size = fo.effective(settings)[fo.TIMER_SERVICE_CACHE_SIZE]
    assert isinstance(cache_size, int)
    for i, e in enumerate(engines):
        e.open(config, header, work / f"slot-{i}", timer_cache_size=cache_size)
    try:
        for parts in _split(generate(tm, "preload"), header, slots):
            for e, part in zip(engines, parts, strict=True):
                e.apply(part)
        for e in engines:
            e.flush()
        for e in engines:
            e.wait_for_background(600)
        before = [e.snapshot_counters() for e in engines]
        interval = tm.checkpointing.interval_ms
        next_cp: int | None = None
        taken = 0
        for parts in _split(generate(tm, "measure"), header, slots):
            ts = max((int(p.ts[-1]) for p in parts if len(p)), default=None)
            for e, part in zip(engines, parts, strict=True):
                if len(part):
                    e.apply(part)
            if ts is None:
                continue
            next_cp = ts + interval if next_cp is None else next_cp
            if ts >= next_cp:  # a checkpoint of every slot, as Flink's barrier makes one
                taken += 1
                for i, e in enumerate(engines):
                    dest = work / f"chk-{taken}" / f"slot-{i}"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    e.flush_and_checkpoint(dest)
                shutil.rmtree(work / f"chk-{taken}")
                while next_cp <= ts:
                    next_cp += interval
        for e in engines:
            e.flush()
        for e in engines:
            e.wait_for_background(600)
        after = [e.snapshot_counters() for e in engines]
    finally:
        for e in engines:
            e.close()
    out = []
    for b, a in zip(before, after, strict=True):
        row = {k: a.get(k, 0.0) - b.get(k, 0.0) for k, _ in COUNTERS}
        row["calls"] = sum(v - b.get(k, 0.0) for k, v in a.items() if k.startswith("state."))
        out.append(row)
    return out


def _per_1k(rows: Sequence[Mapping[str, float]], key: str) -> float:
    calls = sum(r["calls"] for r in rows)
    return sum(r[key] for r in rows) / calls * 1000 if calls else math.nan


def _span(xs: Sequence[float]) -> str:
    return f"{min(xs):,.2f} .. {max(xs):,.2f}"


def compare(path: Path, slots: int, configs: Sequence[str], repeats: int) -> None:
    """Measure and print one workload's table (medians over ``repeats``, interleaved)."""
    w = load_workload(path)
    fixed = w.memory.mode == "fixed-per-tm" and w.memory.slots_per_tm > 1
    n = w.memory.slots_per_tm if fixed else slots
    mib = w.memory.budget / 2**20
    print(f"\n### {w.name}: {n} slots, {mib:,.0f} MiB per slot ({n * mib:,.0f} MiB fixed-per-tm)\n")
    print(
        "| configuration | counter / 1k calls | per slot (replay) | shared (Flink) "
        "| shared / per slot | largest one-slot difference |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name in configs:
        settings = {fo.PREDEFINED_OPTIONS: name}
        runs: dict[bool, list[list[dict[str, float]]]] = {False: [], True: []}
        for _ in range(repeats):
            for shared in (False, True):
                with tempfile.TemporaryDirectory() as tmp:
                    runs[shared].append(measure(w, n, settings, shared, Path(tmp)))
        for key, label in COUNTERS:
            a = [_per_1k(r, key) for r in runs[False]]
            s = [_per_1k(r, key) for r in runs[True]]
            # Slot by slot, first repeats: how far sharing moves one slot.
            diffs = [
                _per_1k([y], key) / _per_1k([x], key) - 1
                for x, y in zip(runs[False][0], runs[True][0], strict=True)
                if _per_1k([x], key) > 0
            ]
            worst = max(diffs, key=abs) if diffs else math.nan
            ma, ms = statistics.median(a), statistics.median(s)
            ratio = ms / ma if ma > 0 else math.nan
            print(
                f"| {name} | {label} | {ma:,.2f} ({_span(a)}) | {ms:,.2f} ({_span(s)}) "
                f"| {ratio:.2f} | {worst:+.0%} |",
                flush=True,
            )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("workloads", type=Path, nargs="+")
    p.add_argument("--slots", type=int, default=4, help="slots per TaskManager (other modes)")
    p.add_argument("--configs", default="DEFAULT,SPINNING_DISK_OPTIMIZED_HIGH_MEM")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    unknown = set(args.configs.split(",")) - set(BASELINES)
    if unknown:
        raise SystemExit(f"--configs: not a predefined option set: {sorted(unknown)}")
    for path in args.workloads:
        compare(path, args.slots, args.configs.split(","), args.repeats)


if __name__ == "__main__":
    main()
