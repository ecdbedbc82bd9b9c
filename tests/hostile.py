"""The crafted inputs of issue 18, one per finding: each must end in exit 2 and one line.

``python -m tests.hostile DIR`` writes them under DIR (the committed corpus is
``tests/data/hostile``) with ``cases.json``: per case its command (``{input}`` and ``{out}`` stand
for the case's file and a scratch output) and a fragment the error line must hold. Cases that
cannot be committed as files (a FIFO, a symlink to /dev/zero, 33,000 states: 1.8 MB) are made at
test time by :func:`runtime_cases`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.recorder._recordings import STATES, events, footer, header
from tuner.recorder.format import write_recording
from tuner.trace.ops import COLUMNS

IMPORT = ["trace", "import", "{input}", "-o", "{out}"]
INSPECT = ["trace", "inspect", "{input}"]
GENERATE = ["trace", "generate", "{input}", "-o", "{out}"]
CHECK_2X = ["check-config", "{input}", "--flink-version", "2.x"]
CHECK_120 = ["check-config", "{input}", "--flink-version", "1.20"]

Case = tuple[str, list[str], str, Callable[[Path], None]]


def _recording(
    *,
    head: dict[str, Any] | None = None,
    states: list[dict[str, Any]] | None = None,
    foot: dict[str, Any] | None = None,
    sizes: int | None = None,
) -> Callable[[Path], None]:
    """A one-file recording directory with the given parts replaced."""

    def make(root: Path) -> None:
        ev = events(40)
        if sizes is not None:
            ev["size"][ev["size"] > 0] = sizes
        f = root / "job1" / "Op.0.0.1.tunerrec"
        f.parent.mkdir(parents=True)
        chosen = STATES if states is None else states
        write_recording(f, head or header(), chosen, ev, foot or footer(40), block_events=16)

    return make


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def _state(**changes: Any) -> list[dict[str, Any]]:
    first = {k: v for k, v in {**STATES[0], **changes}.items() if v is not _DROP}
    return [first, *STATES[1:]]


_DROP = object()


def _trace(
    states: Any = None,
    max_parallelism: Any = 128,
    raw_header: bytes | None = None,
    *,
    key: bool = False,
    state: bool = False,
    nulls: frozenset[str] = frozenset(),
) -> Callable[[Path], None]:
    """A one-row-group trace with the given header (or raw header bytes) and null columns."""

    def make(path: Path) -> None:
        n = 20
        named = [{"name": "s", "kind": "value"}] if states is None else states
        header_bytes = raw_header
        if header_bytes is None:
            header_bytes = json.dumps(
                {"max_parallelism": max_parallelism, "states": named}
            ).encode()
        arrays = []
        fields = []
        for name, dtype in COLUMNS:
            values = np.zeros(n, dtype=dtype)
            null = name in nulls or (name, True) in {("key", key), ("state", state)}
            mask = np.arange(n) % 3 == 0 if null else None
            arrays.append(pa.array(values, mask=mask))
            fields.append(pa.field(name, pa.from_numpy_dtype(np.dtype(dtype))))
        arrays.append(pa.array(np.ones(n, dtype=np.int8)))
        fields.append(pa.field("phase", pa.int8()))
        metadata = {b"format": b"tuner-trace", b"version": b"1", b"header": header_bytes}
        schema = pa.schema(fields).with_metadata(metadata)
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)

    return make


def _text(content: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_text(content, encoding="utf-8")

    return make


_WORKLOAD = """\
name: hostile
flink_version: "2.3"
memory: {{managed_per_slot: 512 mb}}
replay: {{records: 1000}}
states:
  - name: s
    kind: value
    keys: {keys}
    popularity: {popularity}
    value_size: {value_size}
    operations: {{read: 0.5, update: 0.5}}
"""


def _workload(keys: str = "1000", popularity: str = "uniform", value_size: str = "100") -> str:
    return _WORKLOAD.format(keys=keys, popularity=popularity, value_size=value_size)


CASES: list[Case] = [
    # --- recordings: trace import -------------------------------------------------------------
    (
        "recordings/timed-log2-huge",
        IMPORT,
        "footer.timed_log2_ns",
        _recording(foot=_with(footer(40), timed_log2_ns={"4000000000": [1, 1]})),
    ),
    (
        "recordings/max-parallelism-abc",
        IMPORT,
        "header.max_parallelism",
        _recording(head=_with(header(), max_parallelism="abc")),
    ),
    (
        "recordings/max-parallelism-object",
        IMPORT,
        "header.max_parallelism",
        _recording(head=_with(header(), max_parallelism={})),
    ),
    (
        "recordings/max-parallelism-nan",
        IMPORT,
        "header.max_parallelism",
        _recording(head=_with(header(), max_parallelism=float("nan"))),
    ),
    (
        "recordings/max-parallelism-1e30",
        IMPORT,
        "header.max_parallelism",
        _recording(head=_with(header(), max_parallelism=10**30)),
    ),
    (
        "recordings/max-parallelism-null",
        IMPORT,
        "header.max_parallelism",
        _recording(head=_with(header(), max_parallelism=None)),
    ),
    (
        "recordings/sample-x",
        IMPORT,
        "header.sample",
        _recording(head=_with(header(), sample="x")),
    ),
    (
        "recordings/key-lengths-list",
        IMPORT,
        "footer.key_lengths",
        _recording(foot=_with(footer(40), key_lengths=[8, 40])),
    ),
    (
        "recordings/key-lengths-negative",
        IMPORT,
        "footer.key_lengths",
        _recording(foot=_with(footer(40), key_lengths={"-3": 40})),
    ),
    (
        "recordings/task-cpu-abc",
        IMPORT,
        "footer.task_cpu_ns",
        _recording(foot=_with(footer(40), task_cpu_ns="abc")),
    ),
    (
        "recordings/task-cpu-infinity",
        IMPORT,
        "footer.task_cpu_ns",
        _recording(foot=_with(footer(40), task_cpu_ns=float("inf"))),
    ),
    (
        "recordings/state-without-name",
        IMPORT,
        "states[0].name",
        _recording(states=_state(name=_DROP)),
    ),
    (
        "recordings/state-id-true",
        IMPORT,
        "states[1].id",
        _recording(states=[STATES[0], {**STATES[1], "id": True}, *STATES[2:]]),
    ),
    (
        "recordings/negative-sizes",
        IMPORT,
        "a size of -5",
        _recording(sizes=-5),
    ),
    # --- traces: trace inspect ----------------------------------------------------------------
    (
        "traces/metadata-not-utf8.parquet",
        INSPECT,
        "UTF-8",
        _trace(raw_header=b'{"states": "\xff"}'),
    ),
    (
        "traces/duplicate-state-names.parquet",
        INSPECT,
        "states[1].name",
        _trace(states=[{"name": "s", "kind": "value"}, {"name": "s", "kind": "map"}]),
    ),
    ("traces/empty-states-with-rows.parquet", INSPECT, "states is empty", _trace(states=[])),
    (
        "traces/state-named-123.parquet",
        INSPECT,
        "states[0].name",
        _trace(states=[{"name": 123, "kind": "value"}]),
    ),
    (
        "traces/state-named-null.parquet",
        INSPECT,
        "states[0].name",
        _trace(states=[{"name": None, "kind": "value"}]),
    ),
    (
        "traces/kind-bogus.parquet",
        INSPECT,
        "states[0].kind",
        _trace(states=[{"name": "s", "kind": "bogus"}]),
    ),
    (
        "traces/key-size-negative.parquet",
        INSPECT,
        "states[0].key_size",
        _trace(states=[{"name": "s", "kind": "value", "key_type": "string", "key_size": -5}]),
    ),
    ("traces/max-parallelism-0.parquet", INSPECT, "max_parallelism", _trace(max_parallelism=0)),
    ("traces/null-keys.parquet", INSPECT, "`key` must hold no nulls", _trace(key=True)),
    ("traces/null-states.parquet", INSPECT, "`state` must hold no nulls", _trace(state=True)),
    # --- workloads: trace generate ------------------------------------------------------------
    (
        "workloads/value-size-3gb.yaml",
        GENERATE,
        "states[0].value_size",
        _text(_workload(value_size="3 gb")),
    ),
    (
        "workloads/value-size-int-3g.yaml",
        GENERATE,
        "states[0].value_size",
        _text(_workload(value_size=str(3 << 30))),
    ),
    (
        "workloads/keys-1e15-zipf.yaml",
        GENERATE,
        "states[0].keys",
        _text(_workload(keys=str(10**15), popularity="{zipf: {exponent: 1.0}}")),
    ),
    ("workloads/seed-5000-digits.yaml", GENERATE, "4300 digits", _text("seed: " + "9" * 5000)),
    # --- Flink configs: check-config ----------------------------------------------------------
    (
        "configs/int-5000-digits/config.yaml",
        CHECK_2X,
        "5,000 characters",
        _text("state.backend.rocksdb.thread.num: " + "9" * 5000 + "\n"),
    ),
    (
        "configs/int-5000-digits-other-key/config.yaml",
        CHECK_2X,
        "5,000 characters",
        _text("parallelism.default: " + "9" * 5000 + "\n"),
    ),
    (
        "configs/nul-character/config.yaml",
        CHECK_2X,
        "unacceptable character #x0000",
        _text("state.backend.rocksdb.thread.num: 4\x00\n"),
    ),
    (
        "configs/escape-codes-in-key/config.yaml",
        CHECK_2X,
        "\\x1b[2J",
        _text('"state.backend.rocksdb.\\e[2J\\e[31mthread.num": 4\n'),
    ),
    (
        "configs/escape-codes-legacy/flink-conf.yaml",
        CHECK_120,
        "\\x1b]0;",
        _text("state.backend.rocksdb.\x1b]0;title\x07thread.num: 4\n"),
    ),
]


def runtime_cases(root: Path) -> list[tuple[str, list[str], str, Path]]:
    """The cases made at test time under ``root``: (name, command, fragment, input path)."""
    made: list[tuple[str, list[str], str, Path]] = []
    fifo_dir = root / "fifo" / "job1"
    fifo_dir.mkdir(parents=True)
    os.mkfifo(fifo_dir / "Op.0.0.1.tunerrec")
    made.append(("recordings/fifo", IMPORT, "regular file", root / "fifo"))
    zero_dir = root / "zero" / "job1"
    zero_dir.mkdir(parents=True)
    (zero_dir / "Op.0.0.1.tunerrec").symlink_to("/dev/zero")
    made.append(("recordings/symlink-to-dev-zero", IMPORT, "regular file", root / "zero"))
    many = [{"id": i, "name": f"s{i}", "kind": "value"} for i in range(33_000)]
    _recording(states=many)(root / "many")
    made.append(("recordings/33000-states", IMPORT, "more than 1,024 states", root / "many"))
    os.mkfifo(root / "fifo.parquet")
    made.append(("traces/fifo", INSPECT, "regular file", root / "fifo.parquet"))
    (root / "zero.parquet").symlink_to("/dev/zero")
    made.append(("traces/symlink-to-dev-zero", INSPECT, "regular file", root / "zero.parquet"))
    (root / "fifo-conf").mkdir()
    os.mkfifo(root / "fifo-conf" / "config.yaml")
    made.append(("configs/fifo", CHECK_2X, "regular file", root / "fifo-conf" / "config.yaml"))
    (root / "zero.yaml").symlink_to("/dev/zero")
    made.append(("configs/symlink-to-dev-zero", CHECK_2X, "regular file", root / "zero.yaml"))
    os.mkfifo(root / "fifo-workload.yaml")
    made.append(("workloads/fifo", GENERATE, "regular file", root / "fifo-workload.yaml"))
    return made


def write_corpus(directory: Path) -> None:
    """Write every case of :data:`CASES` and ``cases.json`` under ``directory``."""
    manifest = []
    for name, command, fragment, make in CASES:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        make(target)
        manifest.append({"case": name, "command": command, "expect": fragment})
    text = json.dumps(manifest, indent=1, ensure_ascii=True) + "\n"
    (directory / "cases.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_corpus(Path(sys.argv[1]))
