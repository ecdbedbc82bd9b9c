"""Production size → a replayable model: what scales, what does not, and why (the one place).

A production job holds 1–500 GB of keyed state per TaskManager under 0.5–8 GB of managed memory
per slot; replaying that takes hours. A workload with ``scale: 1/100`` is replayed as a model
that is 1/100 of the job, built so that RocksDB makes the same decisions on it:

======================================  =========  ============================================
quantity                                scaled by  why
======================================  =========  ============================================
keys of every state                     f          the state size: working set : block cache
                                                   and state : write buffer stay as in the job
memory budget (managed/fixed)           f          block cache and write buffer manager are
                                                   fractions of it (RocksDBMemoryControllerUtils)
``replay.records_per_second``           f          records per checkpoint interval : write
                                                   buffer stays; TTL, windows, timers and the
                                                   checkpoint interval keep their event time
``replay.records`` (measured records)   f          the measured phase spans the same event time,
                                                   so the same number of checkpoints (a longer
                                                   model run would pay the fixed cost of a
                                                   checkpoint more often per call; give the job
                                                   enough records that the model counts ≥ 50k
                                                   calls, or its figures are noise)
``writebuffer.size`` (in the replay)    f          flushes per checkpoint, L0 file size
``target-file-size-base`` (replay)      f          SST file count per level
``max-size-level-base`` (replay)        f          level count and fan-out: every level target
                                                   shrinks with the data, multiplier 10 stays
``block.cache-size`` (unmanaged, rpl.)  f          working set : block cache
pending-compaction-bytes limits (rpl.)  f          when RocksDB slows down and stops writes
arena block (replay, Flink's backend)   f          the write buffer manager counts whole arena
                                                   blocks; unscaled, a model's memtables flush
                                                   almost empty
zipf exponent                           adjusted   a zipf over fewer keys is flatter in its
                                                   head: the exponent is re-solved so the share
                                                   of accesses to the hottest keys the block
                                                   cache holds in the job stays the same
value, key and user-key sizes           no         entries per block, compression ratio,
                                                   per-call CPU
entries per map key, elements per list  no         the shape of one key's state
``block.blocksize``, metadata blocks    no         entries per block; index and filter bytes
                                                   stay the same share of the data
bloom bits per key, compression         no         per-entry properties
writebuffer count / number-to-merge     no         counts of memtables
L0 triggers, level multiplier (10)      no         counts and ratios
``thread.num``                          no         threads; CPU work shrinks with the data
``max_parallelism`` (key groups)        no         the key prefix layout; keys per key group
                                                   shrink by f, so a state needs at least one
                                                   key per key group after scaling
``timer-service.cache-size`` (both)     f          a count per key group, which holds f of the
                                                   job's timers: a cache left at 128 holds a
                                                   whole key group's timers in the model where
                                                   the job's overflows, and the overflow is what
                                                   costs (every registration beyond the cache is
                                                   written to RocksDB again, each emptied cache
                                                   is refilled by a seek); at least 1
TTL, windows, timer delay, interval     no         event time (the rate is scaled instead)
delayed-write-rate, rate limits         no         the replay is not paced in seconds: time is
                                                   counted work (tuner.costmodel), not wall time
======================================  =========  ============================================

The search space and everything emitted stay in production units: a candidate's
``writebuffer.size: 64 mb`` is recommended as ``64 mb``; only the RocksDB instance of the replay
is opened with 64 mb × f (:func:`model_config`). Sizes the replay measures (SST bytes, flush
and compaction bytes) are model bytes; :func:`production_bytes` scales them back for the disk
budget. Throughput is a rate (ops per counted second) and needs no scaling.

RocksDB floors that break the proportion: a write buffer below 64 KiB is clamped by RocksDB
(``ClipToRange`` in column_family.cc), so a candidate whose scaled write buffer would be smaller
runs with 64 KiB and its trial carries ``model_clamped = 1``. Per-file fixed overhead (footer,
properties block, about 2–4 KiB) is a larger share of a small file. The LRU cache's shard count
follows its capacity, so a small cache has fewer shards, each of 512 KiB to 1 MiB at both sizes,
while a file's whole filter and index blocks shrink with the file: a block that fits a shard in
the model may not in the job, where RocksDB then reads it on every lookup. Such candidates are
refused by rule (:mod:`tuner.flink.cache_shards`; Nexmark q4 ran 4.4x slower for it).

Bad scales are refused with the field and the smallest workable value (exit 2): fewer keys than
key groups, less than one hot key, an input rate below 1 record/s, a budget below one minimal
memtable per column family.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tuner.errors import TunerError
from tuner.flink import memory as mem
from tuner.flink import options as fo
from tuner.flink.memory import Memory
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.trace.parquet import recording_meta
from tuner.units import format_memory_size, parse_memory_size
from tuner.workload import Popularity, StateSpec, Workload, column_family_count, load_workload

__all__ = [
    "ROCKSDB_MIN_WRITE_BUFFER",
    "TRANSFER_FLOOR",
    "ScaleSpec",
    "check_footprint",
    "dump_scale",
    "estimate_disk_bytes",
    "load_scaled",
    "model_config",
    "model_settings",
    "model_timer_cache_size",
    "model_warnings",
    "model_workload",
    "parse_factor",
    "production_bytes",
    "read_scale",
    "transfer_warning",
]

# RocksDB's SanitizeOptions (db/column_family.cc) clips write_buffer_size to at least 64 KiB.
ROCKSDB_MIN_WRITE_BUFFER = 64 << 10
ARENA_ALIGN = 4 << 10  # RocksDB's arena rounds a block up to this
# Flink's default writebuffer.size (RocksDBConfigurableOptions.java): its model must not be
# clamped, or even Flink's default could not be modelled.
_DEFAULT_WRITE_BUFFER = 64 << 20


@dataclass(frozen=True)
class ScaleSpec:
    """How a workload is replayed: ``factor`` of the production job (1: full size)."""

    factor: float = 1.0
    disk_budget: int | None = None  # bytes one slot may use on disk in production

    @property
    def label(self) -> str:
        """``1/100`` for a reciprocal of an integer, else the number."""
        inv = 1 / self.factor
        return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-9 else f"{self.factor:g}"


def parse_factor(raw: object, *, file: str | None = None, where: str = "scale") -> float:
    """A scale factor from YAML or the command line: a number in (0, 1] or ``"1/N"``."""
    if isinstance(raw, str):
        text = raw.strip()
        m = re.fullmatch(r"1/([1-9][0-9]*)", text)
        if m:
            return 1 / int(m.group(1))
        try:
            raw = float(text)
        except ValueError:
            raise TunerError(
                f'expected a number in (0, 1] or "1/N", got "{text}"', file=file, where=where
            ) from None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TunerError(
            f'expected a number in (0, 1] or "1/N", got {raw!r}', file=file, where=where
        )
    if not 0 < raw <= 1 or not math.isfinite(raw):
        raise TunerError(f"must be in (0, 1], got {raw!r}", file=file, where=where)
    return float(raw)


def read_scale(path: str | os.PathLike[str]) -> ScaleSpec:
    """The ``scale`` section of a workload file (full size when absent).

    Call after :func:`tuner.workload.load_workload` accepted the file: the schema already checked
    the section's shape.
    """
    file = os.fspath(path)
    data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
    raw = data.get("scale") if isinstance(data, dict) else None
    if raw is None:
        return ScaleSpec()
    if isinstance(raw, dict):
        budget = None
        if "disk_budget" in raw:
            value = raw["disk_budget"]
            try:
                budget = value if isinstance(value, int) else parse_memory_size(str(value))
            except ValueError as e:
                raise TunerError(str(e), file=file, where="scale.disk_budget") from None
        return ScaleSpec(parse_factor(raw["factor"], file=file, where="scale.factor"), budget)
    return ScaleSpec(parse_factor(raw, file=file))


def dump_scale(spec: ScaleSpec) -> str:
    """The ``scale`` section as YAML, appended to a run's ``workload.yaml`` so a resumed run
    replays the same model."""
    body: dict[str, Any] = {"factor": spec.factor}
    if spec.disk_budget is not None:
        body["disk_budget"] = spec.disk_budget
    return yaml.safe_dump({"scale": body}, sort_keys=False)


def load_scaled(
    path: str | os.PathLike[str], factor: float | None = None
) -> tuple[Workload, ScaleSpec]:
    """Load a workload in production units and its scale (``factor`` overrides the file's).

    Raises :class:`TunerError` (exit 2) when the model cannot be built at that scale, naming the
    field and the smallest workable factor.
    """
    workload = load_workload(path)
    spec = read_scale(path)
    if factor is not None:
        spec = replace(spec, factor=factor)
    sample = recorded_sample(workload)
    if sample < 1 and spec.factor == 1.0:
        # A recording of a share of the keys is a model of that share of the job: replayed under
        # the whole budget, its few keys would find a cache ten times too large for them.
        spec = replace(spec, factor=sample)
    model_workload(workload, spec)  # refuses impossible scales early
    return workload, spec


def recorded_sample(w: Workload) -> float:
    """The share of the job's keys a recorded trace holds (``tuner recorder config --sample``);
    1 for a generated workload or a recording of every key."""
    if w.trace is None:
        return 1.0
    sample = recording_meta(w.trace).get("sample", 1.0)
    return float(sample) if isinstance(sample, int | float) and 0 < sample <= 1 else 1.0


# --- the model -------------------------------------------------------------------------------


def _smallest(need: float) -> str:
    """A factor at least ``need``, as a readable fraction (rounded up: it must be workable)."""
    if need > 1:
        return "none (the job is already below it at full size)"
    n = math.floor(1 / need)
    return f"1/{n} ({1 / n:.4g})" if n >= 1 else f"{need:.4g}"


def model_workload(w: Workload, spec: ScaleSpec) -> Workload:
    """The workload the replay generates and runs: ``w`` scaled by ``spec.factor``.

    Raises :class:`TunerError` (where ``scale``) naming the field that cannot be scaled that far
    and the smallest workable factor.
    """
    f = spec.factor
    if f == 1.0:
        return w
    file = w.source

    if w.trace is not None:
        # A recording is replayed as it is; only a key-sampled one is a model, of its sample.
        sample = recorded_sample(w)
        if abs(f - sample) > 1e-9:
            raise TunerError(
                f"a recorded trace is replayed as the model of its own key sample ({sample:g}, "
                f"the recorder's --sample), not at scale {spec.label}: its keys and records are "
                "fixed; remove scale or record with another --sample",
                file=file,
                where="scale",
            )
        return replace(w, memory=_scaled_memory(w.memory, f))
    # Every limit as (what breaks at this scale, the smallest factor that avoids it); the
    # error names the binding one, and the smallest factor that avoids them all.
    limits: list[tuple[str, float]] = []
    rps = w.replay.records_per_second
    limits.append(
        (f"replay.records_per_second {rps} becomes less than 1 record/s", 1 / rps),
    )
    for i, s in enumerate(w.states):
        keys = round(s.keys * f)
        limits.append(
            (
                f"states[{i}].keys {s.keys} becomes {keys}, fewer keys than the "
                f"{w.max_parallelism} key groups (max_parallelism)",
                w.max_parallelism / s.keys,
            )
        )
        pop = s.popularity
        if pop.kind == "hotset":
            limits.append(
                (
                    f"states[{i}].popularity.hotset.hot_fraction {pop.hot_fraction} of {keys} "
                    "keys is less than one hot key",
                    1 / (pop.hot_fraction * s.keys),
                )
            )
    memory = w.memory
    model_memory = _scaled_memory(memory, f)
    families = column_family_count(w.states)
    if memory.mode != "unmanaged":
        # The model's write buffers are scaled too, so RocksDB's own 64 KiB floor is what counts.
        floor = families * ROCKSDB_MIN_WRITE_BUFFER * 3 / (2 * memory.write_buffer_ratio)
        limits.append(
            (
                f"the memory budget becomes {format_memory_size(model_memory.budget)}, below one "
                f"{ROCKSDB_MIN_WRITE_BUFFER >> 10} KiB memtable (RocksDB's smallest) for each of "
                f"{families} column families",
                floor / memory.budget,
            )
        )
    limits.append(
        (
            "Flink's default 64 mb write buffer would be below RocksDB's 64 KiB floor",
            ROCKSDB_MIN_WRITE_BUFFER / _DEFAULT_WRITE_BUFFER,
        )
    )
    broken = [(msg, need) for msg, need in limits if f < need * (1 - 1e-12)]
    if broken:
        message, _ = max(broken, key=lambda x: x[1])
        need = max(n for _, n in limits)
        raise TunerError(
            f"scale {spec.label}: {message}; smallest workable scale: {_smallest(need)}",
            file=file,
            where="scale",
        )
    model_rps = max(1, round(rps * f))
    rate = model_rps / rps  # the factor the rate really got, after rounding
    states = [
        replace(
            s,
            keys=round(s.keys * f),
            popularity=_model_popularity(s, round(s.keys * f), w, f),
        )
        for s in w.states
    ]
    replay = replace(
        w.replay,
        records=max(1, round(w.replay.records * rate)),
        records_per_second=model_rps,
    )
    return replace(w, states=tuple(states), replay=replay, memory=model_memory)


def _scaled_memory(memory: Memory, f: float) -> Memory:
    """The model's memory: every budget figure times ``f`` (ratios unchanged)."""
    sizes = {
        k: max(1, round(v * f))
        for k in ("managed_per_slot", "fixed_per_slot", "fixed_per_tm")
        if (v := getattr(memory, k)) is not None
    }
    return replace(memory, **sizes)


# Below these a model's counted figures are noise (measured on tools/scale_transfer: a 1/100
# model with a 5 MB budget and 16k measured calls moved one configuration's block-cache misses
# by 47 % between two runs; its 1/10 model, 51 MB and 160k calls, ranked like full size).
SMALL_MODEL_BUDGET = 48 << 20
SMALL_MODEL_CALLS = 100_000


# The smallest model measured to rank configurations as the job does (tools/scale_transfer,
# 2026-12-03: Spearman +0.88 at 1/10, inside full size's own +0.85..+0.95 against itself;
# +0.56 at 1/100, whose pick reached 92.3 % of the best).
TRANSFER_FLOOR = 0.1
TRANSFER_PAGE = "docs/measurements/2026-12-03-scale-transfer.md"


def transfer_warning(spec: ScaleSpec) -> str:
    """Why a model smaller than :data:`TRANSFER_FLOOR` may rank configurations unlike the job
    ("" when it is not smaller)."""
    if spec.factor >= TRANSFER_FLOOR * (1 - 1e-9):
        return ""
    return (
        f"a {spec.label} model is smaller than 1/10, the smallest scale measured to rank "
        "configurations as the job does (Spearman +0.88 at 1/10, +0.56 at 1/100, whose pick "
        f"reached 92.3 % of the best: {TRANSFER_PAGE})"
    )


def model_warnings(model: Workload) -> list[str]:
    """Why a model may be too small to rank configurations reliably (empty when it is not)."""
    out = []
    if model.memory.budget < SMALL_MODEL_BUDGET:
        out.append(
            f"the model's memory budget is {model.memory.budget / (1 << 20):.1f} MiB: below "
            f"{SMALL_MODEL_BUDGET >> 20} mb a small block cache holds few blocks in few shards and "
            "its misses vary from run to run; a larger scale is more reliable"
        )
    calls = model.replay.records * sum(s.accesses_per_record for s in model.states)
    if model.trace is None and calls < SMALL_MODEL_CALLS:
        out.append(
            f"the model measures about {calls:,.0f} state calls: below {SMALL_MODEL_CALLS:,} the "
            "counted figures are noisy; give the job more replay.records or a larger scale"
        )
    return out


# The Flink keys whose sizes model_config scales (the arena block follows the write buffer
# inside RocksDB): what an engine configured by Flink keys gets instead of a RocksDBConfig.
_SIZE_KEYS = (
    fo.WRITE_BUFFER_SIZE,
    fo.TARGET_FILE_SIZE_BASE,
    fo.MAX_SIZE_LEVEL_BASE,
    fo.BLOCK_CACHE_SIZE,
)


def model_settings(
    settings: Mapping[str, fo.FlinkValue], factor: float
) -> dict[str, fo.FlinkValue]:
    """Production-unit Flink settings for a model at ``factor``, for the engines that Flink
    configures by its own keys (flink-backend): the sizes :func:`model_config` scales, scaled
    alike from their effective values (set, predefined or default), the write buffer held at
    RocksDB's floor, and the timer cache (:func:`model_timer_cache_size`). The memory budget is
    the model workload's own."""
    out = dict(settings)
    if factor == 1.0:
        return out
    values = fo.effective(settings)
    for key in _SIZE_KEYS:
        size = values[key]
        assert isinstance(size, int)
        scaled = max(1, round(size * factor))
        out[key] = max(scaled, ROCKSDB_MIN_WRITE_BUFFER) if key == fo.WRITE_BUFFER_SIZE else scaled
    cache = values[fo.TIMER_SERVICE_CACHE_SIZE]
    assert isinstance(cache, int)
    out[fo.TIMER_SERVICE_CACHE_SIZE] = model_timer_cache_size(cache, factor)
    return out


def model_timer_cache_size(cache_size: int, factor: float) -> int:
    """The timer cache per key group of a model at ``factor`` (the module docstring's table):
    a key group of the model holds ``factor`` of the job's timers, so its cache holds as many
    fewer, and overflows into RocksDB as the job's does. Measured on Nexmark q11 (a 1/3 key
    sample of the recording): left at 128, the model wrote 3.5 MB of timers where the whole
    recording wrote 25.3 MB (a third of it: 8.4 MB); scaled to 43, 7.6 MB."""
    return max(1, round(cache_size * factor))


def model_config(config: RocksDBConfig, factor: float) -> tuple[RocksDBConfig, bool]:
    """The RocksDB options the model instance is opened with, and whether a size hit RocksDB's
    floor (the model is then not exactly proportional).

    ``config`` is resolved from production-unit Flink settings under the model's (already
    scaled) memory, so the shared cache and write buffer manager need no further scaling.
    """
    if factor == 1.0:
        return config, False

    def s(n: int) -> int:
        return max(1, round(n * factor))

    wb = s(config.write_buffer_size)
    clamped = wb < ROCKSDB_MIN_WRITE_BUFFER
    # The arena block scales with the write buffer it serves: left at its production size (1 MiB
    # for a 64 mb buffer), every model memtable was bigger than its write buffer on its first
    # write and flushed almost empty (a 1/200 model flushed half a million ~1 KB memtables in 8
    # minutes). RocksDB's arena aligns blocks to 4 KiB.
    arena = config.arena_block_size
    if arena > 0:
        arena = max(ARENA_ALIGN, round(arena * factor / ARENA_ALIGN) * ARENA_ALIGN)
    return (
        replace(
            config,
            write_buffer_size=max(wb, ROCKSDB_MIN_WRITE_BUFFER),
            arena_block_size=arena,
            target_file_size_base=s(config.target_file_size_base),
            max_bytes_for_level_base=s(config.max_bytes_for_level_base),
            block_cache_size=s(config.block_cache_size),
            soft_pending_compaction_bytes_limit=s(config.soft_pending_compaction_bytes_limit),
            hard_pending_compaction_bytes_limit=s(config.hard_pending_compaction_bytes_limit),
        ),
        clamped,
    )


def production_bytes(model_bytes: float, factor: float) -> float:
    """A byte count measured on the model, as the production job would see it."""
    return model_bytes / factor


# --- zipf: the same head share over fewer keys ----------------------------------------------


def _entry_bytes(s: StateSpec) -> int:
    per_key = s.value_size.value * max(s.entries_per_key, s.elements_per_key)
    return per_key + s.key_size + 16


def _cache_share(w: Workload, s: StateSpec) -> float:
    """The share of a state's keys the block cache holds under Flink's default memory split
    (a reference point: the exponent is matched there)."""
    if w.memory.mode == "unmanaged":
        cache_bytes = 8 << 20  # block.cache-size default, per column family
    else:
        cache_bytes = mem.cache_capacity(w.memory.budget, w.memory.write_buffer_ratio)
    state_bytes = sum(_entry_bytes(x) * x.keys for x in w.states)
    return min(0.5, max(1e-6, cache_bytes / max(1, state_bytes)))


@cache
def _harmonic(n: int, a: float) -> float:
    """sum_{k=1..n} k^-a: exact for the first terms, Euler–Maclaurin for the tail."""
    head = min(n, 10_000)
    total = math.fsum(k**-a for k in range(1, head + 1))
    if n > head:
        lo, hi = head + 0.5, n + 0.5
        tail = math.log(hi / lo) if a == 1 else (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)
        total += tail
    return total


def head_share(n: int, k: int, a: float) -> float:
    """Share of zipf(a) accesses over ``n`` keys that go to the ``k`` hottest."""
    return _harmonic(max(1, k), a) / _harmonic(n, a)


def matched_exponent(n_full: int, n_model: int, a: float, share: float) -> float:
    """The exponent under which the hottest ``share`` of ``n_model`` keys take the same share of
    accesses as the hottest ``share`` of ``n_full`` keys do under ``a``."""
    target = head_share(n_full, round(share * n_full), a)
    k = max(1, round(share * n_model))
    lo, hi = 0.01, 5.0
    for _ in range(60):  # head_share grows with the exponent: bisect
        mid = (lo + hi) / 2
        if head_share(n_model, k, mid) < target:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 4)


def _model_popularity(s: StateSpec, keys: int, w: Workload, f: float) -> Popularity:
    pop = s.popularity
    if pop.kind != "zipf" or keys == s.keys:
        return pop
    return replace(pop, exponent=matched_exponent(s.keys, keys, pop.exponent, _cache_share(w, s)))


# --- disk ------------------------------------------------------------------------------------


def estimate_disk_bytes(model: Workload) -> int:
    """A generous estimate of the disk one trial of the model needs: SSTs with space
    amplification, memtable flushes, one checkpoint's hard links, the trace."""
    raw = sum(_entry_bytes(s) * s.keys for s in model.states)
    return max(256 << 20, 6 * raw)


def check_footprint(production: Workload, spec: ScaleSpec, path: Path, jobs: int = 1) -> int:
    """Refuse to start when the model's trials cannot fit the free disk at ``path``, naming the
    largest scale that would fit. Returns the bytes needed."""
    model = model_workload(production, spec)
    need = estimate_disk_bytes(model) * jobs
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need <= free:
        return need
    fits = spec.factor * free / need
    hint = f"; the largest scale that fits is about {_largest(fits)}" if fits < spec.factor else ""
    raise TunerError(
        f"scale {spec.label}: a trial needs about {need >> 20} MiB of disk "
        f"({jobs} at once), only {free >> 20} MiB free in {probe}{hint}",
        file=production.source,
        where="scale",
    )


def _largest(fits: float) -> str:
    n = math.ceil(1 / fits)
    return f"1/{n}"
