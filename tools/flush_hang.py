"""How often does one configuration hang? It replays one measured configuration of a run many
times, each in its own process as a trial is, and counts those stopped by the timeout.

    python tools/flush_hang.py RUN_DIR --seq 23 [--repeats 40] [--timeout 60] \\
        [--set state.backend.rocksdb.writebuffer.number-to-merge=1]

``--seq`` picks the row of the run's trials.csv whose settings are replayed (on the run's own
workload.yaml and trace.parquet); ``--set`` changes one key first (a control). Written for
RocksDB's flush hang with merged memtables (docs: design, measurement).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

from tuner.flink.options import FlinkValue


def settings_of(run: Path, seq: int) -> dict[str, FlinkValue]:
    """The settings of row ``seq`` of the run's trials.csv (lists as the tuples tuner uses)."""
    with (run / "trials.csv").open() as f:
        for row in csv.DictReader(f):
            if int(row["seq"]) == seq:
                plain = json.loads(row["settings"])
                return {k: tuple(v) if isinstance(v, list) else v for k, v in plain.items()}
    raise SystemExit(f"{run / 'trials.csv'}: no row with seq {seq}")


def main(argv: Sequence[str] | None = None) -> None:
    """Replay the configuration ``--repeats`` times and print each outcome, then the count."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--seq", type=int, required=True, help="the trials.csv row to replay")
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a replay stops")
    p.add_argument("--set", action="append", default=[], metavar="KEY=INT", help="change a key")
    args = p.parse_args(argv)
    from tuner.search.measure import measure_isolated
    from tuner.workload import load_workload

    workload = load_workload(args.run / "workload.yaml")
    settings = settings_of(args.run, args.seq)
    for change in args.set:
        key, _, value = change.partition("=")
        settings[key] = int(value)
    hung = 0
    with TemporaryDirectory(prefix="tuner-hang-") as tmp:
        for i in range(args.repeats):
            start = time.monotonic()
            m = measure_isolated(
                workload,
                args.run / "trace.parquet",
                settings,
                Path(tmp) / f"r{i}",
                timeout_s=args.timeout,
            )
            hung += m.reason.startswith("timeout")
            took = time.monotonic() - start
            print(f"{i}: {m.status} in {took:.1f} s {m.reason[:80]}", flush=True)
    print(f"{hung} of {args.repeats} replays stopped by the {args.timeout:g} s timeout")


if __name__ == "__main__":
    main()
