"""Workload: one Flink job's keyed state as frozen dataclasses, and the YAML file describing it.

A workload file is YAML, validated against ``workloads/schema.json`` (the reference for every key)
and then checked for what a schema cannot say (shares summing to 1, operations of the state's kind,
a budget that affords the write buffers). A compact example::

    name: clicks-per-user
    flink_version: "1.20"
    memory: {mode: managed, managed_per_slot: 64 mb}
    checkpointing: {interval: 10 s}
    replay: {records: 60000, records_per_second: 2000}
    states:
      - name: count
        kind: value
        keys: 50000
        popularity: {zipf: {exponent: 1.1}}
        value_size: 120 b
        operations: {read_update: 1.0}
        window: {tumbling: 1 min}

Sizes are integers in bytes and durations integers in milliseconds inside the library; "64 mb" and
"10 s" (Flink's own syntax, :mod:`tuner.units`) are parsed and formatted only at this edge.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

try:  # libyaml: the same safe loading and dumping, several times faster, clearer syntax errors
    from yaml import CSafeDumper as _SafeDumper
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeDumper as _SafeDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

from tuner.costmodel import DEFAULT_DISK, PRESETS, Disk, disk_from
from tuner.errors import TunerError
from tuner.flink import versions
from tuner.flink.memory import MIN_WRITE_BUFFER_SIZE, minimum_budget, ratios_accepted
from tuner.units import format_duration, format_memory_size, parse_duration_ms, parse_memory_size

StateKind = Literal["value", "list", "map", "reducing", "aggregating"]
KeyType = Literal["long", "string"]
PopularityKind = Literal["uniform", "zipf", "hotset", "sequential", "latest"]
SizeDistKind = Literal["fixed", "uniform", "normal", "lognormal"]
MemoryMode = Literal["managed", "fixed-per-slot", "fixed-per-tm", "unmanaged"]
WindowType = Literal["tumbling", "sliding"]
TimerDomain = Literal["event", "processing"]

# Operations a state kind accepts, as named in workload files and traces.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "value": ("read", "update", "read_update", "clear"),
    "reducing": ("read", "update", "read_update", "clear"),
    "aggregating": ("read", "update", "read_update", "clear"),
    "list": ("read", "append", "update", "clear"),
    "map": ("get", "put", "remove", "contains", "iterate", "clear"),
}


@dataclass(frozen=True)
class SizeDist:
    """A size in bytes: fixed, or drawn from a distribution (clipped to [min, max])."""

    kind: SizeDistKind = "fixed"
    value: int = 100  # fixed size, or the mean (uniform: the midpoint of min and max)
    min: int = 1
    max: int = 1 << 20
    sigma: float = 0.0  # normal: stddev in bytes; lognormal: sigma of the log


@dataclass(frozen=True)
class Popularity:
    """How keys are chosen for each access."""

    kind: PopularityKind = "uniform"
    exponent: float = 1.0  # zipf
    hot_fraction: float = 0.01  # hotset: share of keys that are hot
    hot_share: float = 0.9  # hotset: share of accesses that go to hot keys


@dataclass(frozen=True)
class Window:
    """Windows become namespaces (Flink's TimeWindow: start and end, 16 bytes)."""

    type: WindowType
    size_ms: int
    slide_ms: int  # equals size_ms for tumbling windows


@dataclass(frozen=True)
class Timers:
    """User timers registered per record and fired in timestamp order."""

    per_record: float  # expected registrations per record (a probability when < 1)
    delay_ms: int  # fires this long after the record's timestamp
    domain: TimerDomain = "event"


@dataclass(frozen=True)
class StateSpec:
    """One keyed state of the job (one column family in RocksDB)."""

    name: str
    kind: StateKind
    keys: int  # distinct keys that touch this state
    key_type: KeyType = "long"
    key_size: int = 8  # bytes of a string key (long keys are always 8)
    popularity: Popularity = field(default_factory=Popularity)
    value_size: SizeDist = field(default_factory=SizeDist)
    accesses_per_record: float = 1.0
    operations: tuple[tuple[str, float], ...] = (("read_update", 1.0),)  # op -> share, sum 1
    entries_per_key: int = 1  # map: distinct user keys per key
    user_key_size: int = 8  # map: bytes of a user key
    elements_per_key: int = 1  # list: typical elements per key before a clear
    window: Window | None = None
    ttl_ms: int | None = None
    timers: Timers | None = None


@dataclass(frozen=True)
class Memory:
    """RocksDB memory as Flink sees it for one slot (one replayed RocksDB instance)."""

    mode: MemoryMode = "managed"
    managed_per_slot: int = 256 << 20  # bytes of managed memory of one slot (mode managed)
    fixed_per_slot: int | None = None
    fixed_per_tm: int | None = None
    slots_per_tm: int = 1
    write_buffer_ratio: float = 0.5
    high_prio_pool_ratio: float = 0.1

    @property
    def budget(self) -> int:
        """Bytes the RocksDB instance of one slot may use, as Flink sizes its shared cache."""
        if self.mode == "fixed-per-slot" and self.fixed_per_slot is not None:
            return self.fixed_per_slot
        if self.mode == "fixed-per-tm" and self.fixed_per_tm is not None:
            # Shared by every slot of the TM; the replay models one slot's share.
            return self.fixed_per_tm // self.slots_per_tm
        return self.managed_per_slot


@dataclass(frozen=True)
class Replay:
    """How much to replay: initial state loaded first, then measured records."""

    records: int = 100_000
    preload_fraction: float = 1.0  # share of each state's keys written before measuring
    records_per_second: int = 10_000  # event-time rate: turns windows/TTL/timers into records


@dataclass(frozen=True)
class Checkpointing:
    """Incremental checkpoints: flush, then a RocksDB checkpoint, every interval."""

    interval_ms: int = 10_000
    incremental: bool = True


@dataclass(frozen=True)
class Workload:
    """A Flink job's keyed state, its memory budget and how to replay it."""

    name: str
    description: str
    flink_version: str  # "1.20" or "2.x" style ("2.0", "2.3")
    seed: int
    memory: Memory
    states: tuple[StateSpec, ...]
    replay: Replay = field(default_factory=Replay)
    checkpointing: Checkpointing = field(default_factory=Checkpointing)
    max_parallelism: int = 128
    # The disk the job's TaskManagers write to: prices the replay's counted I/O (tuner.costmodel).
    disk: Disk = field(default_factory=lambda: PRESETS[DEFAULT_DISK])
    trace: str | None = None  # absolute path of a recorded trace; replaces the generator
    source: str | None = None  # the file this was loaded from

    @property
    def flink_major(self) -> int:
        """1 for Flink 1.x, 2 for Flink 2.x."""
        return versions.major(self.flink_version)

    def state(self, name: str) -> StateSpec:
        """The state called ``name``."""
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)


__all__ = [
    "OPERATIONS",
    "SCHEMA_PATH",
    "SUPPORTED_FLINK_VERSIONS",
    "Checkpointing",
    "Memory",
    "Popularity",
    "Replay",
    "SizeDist",
    "StateSpec",
    "Timers",
    "Window",
    "Workload",
    "column_family_count",
    "dump_workload",
    "load_schema",
    "load_workload",
    "loads_workload",
    "parse_workload",
    "timer_service",
    "workload_to_dict",
]

# ---------------------------------------------------------------------------------------------
# Reading and writing workload files
# ---------------------------------------------------------------------------------------------

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workloads" / "schema.json"

# "2" and "2.x" mean the newest Flink 2 the option catalogue knows; minors are kept as written.
# The short spellings; patch releases ("2.3.0") are accepted too (tuner.flink.versions).
SUPPORTED_FLINK_VERSIONS: tuple[str, ...] = versions.SPELLINGS

# Clipping bounds of a size distribution when the file gives none (SizeDist's defaults).
DEFAULT_SIZE_MIN = SizeDist.min
DEFAULT_SIZE_MAX = SizeDist.max

# CheckpointCoordinatorConfiguration.MINIMAL_CHECKPOINT_TIME: Flink refuses shorter intervals.
MIN_CHECKPOINT_INTERVAL_MS = 10

SHARE_TOLERANCE = 1e-6

# The size key each memory mode reads; any other size key is a mistake for that mode.
_MEMORY_SIZE_KEY: dict[str, str] = {
    "managed": "managed_per_slot",
    "unmanaged": "managed_per_slot",
    "fixed-per-slot": "fixed_per_slot",
    "fixed-per-tm": "fixed_per_tm",
}

_PATTERN_RULES: dict[str, str] = {
    "^[A-Za-z0-9][A-Za-z0-9._-]*$": "use letters, digits, '.', '_' and '-', starting with a "
    "letter or digit",
    "^[A-Za-z][A-Za-z0-9._-]*$": "use letters, digits, '.', '_' and '-', starting with a letter",
}

FieldPath = tuple[str | int, ...]


def timer_service(spec: StateSpec) -> str | None:
    """The timer service a state's operator registers in: ``window``, ``event`` or ``processing``
    (user timers by domain), or None.

    A window operator has no user timer service (triggers register in its window timers), which
    is why a windowed state may not declare ``timers``.
    """
    if spec.window is not None:
        return "window"
    if spec.timers is not None:
        return spec.timers.domain
    return None


def column_family_count(states: Sequence[StateSpec]) -> int:
    """Column families of the replayed RocksDB instance: one per state, one per timer service.

    With Flink's default timer store (state.backend.rocksdb.timer-service.factory: ROCKSDB)
    timers live in column families of their own (``_timer_state/...``). The replay runs every
    state in one instance, so timer services of one kind (window, event-time user timers,
    processing-time user timers) share one column family, as the generator lays them out.
    """
    services = {timer_service(s) for s in states} - {None}
    return len(states) + len(services)


def load_schema() -> dict[str, Any]:
    """The workload JSON Schema (draft 2020-12), as published in ``workloads/schema.json``."""
    copy: dict[str, Any] = json.loads(json.dumps(_schema()))  # callers may not alter the cache
    return copy


@functools.cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    # JSON Schema counts 10.0 as an integer; counts and bytes must reach the dataclasses as ints.
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=checker)
    validator: Draft202012Validator = strict(_schema())
    return validator


def load_workload(path: str | os.PathLike[str]) -> Workload:
    """Read, validate and resolve a workload file.

    Raises :class:`TunerError` naming the file and the field (or line and column) at fault.
    A ``trace`` must exist; its path is resolved relative to the workload file.
    """
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TunerError("workload file not found", file=file) from None
    except UnicodeDecodeError as e:
        raise TunerError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=file) from None
    except OSError as e:
        raise TunerError(f"cannot read the workload file: {e.strerror}", file=file) from None
    workload = loads_workload(text, file)
    if workload.trace is not None and not os.path.isfile(workload.trace):
        raise TunerError(f"trace file not found: {workload.trace}", file=file, where="trace")
    return replace(workload, source=os.path.abspath(file))


def loads_workload(text: str, file: str = "<string>") -> Workload:
    """Parse workload YAML text; ``file`` names it in errors and anchors a relative ``trace``.

    Unlike :func:`load_workload` it does not check that the trace exists.
    """
    return parse_workload(_parse_yaml(text, file), file)


def parse_workload(data: object, file: str) -> Workload:
    """Validate parsed YAML (plain dicts, lists and scalars) and resolve it into a Workload.

    Pure apart from anchoring a relative ``trace`` to ``file``'s directory. Raises
    :class:`TunerError` with ``file`` and the field path (``states[1].value_size``).
    """
    if data is None:
        raise TunerError("the workload file is empty", file=file)
    if not isinstance(data, dict):
        raise TunerError(
            f"expected a mapping of workload keys at the top level, got {_describe(data)}",
            file=file,
        )
    _check_plain_data(data, (), file)
    _check_schema(data, file)
    return _Resolver(file).workload(data)


def workload_to_dict(w: Workload) -> dict[str, Any]:
    """The resolved workload as plain data in the file format, every default spelled out.

    Sizes and durations are written in Flink's syntax where that reads back exactly, otherwise
    as integers (bytes, ms). ``source`` is not written.
    """
    out: dict[str, Any] = {
        "name": w.name,
        "description": w.description,
        "flink_version": w.flink_version,
        "seed": w.seed,
        "max_parallelism": w.max_parallelism,
        "disk": _disk_to_yaml(w.disk),
        "memory": _memory_to_dict(w.memory),
        "checkpointing": {
            "interval": _duration_out(w.checkpointing.interval_ms),
            "incremental": w.checkpointing.incremental,
        },
    }
    if w.trace is not None:
        out["replay"] = {"preload_fraction": w.replay.preload_fraction}
        out["trace"] = w.trace
    else:
        out["replay"] = {
            "records": w.replay.records,
            "preload_fraction": w.replay.preload_fraction,
            "records_per_second": w.replay.records_per_second,
        }
        out["states"] = [_state_to_dict(s) for s in w.states]
    return out


def _disk_to_yaml(d: Disk) -> str | dict[str, Any]:
    if PRESETS.get(d.name) == d:
        return d.name
    return {
        "name": d.name,
        "read_latency_us": d.read_latency_us,
        "read_iops": d.read_iops,
        "read_mb_s": d.read_bytes_per_s / 1_000_000,
        "write_mb_s": d.write_bytes_per_s / 1_000_000,
    }


def dump_workload(w: Workload) -> str:
    """YAML of the resolved workload: ``load_workload`` of it gives ``w`` back (but ``source``)."""
    header = f"# Resolved workload {w.name!r}, written by tuner; every default is spelled out.\n"
    # allow_unicode=False: PyYAML writes some line breaks (NEL, U+0085) raw and reads them back as
    # spaces; escaped, every description round-trips.
    body = yaml.dump(
        workload_to_dict(w),
        Dumper=_SafeDumper,
        sort_keys=False,
        allow_unicode=False,
        default_flow_style=False,
    )
    return header + body


# --- YAML -------------------------------------------------------------------------------------


class _StrictLoader(_SafeLoader):
    """safe_load, except that a key given twice is an error instead of the last one winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, file: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = e.problem or "invalid YAML"
        context = f" ({e.context})" if e.context and e.problem else ""
        raise TunerError(f"invalid YAML: {problem}{context}", file=file, where=where) from None
    except yaml.YAMLError as e:
        raise TunerError(f"invalid YAML: {e}", file=file) from None


# --- schema errors ----------------------------------------------------------------------------


def _where(path: Sequence[str | int]) -> str | None:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or None


def _describe(value: object) -> str:
    """A value as the user wrote it in YAML, with the YAML type name."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _one_of(names: Sequence[str]) -> str:
    quoted = [f'"{n}"' for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _check_plain_data(value: object, path: FieldPath, file: str) -> None:
    """Refuse what JSON Schema cannot see: non-string keys, NaN and infinities."""
    if isinstance(value, dict):
        for key, item in value.items():
            # YAML 1.1 reads on/off/yes/no and digits as such, even as keys: say so.
            if not isinstance(key, str):
                raise TunerError(
                    f"key {_describe(key)} is not a string (YAML reads yes/no/on/off as "
                    "booleans and digits as numbers; quote it)",
                    file=file,
                    where=_where(path),
                )
            _check_plain_data(item, (*path, key), file)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain_data(item, (*path, i), file)
    elif isinstance(value, float) and not math.isfinite(value):
        # NaN passes every minimum and maximum, and a NaN share would pass the sum check.
        raise TunerError(
            f"must be a finite number, got {_describe(value)}", file=file, where=_where(path)
        )


# Among errors on one field, an unknown key says most (a typo often also makes a key "missing").
_VALIDATOR_RANK = {"additionalProperties": 0, "required": 1, "type": 2}


def _document_order(data: object, error: ValidationError) -> tuple[int, ...]:
    """Where an error's field comes in the file, so the first mistake is reported first."""
    order: list[int] = []
    node = data
    for part in error.absolute_path:
        if isinstance(node, dict) and isinstance(part, str):
            order.append(list(node).index(part))
        elif isinstance(node, list) and isinstance(part, int):
            order.append(part)
        node = node[part] if isinstance(node, dict | list) else None
    return (*order, -1, _VALIDATOR_RANK.get(str(error.validator), 9))


def _check_schema(data: dict[str, Any], file: str) -> None:
    errors = list(_validator().iter_errors(data))
    if errors:
        first = min(errors, key=lambda e: _document_order(data, e))
        raise _schema_error(first, file)


def _schema_error(error: ValidationError, file: str) -> TunerError:
    path: FieldPath = tuple(error.absolute_path)
    value = error.instance
    rule: Any = error.validator_value
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    known = list(schema.get("properties", {}))
    message: str
    match error.validator:
        case "additionalProperties":
            key = next(k for k in value if k not in known)
            path = (*path, key)
            message = f'unknown key "{key}"{_suggest(key, known)}'
            if not message.endswith("?"):
                message += f"; known keys: {', '.join(known)}"
        case "required":
            key = next(k for k in rule if k not in value)
            path = (*path, key)
            description = schema["properties"][key].get("description", "")
            message = f'missing required key "{key}"' + (f" ({description})" if description else "")
        case "type":
            types = [rule] if isinstance(rule, str) else list(rule)
            names = [_TYPE_NAMES.get(t, t) for t in types]
            expected = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            message = f"expected {expected}, got {_describe(value)}"
        case "enum":
            choices = [str(c) for c in rule]
            message = f"must be {_one_of(choices)}, got {_describe(value)}"
            if isinstance(value, str):
                message += _suggest(value, choices)
        case "minimum":
            message = f"must be at least {rule}, got {_describe(value)}"
        case "exclusiveMinimum":
            message = f"must be greater than {rule}, got {_describe(value)}"
        case "maximum":
            message = f"must be at most {rule}, got {_describe(value)}"
        case "exclusiveMaximum":
            message = f"must be less than {rule}, got {_describe(value)}"
        case "minItems" | "minLength":
            message = "must not be empty"
        case "minProperties" if known and rule == 1 and "maxProperties" not in schema:
            message = f"give at least one of {_one_of(known)}"
        case "minProperties" | "maxProperties" if known:
            given = f"got {', '.join(value)}" if value else "got an empty mapping"
            message = f"give exactly one of {_one_of(known)}; {given}"
        case "pattern":
            rule_text = _PATTERN_RULES.get(str(rule), f"must match {rule}")
            message = f"invalid name {_describe(value)}: {rule_text}"
        case _:
            message = error.message
    return TunerError(message, file=file, where=_where(path))


# --- resolving validated data into dataclasses ------------------------------------------------


def _memory_to_dict(m: Memory) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": m.mode}
    size_key = _MEMORY_SIZE_KEY[m.mode]
    size = getattr(m, size_key)
    out[size_key] = _size_out(size)
    out["slots_per_tm"] = m.slots_per_tm
    out["write_buffer_ratio"] = m.write_buffer_ratio
    out["high_prio_pool_ratio"] = m.high_prio_pool_ratio
    return out


def _state_to_dict(s: StateSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": s.name, "kind": s.kind, "keys": s.keys, "key_type": s.key_type}
    if s.key_type == "string":
        out["key_size"] = _size_out(s.key_size)
    out["popularity"] = _popularity_to_yaml(s.popularity)
    out["value_size"] = _size_dist_to_yaml(s.value_size)
    out["accesses_per_record"] = s.accesses_per_record
    out["operations"] = dict(s.operations)
    if s.kind == "map":
        out["entries_per_key"] = s.entries_per_key
        out["user_key_size"] = _size_out(s.user_key_size)
    if s.kind == "list":
        out["elements_per_key"] = s.elements_per_key
    if s.window is not None:
        if s.window.type == "tumbling":
            out["window"] = {"tumbling": _duration_out(s.window.size_ms)}
        else:
            out["window"] = {
                "sliding": {
                    "size": _duration_out(s.window.size_ms),
                    "slide": _duration_out(s.window.slide_ms),
                }
            }
    if s.ttl_ms is not None:
        out["ttl"] = _duration_out(s.ttl_ms)
    if s.timers is not None:
        out["timers"] = {
            "per_record": s.timers.per_record,
            "delay": _duration_out(s.timers.delay_ms),
            "domain": s.timers.domain,
        }
    return out


def _popularity_to_yaml(p: Popularity) -> str | dict[str, Any]:
    if p.kind == "zipf":
        return {"zipf": {"exponent": p.exponent}}
    if p.kind == "hotset":
        return {"hotset": {"hot_fraction": p.hot_fraction, "hot_share": p.hot_share}}
    return p.kind


def _size_dist_to_yaml(d: SizeDist) -> int | str | dict[str, Any]:
    if d.kind == "fixed":
        return _size_out(d.value)
    if d.kind == "uniform":
        return {"uniform": {"min": _size_out(d.min), "max": _size_out(d.max)}}
    return {
        d.kind: {
            "mean": _size_out(d.value),
            "sigma": d.sigma,
            "min": _size_out(d.min),
            "max": _size_out(d.max),
        }
    }


def _size_out(n: int) -> int | str:
    # Flink syntax only where it reads back to the same bytes, so a dump always round-trips.
    text = format_memory_size(n)
    try:
        return text if parse_memory_size(text) == n else n
    except ValueError:
        return n


def _duration_out(ms: int) -> int | str:
    text = format_duration(ms)
    try:
        return text if parse_duration_ms(text) == ms else ms
    except ValueError:
        return ms


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ceil_mb(n: int) -> int:
    mb = 1 << 20
    return -(-n // mb) * mb


class _Resolver:
    """Turns schema-valid data into a Workload, raising TunerError for what the schema can't say."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, message: str, *path: str | int) -> TunerError:
        return TunerError(message, file=self.file, where=_where(path))

    def size(self, value: int | str, *path: str | int) -> int:
        if isinstance(value, int):
            return value
        try:
            n = parse_memory_size(value)
        except ValueError as e:
            raise self.error(str(e), *path) from None
        if n < 1:
            raise self.error(f"must be at least 1 byte, got {_describe(value)}", *path)
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
                f"must be at least {minimum} ms, got {_describe(value)}"
                if minimum > 1
                else f"must be longer than 0 ms, got {_describe(value)}",
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
            f"unsupported flink_version {_describe(raw)}{hint}; supported: "
            + versions.SUPPORTED_TEXT,
            "flink_version",
        )

    def memory(self, m: dict[str, Any]) -> Memory:
        mode = m.get("mode", Memory.mode)
        size_key = _MEMORY_SIZE_KEY[mode]
        for key in ("managed_per_slot", "fixed_per_slot", "fixed_per_tm"):
            if key in m and key != size_key:
                modes = [md for md, k in _MEMORY_SIZE_KEY.items() if k == key]
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
            key_size = self.size(s["key_size"], *p, "key_size")
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
            extra[key] = self.size(s[key], *p, key) if key == "user_key_size" else s[key]
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
            value = self.size(raw, *path)
            # The clipping bounds are unused for a fixed size, but must not exclude it.
            return SizeDist(kind="fixed", value=value, max=max(DEFAULT_SIZE_MAX, value))
        [(name, params)] = raw.items()
        kind = cast(SizeDistKind, name)  # the schema allows only these keys
        where = (*path, kind)
        lo = self.size(params.get("min", DEFAULT_SIZE_MIN), *where, "min")
        hi = self.size(params.get("max", DEFAULT_SIZE_MAX), *where, "max")
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
        mean = self.size(params["mean"], *where, "mean")
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
        size_key = _MEMORY_SIZE_KEY[memory.mode]
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
            f"each of {_count(families, 'column family', 'column families')} "
            f"({_count(len(states), 'state', 'states')}, "
            f"{_count(timers, 'timer service', 'timer services')}){ratio}; {size_key} must be "
            f"at least {format_memory_size(_ceil_mb(need))}",
            "memory",
            size_key,
        )
