"""Regenerate results/example from today's code: the README's first command on the bundled
quickstart job, then its validation on real Flink and its memory sizing, so the example shows
every section a report can have.

    python tools/make_example.py [--trials 12] [--out results/example] [--no-flink]

Steps (each a `tuner` command as a user types it, its wall time printed):

1. ``tuner run workloads/quickstart.yaml --trials N`` (tuner's defaults otherwise: the
   15-minute budget, the minimal recommendation, the confirmation on Flink's own backend when
   Flink 2.x is installed);
2. ``tuner validate RUN --repeats 1`` (real Flink 2.3; skipped with --no-flink);
3. ``tuner size workloads/quickstart.yaml --run RUN --repeats 1``;
4. ``tuner report results/example`` once it is in place (the report names its directory).

The new example is built in a sibling directory and swapped in only when every step passed: a
failed or interrupted regeneration leaves the old example as it was. ``tests/test_example.py``
checks that the example's report has every section today's report code writes and no key the
inert rules forbid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "workloads" / "quickstart.yaml"


def tuner(*args: str) -> None:
    """Run one tuner command from this checkout, its output streaming through; exit on failure."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    shown = " ".join(["tuner", *args])
    print(f"$ {shown}", flush=True)
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args], env=env, cwd=ROOT, check=False
    )
    print(f"  ({time.monotonic() - began:.0f} s, exit {proc.returncode})", flush=True)
    if proc.returncode != 0:
        sys.exit(
            f"make_example: `{shown}` failed (exit {proc.returncode}); the old example is kept"
        )


def main() -> None:
    """Build the example next to the old one, then swap it in."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", default="12", help="tuner run --trials (the README's: 12)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "example")
    ap.add_argument("--no-flink", action="store_true", help="skip `tuner validate` (no Flink here)")
    args = ap.parse_args()
    out: Path = args.out.resolve()
    new = out.with_name(f".{out.name}-new-{os.getpid()}")
    shutil.rmtree(new, ignore_errors=True)
    # Paths relative to the repository (the commands run there): the example names no machine.
    here, workload = os.path.relpath(new, ROOT), os.path.relpath(WORKLOAD, ROOT)
    try:
        tuner("run", workload, "--trials", args.trials, "--out", here)
        if not args.no_flink:
            tuner("validate", here, "--repeats", "1")
        tuner("size", workload, "--run", here, "--repeats", "1")
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}-old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    # The example stays small: the stream is the generator's, `tuner trace generate
    # workloads/quickstart.yaml -o trace.parquet` writes it again.
    (out / "trace.parquet").unlink(missing_ok=True)
    # sizing.md quotes the command it was made by: with the directory's final name.
    sizing = out / "sizing.md"
    if sizing.is_file():
        sizing.write_text(sizing.read_text().replace(here, os.path.relpath(out, ROOT)))
    # Rendered again where it now lives: the report names its own directory (relative, as a
    # user reading it in the repository sees it).
    tuner("report", os.path.relpath(out, ROOT))
    print(out)


if __name__ == "__main__":
    main()
