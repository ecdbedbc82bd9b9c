"""Paste-ready Flink configuration: config.yaml (2.x), flink-conf.yaml (1.x), FlinkDeployment.

Every key is preceded by a ``# `` comment saying why it is set, values are written in the syntax
Flink parses (``catalog.format_value``), and each output reads back through
``tuner.flink.config_check`` to the same typed values.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import yaml

from tuner.flink.catalog import Catalog, FlinkValue
from tuner.flink.config_check import Yaml12Loader

__all__ = [
    "Setting",
    "render_config_yaml",
    "render_flink_conf",
    "render_flink_deployment",
]

# metadata.name of a Kubernetes object: an RFC 1123 subdomain.
_K8S_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class Setting:
    """One key to set, its typed value (as in the catalog) and a one-line reason."""

    key: str
    value: FlinkValue
    comment: str


WATCH_HEADER = (
    "What to watch in production: uncomment a key to switch its RocksDB metric on. The hit, "
    "miss and stall metrics make Flink enable RocksDB statistics, which costs some throughput."
)


def render_config_yaml(
    settings: Sequence[Setting], catalog: Catalog, header: str, watch: Sequence[Setting] = ()
) -> str:
    """A Flink 2.x ``config.yaml`` with flat keys; values quoted only where YAML needs it.
    ``watch``: metric keys written commented out after the settings (tuner.flink.watch)."""
    lines = _comment_lines(header)
    for setting, text in _formatted(settings, catalog):
        lines += _comment_lines(setting.comment)
        lines.append(f"{setting.key}: {_yaml_scalar(text)}")
    lines += _watch_lines(watch, catalog, _yaml_scalar)
    return "\n".join(lines) + "\n"


def _watch_lines(
    watch: Sequence[Setting], catalog: Catalog, value: Callable[[str], str], indent: str = ""
) -> list[str]:
    """The commented-out metric keys: a blank line, why they are there, each key's comment."""
    present = [w for w in watch if w.key in catalog.options]
    if not present:
        return []
    lines = ["", *_comment_lines(WATCH_HEADER)]
    for setting, text in _formatted(present, catalog):
        lines += _comment_lines(setting.comment)
        lines.append(f"# {setting.key}: {value(text)}")
    return [indent + line if line else line for line in lines]


def render_flink_conf(
    settings: Sequence[Setting], catalog: Catalog, header: str, watch: Sequence[Setting] = ()
) -> str:
    """A Flink 1.x ``flink-conf.yaml`` for Flink's line parser, which strips no quotes.
    ``watch``: metric keys written commented out after the settings (tuner.flink.watch)."""
    lines = _comment_lines(header)
    for setting, text in _formatted(settings, catalog):
        # GlobalConfiguration.loadYAMLResource (flink-core 1.x) cuts a line at its first '#'
        # and drops empty values; such a value cannot be written in this format.
        if "#" in text or "\n" in text or not text.strip():
            raise ValueError(f"{setting.key}: {text!r} cannot be written to flink-conf.yaml")
        lines += _comment_lines(setting.comment)
        lines.append(f"{setting.key}: {text}")
    lines += _watch_lines(watch, catalog, str)
    return "\n".join(lines) + "\n"


def render_flink_deployment(
    settings: Sequence[Setting],
    catalog: Catalog,
    header: str,
    name: str,
    watch: Sequence[Setting] = (),
) -> str:
    """A FlinkDeployment manifest fragment whose ``spec.flinkConfiguration`` holds the settings.

    The Flink Kubernetes operator's CRD declares flinkConfiguration as a map of strings, so
    every value is written as a double-quoted YAML string. ``watch``: metric keys written
    commented out under the settings (tuner.flink.watch).
    """
    if not _K8S_NAME.fullmatch(name) or len(name) > 253:
        raise ValueError(f"{name!r} is not a valid Kubernetes object name (RFC 1123 subdomain)")
    lines = _comment_lines(header)
    lines += [
        "apiVersion: flink.apache.org/v1beta1",
        "kind: FlinkDeployment",
        "metadata:",
        f"  name: {name}",
        "spec:",
        "  flinkConfiguration:",
    ]
    for setting, text in _formatted(settings, catalog):
        lines += ["    " + line for line in _comment_lines(setting.comment)]
        lines.append(f"    {setting.key}: {json.dumps(text, ensure_ascii=False)}")
    lines += _watch_lines(watch, catalog, lambda t: json.dumps(t, ensure_ascii=False), "    ")
    return "\n".join(lines) + "\n"


def _formatted(settings: Iterable[Setting], catalog: Catalog) -> list[tuple[Setting, str]]:
    seen: set[str] = set()
    out = []
    for setting in settings:
        if setting.key not in catalog.options:
            raise ValueError(f"{setting.key!r} is not a key of the Flink {catalog.version} catalog")
        if setting.key in seen:
            raise ValueError(f"{setting.key!r} is set twice")
        seen.add(setting.key)
        out.append((setting, catalog.format_value(setting.key, setting.value)))
    return out


def _comment_lines(text: str) -> list[str]:
    # Long comments are wrapped, so a pasted file stays readable in any editor.
    if not text:
        return []
    return [
        f"# {part}".rstrip()
        for line in text.splitlines()
        for part in (textwrap.wrap(line, 98, break_on_hyphens=False) or [""])
    ]


def _yaml_scalar(text: str) -> str:
    """``text`` as a YAML value that Flink 2.x reads back as the same option value."""
    try:
        loaded = yaml.load(f"k: {text}", Loader=Yaml12Loader)
    except yaml.YAMLError:
        loaded = None
    plain_ok = (
        isinstance(loaded, dict)
        and len(loaded) == 1
        and _same_text(loaded.get("k"), text)
        and text == text.strip()
    )
    return text if plain_ok else json.dumps(text, ensure_ascii=False)


def _same_text(value: object, text: str) -> bool:
    # A plain scalar is safe when YAML 1.2 hands back the same text, or a number or boolean
    # that Flink turns back into that text; anything else is quoted.
    if isinstance(value, str):
        return value == text
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, int):
        return re.fullmatch(r"-?[0-9]+", text) is not None and str(value) == text
    if isinstance(value, float):
        return re.fullmatch(r"-?[0-9]+\.[0-9]+", text) is not None and repr(value) == text
    return False
