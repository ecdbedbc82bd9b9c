"""Reading workload files: YAML (bounded), the JSON Schema, and errors that name the field.

A workload file is YAML, validated against the workload JSON Schema (package data
``tuner/data/workload.schema.json``, also published as ``workloads/schema.json``) and then
resolved (:mod:`tuner.workload.resolve`).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Hashable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

from tuner.errors import TunerError
from tuner.fileio import read_regular_file
from tuner.workload.model import Workload
from tuner.workload.resolve import Resolver
from tuner.workload.wording import TYPE_NAMES, FieldPath, describe, field_path, one_of, suggest
from tuner.yamlio import MAX_YAML_BYTES, bounded_load

try:  # libyaml: the same safe loading, several times faster, clearer syntax errors
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

__all__ = ["load_schema", "load_workload", "loads_workload", "parse_workload"]

SCHEMA_RESOURCE = ("tuner", "data/workload.schema.json")

_PATTERN_RULES: dict[str, str] = {
    "^[A-Za-z0-9][A-Za-z0-9._-]*$": "use letters, digits, '.', '_' and '-', starting with a "
    "letter or digit",
    "^[A-Za-z][A-Za-z0-9._-]*$": "use letters, digits, '.', '_' and '-', starting with a letter",
}


def load_schema() -> dict[str, Any]:
    """The workload JSON Schema (draft 2020-12), as published in ``workloads/schema.json``."""
    copy: dict[str, Any] = json.loads(json.dumps(_schema()))  # callers may not alter the cache
    return copy


@functools.cache
def _schema() -> dict[str, Any]:
    package, name = SCHEMA_RESOURCE
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
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
        # Bounded at what yamlio accepts (characters of up to 4 UTF-8 bytes).
        text = read_regular_file(Path(file), 4 * MAX_YAML_BYTES, "a workload file").decode("utf-8")
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
            f"expected a mapping of workload keys at the top level, got {describe(data)}",
            file=file,
        )
    _check_plain_data(data, (), file)
    _check_schema(data, file)
    return Resolver(file).workload(data)


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
    return bounded_load(text, file, _StrictLoader)  # a SafeLoader: builds plain data only


# --- schema errors ----------------------------------------------------------------------------


def _check_plain_data(value: object, path: FieldPath, file: str) -> None:
    """Refuse what JSON Schema cannot see: non-string keys, NaN and infinities."""
    if isinstance(value, dict):
        for key, item in value.items():
            # YAML 1.1 reads on/off/yes/no and digits as such, even as keys: say so.
            if not isinstance(key, str):
                raise TunerError(
                    f"key {describe(key)} is not a string (YAML reads yes/no/on/off as "
                    "booleans and digits as numbers; quote it)",
                    file=file,
                    where=field_path(path),
                )
            _check_plain_data(item, (*path, key), file)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain_data(item, (*path, i), file)
    elif isinstance(value, float) and not math.isfinite(value):
        # NaN passes every minimum and maximum, and a NaN share would pass the sum check.
        raise TunerError(
            f"must be a finite number, got {describe(value)}", file=file, where=field_path(path)
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
            message = f'unknown key "{key}"{suggest(key, known)}'
            if not message.endswith("?"):
                message += f"; known keys: {', '.join(known)}"
        case "required":
            key = next(k for k in rule if k not in value)
            path = (*path, key)
            description = schema["properties"][key].get("description", "")
            message = f'missing required key "{key}"' + (f" ({description})" if description else "")
        case "type":
            types = [rule] if isinstance(rule, str) else list(rule)
            names = [TYPE_NAMES.get(t, t) for t in types]
            expected = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            message = f"expected {expected}, got {describe(value)}"
        case "enum":
            choices = [str(c) for c in rule]
            message = f"must be {one_of(choices)}, got {describe(value)}"
            if isinstance(value, str):
                message += suggest(value, choices)
        case "minimum":
            message = f"must be at least {rule}, got {describe(value)}"
        case "exclusiveMinimum":
            message = f"must be greater than {rule}, got {describe(value)}"
        case "maximum":
            message = f"must be at most {rule}, got {describe(value)}"
        case "exclusiveMaximum":
            message = f"must be less than {rule}, got {describe(value)}"
        case "minItems" | "minLength":
            message = "must not be empty"
        case "minProperties" if known and rule == 1 and "maxProperties" not in schema:
            message = f"give at least one of {one_of(known)}"
        case "minProperties" | "maxProperties" if known:
            given = f"got {', '.join(value)}" if value else "got an empty mapping"
            message = f"give exactly one of {one_of(known)}; {given}"
        case "pattern":
            rule_text = _PATTERN_RULES.get(str(rule), f"must match {rule}")
            message = f"invalid name {describe(value)}: {rule_text}"
        case _:
            message = error.message
    return TunerError(message, file=file, where=field_path(path))
