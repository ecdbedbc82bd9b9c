"""--rescale: a change of parallelism written N or 1/N, parsed once, refused clearly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tuner.cli import cli
from tuner.errors import TunerError
from tuner.rescale import describe_rescale, grown_by, parse_rescale, rescale_label, shrunk_by

TINY = Path(__file__).resolve().parent / "data" / "cli" / "tiny.yaml"


@given(n=st.integers(2, 1 << 15), spaces=st.sampled_from(["", " "]))
def test_n_and_1_over_n_round_trip_through_the_label(n: int, spaces: str) -> None:
    grow = parse_rescale(f"{spaces}{n}{spaces}")
    shrink = parse_rescale(f"1{spaces}/{spaces}{n}")
    assert (grown_by(grow), shrunk_by(grow)) == (n, 1)
    assert (grown_by(shrink), shrunk_by(shrink)) == (1, n)
    assert rescale_label(grow) == str(n) and rescale_label(shrink) == f"1/{n}"
    assert parse_rescale(rescale_label(shrink)) == shrink
    assert f"{n}-fold" in describe_rescale(grow) and f"{n}-fold" in describe_rescale(shrink)


@given(text=st.text(max_size=8))
def test_anything_else_is_a_tuner_error_naming_the_flag(text: str) -> None:
    try:
        factor = parse_rescale(text)
    except TunerError as exc:
        assert exc.where == "--rescale" and "N (it grows N-fold) or 1/N" in str(exc)
    else:  # only the two forms get through, with N >= 2
        assert grown_by(factor) >= 2 or shrunk_by(factor) >= 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--rescale", "1"], "'1' is not a change of parallelism"),
        (["--rescale", "2/3"], "'2/3' is not a change of parallelism"),
        (["--rescale", "half"], "expected N (it grows N-fold) or 1/N"),
        (["--rescale", "1/999"], "--rescale 1/999: a subtask needs at least one key group"),
        (["--rescale", "1/2", "--engine", "flink"], "which the Flink engine does not report"),
    ],
)
def test_a_rescale_the_run_cannot_measure_exits_2_in_one_line(
    args: list[str], fragment: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", str(TINY), "--out", str(out), *args])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert lines[0].startswith("tuner: error: --rescale: ") and fragment in lines[0]
    assert not out.exists()


def test_a_run_after_a_scale_in_restores_every_measurement_from_merged_handles(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    args = ["run", str(TINY), "--rescale", "1/2", "--trials", "1", "--repeats", "1"]
    r = CliRunner().invoke(cli, [*args, "--minimal-repeats", "0", "--out", str(out)])
    assert r.exit_code == 0, r.output
    # On the replay the note says where ingestion is measured.
    assert "searched on --engine flink-backend only" in r.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["settings"]["rescale"] == 0.5
    rows = [row for row in csv.DictReader((out / "trials.csv").open()) if row["status"] == "ok"]
    assert rows and all(float(row["restore_rescale"]) == 0.5 for row in rows)
    assert all(float(row["restore_s"]) > 0 for row in rows)
    report = (out / "report.md").read_text()
    assert (
        "(`--rescale 1/2`): as the one subtask left after the parallelism shrank 2-fold" in report
    )
