"""Schema-valid workload data becomes a :class:`~tuner.workload.model.Workload`.

The resolver checks what a schema cannot say: operation shares summing to 1, operations of the
state's kind, ratios Flink accepts, a budget that affords the minimum write buffers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, cast

from tuner.costmodel import DEFAULT_DISK, Disk, disk_from
from tuner.errors import TunerError
from tuner.flink import versions
from tuner.flink.limits import MAX_SERIALIZED_BYTES
from tuner.flink.memory import MIN_WRITE_BUFFER_SIZE, Memory, minimum_budget, ratios_accepted
from tuner.units import format_memory_size, parse_duration_ms, parse_memory_size
from tuner.workload.model import (
    MEMORY_SIZE_KEY,
    OPERATIONS,
    Checkpointing,
    KeyType,
    Popularity,
    PopularityKind,
    Replay,
    SizeDist,
    SizeDistKind,
    StateKind,
    StateSpec,
    Timers,
    Window,
    Workload,
    column_family_count,
)
from tuner.workload.wording import FieldPath, count_of, describe, field_path

__all__ = ["Resolver"]


def _ceil_mb(n: int) -> int:
    mb = 1 << 20
    return -(-n // mb) * mb


# Clipping bounds of a size distribution when the file gives none (SizeDist's defaults).
DEFAULT_SIZE_MIN = SizeDist.min
DEFAULT_SIZE_MAX = SizeDist.max

# CheckpointCoordinatorConfiguration.MINIMAL_CHECKPOINT_TIME: Flink refuses shorter intervals.
MIN_CHECKPOINT_INTERVAL_MS = 10

SHARE_TOLERANCE = 1e-6


class Resolver:
    """Turns schema-valid data into a Workload, raising TunerError for what the schema can't say."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, message: str, *path: str | int) -> TunerError:
        return TunerError(message, file=self.file, where=field_path(path))

    def size(self, value: int | str, *path: str | int) -> int:
        if isinstance(value, int):
            return value
        try:
            n = parse_memory_size(value)
        except ValueError as e:
            raise self.error(str(e), *path) from None
        if n < 1:
            raise self.error(f"must be at least 1 byte, got {describe(value)}", *path)
        return n

    def serialized_size(self, value: int | str, *path: str | int) -> int:
        """A size of a serialized key or value: at most what RocksDB's Java API passes."""
        n = self.size(value, *path)
        if n > MAX_SERIALIZED_BYTES:
            raise self.error(
                f"must be at most {MAX_SERIALIZED_BYTES:,} bytes (2^31 - 1: Flink's RocksDB "
                f"backend passes a key or value as a Java byte[]), got {describe(value)}",
                *path,
            )
        return n

    def duration(self, value: int | str, *path: str | int, minimum: int = 0) -> int:
        if isinstance(value, int):
            ms = value
        else:
            try:
                ms = parse_duration_ms(value)
            except ValueError as e:
                raise self.error(str(e), *path) from None
        if ms < minimum:
            raise self.error(
                f"must be at least {minimum} ms, got {describe(value)}"
                if minimum > 1
                else f"must be longer than 0 ms, got {describe(value)}",
                *path,
            )
        return ms

    def workload(self, data: dict[str, Any]) -> Workload:
        flink_version = self.flink_version(data["flink_version"])
        memory = self.memory(data["memory"])
        checkpointing = self.checkpointing(data.get("checkpointing", {}))
        replay_data: dict[str, Any] = data.get("replay", {})
        replay = Replay(
            records=replay_data.get("records", Replay.records),
            preload_fraction=float(replay_data.get("preload_fraction", Replay.preload_fraction)),
            records_per_second=replay_data.get("records_per_second", Replay.records_per_second),
        )
        trace: str | None = None
        states: tuple[StateSpec, ...] = ()
        if "trace" in data:
            if "states" in data:
                raise self.error(
                    "give either trace or states, not both: with a trace the states come from "
                    "the trace",
                    "states",
                )
            for key in ("records", "records_per_second"):
                if key in replay_data:
                    raise self.error(
                        f"replay.{key} is not read with a trace: the trace holds the records "
                        "and their timestamps",
                        "replay",
                        key,
                    )
            trace = self.trace_path(data["trace"])
        elif "states" in data:
            states = tuple(self.state(s, i, replay) for i, s in enumerate(data["states"]))
            self.check_unique_names(states)
            self.check_budget(memory, states)
        else:
            raise self.error(
                'missing required key "states" (or "trace" to replay a recorded trace)', "states"
            )
        return Workload(
            name=data["name"],
            description=data.get("description", ""),
            flink_version=flink_version,
            seed=data.get("seed", 0),
            memory=memory,
            states=states,
            replay=replay,
            checkpointing=checkpointing,
            max_parallelism=data.get("max_parallelism", Workload.max_parallelism),
            disk=self.disk(data.get("disk", DEFAULT_DISK)),
            trace=trace,
            compressibility=(
                None if data.get("compressibility") is None else float(data["compressibility"])
            ),
        )

    def disk(self, raw: str | dict[str, Any]) -> Disk:
        try:
            return disk_from(raw)
        except TunerError as exc:
            raise self.error(exc.message, "disk") from None

    def flink_version(self, raw: str | float) -> str:
        # YAML reads 2 and 2.1 as numbers; they are unambiguous, but 1.20 arrives as 1.2.
        text = raw.strip() if isinstance(raw, str) else repr(raw)
        if versions.is_supported(text):
            return text
        hint = ""
        if not isinstance(raw, str) and text == "1.2":
            hint = ' (YAML reads 1.20 as the number 1.2: write "1.20" in quotes)'
        raise self.error(
            f"unsupported flink_version {describe(raw)}{hint}; supported: "
            + versions.SUPPORTED_TEXT,
            "flink_version",
        )

    def memory(self, m: dict[str, Any]) -> Memory:
        mode = m.get("mode", Memory.mode)
        size_key = MEMORY_SIZE_KEY[mode]
        for key in ("managed_per_slot", "fixed_per_slot", "fixed_per_tm"):
            if key in m and key != size_key:
                modes = [md for md, k in MEMORY_SIZE_KEY.items() if k == key]
                raise self.error(
                    f"{key} is not read with mode {mode}; it belongs to mode " + " or ".join(modes),
                    "memory",
                    key,
                )
        if size_key not in m and mode.startswith("fixed"):
            raise self.error(f"mode {mode} needs {size_key}", "memory", size_key)
        sizes = {size_key: self.size(m[size_key], "memory", size_key)} if size_key in m else {}
        write_buffer_ratio = float(m.get("write_buffer_ratio", Memory.write_buffer_ratio))
        high_prio = float(m.get("high_prio_pool_ratio", Memory.high_prio_pool_ratio))
        # RocksDBMemoryConfiguration.validate: 2r/(3-r) + high_prio must stay below 1.
        if not ratios_accepted(write_buffer_ratio, high_prio):
            raise self.error(
                f"`2*r/(3-r) + high_prio_pool_ratio < 1` must hold (Flink refuses the job "
                f"otherwise), but got r={write_buffer_ratio}, high_prio_pool_ratio={high_prio}: "
                f"{2 * write_buffer_ratio / (3 - write_buffer_ratio) + high_prio:.3f}",
                "memory",
                "high_prio_pool_ratio",
            )
        return Memory(
            mode=mode,
            slots_per_tm=m.get("slots_per_tm", Memory.slots_per_tm),
            write_buffer_ratio=write_buffer_ratio,
            high_prio_pool_ratio=high_prio,
            **sizes,
        )

    def checkpointing(self, c: dict[str, Any]) -> Checkpointing:
        interval = Checkpointing.interval_ms
        if "interval" in c:
            interval = self.duration(
                c["interval"], "checkpointing", "interval", minimum=MIN_CHECKPOINT_INTERVAL_MS
            )
        return Checkpointing(
            interval_ms=interval, incremental=c.get("incremental", Checkpointing.incremental)
        )

    def trace_path(self, trace: str) -> str:
        base = os.path.dirname(os.path.abspath(self.file))
        return os.path.normpath(os.path.join(base, os.path.expanduser(trace)))

    def state(self, s: dict[str, Any], i: int, replay: Replay) -> StateSpec:
        p: FieldPath = ("states", i)
        kind: StateKind = s["kind"]
        key_type: KeyType = s.get("key_type", "long")
        key_size = StateSpec.key_size
        if key_type == "string":
            if "key_size" not in s:
                raise self.error(
                    "string keys need key_size (bytes of a serialized key)", *p, "key_size"
                )
            key_size = self.serialized_size(s["key_size"], *p, "key_size")
        elif "key_size" in s:
            raise self.error(
                "key_size is only read for string keys; long keys are 8 bytes", *p, "key_size"
            )
        extra: dict[str, Any] = {}
        for key, owner in (
            ("entries_per_key", "map"),
            ("user_key_size", "map"),
            ("elements_per_key", "list"),
        ):
            if key not in s:
                continue
            if kind != owner:
                raise self.error(f"{key} is only read for {owner} state, not {kind}", *p, key)
            extra[key] = self.serialized_size(s[key], *p, key) if key == "user_key_size" else s[key]
        if "window" in s and "timers" in s:
            raise self.error(
                "timers is not read for a windowed state: a window operator has no user timer "
                "service (its triggers register in the window timers)",
                *p,
                "timers",
            )
        keys: int = s["keys"]
        return StateSpec(
            name=s["name"],
            kind=kind,
            keys=keys,
            key_type=key_type,
            key_size=key_size,
            popularity=self.popularity(s.get("popularity", "uniform"), keys, *p, "popularity"),
            value_size=self.size_dist(s.get("value_size", SizeDist.value), *p, "value_size"),
            accesses_per_record=float(s.get("accesses_per_record", 1.0)),
            operations=self.operations(s["operations"], kind, *p, "operations"),
            window=self.window(s["window"], replay, *p, "window") if "window" in s else None,
            ttl_ms=self.duration(s["ttl"], *p, "ttl", minimum=1) if "ttl" in s else None,
            timers=self.timers(s["timers"], *p, "timers") if "timers" in s else None,
            **extra,
        )

    def popularity(self, raw: str | dict[str, Any], keys: int, *path: str | int) -> Popularity:
        if isinstance(raw, str):
            return Popularity(kind=cast(PopularityKind, raw))  # the schema's enum
        if "zipf" in raw:
            return Popularity(kind="zipf", exponent=float(raw["zipf"]["exponent"]))
        hot_fraction = float(raw["hotset"]["hot_fraction"])
        if hot_fraction * keys < 1:
            raise self.error(
                f"hot_fraction {hot_fraction} of {keys} keys is less than one hot key",
                *path,
                "hotset",
                "hot_fraction",
            )
        return Popularity(
            kind="hotset",
            hot_fraction=hot_fraction,
            hot_share=float(raw["hotset"]["hot_share"]),
        )

    def size_dist(self, raw: int | str | dict[str, Any], *path: str | int) -> SizeDist:
        if not isinstance(raw, dict):
            value = self.serialized_size(raw, *path)
            # The clipping bounds are unused for a fixed size, but must not exclude it.
            return SizeDist(kind="fixed", value=value, max=max(DEFAULT_SIZE_MAX, value))
        [(name, params)] = raw.items()
        kind = cast(SizeDistKind, name)  # the schema allows only these keys
        where = (*path, kind)
        lo = self.serialized_size(params.get("min", DEFAULT_SIZE_MIN), *where, "min")
        hi = self.serialized_size(params.get("max", DEFAULT_SIZE_MAX), *where, "max")
        if lo > hi:
            bound = "max" if "max" in params else "min"
            raise self.error(
                f"min {format_memory_size(lo)} is above max {format_memory_size(hi)}"
                + ("" if "max" in params else " (the default)"),
                *where,
                bound,
            )
        if kind == "uniform":
            return SizeDist(kind="uniform", value=(lo + hi) // 2, min=lo, max=hi)
        mean = self.serialized_size(params["mean"], *where, "mean")
        if not lo <= mean <= hi:
            raise self.error(
                f"mean {format_memory_size(mean)} is outside the clipping range "
                f"[{format_memory_size(lo)}, {format_memory_size(hi)}]",
                *where,
                "mean",
            )
        return SizeDist(kind=kind, value=mean, min=lo, max=hi, sigma=float(params["sigma"]))

    def operations(
        self, raw: dict[str, float], kind: StateKind, *path: str | int
    ) -> tuple[tuple[str, float], ...]:
        allowed = OPERATIONS[kind]
        for op in raw:
            if op not in allowed:
                raise self.error(
                    f'"{op}" is not an operation of {kind} state; {kind} state allows '
                    + ", ".join(allowed),
                    *path,
                    op,
                )
        total = math.fsum(raw.values())
        if abs(total - 1.0) > SHARE_TOLERANCE:
            shares = ", ".join(f"{op}: {share:g}" for op, share in raw.items())
            raise self.error(f"shares must sum to 1, but got {total:g} ({shares})", *path)
        return tuple((op, float(share)) for op, share in raw.items())

    def window(self, raw: dict[str, Any], replay: Replay, *path: str | int) -> Window:
        [(shape, spec)] = raw.items()
        where = (*path, shape)
        if shape == "tumbling":
            size = self.duration(spec, *where, minimum=1)
            return Window(type="tumbling", size_ms=size, slide_ms=size)
        if shape == "tumbling_records":
            size = self.records_to_ms(spec, replay, *where)
            return Window(type="tumbling", size_ms=size, slide_ms=size)
        if shape == "sliding":
            size = self.duration(spec["size"], *where, "size", minimum=1)
            slide = self.duration(spec["slide"], *where, "slide", minimum=1)
        else:
            size, slide = spec["size"], spec["slide"]
        unit = " records" if shape == "sliding_records" else " ms"
        if slide > size:
            raise self.error(
                f"slide {slide}{unit} is longer than size {size}{unit}", *where, "slide"
            )
        if size % slide:
            raise self.error(
                f"size {size}{unit} is not a multiple of slide {slide}{unit}", *where, "size"
            )
        if shape == "sliding_records":
            # Convert the slide and scale it, so the size stays an exact multiple after rounding.
            windows_per_element = size // slide
            slide = self.records_to_ms(slide, replay, *where, "slide")
            size = windows_per_element * slide
        return Window(type="sliding", size_ms=size, slide_ms=slide)

    def records_to_ms(self, records: int, replay: Replay, *path: str | int) -> int:
        ms = round(records * 1000 / replay.records_per_second)
        if ms < 1:
            raise self.error(
                f"{records} records last less than 1 ms of event time at "
                f"replay.records_per_second {replay.records_per_second}",
                *path,
            )
        return ms

    def timers(self, raw: dict[str, Any], *path: str | int) -> Timers:
        return Timers(
            per_record=float(raw["per_record"]),
            delay_ms=self.duration(raw["delay"], *path, "delay"),
            domain=raw.get("domain", "event"),
        )

    def check_unique_names(self, states: Sequence[StateSpec]) -> None:
        first: dict[str, int] = {}
        for i, s in enumerate(states):
            if s.name in first:
                raise self.error(
                    f'duplicate state name "{s.name}" (also states[{first[s.name]}]); each '
                    "state is a column family of its own",
                    "states",
                    i,
                    "name",
                )
            first[s.name] = i

    def check_budget(self, memory: Memory, states: Sequence[StateSpec]) -> None:
        families = column_family_count(states)
        if memory.mode == "unmanaged":
            # Per-column-family write buffers: at least one minimal memtable each.
            need = families * MIN_WRITE_BUFFER_SIZE
        else:
            need = minimum_budget(families, memory.write_buffer_ratio)
        if memory.budget >= need:
            return
        size_key = MEMORY_SIZE_KEY[memory.mode]
        given = format_memory_size(getattr(memory, size_key))
        if memory.mode == "fixed-per-tm":
            given += f" shared by {memory.slots_per_tm} slots"
            need *= memory.slots_per_tm
        ratio = (
            ""
            if memory.mode == "unmanaged"
            else f" at write_buffer_ratio {memory.write_buffer_ratio}"
        )
        timers = families - len(states)
        raise self.error(
            f"{given} cannot hold a {format_memory_size(MIN_WRITE_BUFFER_SIZE)} write buffer for "
            f"each of {count_of(families, 'column family', 'column families')} "
            f"({count_of(len(states), 'state', 'states')}, "
            f"{count_of(timers, 'timer service', 'timer services')}){ratio}; {size_key} must be "
            f"at least {format_memory_size(_ceil_mb(need))}",
            "memory",
            size_key,
        )
