"""report.md: rendered from the run directory alone, for finished and unfinished runs."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from tests.report.fakerun import DEVIATIONS, make_run, ops, rec
from tuner.errors import TunerError
from tuner.report import markdown, render_report
from tuner.results import Run, load_run, trials_frame
from tuner.search.study import TrialRecord


@pytest.mark.parametrize(
    ("fn", "value", "text"),
    [
        (markdown.format_ops, 850.4, "850"),
        (markdown.format_ops, 49_081.9, "49.1k"),
        (markdown.format_ops, 1_234_567.0, "1.23M"),
        (markdown.format_bytes, 512.0, "512 B"),
        (markdown.format_bytes, 4096.0, "4.0 KiB"),
        (markdown.format_bytes, 12.5 * (1 << 20), "12.5 MiB"),
        (markdown.format_bytes, 3.0 * (1 << 30), "3.0 GiB"),
        (markdown.format_us, 237.4, "237 µs"),
        (markdown.format_us, 1500.0, "1.5 ms"),
        (markdown.format_us, 2_300_000.0, "2.3 s"),
        (markdown.format_duration_s, 0.2012, "201.2 ms"),
        (markdown.format_percent, 0.7462, "74.6 %"),
        (markdown.format_factor, 6.606, "6.6×"),
        (markdown.format_ops, math.nan, "–"),
        (markdown.format_bytes, math.nan, "–"),
        (markdown.format_duration_s, math.nan, "–"),
    ],
)
def test_numbers_are_formatted_for_people(fn: object, value: float, text: str) -> None:
    assert callable(fn)
    assert fn(value) == text


def _section(text: str, title: str) -> str:
    """The body of the ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"no section {title!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def complete_report(complete_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A copy: other tests read the shared run and must not see a report in it.
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(complete_run, run)
    return render_report(run)


def test_complete_report_has_every_section(complete_report: Path) -> None:
    text = complete_report.read_text()
    run = load_run(complete_report.parent)
    gain = run.gain()
    assert gain is not None
    assert f"**{gain.describe()}**" in _section(text, "Result")
    settings = _section(text, "Recommended settings")
    assert "| `state.backend.rocksdb.writebuffer.size` |" in settings
    table = _section(text, "Configurations measured")
    for config in ("DEFAULT", "FLASH_SSD_OPTIMIZED", "recommended (re-measured)"):
        assert f"| {config} |" in table
    # Re-measured rows show the median and the range over the 3 repeats.
    default_again = next(ln for ln in table.splitlines() if ln.startswith("| DEFAULT (re-"))
    assert "| 3/3 |" in default_again and "k–" in default_again
    assert "RocksDBError: fake crash" in _section(text, "Failed and skipped measurements")
    status = _section(text, "Run status")
    assert status.strip().startswith("Complete:")
    assert (
        "The search started from what `DEFAULT`, `SPINNING_DISK_OPTIMIZED`, "
        "`FLASH_SSD_OPTIMIZED` measured (a warm start" in status
    )
    assert "Not told: `SPINNING_DISK_OPTIMIZED_HIGH_MEM`, outside the searched ranges" in status
    assert "Not a finished run" not in text
    assert DEVIATIONS[0] in _section(text, "Deviations from Flink")


def test_plot_links_are_relative_and_point_at_written_pngs(complete_report: Path) -> None:
    text = complete_report.read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert len(links) == 5
    for link in links:
        assert not Path(link).is_absolute()
        png = complete_report.parent / link
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_re_rendered_identically(complete_report: Path) -> None:
    before = complete_report.read_text()
    assert render_report(complete_report.parent).read_text() == before


def test_report_of_a_run_stopped_after_two_baselines(
    two_baselines_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_baselines_run, run)
    text = render_report(run).read_text()
    assert "No search trial has finished" in _section(text, "Result")
    assert "no recommendation" in _section(text, "Recommended settings").lower()
    status = _section(text, "Run status")
    assert "**This run is incomplete**" in status
    assert f"`tuner run --resume {run}`" in status
    assert "2 of Flink's 4 option sets measured" in status
    assert "Not a finished run" in text.split("##")[0]
    table = _section(text, "Configurations measured")
    assert "| DEFAULT |" in table and "| FLASH_SSD_OPTIMIZED |" not in table
    # Only the spread and amplification of two baselines can be drawn.
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "amplification.png",
        "baselines-vs-recommended.png",
        "throughput-memory.png",
    ]


def test_report_of_a_run_stopped_during_the_search(search_only_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(search_only_run, run)
    text = render_report(run).read_text()
    result = _section(text, "Result")
    assert "**Not re-measured against Flink's default**" in result
    assert "no measured gain" in result
    assert "From search trial" in _section(text, "Recommended settings")
    # No study.db: no importance plot, the others still drawn.
    assert "importance.png" not in text
    assert "history.png" in text


def test_save_removes_a_plot_the_run_no_longer_has_data_for(
    search_only_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(search_only_run, run)
    stale = run / "plots" / "importance.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    render_report(run)
    assert not stale.exists()


def _run(tmp_path: Path, records: list[TrialRecord], **meta: object) -> Run:
    return Run(tmp_path, {"status": "complete", **meta}, tuple(records), trials_frame(records))


def _pairs(default: list[float], recommended: list[float]) -> list[TrialRecord]:
    out = [rec(0, "DEFAULT", "baseline", ops(default[0]))]
    for i, (d, r) in enumerate(zip(default, recommended, strict=True)):
        out.append(rec(2 * i + 1, "DEFAULT", "remeasure", ops(d), trial=0, repeat=i))
        out.append(rec(2 * i + 2, "recommended", "remeasure", ops(r), trial=0, repeat=i))
    return out


def test_a_slower_recommendation_is_called_slower(tmp_path: Path) -> None:
    run = _run(tmp_path, _pairs([100, 102, 101], [90, 91, 95]))
    text = markdown.render_markdown(run, plot_files={}, recommendation=None)
    assert "**slower** than Flink's default" in _section(text, "Result")


def test_a_gain_within_noise_is_not_claimed(tmp_path: Path) -> None:
    run = _run(tmp_path, _pairs([100, 102, 101], [104, 99, 103]))
    text = markdown.render_markdown(run, plot_files={}, recommendation=None)
    assert "no gain to claim" in _section(text, "Result")


def test_reasons_cannot_break_the_markdown_tables(tmp_path: Path) -> None:
    records = [rec(0, "DEFAULT", "baseline", status="failed", reason="a | b\nTraceback: c")]
    text = markdown.render_markdown(_run(tmp_path, records), plot_files={}, recommendation=None)
    assert "| 0 | DEFAULT | baseline | a \\| b Traceback: c |" in text


def test_missing_deviations_and_failed_status_are_said(tmp_path: Path) -> None:
    run = _run(tmp_path, [], status="failed", error="disk full")
    text = markdown.render_markdown(run, plot_files={}, recommendation=None)
    assert "run.json lists none" in _section(text, "Deviations from Flink")
    status = _section(text, "Run status")
    assert "**This run failed** (disk full)" in status
    assert "tuner run --resume" in status


def test_recommended_values_are_shown_as_flink_writes_them(tmp_path: Path) -> None:
    rec_json = {
        "settings": {
            "state.backend.rocksdb.writebuffer.size": 64 << 20,
            "state.backend.rocksdb.memory.write-buffer-ratio": 0.15000000000000002,
            "state.backend.rocksdb.compression.per.level": ["NO_COMPRESSION", "LZ4_COMPRESSION"],
        },
        "comments": {"state.backend.rocksdb.writebuffer.size": "searched | bigger"},
        "trial_number": 7,
    }
    text = markdown.render_markdown(_run(tmp_path, []), plot_files={}, recommendation=rec_json)
    section = _section(text, "Recommended settings")
    assert "| `state.backend.rocksdb.writebuffer.size` | `64 mb` | searched \\| bigger |" in section
    assert "`0.15`" in section
    assert "`NO_COMPRESSION;LZ4_COMPRESSION`" in section
    assert "From search trial 7." in section


def test_render_report_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match=r"no run\.json"):
        render_report(tmp_path)
    assert not (tmp_path / "report.md").exists()


def test_render_report_refuses_a_broken_recommendation(
    search_only_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(search_only_run, run)
    (run / "recommendation.json").write_text(json.dumps([1, 2]))
    with pytest.raises(TunerError, match="expected a JSON object"):
        render_report(run)


@pytest.mark.parametrize(("wait_share", "warned"), [(0.8, True), (0.5, True), (0.2, False)])
def test_a_disk_bound_default_is_called_out(
    tmp_path: Path, wait_share: float, warned: bool
) -> None:
    # 1,000 calls at 100 ops/s: 10 s modelled, of which wait_share waiting for block reads.
    default = ops(100, ops=1000, foreground_read_s=10 * wait_share)
    run = _run(tmp_path, [rec(0, "DEFAULT", "baseline", default)])
    text = _section(
        markdown.render_markdown(run, plot_files={}, recommendation=None),
        "How throughput is measured",
    )
    assert ("**Disk-bound:**" in text) is warned
    if warned:
        assert f"{wait_share:.0%} of the modelled time" in text


def test_no_disk_warning_without_the_counters(tmp_path: Path) -> None:
    run = _run(tmp_path, [rec(0, "DEFAULT", "baseline", ops(100))])
    text = markdown.render_markdown(run, plot_files={}, recommendation=None)
    assert "Disk-bound" not in text


def test_what_the_time_budget_cut_is_listed_and_no_budget_is_said(tmp_path: Path) -> None:
    cuts = [
        "the search stopped after 3 of 30 trials, to leave time for the minimal recommendation",
        "the confirmation on Flink's own backend was skipped: the time budget had 4 s left",
    ]
    run = _run(tmp_path, [], time_budget_s=180.0, time_budget_cuts=cuts, elapsed_s=171.0)
    status = _section(
        markdown.render_markdown(run, plot_files={}, recommendation=None), "Run status"
    )
    assert "Time budget: 3 min; this run took 2.9 min. What it cut:" in status
    assert "- The search stopped after 3 of 30 trials, to leave time" in status
    assert (
        "- The confirmation on Flink's own backend was skipped: the time budget had 4 s left."
        in (status)
    )
    run = _run(tmp_path, [], time_budget_s=None, time_budget_cuts=[], elapsed_s=600.0)
    status = _section(
        markdown.render_markdown(run, plot_files={}, recommendation=None), "Run status"
    )
    assert "No time budget (`--time-budget none`); this run took 10.0 min." in status
    run = _run(tmp_path, [], time_budget_s=900.0, time_budget_cuts=[], confirm_price_s=13.75)
    status = _section(
        markdown.render_markdown(run, plot_files={}, recommendation=None), "Run status"
    )
    assert "The budget kept 13.8 s for each measurement of the confirmation" in status
    assert "each other configuration at its share of that" in status
    # A run from before budgets were recorded says nothing about one.
    status = _section(
        markdown.render_markdown(_run(tmp_path, []), plot_files={}, recommendation=None),
        "Run status",
    )
    assert "budget" not in status.lower().replace("memory budget", "")


def test_a_run_whose_every_search_trial_failed_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", trials=3, fail_trials=set(range(100)), recommendation=False)
    result = _section(render_report(run).read_text(), "Result")
    said = re.search(r"No search trial produced figures \(3 failed(, \d+ skipped)?; see", result)
    assert said is not None, result
    assert "No search trial has finished" not in result


@pytest.mark.parametrize(("merge", "watch"), [(1, False), (2, True)])
def test_merged_memtables_in_the_recommendation_are_flagged(
    complete_run: Path, tmp_path: Path, merge: int, watch: bool
) -> None:
    run = tmp_path / "run"
    shutil.copytree(complete_run, run)
    path = run / "recommendation.json"
    rec = json.loads(path.read_text())
    rec["settings"]["state.backend.rocksdb.writebuffer.number-to-merge"] = merge
    path.write_text(json.dumps(rec))
    settings = _section(render_report(run).read_text(), "Recommended settings")
    assert ("**Watch:** with writebuffer.number-to-merge 2" in settings) is watch


def test_a_promise_measured_on_a_model_says_how_far_a_models_gain_went() -> None:
    promise = {"text": "t", "gain": 0.2, "significant": True, "engine": "rocksdict"}
    on_model = "\n".join(markdown._promise_headline({**promise, "model": 0.1}, None))
    assert "Measured on a 1/10 model of the job" in on_model
    assert "0.7x to 1.4x the full size's" in on_model
    assert "model of the job" not in "\n".join(
        markdown._promise_headline({**promise, "model": 1.0}, None)
    )
    keep = {**promise, "gain": None, "model": 0.1}
    assert "model of the job" not in "\n".join(markdown._promise_headline(keep, None))
