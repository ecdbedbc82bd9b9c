"""Workload: one Flink job's keyed state as frozen dataclasses, and the YAML file describing it.

A workload file is YAML, validated against the workload JSON Schema (``workloads/schema.json``,
shipped as ``tuner/data/workload.schema.json``) and then checked for what a schema cannot say
(shares summing to 1, operations of the state's kind, a budget that affords the write buffers).
A compact example::

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

The rooms: :mod:`.model` (the dataclasses), :mod:`.load` (bounded YAML, the schema, errors naming
the field), :mod:`.resolve` (schema-valid data into dataclasses), :mod:`.dump` (back to YAML).
"""

from tuner.flink.memory import Memory
from tuner.workload.dump import dump_workload, workload_to_dict
from tuner.workload.load import load_schema, load_workload, loads_workload, parse_workload
from tuner.workload.model import (
    OPERATIONS,
    SUPPORTED_FLINK_VERSIONS,
    Checkpointing,
    Popularity,
    Replay,
    SizeDist,
    StateSpec,
    Timers,
    Window,
    Workload,
    column_family_count,
    timer_service,
)

__all__ = [
    "OPERATIONS",
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
