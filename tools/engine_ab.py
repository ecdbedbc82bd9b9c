"""Two configurations of one workload on one engine, interleaved, with the counted figures.

    python tools/engine_ab.py WORKLOAD TRACE A.json B.json [--scale 1/3] [--rounds 4] \\
        [--engine flink-backend] [--metrics cpu_s,user_bytes_written]

Each round measures A then B (B then A every other round), each in its own process as a trial
is (:func:`tuner.search.measure.measure_isolated`), on the model of WORKLOAD at ``--scale``
(a key-sampled recording: the run directory's workload.yaml and trace.parquet, and the run's
scale). A.json and B.json are Flink settings as a JSON object (a file, or the JSON itself).
Prints one JSON line per measurement with the chosen metrics. Written for issue 16's q11: HEAP
against ROCKSDB timers on the whole recording and on its 1/3 model (docs: measurements, Nexmark,
fourth session).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tuner.flink import options as fo
from tuner.flink.baseline import settings_from_json
from tuner.scale import ScaleSpec, model_workload, parse_factor
from tuner.search.measure import measure_isolated
from tuner.workload import load_workload

DEFAULT_METRICS = (
    "cpu_s",
    "user_bytes_written",
    "flush_bytes_written",
    "compaction_bytes_written",
    "block_cache_misses",
)


def _settings(arg: str) -> dict[str, fo.FlinkValue]:
    text = Path(arg).read_text() if Path(arg).is_file() else arg
    # As recommendation.json stores them: a per-level list back to the tuple Flink's options take.
    return settings_from_json(json.loads(text))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("workload", type=Path)
    p.add_argument("trace", type=Path)
    p.add_argument("a", help="settings A: a JSON file or object")
    p.add_argument("b", help="settings B: a JSON file or object")
    p.add_argument("--scale", default="1", help="the model's factor (a run's scale)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--engine", default="flink-backend", choices=("flink-backend", "rocksdict"))
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS))
    a = p.parse_args(argv)
    factor = parse_factor(a.scale, where="--scale")
    workload = load_workload(a.workload)
    model = model_workload(workload, ScaleSpec(factor))
    configs = {"A": _settings(a.a), "B": _settings(a.b)}
    metrics = a.metrics.split(",")
    for r in range(a.rounds):
        for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
            with tempfile.TemporaryDirectory(prefix="engine-ab-") as tmp:
                m = measure_isolated(
                    model,
                    a.trace,
                    configs[name],
                    Path(tmp) / "work",
                    timeout_s=1800,
                    engine_name=a.engine,
                    scale=factor,
                    rss_margin=4 << 30,
                )
            row = {"round": r + 1, "config": name, "status": m.status, "reason": m.reason}
            row.update({k: m.metrics.get(k) for k in metrics})
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
