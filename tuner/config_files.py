"""Write a recommendation as the files a Flink engineer pastes: config.yaml (Flink 2.x),
flink-conf.yaml (Flink 1.x), flink-deployment.yaml (Kubernetes operator) and a RocksDB OPTIONS
file. Only keys the target version's catalog has are emitted, in the syntax Flink parses."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from tuner.fileio import atomic_write_text
from tuner.flink import options as fo
from tuner.flink.catalog import Catalog, load_catalog
from tuner.flink.emit import (
    Setting,
    render_config_yaml,
    render_flink_conf,
    render_flink_deployment,
)
from tuner.flink.inert import without_inert
from tuner.flink.options_file import render_options_file
from tuner.flink.rocksdb_config import RocksDBConfig
from tuner.flink.versions import CATALOG_FOR_MAJOR
from tuner.flink.watch import WATCHES, measured_figures, watch_comment
from tuner.recommend import Recommendation
from tuner.search.study import TrialRecord
from tuner.workload import Workload

STATE_BACKEND = "state.backend.type"
INCREMENTAL = "execution.checkpointing.incremental"

# The catalogs we ship per Flink major version; 2.x keeps 2.3's keys.
CATALOG_VERSIONS: Mapping[int, str] = CATALOG_FOR_MAJOR


def settings_for(rec: Recommendation, workload: Workload, catalog: Catalog) -> list[Setting]:
    """The recommendation as emitted settings: the backend, checkpointing, then RocksDB keys.

    A key the catalog lacks is left out (an older Flink simply does not have it), never emitted.
    """
    out = [
        Setting(STATE_BACKEND, "rocksdb", "the RocksDB state backend these settings tune"),
        Setting(
            INCREMENTAL,
            workload.checkpointing.incremental,
            "incremental checkpoints, as measured (each uploads only new SST files)",
        ),
    ]
    for key, value in rec.settings.items():
        if catalog.get(key) is None:
            continue
        out.append(Setting(key, value, rec.comments.get(key, "")))
    return out


def header_lines(rec: Recommendation, flink_version: str) -> str:
    """The comment block on top of every emitted file."""
    trial = f"trial {rec.trial_number}" if rec.trial_number is not None else "no trial"
    return "\n".join(
        [
            f"RocksDB state backend settings for '{rec.workload}' (Flink {flink_version}),",
            f"measured by tuner ({trial}): {rec.headline}.",
            "Paste into the job's Flink configuration; keys not listed keep Flink's defaults."
            if rec.changed is None
            else f"Changes {rec.changed} key(s) of your current configuration "
            f"({rec.baseline_source}); its other RocksDB keys follow, marked unchanged.",
        ]
    )


def records_as_emitted(
    records: Sequence[TrialRecord], settings: Mapping[str, fo.FlinkValue], workload: Workload
) -> list[TrialRecord]:
    """The finished measurements of exactly the RocksDB configuration ``settings`` opens (the
    same resolved options and timer store, whatever keys spelled them)."""

    def opened(candidate: Mapping[str, fo.FlinkValue]) -> tuple[RocksDBConfig, str, object]:
        # Keys that do nothing under the others are left out on both sides: the emitted files
        # never carry them, the measured candidate may. Where the timers live is no RocksDB
        # option, so it is compared beside the options.
        live = without_inert(candidate, workload.memory)
        values = fo.effective(live)
        factory = str(values[fo.TIMER_SERVICE_FACTORY])
        cache = None if factory == "HEAP" else values[fo.TIMER_SERVICE_CACHE_SIZE]
        return fo.resolve(live, workload.memory, workload.flink_version), factory, cache

    target = opened(settings)
    return [r for r in records if r.ok and r.metrics and opened(r.candidate.settings) == target]


def measured_as_emitted(
    records: Sequence[TrialRecord], settings: Mapping[str, fo.FlinkValue], workload: Workload
) -> dict[str, float]:
    """The median of every metric over the measurements of exactly the RocksDB configuration
    ``settings`` opens (:func:`records_as_emitted`): what the emitted files were measured to
    do. Empty when no finished measurement had it."""
    runs = [r.metrics for r in records_as_emitted(records, settings, workload)]
    names = {name for m in runs for name in m}
    return {
        name: statistics.median(values)
        for name in sorted(names)
        if (values := [float(m[name]) for m in runs if name in m])
    }


def watch_settings(figures: Mapping[str, str]) -> list[Setting]:
    """The metrics to watch as commented-out settings, each with its measured figure."""
    return [Setting(w.key, True, watch_comment(w, figures.get(w.name))) for w in WATCHES]


def write_config_files(
    run_dir: Path,
    rec: Recommendation,
    workload: Workload,
    column_families: list[str],
    measured: Mapping[str, float] | None = None,
    scale: float = 1.0,
) -> list[Path]:
    """Write the four config files into ``run_dir``; returns their paths.

    ``column_families`` names the instance's column families (states and timer services) for
    the per-family sections of the OPTIONS file. ``measured`` (the emitted configuration's
    metrics, :func:`measured_as_emitted`, of a model at ``scale``) gives the metrics to watch
    their figures."""
    watch = watch_settings(measured_figures(measured or {}, scale))
    written = []
    for major, filename in ((2, "config.yaml"), (1, "flink-conf.yaml")):
        catalog = load_catalog(CATALOG_VERSIONS[major])
        settings = settings_for(rec, workload, catalog)
        header = header_lines(rec, catalog.version)
        render = render_config_yaml if major == 2 else render_flink_conf
        path = run_dir / filename
        atomic_write_text(path, render(settings, catalog, header, watch))
        written.append(path)
    target = load_catalog(CATALOG_VERSIONS[workload.flink_major])
    path = run_dir / "flink-deployment.yaml"
    atomic_write_text(
        path,
        render_flink_deployment(
            settings_for(rec, workload, target),
            target,
            header_lines(rec, target.version),
            name=workload.name,
            watch=watch,
        ),
    )
    written.append(path)
    config = fo.resolve(rec.settings, workload.memory, workload.flink_version)
    path = run_dir / "rocksdb-options.ini"
    atomic_write_text(path, render_options_file(config, column_families))
    written.append(path)
    return written
