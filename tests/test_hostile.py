"""Issue 18's crafted inputs (tests/data/hostile, made by tests/hostile.py): each ends in exit 2
and one line naming the file and field, in under 1 s and 500 MB, nothing raw on the terminal."""

from __future__ import annotations

import json
import signal
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from click.testing import CliRunner

from tests.hostile import CASES, INSPECT, runtime_cases
from tuner.cli import cli

CORPUS = Path(__file__).parent / "data" / "hostile"
MANIFEST = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
SECONDS = 1.0
PEAK_BYTES = 500 << 20
# A reader that blocks (a FIFO) or never ends (/dev/zero) is stopped here and fails the test.
HANG_SECONDS = 10
Made = tuple[list[str], str, Path]  # command, fragment, input


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError(f"still reading after {HANG_SECONDS} s")


def _run(command: list[str], source: Path, out: Path) -> tuple[int, str, float, int]:
    """Exit code, output, seconds and peak traced bytes of one CLI run."""
    args = [a.replace("{input}", str(source)).replace("{out}", str(out)) for a in command]
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(HANG_SECONDS)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = CliRunner().invoke(cli, args)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += f"\n{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, output, seconds, peak


def _assert_refused(name: str, command: list[str], fragment: str, source: Path, out: Path) -> None:
    code, output, seconds, peak = _run(command, source, out)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2, (name, code, output)
    assert len(lines) == 1 and "Traceback" not in output, (name, output)
    # A control character from the file reaches the terminal escaped, never raw.
    assert lines[0].isprintable(), (name, lines[0])
    assert fragment in lines[0], (name, fragment, lines[0])
    # The file is named (a recording directory: the file inside it).
    assert str(source) in lines[0], (name, lines[0])
    assert seconds < SECONDS, (name, seconds)
    assert peak < PEAK_BYTES, (name, peak)
    assert not out.exists(), name


def test_the_corpus_is_what_the_cases_write(tmp_path: Path) -> None:
    """The committed corpus matches tests/hostile.py (regenerate: python -m tests.hostile DIR)."""
    assert [c["case"] for c in MANIFEST] == [name for name, *_ in CASES]
    for name, command, fragment, _ in CASES:
        entry = next(c for c in MANIFEST if c["case"] == name)
        assert entry["command"] == command and entry["expect"] == fragment
        assert (CORPUS / name).exists(), name


@pytest.mark.parametrize("case", MANIFEST, ids=[c["case"] for c in MANIFEST])
def test_crafted_input_ends_in_exit_2_and_one_line(case: dict[str, str], tmp_path: Path) -> None:
    command = list(case["command"])
    _assert_refused(case["case"], command, case["expect"], CORPUS / case["case"], tmp_path / "o")


@pytest.fixture(scope="module")
def made(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[list[str], str, Path]]]:
    cases = runtime_cases(tmp_path_factory.mktemp("hostile"))
    yield {name: (command, fragment, source) for name, command, fragment, source in cases}


RUNTIME = [
    "recordings/fifo",
    "recordings/symlink-to-dev-zero",
    "recordings/33000-states",
    "traces/fifo",
    "traces/symlink-to-dev-zero",
    "configs/fifo",
    "configs/symlink-to-dev-zero",
    "workloads/fifo",
]


@pytest.mark.parametrize("name", RUNTIME)
def test_made_input_ends_in_exit_2_and_one_line(
    name: str, made: dict[str, Made], tmp_path: Path
) -> None:
    command, fragment, source = made[name]
    _assert_refused(name, command, fragment, source, tmp_path / "o")


FIXED = Path(__file__).parent / "data" / "hostile-fixed"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXED.iterdir()))
def test_fuzz_findings_stay_fixed(name: str, tmp_path: Path) -> None:
    """Traces the fuzz tests found (edits of a valid trace): one whose column names are not
    UTF-8 (a traceback from pyarrow), one whose statistics pyarrow cannot decode (reading them
    aborts the process). Each is read, or refused with exit 2 and one line."""
    code, output, seconds, _ = _run(INSPECT, FIXED / name, tmp_path / "o")
    assert code in (0, 2), output
    if code == 2:
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and str(FIXED / name) in lines[0], output
    assert seconds < SECONDS
