"""One spelling per idea on the command line; the old spellings keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tuner.cli import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "cli" / "tiny.yaml"


@pytest.mark.parametrize(
    ("argv", "metavar"),
    [
        (["run", "--help"], "WORKLOAD"),
        (["noise", "--help"], "WORKLOAD"),
        (["trace", "generate", "--help"], "WORKLOAD"),
        (["trace", "inspect", "--help"], "TRACE"),
        (["check-config", "--help"], "CONFIG"),
        (["report", "--help"], "RUN_DIR"),
        (["validate", "--help"], "RUN_DIR"),
    ],
)
def test_arguments_are_named_for_what_they_are(argv: list[str], metavar: str) -> None:
    usage = CliRunner().invoke(cli, argv).output.splitlines()[0]
    assert metavar in usage
    assert "TARGET" not in usage and "FILE" not in usage


@pytest.mark.parametrize("flag", ["-o", "--out", "--output"])
def test_trace_generate_takes_every_output_spelling(tmp_path: Path, flag: str) -> None:
    out = tmp_path / "t.parquet"
    result = CliRunner().invoke(cli, ["trace", "generate", str(TINY), flag, str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()


@pytest.mark.parametrize("flag", ["--out", "--output"])
def test_run_takes_both_output_spellings(flag: str) -> None:
    assert flag in CliRunner().invoke(cli, ["run", "--help"]).output
