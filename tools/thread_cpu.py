"""Where a Flink JVM's CPU time goes, thread group by thread group.

Runs a command (a Nexmark query through ``tools/nexmark/run.py``, a validation, anything that
starts a JVM), samples the threads of every Java process it starts from ``/proc`` while it
runs, and prints the user and system CPU seconds of each thread group: the task threads (named
after their operator chain), RocksDB's compaction (``rocksdb:low``) and flush
(``rocksdb:high``) threads, the garbage collector, the JIT compilers. A job's CPU time says
*that* a run did more work; this says *which thread* did it.

    python tools/thread_cpu.py --json q7-default.json -- \\
        python tools/nexmark/run.py q7 --events 600000 --managed 64mb

Linux only. A thread that starts and ends between two samples (every ``--every`` seconds) is
missed; the groups that matter here (task threads, RocksDB's pools, GC, JIT) live as long as the
job. Figures are CPU time, not wall time: another process on the machine moves them less than it
moves a runtime, but it still moves them (caches, frequency).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadTime:
    """One thread's name and CPU time so far, in clock ticks."""

    name: str
    user: int
    system: int


def group_of(name: str) -> str:
    """The group a thread's name belongs to: the name without its subtask suffix and its
    number (``Join[14] -> Calc (1/1)#0`` and ``GC Thread#1`` become ``Join[14] -> Calc`` and
    ``GC Thread``). Linux keeps the first 15 bytes of a thread's name."""
    name = re.sub(r"\s*\(\d+/\d+\)(#\d+)?$", "", name)
    return re.sub(r"[#\s\d-]+$", "", name).strip() or name


def java_processes(root: int) -> Iterator[int]:
    """The Java processes among ``root``'s descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if exe.endswith(b"java"):
            yield pid


def thread_times(pid: int) -> Iterator[tuple[int, ThreadTime]]:
    """Each thread of ``pid`` with its CPU time so far (utime and stime of /proc/PID/task)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        # The name sits in parentheses and may hold spaces and parentheses itself.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        yield int(tid), ThreadTime(name, int(fields[11]), int(fields[12]))


def watch(command: Sequence[str], every_s: float) -> tuple[int, dict[int, ThreadTime]]:
    """Run ``command`` to its end, sampling its JVMs' threads: (its exit code, each thread's
    last sample by thread id)."""
    last: dict[int, ThreadTime] = {}
    proc = subprocess.Popen(command)
    while proc.poll() is None:
        for pid in java_processes(proc.pid):
            last.update(thread_times(pid))
        time.sleep(every_s)
    return proc.returncode, last


def by_group(threads: dict[int, ThreadTime]) -> dict[str, tuple[float, float]]:
    """User and system CPU seconds per thread group, the busiest first."""
    sums: dict[str, list[int]] = {}
    for t in threads.values():
        s = sums.setdefault(group_of(t.name), [0, 0])
        s[0] += t.user
        s[1] += t.system
    ordered = sorted(sums.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
    return {g: (u / TICK, s / TICK) for g, (u, s) in ordered}


def main(argv: Sequence[str] | None = None) -> int:
    """``thread_cpu.py [--json OUT] -- COMMAND ...``: run COMMAND, print CPU per thread group."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        print("usage: thread_cpu.py [--json OUT] [--every S] -- COMMAND ...", file=sys.stderr)
        return 2
    cut = args.index("--")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the groups here")
    parser.add_argument("--every", type=float, default=0.2, help="seconds between samples")
    opts = parser.parse_args(args[:cut])
    code, threads = watch(args[cut + 1 :], opts.every)
    groups = by_group(threads)
    if not groups:
        print("thread_cpu.py: the command started no Java process", file=sys.stderr)
        return 1
    total = sum(u + s for u, s in groups.values())
    print(f"{'thread group':32} {'user s':>8} {'sys s':>7} {'share':>6}")
    for g, (u, s) in groups.items():
        if u + s >= 0.05 * total or u + s >= 1.0:
            print(f"{g[:32]:32} {u:8.2f} {s:7.2f} {(u + s) / total:6.1%}")
    print(
        f"{'all threads':32} {sum(u for u, _ in groups.values()):8.2f} "
        f"{sum(s for _, s in groups.values()):7.2f}"
    )
    if opts.json is not None:
        body = {g: {"user_s": u, "sys_s": s} for g, (u, s) in groups.items()}
        opts.json.write_text(json.dumps({"command": args[cut + 1 :], "groups": body}, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
