"""Every YAML file tuner reads goes through here: bounded before any Python object is built.

YAML anchors and aliases let ten lines stand for billions of nodes (the "billion laughs"
shape). PyYAML composes aliases as shared nodes, so composing is cheap, but anything that then
walks the data (schema validation, flattening a config, ``str`` of a list) expands every alias
and never finishes. So a document is composed, its expanded size is counted over the node graph
(each shared node counted once per reference, memoised, so counting is linear in the file), and
only a document under :data:`MAX_EXPANDED_NODES` is constructed. Recursive aliases and files
over :data:`MAX_YAML_BYTES` are refused as well. Syntax errors become one :class:`TunerError`
naming the file, line and column.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Protocol

import yaml

from tuner.errors import TunerError

__all__ = [
    "MAX_EXPANDED_NODES",
    "MAX_YAML_BYTES",
    "BoundExceeded",
    "bounded_load",
    "compose_documents",
    "expanded_size",
    "syntax_error",
]

# A workload, a Flink config or a FlinkDeployment is a few KiB; these bounds are far above any
# real file and far below what takes more than a fraction of a second to build.
MAX_YAML_BYTES: Final = 2 << 20
MAX_EXPANDED_NODES: Final = 100_000


class _Loader(Protocol):
    def check_node(self) -> bool: ...
    def get_node(self) -> yaml.Node | None: ...
    def construct_document(self, node: yaml.Node) -> Any: ...
    def dispose(self) -> None: ...


class BoundExceeded(Exception):
    """A document past the expansion bound, or with a recursive alias."""


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def expanded_size(root: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """Nodes the document would have with every alias expanded; raises :class:`BoundExceeded` past
    ``limit`` or on a recursive alias. Iterative, so deep nesting cannot exhaust the stack."""
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            ancestors.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > limit:
                raise BoundExceeded(
                    f"the YAML expands to more than {limit:,} nodes through anchors and aliases "
                    "(a 'billion laughs' document); refused"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        ancestors.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in ancestors:
                raise BoundExceeded(
                    "a YAML alias refers to a node that contains it (recursive alias)"
                )
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _mark_of(error: yaml.MarkedYAMLError) -> str | None:
    mark = error.problem_mark or error.context_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else None


def syntax_error(error: yaml.YAMLError, file: str) -> TunerError:
    """A YAML error as one TunerError naming the file, and the line and column if known."""
    if isinstance(error, yaml.MarkedYAMLError):
        problem = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context and error.problem else ""
        return TunerError(f"invalid YAML: {problem}{context}", file=file, where=_mark_of(error))
    return TunerError(f"invalid YAML: {error}", file=file)


def _compose(loader: _Loader, text: str, file: str) -> list[yaml.Node]:
    if len(text) > MAX_YAML_BYTES:
        raise TunerError(
            f"the file is {len(text):,} characters; a YAML file tuner reads is at most "
            f"{MAX_YAML_BYTES:,}",
            file=file,
        )
    documents: list[yaml.Node] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                documents.append(node)
    except yaml.YAMLError as error:
        raise syntax_error(error, file) from None
    except RecursionError:
        raise TunerError("the YAML is nested too deeply", file=file) from None
    try:
        for document in documents:
            expanded_size(document)
    except BoundExceeded as refused:
        raise TunerError(str(refused), file=file) from None
    return documents


def _new_loader(loader_class: type[Any], text: str, file: str) -> _Loader:
    try:
        loader: _Loader = loader_class(text)
    except yaml.YAMLError as error:  # PyYAML's reader refuses control characters at once
        raise syntax_error(error, file) from None
    return loader


def compose_documents(text: str, file: str, loader_class: type[Any]) -> list[yaml.Node]:
    """Every document of ``text`` as a YAML node graph, bounded (see the module docstring)."""
    loader = _new_loader(loader_class, text, file)
    try:
        return _compose(loader, text, file)
    finally:
        loader.dispose()


def bounded_load(text: str, file: str, loader_class: type[Any]) -> object:
    """The single document of ``text`` as plain Python data, built with ``loader_class`` (a
    SafeLoader subclass) only after the document passed the bounds. An empty text is None."""
    loader = _new_loader(loader_class, text, file)
    try:
        documents = _compose(loader, text, file)
        if len(documents) > 1:
            raise TunerError(
                f"expected one YAML document, found {len(documents)} (separated by '---')",
                file=file,
            )
        if not documents:
            return None
        try:
            return loader.construct_document(documents[0])
        except yaml.YAMLError as error:
            raise syntax_error(error, file) from None
        except ValueError as error:
            # A scalar PyYAML's constructors cannot build: an integer past Python's 4300-digit
            # limit, a date such as 2001-02-30.
            raise TunerError(f"invalid YAML value: {error}", file=file) from None
        except RecursionError:
            raise TunerError("the YAML is nested too deeply", file=file) from None
    finally:
        loader.dispose()
