"""tools/thread_cpu.py: how thread names are grouped and summed (the sampling itself reads
/proc of a live JVM, run by hand: docs/measurements/2026-12-02-nexmark.md)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool() -> ModuleType:
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module("thread_cpu")


def test_thread_names_group_without_subtask_and_number() -> None:
    group_of = _tool().group_of
    assert group_of("Join[14] -> Calc (1/1)#0") == "Join[14] -> Calc"
    assert group_of("Join[14] -> Cal") == "Join[14] -> Cal"  # Linux keeps 15 bytes
    assert group_of("GC Thread#0") == group_of("GC Thread#11") == "GC Thread"
    assert group_of("C2 CompilerThre") == "C2 CompilerThre"
    assert group_of("rocksdb:low") == "rocksdb:low"
    assert group_of("1234") == "1234"  # nothing left: the name as it is


def test_groups_sum_their_threads_in_seconds_busiest_first() -> None:
    tool = _tool()
    tick = tool.TICK
    threads = {
        1: tool.ThreadTime("GC Thread#0", tick, 0),
        2: tool.ThreadTime("GC Thread#1", tick, tick),
        3: tool.ThreadTime("Join[14] -> Cal", 10 * tick, tick),
    }
    groups = tool.by_group(threads)
    assert list(groups) == ["Join[14] -> Cal", "GC Thread"]
    assert groups["GC Thread"] == (2.0, 1.0)
    assert groups["Join[14] -> Cal"] == (10.0, 1.0)
