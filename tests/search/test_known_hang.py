"""A measurement stopped by its timeout says when RocksDB itself is known to hang there."""

from __future__ import annotations

from pathlib import Path

from tuner.flink import options as fo
from tuner.search.measure import measure_isolated
from tuner.trace.parquet import write_trace
from tuner.workload import load_workload

from ..factories import VALUE_AND_LIST, recorded_workload_file, value_and_list_calls


def test_only_merging_memtables_is_a_known_hang() -> None:
    assert fo.known_hang({fo.PREDEFINED_OPTIONS: "DEFAULT"}) is None
    assert fo.known_hang({fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 1}) is None
    said = fo.known_hang({fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 2, fo.MAX_WRITE_BUFFER_NUMBER: 4})
    assert said is not None and "writebuffer.number-to-merge 2" in said
    # Flink's own option set merges 3 memtables: it is exposed too.
    high_mem = fo.known_hang({fo.PREDEFINED_OPTIONS: "SPINNING_DISK_OPTIMIZED_HIGH_MEM"})
    assert high_mem is not None and "number-to-merge 3" in high_mem


def test_a_timed_out_measurement_names_the_known_hang(tmp_path: Path) -> None:
    trace = tmp_path / "trace.parquet"
    write_trace(
        trace,
        VALUE_AND_LIST,
        [value_and_list_calls(0, 20_000, 1_000, seed=1)],
        [value_and_list_calls(1_000_000, 20_000, 1_000, seed=2)],
    )
    workload = load_workload(recorded_workload_file(tmp_path, trace, "64 mb"))
    settings = {fo.MIN_WRITE_BUFFER_NUMBER_TO_MERGE: 2, fo.MAX_WRITE_BUFFER_NUMBER: 4}
    # Stopped long before it could finish: the process only just started.
    m = measure_isolated(workload, trace, settings, tmp_path / "m", timeout_s=0.05)
    assert m.status == "failed"
    assert m.reason.startswith("timeout") and "facebook/rocksdb#12094" in m.reason
    plain = measure_isolated(workload, trace, {}, tmp_path / "p", timeout_s=0.05)
    assert plain.reason.startswith("timeout") and "rocksdb#" not in plain.reason
