"""Every YAML tuner reads is bounded: a "billion laughs" file is refused at once, exit 2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tuner.cli import cli
from tuner.errors import TunerError
from tuner.yamlio import BoundExceeded, bounded_load, compose_documents, expanded_size


def laughs(levels: int = 10, fan_out: int = 10) -> str:
    """Ten lines that stand for fan_out**levels nodes."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * fan_out)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_before_building_anything() -> None:
    started = time.perf_counter()
    with pytest.raises(TunerError, match="billion laughs") as info:
        bounded_load(laughs(), "laughs.yaml", yaml.SafeLoader)
    assert time.perf_counter() - started < 1.0
    assert info.value.file == "laughs.yaml"


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(TunerError, match="recursive alias"):
        bounded_load("a: &a [1, *a]\n", "r.yaml", yaml.SafeLoader)


def test_deep_nesting_is_refused_not_a_traceback() -> None:
    with pytest.raises(TunerError, match=r"invalid YAML|nested too deeply"):
        bounded_load("[" * 20_000 + "]" * 20_000, "deep.yaml", yaml.SafeLoader)


def test_shared_anchors_within_the_bound_still_load() -> None:
    text = "base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\n"
    assert bounded_load(text, "ok.yaml", yaml.SafeLoader) == yaml.safe_load(text)


def test_the_bound_counts_every_alias_as_its_expanded_copy() -> None:
    [node] = compose_documents("a: &x [1, 2]\nb: *x\nc: *x\n", "c.yaml", yaml.SafeLoader)
    # the mapping, three keys, three sequences of one node and two scalars each
    assert expanded_size(node) == 1 + 3 + 3 * 3
    with pytest.raises(BoundExceeded):
        expanded_size(node, limit=12)


def test_compose_refuses_laughs_in_any_document() -> None:
    with pytest.raises(TunerError, match="billion laughs"):
        compose_documents("a: 1\n---\n" + laughs(), "multi.yaml", yaml.SafeLoader)


_scalars = st.one_of(st.integers(), st.booleans(), st.text(max_size=20), st.none())
_data = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(_data)
def test_bounded_load_reads_what_safe_load_reads(data: object) -> None:
    text = yaml.safe_dump(data)
    assert bounded_load(text, "p.yaml", yaml.SafeLoader) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "{file}", "--trials", "1"],
        ["trace", "generate", "{file}", "-o", "{dir}/t.parquet"],
        ["check-config", "{file}", "--flink-version", "2.x"],
    ],
)
def test_every_command_refuses_laughs_fast_with_exit_2(tmp_path: Path, argv: list[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(laughs())
    args = [a.format(file=path, dir=tmp_path) for a in argv]
    started = time.perf_counter()
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert time.perf_counter() - started < 5.0  # generous: CliRunner and imports included
    assert result.exit_code == 2, result.output
    assert "billion laughs" in result.output
    assert str(path) in result.output
