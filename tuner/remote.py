"""Tune on many machines: the coordinator's side of ``tuner run --storage`` and the whole of
``tuner worker``. Wires the shared study (tuner.search.shared) to workloads, traces and the
measurement, as tuner.runner does for a local run.

A worker has no shared disk: it rebuilds the operation stream from the workload stored with the
study and compares its digest with the coordinator's, so every machine replays the same calls.
"""

from __future__ import annotations

import logging
import random
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from tuner.costmodel import disk_from
from tuner.errors import TunerError, TunerRuntimeError
from tuner.measuring import RunSettings, flink_measure, measure_candidate
from tuner.rundir import RunDir
from tuner.scale import ScaleSpec
from tuner.search.shared import (
    SharedSearch,
    SharedStudyLoop,
    StudySpec,
    WorkerSummary,
)
from tuner.search.storage import Retry, open_storage, public_url, remember_url, retry_for
from tuner.search.study import Measure, StudyConfig, create_study
from tuner.trace.digest import stream_sha256
from tuner.trace.parquet import read_trace
from tuner.trace.source import trace_file
from tuner.workload import Workload, dump_workload, loads_workload

log = logging.getLogger(__name__)

# How long `tuner worker` waits for its study to appear (workers may start before the
# coordinator, e.g. in one Kubernetes deployment).
DEFAULT_WAIT_S = 300.0


def open_coordinator(
    settings: RunSettings,
    workload: Workload,
    rd: RunDir,
    trace: Path,
    config: StudyConfig,
    measure: Measure,
) -> tuple[optuna.Study, Callable[..., SharedStudyLoop]]:
    """Create the shared study (or reopen this run's own on resume) and return it with a
    factory for the coordinator's study loop. Refuses a study name another run holds."""
    if settings.storage is None:
        raise ValueError("a shared study needs settings.storage")
    url: str = settings.storage
    if workload.trace is not None:
        raise TunerError(
            "a workload that replays a recorded trace cannot be shared yet: workers rebuild "
            "the stream from the workload; use a workload with states, or run locally",
            where="--storage",
        )
    public = remember_url(url)
    retry = retry_for(url)
    meta = rd.read_meta()
    name = settings.study_name or meta.get("study_name") or rd.path.name
    run_id = str(meta.get("run_id") or uuid.uuid4())
    storage = open_storage(url, heartbeat_s=settings.heartbeat_s, retry=retry)
    existing = retry("list studies", lambda: {s.study_name: s for s in storage.get_all_studies()})
    if name in existing:
        attrs = existing[name].user_attrs
        if attrs.get("run_id") != meta.get("run_id") or meta.get("run_id") is None:
            origin = attrs.get("origin", "another program")
            raise TunerError(
                f"study {name!r} already exists in {public} (created by {origin}); choose "
                "another --study, or continue that run with tuner run --resume DIR",
                where="--study",
            )
        spec = StudySpec.from_attrs(attrs, name)
        study = retry(
            "open the study", lambda: create_study(storage, name, config, constant_liar=True)
        )
        if spec.trials != config.trials:  # a resumed run may ask for more trials
            retry("set the trials", lambda: study.set_user_attr("trials", config.trials))
            spec = StudySpec.from_attrs({**attrs, "trials": config.trials}, name)
    else:
        spec = StudySpec(
            run_id=run_id,
            origin=f"{socket.gethostname()}:{rd.path.resolve()}",
            created_at=time.time(),
            workload_yaml=dump_workload(workload),
            stream_sha256=stream_sha256(read_trace(trace)),
            trials=config.trials,
            objective=config.objective,
            seed=config.seed,
            engine=settings.engine,
            disk=settings.disk,
            trial_timeout_s=settings.timeout_s,
            heartbeat_s=settings.heartbeat_s,
            scale_factor=settings.scale.factor,
            disk_budget=settings.scale.disk_budget,
        )

        # run.json names the study before it exists: a run killed right after creating it
        # still resumes it (its run_id matches).
        rd.set_status("running", storage=public, study_name=name, run_id=run_id)
        study = create_shared_study(storage, name, spec, config, retry)

    def make_loop(*args: Any, **kwargs: Any) -> SharedStudyLoop:
        loop = SharedStudyLoop(*args, **kwargs)
        cfs = kwargs.get("column_families")
        loop.attach(
            SharedSearch(study, storage, spec, workload, measure, int(cfs) if cfs else 1, retry)
        )
        return loop

    return study, make_loop


def create_shared_study(
    storage: Any, name: str, spec: StudySpec, config: StudyConfig, retry: Retry
) -> optuna.Study:
    """A new study named ``name`` holding ``spec``; a TunerError when the name is taken."""

    def create() -> optuna.Study:
        try:
            study = create_study(storage, name, config, load_if_exists=False, constant_liar=True)
        except optuna.exceptions.DuplicatedStudyError:
            raise TunerError(
                f"study {name!r} already exists in {retry.where}; choose another --study",
                where="--study",
            ) from None
        for k, v in spec.to_attrs().items():
            study.set_user_attr(k, v)
        return study

    return retry("create the study", create)


@dataclass
class WorkerResult:
    """What ``tuner worker`` did."""

    study: str
    workload: str
    summary: WorkerSummary
    storage: str  # without password
    notes: list[str] = field(default_factory=list)


def _wait_for_spec(storage: Any, name: str, wait_s: float, retry: Retry) -> StudySpec:
    end = time.monotonic() + wait_s
    while True:
        studies = retry(
            "list studies", lambda: {s.study_name: s for s in storage.get_all_studies()}
        )
        if name in studies and "format" in studies[name].user_attrs:
            return StudySpec.from_attrs(studies[name].user_attrs, name)
        if time.monotonic() >= end:
            if name in studies:
                StudySpec.from_attrs(studies[name].user_attrs, name)  # raises: not tuner's
            raise TunerError(
                f"no study {name!r} in {retry.where} (waited {wait_s:.0f} s); start it with "
                "tuner run WORKLOAD --storage URL --study NAME",
                where="--study",
            )
        log.info("waiting for study %s to appear", name)
        time.sleep(min(2.0, max(0.1, end - time.monotonic())))


def run_worker(
    url: str,
    name: str,
    *,
    trials: int | None = None,
    work_dir: Path | None = None,
    wait_s: float = DEFAULT_WAIT_S,
    should_stop: Callable[[], bool] = lambda: False,
    on_start: Callable[[StudySpec], None] | None = None,
) -> WorkerResult:
    """Join study ``name`` in ``url`` and measure its trials until it has all it needs (or
    ``trials`` were measured here, or ``should_stop``)."""

    retry = retry_for(url)
    probe = open_storage(url, retry=retry)
    spec = _wait_for_spec(probe, name, wait_s, retry)
    probe.engine.dispose()
    storage = open_storage(url, heartbeat_s=spec.heartbeat_s, retry=retry)
    workload = loads_workload(spec.workload_yaml, file=f"study {name}: workload")
    own_dir = work_dir is None
    root = Path(tempfile.mkdtemp(prefix="tuner-worker-")) if work_dir is None else work_dir
    root.mkdir(parents=True, exist_ok=True)
    try:
        trace_path = trace_file(workload, root / "trace.parquet")
        trace = read_trace(trace_path)
        digest = stream_sha256(trace)
        if digest != spec.stream_sha256:
            raise TunerRuntimeError(
                f"the operation stream rebuilt here differs from the coordinator's (digest "
                f"{digest[:12]} vs {spec.stream_sha256[:12]}): this machine runs another tuner "
                "or numpy version; install the coordinator's versions"
            )
        if on_start is not None:
            on_start(spec)
        settings = RunSettings(
            engine=spec.engine,
            timeout_s=spec.trial_timeout_s,
            scale=ScaleSpec(spec.scale_factor, spec.disk_budget),
        )
        rd = RunDir(root)
        disk = disk_from(spec.disk) if spec.disk else workload.disk
        measure = (
            flink_measure(workload, rd, trace_path, settings)
            if spec.engine == "flink"
            else measure_candidate(workload, rd, trace_path, settings, disk, spec.engine)
        )
        # Each worker samples with its own seed: with one seed, every worker's random
        # start-up trials would propose the same settings.
        config = StudyConfig(
            trials=spec.trials,
            seed=random.SystemRandom().randrange(1 << 31),
            objective=spec.objective,
        )
        study = retry(
            "open the study", lambda: create_study(storage, name, config, constant_liar=True)
        )
        search = SharedSearch(
            study,
            storage,
            spec,
            workload,
            measure,
            len(trace.header.names),
            retry,
            max_trials=trials,
            should_stop=should_stop,
        )
        summary = search.run()
    finally:
        shutil.rmtree(root / ".work", ignore_errors=True)
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)
    return WorkerResult(name, workload.name, summary, public_url(url))
