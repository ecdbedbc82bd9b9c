"""Check the RocksDB options in a Flink configuration file against the option catalog.

Three kinds of file are read, each the way its consumer reads it:

- Flink 2.x ``config.yaml``: standard YAML (YAML 1.2, as snakeyaml-engine reads it); nested
  mappings flatten to dotted keys (GlobalConfiguration.loadYAMLResource / YamlParserUtils).
- Flink 1.x ``flink-conf.yaml``: Flink's legacy line parser, not YAML: text after the first
  ``#`` is a comment, key and value split at the first ``": "``, both trimmed, quotes kept.
- A Kubernetes ``FlinkDeployment`` manifest: ``spec.flinkConfiguration``, a string map.

``state.backend.rocksdb.*`` keys (and the few other catalog keys) are checked: the key must
exist and the value must parse with the option's type. Other keys are listed as not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import yaml

from tuner.errors import TunerError, printable
from tuner.fileio import read_regular_file
from tuner.flink.catalog import SUPPORTED_VERSIONS, Catalog, FlinkValue, RawValue, load_catalog
from tuner.yamlio import MAX_YAML_BYTES, compose_documents, syntax_error

__all__ = [
    "CheckResult",
    "ConfigEntry",
    "Dialect",
    "Problem",
    "check_config",
    "check_config_file",
    "read_config_entries",
]

Dialect = Literal["config.yaml", "flink-conf.yaml", "FlinkDeployment"]
ROCKSDB_PREFIX: Final = "state.backend.rocksdb."
LEGACY_FILE_NAME: Final = "flink-conf.yaml"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file: where it is and what is wrong."""

    file: str
    where: str  # the key, or "line N" when there is no key
    message: str
    line: int | None = None

    def __str__(self) -> str:
        position = f"{self.file}:{self.line}" if self.line is not None else self.file
        # Keys and values come from the file: escaped, they cannot drive the terminal.
        return printable(f"{position}: {self.where}: {self.message}")


@dataclass(frozen=True)
class ConfigEntry:
    """One key as the file sets it; ``value`` is None when the file gives no value."""

    key: str
    value: RawValue | None
    line: int | None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one file."""

    dialect: Dialect
    problems: list[Problem]
    values: dict[str, FlinkValue]  # catalog keys whose values parsed, as typed values
    unchecked_keys: list[str] = field(default_factory=list)  # keys outside the catalog


def check_config_file(path: str | Path, flink_version: str) -> list[Problem]:
    """The problems in the RocksDB options of a Flink config file or FlinkDeployment manifest.

    An unreadable file or a YAML syntax error raises TunerError with the file and position;
    so does an unsupported ``flink_version``.
    """
    return check_config(path, flink_version).problems


def check_config(
    path: str | Path, flink_version: str, dialect: Dialect | None = None
) -> CheckResult:
    """Check a config file; ``dialect`` overrides detection (by file name and ``kind``)."""
    catalog = load_catalog(flink_version)
    found, entries, early = _read(Path(path), dialect)
    problems = list(early)
    values: dict[str, FlinkValue] = {}
    unchecked: list[str] = []
    first_line: dict[str, int | None] = {}
    for entry in entries:
        spec = catalog.get(entry.key)
        if spec is None and not entry.key.startswith(ROCKSDB_PREFIX):
            unchecked.append(entry.key)
            continue
        problem = _check_entry(catalog, entry, str(path), found)
        if problem is not None:
            problems.append(problem)
            continue
        if spec is None:
            continue
        if spec.key in first_line:
            earlier = first_line[spec.key]
            problems.append(
                Problem(
                    str(path),
                    entry.key,
                    f"{spec.key} is set more than once"
                    + (f" (first on line {earlier})" if earlier is not None else "")
                    + "; Flink uses the last value",
                    entry.line,
                )
            )
        first_line[spec.key] = entry.line
        assert entry.value is not None  # _check_entry reported a missing value
        values[spec.key] = catalog.parse_value(spec.key, entry.value)
    return CheckResult(found, problems, values, sorted(set(unchecked)))


def _check_entry(
    catalog: Catalog, entry: ConfigEntry, file: str, dialect: Dialect
) -> Problem | None:
    spec = catalog.get(entry.key)
    if spec is None:
        return Problem(file, entry.key, _unknown_key_message(catalog, entry.key), entry.line)
    if entry.value is None:
        return Problem(file, entry.key, "has no value", entry.line)
    if dialect == "FlinkDeployment" and not isinstance(entry.value, str):
        return Problem(
            file,
            entry.key,
            f"flinkConfiguration values must be strings, got {entry.value!r}; quote it",
            entry.line,
        )
    try:
        catalog.parse_value(spec.key, entry.value)
    except ValueError as error:
        message = str(error)
        if dialect == "flink-conf.yaml" and re.fullmatch(r"(['\"]).*\1", str(entry.value)):
            message += " (flink-conf.yaml keeps quotes as part of the value; remove them)"
        return Problem(file, entry.key, message, entry.line)
    return None


def _unknown_key_message(catalog: Catalog, key: str) -> str:
    message = f"unknown option for Flink {catalog.version} (Flink silently ignores it)"
    others = [v for v in SUPPORTED_VERSIONS if v != catalog.version]
    known_in = [v for v in others if load_catalog(v).get(key) is not None]
    if known_in:
        return message + f"; it is an option of Flink {', '.join(known_in)} only"
    suggestion = catalog.suggest(key)
    return message + (f"; did you mean {suggestion!r}?" if suggestion else "")


# --- reading the three kinds of file ---------------------------------------------------------


def read_config_entries(path: str | Path, dialect: Dialect | None = None) -> list[ConfigEntry]:
    """The key/value entries of a config file, in file order (duplicates kept)."""
    return _read(Path(path), dialect)[1]


def _read(path: Path, dialect: Dialect | None) -> tuple[Dialect, list[ConfigEntry], list[Problem]]:
    try:
        # Bounded at what yamlio accepts (characters of up to 4 UTF-8 bytes).
        text = read_regular_file(path, 4 * MAX_YAML_BYTES, "a config file").decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TunerError(f"cannot read the config file: {error}", file=str(path)) from None
    if dialect == "flink-conf.yaml" or (dialect is None and path.name == LEGACY_FILE_NAME):
        entries, problems = _read_legacy(text, str(path))
        return "flink-conf.yaml", entries, problems
    documents = _compose_all(text, str(path))
    deployments = [doc for doc in documents if _is_flink_deployment(doc)]
    if dialect == "FlinkDeployment" or (dialect is None and deployments):
        if not deployments:
            raise TunerError("no document with kind: FlinkDeployment", file=str(path))
        entries = []
        for doc in deployments:
            entries.extend(_deployment_entries(doc, str(path)))
        return "FlinkDeployment", entries, []
    if len(documents) > 1:
        raise TunerError(
            "a Flink config.yaml holds one YAML document, this file has several", file=str(path)
        )
    if not documents or _is_null(documents[0]):
        return "config.yaml", [], []
    root = documents[0]
    if not isinstance(root, yaml.MappingNode):
        raise TunerError(
            "a Flink config.yaml must be a mapping of keys to values",
            file=str(path),
            where=_position(root),
        )
    return "config.yaml", list(_flatten(root, "", str(path))), []


def _read_legacy(text: str, file: str) -> tuple[list[ConfigEntry], list[Problem]]:
    """Flink 1.x's line parser (GlobalConfiguration.loadYAMLResource in flink-core 1.x)."""
    entries: list[ConfigEntry] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        # Everything after the first '#' is a comment, even inside quotes.
        content = _java_trim(line.split("#", 1)[0])
        if not content:
            continue
        parts = content.split(": ", 1)
        if len(parts) == 1 and content.endswith(":"):
            # "key:" with nothing after it: trimming removed the space Flink splits on.
            key = _java_trim(content[:-1])
            problems.append(Problem(file, key, "has no value; Flink ignores the line", number))
            continue
        if len(parts) == 1:
            problems.append(
                Problem(
                    file,
                    f"line {number}",
                    "not a 'key: value' line (missing space after ':'?); Flink ignores it",
                    number,
                )
            )
            continue
        key, value = _java_trim(parts[0]), _java_trim(parts[1])
        if not key:
            problems.append(Problem(file, f"line {number}", "empty key; Flink ignores it", number))
            continue
        # Flink skips a line with an empty value; we report it as a key without a value.
        entries.append(ConfigEntry(key, value or None, number))
    return entries, problems


def _java_trim(text: str) -> str:
    return text.strip("".join(chr(c) for c in range(0x21)))


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader with YAML 1.2 core-schema scalars, as Flink's snakeyaml-engine.

    PyYAML implements YAML 1.1, where ``yes``/``on`` are booleans and ``1_000`` is an int;
    Flink 2.x reads those as strings, so its option parser sees the text.
    """


# The implicit types whose YAML 1.1 spelling differs from YAML 1.2's core schema.
_REPLACED_TAGS: Final = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",  # not in the core schema: a date stays a string
}
Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("tag:yaml.org,2002:int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+.0123456789",
    ),
):
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(f"^(?:{_pattern})$"), list(_first))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


# Digits of the longest integer any Flink option takes (Long.MAX_VALUE has 19), with room to
# spare; far below Python's int-from-text limit (4300 digits), which raises ValueError.
MAX_INT_DIGITS: Final = 100


def _construct_yaml12_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    # YAML 1.2 core ints: decimal (a leading 0 is not octal), 0o octal, 0x hex.
    text = str(loader.construct_scalar(cast(yaml.ScalarNode, node)))
    if len(text) > MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"an integer of {len(text):,} characters: longer than any Flink option takes "
            "(a long has at most 19 digits)",
            node.start_mark,
        )
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_yaml12_int)


def _compose_all(text: str, file: str) -> list[yaml.Node]:
    return compose_documents(text, file, Yaml12Loader)


def _construct(node: yaml.Node, file: str) -> Any:
    loader = Yaml12Loader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise syntax_error(error, file) from None
    except ValueError as error:  # a tagged scalar its constructor cannot read (!!int abc)
        raise TunerError(f"invalid YAML value: {error}", file=file, where=_position(node)) from None
    finally:
        loader.dispose()


def _position(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _flatten(node: yaml.MappingNode, prefix: str, file: str) -> Iterator[ConfigEntry]:
    """Flatten nested mappings to dotted keys, as Flink 2.x's GlobalConfiguration does."""
    for key_node, value_node in node.value:
        key = prefix + str(_construct(key_node, file))
        if isinstance(value_node, yaml.MappingNode):
            yield from _flatten(value_node, key + ".", file)
        else:
            value = _construct(value_node, file)
            yield ConfigEntry(key, _as_raw(value), value_node.start_mark.line + 1)


def _as_raw(value: Any) -> RawValue | None:
    if value is None or isinstance(value, str | int | float | bool | list):
        return value
    # Other YAML types (binary, sets) reach Flink as their string form.
    return str(value)


def _mapping_get(node: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return cast(yaml.Node, value_node)
    return None


def _is_flink_deployment(node: yaml.Node) -> bool:
    kind = _mapping_get(node, "kind")
    return isinstance(kind, yaml.ScalarNode) and kind.value == "FlinkDeployment"


def _deployment_entries(doc: yaml.Node, file: str) -> list[ConfigEntry]:
    spec = _mapping_get(doc, "spec")
    configuration = _mapping_get(spec, "flinkConfiguration") if spec is not None else None
    if configuration is None or _is_null(configuration):
        return []
    if not isinstance(configuration, yaml.MappingNode):
        raise TunerError(
            "spec.flinkConfiguration must be a mapping of keys to string values",
            file=file,
            where=_position(configuration),
        )
    # The operator's CRD declares flinkConfiguration as a map of strings: keys are not nested.
    return [
        ConfigEntry(
            str(_construct(key_node, file)),
            _as_raw(_construct(value_node, file)),
            value_node.start_mark.line + 1,
        )
        for key_node, value_node in configuration.value
    ]
