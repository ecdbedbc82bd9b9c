"""A user's own Flink configuration as settings the replay measures: the ``current`` baseline
of ``tuner run --baseline`` and the configurations of ``tuner compare``.

The file is read and checked exactly as ``tuner check-config`` reads and checks it (same reader,
same catalog, same messages); any problem is a user mistake (exit 2). Keys the replay does not
model are listed, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tuner.errors import TunerError
from tuner.flink import options as fo
from tuner.flink.config_check import check_config

__all__ = ["UserConfig", "read_user_config", "settings_from_json"]

# The budget comes from the workload's memory section (it is what the replay sizes the cache
# by); a config's memory-mode keys would contradict it, so they are read but not applied.
_BUDGET_KEYS = frozenset({fo.MEMORY_MANAGED, fo.MEMORY_FIXED_PER_SLOT, fo.MEMORY_FIXED_PER_TM})


@dataclass(frozen=True)
class UserConfig:
    """The RocksDB settings of a user's Flink config file, as the replay applies them."""

    source: str
    settings: Mapping[str, fo.FlinkValue]
    # key -> why the replay does not apply it (budget keys, options it does not model)
    ignored: Mapping[str, str] = field(default_factory=dict)


def read_user_config(path: str | Path, flink_version: str) -> UserConfig:
    """Read ``path`` (config.yaml, flink-conf.yaml or FlinkDeployment) for ``flink_version``.

    Raises TunerError, with check-config's message for each problem, when the file has unknown
    ``state.backend.rocksdb.*`` keys or values Flink cannot parse.
    """
    result = check_config(path, flink_version)
    if result.problems:
        raise TunerError("; ".join(str(p) for p in result.problems))
    settings: dict[str, fo.FlinkValue] = {}
    ignored: dict[str, str] = {}
    for key, value in result.values.items():
        if key in _BUDGET_KEYS:
            ignored[key] = "memory mode and size come from the workload's memory section"
        elif key in fo.DEFAULTS:
            settings[key] = value
        else:
            ignored[key] = "not modelled by the replay"
    try:
        fo.effective(settings)
    except ValueError as exc:
        raise TunerError(str(exc), file=str(path)) from None
    return UserConfig(str(path), settings, ignored)


def settings_from_json(raw: Mapping[str, object]) -> dict[str, fo.FlinkValue]:
    """Settings stored as JSON (run.json, recommendation.json): lists back to tuples."""
    out: dict[str, fo.FlinkValue] = {}
    for k, v in raw.items():
        if isinstance(v, list):
            out[k] = tuple(str(x) for x in v)
        elif isinstance(v, bool | int | float | str):
            out[k] = v
        else:
            raise TunerError(f"setting {k!r} has an unexpected value {v!r}")
    return out
