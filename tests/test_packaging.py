"""The wheel a user installs carries every file the package reads (``pip install .``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _package_files() -> set[str]:
    """Every non-Python file under tuner/ that the code reads at run time."""
    root = resources.files("tuner")
    out = set()
    for path in Path(str(root)).rglob("*"):
        if path.is_file() and path.suffix in (".json", ".java", ".typed"):
            out.add("tuner/" + path.relative_to(Path(str(root))).as_posix())
    return out


@pytest.mark.slow
def test_the_wheel_holds_the_schema_catalogs_and_java_sources(tmp_path: Path) -> None:
    # From a clean copy: a build/ directory left by an earlier build would hide a missing file.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "results", ".*_cache", "__pycache__"
        ),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    [wheel] = tmp_path.glob("tuner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tuner/data/workload.schema.json" in names
    missing = _package_files() - names
    assert not missing, f"package data left out of the wheel: {sorted(missing)}"


def test_the_published_schema_is_the_packaged_one() -> None:
    published = ROOT / "workloads" / "schema.json"
    packaged = resources.files("tuner").joinpath("data/workload.schema.json")
    assert published.read_text() == packaged.read_text()
