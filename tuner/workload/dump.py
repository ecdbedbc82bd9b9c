"""A resolved workload written back as YAML, every default spelled out."""

from __future__ import annotations

from typing import Any

import yaml

from tuner.costmodel import PRESETS, Disk
from tuner.flink.memory import Memory
from tuner.units import format_duration, format_memory_size, parse_duration_ms, parse_memory_size
from tuner.workload.model import MEMORY_SIZE_KEY, Popularity, SizeDist, StateSpec, Workload

try:  # libyaml: the same safe dumping, several times faster
    from yaml import CSafeDumper as _SafeDumper
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeDumper as _SafeDumper  # type: ignore[assignment]

__all__ = ["dump_workload", "workload_to_dict"]


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
    if w.compressibility is not None:
        out["compressibility"] = w.compressibility
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


# --- resolving validated data into dataclasses ------------------------------------------------


def _memory_to_dict(m: Memory) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": m.mode}
    size_key = MEMORY_SIZE_KEY[m.mode]
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
