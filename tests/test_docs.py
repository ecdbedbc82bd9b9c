"""The front door and the maps: the README stays short and keeps its two commands, links from
the root documents resolve, and ARCHITECTURE.md / CONTRIBUTING.md name every module and tool.

The docs site itself (links, anchors, navigation, the generated CLI reference) is checked by
``mkdocs build --strict`` in .ci/run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROOT_DOCS = ("README.md", "ARCHITECTURE.md", "CONTRIBUTING.md")
README_MAX_LINES = 250
# What CI and users copy from the README's first screen (.ci/run runs the test command).
QUICKSTART = (
    "python3 -m venv .venv && .venv/bin/pip install -e . && "
    ".venv/bin/tuner run workloads/quickstart.yaml --trials 12"
)
TESTS = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev,flink]' && .venv/bin/pytest -ra"
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _code_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)]


def test_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_opens_with_the_quickstart_and_test_commands() -> None:
    blocks = _code_blocks((ROOT / "README.md").read_text())
    assert blocks[:2] == [QUICKSTART, TESTS]


@pytest.mark.parametrize("name", ROOT_DOCS)
def test_relative_links_of_root_documents_resolve(name: str) -> None:
    doc = ROOT / name
    targets = [t for t in _LINK.findall(doc.read_text()) if not re.match(r"[a-z]+:", t)]
    assert targets, f"{name} links nowhere"
    for target in targets:
        path = target.split("#", 1)[0]
        if path:
            assert (doc.parent / path).exists(), f"{name}: link to missing {target}"


def test_every_docs_page_is_in_the_navigation() -> None:
    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for v in node.values() for p in pages(v)]
        if isinstance(node, list):
            return [p for v in node for p in pages(v)]
        return []

    # mkdocs.yml uses `!relative`, a tag plain YAML does not know: read the nav only.
    text = (ROOT / "mkdocs.yml").read_text()
    nav = yaml.safe_load(text[text.index("\nnav:") :])["nav"]
    on_disk = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert set(pages(nav)) == on_disk


def test_architecture_names_every_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    modules = [
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "tuner").rglob("*.py"))
        if p.name != "__init__.py" or p.parent.name == "tuner"
    ]
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"ARCHITECTURE.md does not say what these hold: {missing}"


def test_contributing_names_every_tool() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    tools = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "tools").rglob("*.py"))]
    missing = [t for t in tools if f"`{t}`" not in text]
    assert not missing, f"CONTRIBUTING.md does not list these tools: {missing}"
