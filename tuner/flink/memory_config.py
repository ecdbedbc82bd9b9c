"""A workload's ``memory`` section from the job's own Flink configuration file.

What one slot's RocksDB gets, from ``config.yaml`` (2.x), ``flink-conf.yaml`` (1.x) or a
FlinkDeployment, as Flink's TaskManager memory model derives it:

* ``state.backend.rocksdb.memory.fixed-per-slot`` / ``fixed-per-tm`` set: that budget
  (RocksDBMemoryConfiguration.java: fixed-per-slot wins over fixed-per-tm, both over managed).
* else ``state.backend.rocksdb.memory.managed`` (default true): the slot's managed memory,
  ``taskmanager.memory.managed.size`` or ``managed.fraction`` (0.4) of the total Flink memory,
  divided by ``taskmanager.numberOfTaskSlots`` (1). Total Flink memory is
  ``taskmanager.memory.flink.size``, else ``process.size`` less JVM metaspace (256m) and JVM
  overhead (0.1 of the process size, within [192m, 1g]) (TaskManagerOptions.java,
  TaskExecutorProcessUtils.java / ProcessMemoryUtils.java).
* ``managed: false``: unmanaged, with that same managed size as the budget tuner keeps it in.
* ``write-buffer-ratio`` (0.5) and ``high-prio-pool-ratio`` (0.1) as set.

The derivation is returned line by line, so the user sees where the number came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.flink.config_check import read_config_entries
from tuner.units import format_memory_size, parse_memory_size

__all__ = ["MemoryFromConfig", "memory_from_config"]

_R = "state.backend.rocksdb.memory."
# TaskManagerOptions.java defaults.
MANAGED_FRACTION = 0.4
METASPACE = 256 << 20
OVERHEAD_FRACTION = 0.1
OVERHEAD_MIN = 192 << 20
OVERHEAD_MAX = 1 << 30


@dataclass(frozen=True)
class MemoryFromConfig:
    """The memory section (plain data, workload file format) and how it was derived."""

    memory: dict[str, Any]
    derivation: tuple[str, ...]


def _values(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in read_config_entries(path):
        if e.value is not None:
            out[e.key] = str(e.value).strip()
    return out


def _size(values: dict[str, str], key: str, path: Path) -> int | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        return parse_memory_size(raw)
    except (TunerError, ValueError) as e:
        raise TunerError(f"not a memory size: {raw!r} ({e})", file=str(path), where=key) from None


def _float(values: dict[str, str], key: str, default: float, path: Path) -> float:
    raw = values.get(key)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise TunerError(f"not a number: {raw!r}", file=str(path), where=key) from None


def _managed_per_slot(values: dict[str, str], slots: int, path: Path) -> tuple[int, list[str]]:
    why: list[str] = []
    managed = _size(values, "taskmanager.memory.managed.size", path)
    if managed is not None:
        why.append(f"taskmanager.memory.managed.size = {format_memory_size(managed)}")
    else:
        fraction = _float(values, "taskmanager.memory.managed.fraction", MANAGED_FRACTION, path)
        flink = _size(values, "taskmanager.memory.flink.size", path)
        if flink is not None:
            why.append(f"taskmanager.memory.flink.size = {format_memory_size(flink)}")
        else:
            process = _size(values, "taskmanager.memory.process.size", path)
            if process is None:
                raise TunerError(
                    "no TaskManager memory size: set taskmanager.memory.process.size, "
                    "flink.size or managed.size (or rocksdb memory fixed-per-slot)",
                    file=str(path),
                )
            metaspace = _size(values, "taskmanager.memory.jvm-metaspace.size", path) or METASPACE
            overhead = min(OVERHEAD_MAX, max(OVERHEAD_MIN, int(process * OVERHEAD_FRACTION)))
            flink = process - metaspace - overhead
            why.append(
                f"taskmanager.memory.process.size = {format_memory_size(process)}, less "
                f"metaspace {format_memory_size(metaspace)} and JVM overhead "
                f"{format_memory_size(overhead)}: total Flink memory {format_memory_size(flink)}"
            )
        managed = int(flink * fraction)  # MemorySize.multiply truncates
        why.append(f"managed = {fraction} x total Flink memory = {format_memory_size(managed)}")
    per_slot = managed // slots
    why.append(f"per slot = managed / {slots} slots = {format_memory_size(per_slot)}")
    return per_slot, why


def memory_from_config(path: str | Path) -> MemoryFromConfig:
    """The RocksDB memory of one slot set by the Flink configuration file at ``path``."""
    p = Path(path)
    if not p.is_file():
        raise TunerError("no such Flink configuration file", file=str(p))
    values = _values(p)
    try:
        slots = int(values.get("taskmanager.numberOfTaskSlots", "1"))
    except ValueError:
        raise TunerError(
            "not an integer", file=str(p), where="taskmanager.numberOfTaskSlots"
        ) from None
    if slots < 1:
        raise TunerError(f"`slots >= 1` must hold, but got {slots}", file=str(p))
    memory: dict[str, Any] = {"slots_per_tm": slots}
    why: list[str] = [f"taskmanager.numberOfTaskSlots = {slots}"]
    fixed_slot = _size(values, _R + "fixed-per-slot", p)
    fixed_tm = _size(values, _R + "fixed-per-tm", p)
    if fixed_slot is not None:
        memory.update(mode="fixed-per-slot", fixed_per_slot=format_memory_size(fixed_slot))
        why.append(f"{_R}fixed-per-slot = {format_memory_size(fixed_slot)}")
    elif fixed_tm is not None:
        memory.update(mode="fixed-per-tm", fixed_per_tm=format_memory_size(fixed_tm))
        why.append(f"{_R}fixed-per-tm = {format_memory_size(fixed_tm)}, shared by {slots} slots")
    else:
        managed_flag = values.get(_R + "managed", "true").lower()
        per_slot, derivation = _managed_per_slot(values, slots, p)
        memory.update(
            mode="managed" if managed_flag != "false" else "unmanaged",
            managed_per_slot=format_memory_size(per_slot),
        )
        why += derivation
    for key, name, default in (
        ("write-buffer-ratio", "write_buffer_ratio", 0.5),
        ("high-prio-pool-ratio", "high_prio_pool_ratio", 0.1),
    ):
        memory[name] = _float(values, _R + key, default, p)
    return MemoryFromConfig(memory=memory, derivation=tuple(why))
