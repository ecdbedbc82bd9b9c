"""Run the recorder's demo job (``java/RecorderDemoJob.java``) on a local Flink MiniCluster.

The demo job counts its own state calls (Flink accumulators), so a recording of it can be
checked call for call; its net runtime gives the recorder's overhead when runs with and without
recording are interleaved (``tools/recorder_figures.py``).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tuner.recorder.build import _cache_root, build_jar, config_lines
from tuner.validate.flink import compile_java, run_job

__all__ = ["DEMO_CLASS", "DemoRun", "run_demo"]

DEMO_CLASS = "RecorderDemoJob"
# What the demo job's counters are called, and the trace (state, op name) each one counts.
COUNTER_CALLS: dict[str, tuple[str, str]] = {
    "value.get": ("count", "get"),
    "value.update": ("count", "update"),
    "map.get": ("recent", "get"),
    "map.put": ("recent", "put"),
    "map.remove": ("recent", "remove"),
    "map.iterate": ("recent", "iterate"),
    "list.add": ("buffer", "add"),
    "list.get": ("buffer", "get"),
    "list.clear": ("buffer", "clear"),
    "timer.register": ("_timer_state/event_user-timers", "register_timer"),
    "timer.delete": ("_timer_state/event_user-timers", "delete_timer"),
    "timer.fire": ("_timer_state/event_user-timers", "fire_timer"),
    # WindowOperator.java: one windowState.add per element into the ReducingState
    "window.in": ("window-contents", "add"),
}


@dataclass(frozen=True)
class DemoRun:
    """One run of the demo job."""

    counts: dict[str, int]  # the job's own counters
    net_runtime_ms: int  # Flink's JobExecutionResult.getNetRuntime
    wall_s: float
    cpu_s: float  # CPU time of the JVM (user + system, all threads), start to exit
    recording_dir: Path | None


def run_demo(
    workdir: Path,
    *,
    flink_version: str = "2.x",
    records: int = 20_000,
    keys: int = 200,
    parallelism: int = 2,
    record: bool = True,
    sample: float = 1.0,
    max_events: int | None = None,
    timeout_s: float = 300.0,
    extra_config: str = "",
) -> DemoRun:
    """Run the demo job once in a fresh JVM; with ``record`` its recording goes to
    ``workdir/rec`` through the lines ``tuner recorder config`` prints. ``extra_config`` is
    config.yaml lines (flat keys) added after them, e.g. the managed memory or
    ``state.backend.type: hashmap`` for the heap's speed limit."""
    jar = build_jar(flink_version)
    source = resources.files("tuner.recorder").joinpath("java", f"{DEMO_CLASS}.java").read_text()
    classes = compile_java(jar.flink, DEMO_CLASS, _cache_root(), source=source)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = "-"
    rec_dir = None
    lines = ""
    if record:
        rec_dir = workdir / "rec"
        lines = config_lines(
            str(rec_dir), sample=sample, max_events=max_events, flink_version=flink_version
        )
    if lines or extra_config:
        conf_file = workdir / "job.yaml"
        conf_file.write_text(lines.rstrip("\n") + "\n" + extra_config)
        conf = str(conf_file)
    result = workdir / "result.json"
    result.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome = run_job(
        jar.flink,
        classes,
        workdir / "unused",
        result,
        workdir,
        timeout_s=timeout_s,
        main=(DEMO_CLASS, str(records), str(keys), str(parallelism), conf, str(result)),
        extra_classpath=(jar.path,),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return DemoRun(
        counts={k: int(v) for k, v in outcome.result["counts"].items()},
        net_runtime_ms=int(outcome.result["net_runtime_ms"]),
        wall_s=outcome.wall_s,
        cpu_s=cpu,
        recording_dir=rec_dir,
    )
