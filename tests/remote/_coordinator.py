"""`tuner run --storage` (or `--resume`, when OUT holds a run) with the fake engine, for tests of
the coordination (the CLI offers only real engines):
python -m tests.remote._coordinator WORKLOAD OUT STORAGE STUDY TRIALS [ENGINE [no-minimal]]."""

from __future__ import annotations

import sys
from pathlib import Path

from tuner.runner import RunSettings, resume_run, run_study, start_run
from tuner.workload import load_workload


def main(argv: list[str]) -> None:
    workload_file, out, storage, study, trials = argv[:5]
    engine = argv[5] if len(argv) > 5 else "fake"
    if (Path(out) / "run.json").exists():  # resume, as tuner run --resume OUT
        resumed = resume_run(Path(out))
        workload, rd = resumed.workload, resumed.run_dir
    else:
        workload = load_workload(workload_file)
        rd, workload = start_run(workload, Path(out), Path("results"))
    settings = RunSettings(
        trials=int(trials),
        repeats=1,
        engine=engine,
        storage=storage if storage != "-" else None,
        study_name=study if study != "-" else None,
        heartbeat_s=1,
        # The minimal recommendation runs on the coordinator alone, after the study: tests of
        # the coordination can leave it out (tests/search/test_ablation.py covers it).
        minimal=argv[6:7] != ["no-minimal"],
        # One reverted key, once: what these tests check of it is that the coordinator makes it.
        minimal_repeats=1,
        minimal_max_measurements=4,
        # The confirmation on Flink's own backend is no part of the coordination (it runs on
        # the coordinator alone, after the study; tests/validate/test_flink_backend.py covers
        # it), and a JVM per run would double these tests' time.
        confirm=False,
    )
    summary = run_study(workload, rd, settings)
    print(summary.status)


if __name__ == "__main__":
    main(sys.argv[1:])
