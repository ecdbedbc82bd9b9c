"""Finding Flink and reading a failed job's output (no JVM needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tuner.errors import TunerError
from tuner.validate.flink import (
    FlinkInstall,
    compile_java,
    find_flink,
    flink_in_venv,
    root_cause,
)


def _fake_pyflink(root: Path, version: str) -> Path:
    home = root / "lib" / "python3.11" / "site-packages" / "pyflink"
    (home / "lib").mkdir(parents=True)
    (home / "lib" / f"flink-dist-{version}.jar").write_bytes(b"")
    return home


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _fake_pyflink(tmp_path, "2.9.1")
    monkeypatch.setenv("TUNER_PYFLINK_HOME", str(home))
    found = find_flink()
    assert (found.home, found.version) == (home, "2.9.1")
    assert found.classpath == str(home / "lib" / "*")


def test_env_var_pointing_nowhere_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNER_PYFLINK_HOME", str(tmp_path))
    with pytest.raises(TunerError, match="has no lib/flink-dist"):
        find_flink()


def test_no_flink_anywhere_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNER_PYFLINK_HOME", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(TunerError, match=r"pip install 'tuner\[flink\]'"):
        find_flink(venvs=(str(tmp_path / "none"),))


def test_venv_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNER_PYFLINK_HOME", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    _fake_pyflink(tmp_path / "venv", "1.20.5")
    assert find_flink(venvs=(str(tmp_path / "venv"),)).version == "1.20.5"
    assert flink_in_venv(tmp_path / "missing") is None


def test_root_cause_keeps_the_two_innermost_causes() -> None:
    out = (
        'Exception in thread "main" java.util.concurrent.ExecutionException: boom\n'
        "\tat X.main(X.java:1)\n"
        "Caused by: java.lang.IllegalArgumentException: Could not parse value 'many' for key 'k'.\n"
        "\tat Y.y(Y.java:2)\n"
        'Caused by: java.lang.NumberFormatException: For input string: "many"\n'
    )
    assert root_cause(out) == (
        "java.lang.IllegalArgumentException: Could not parse value 'many' for key 'k'. / "
        'java.lang.NumberFormatException: For input string: "many"'
    )
    assert root_cause("starting\nno trace here\n") == "no trace here"
    assert root_cause("") == "no output"


@pytest.mark.skipif(shutil.which("javac") is None, reason="no javac on PATH")
def test_compile_java_takes_classes_in_packages(tmp_path: Path) -> None:
    # tools/nexmark compiles upstream sources that live in packages (com/github/nexmark/...).
    (tmp_path / "pyflink" / "lib").mkdir(parents=True)  # no jars: the class needs none
    flink = FlinkInstall(home=tmp_path / "pyflink", version="2.3.0")
    out = compile_java(
        flink,
        "a/b/Greeter",
        tmp_path / "cache",
        source="package a.b;\npublic final class Greeter { }\n",
    )
    assert (out / "a" / "b" / "Greeter.class").is_file()


@pytest.mark.skipif(shutil.which("javac") is None, reason="no javac on PATH")
def test_compile_java_compiles_extra_sources_with_the_class(tmp_path: Path) -> None:
    (tmp_path / "pyflink" / "lib").mkdir(parents=True)
    flink = FlinkInstall(home=tmp_path / "pyflink", version="2.3.0")
    out = compile_java(
        flink,
        "a/Main",
        tmp_path / "cache",
        source="package a;\npublic final class Main { b.Helper h; }\n",
        extra_sources={"b/Helper": "package b;\npublic final class Helper { }\n"},
    )
    assert (out / "b" / "Helper.class").is_file()
