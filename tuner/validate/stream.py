"""The operation stream as the Flink job reads it: a binary file of fixed-width records.

The Java job must not need Parquet jars, so the trace is rewritten into a flat file it can
memory-map (``java/ReplayJob.java``, class ``OpsFile``, reads the same layout).

Layout (version 1, all integers little-endian)
-----------------------------------------------

Header, 64 bytes:

======  ====  ===============================================================
offset  type  field
======  ====  ===============================================================
0       8 B   magic ``b"TUNROPS\\0"``
8       u32   format version (1)
12      u32   record size in bytes (56)
16      i64   preload rows (they come first)
24      i64   measured rows
32      u32   states in the stream header (``OpBatch.state`` indexes them)
36      28 B  zero
======  ====  ===============================================================

Then one 56-byte record per state call, preload rows first:

======  ====  ===============================================================
offset  type  field (the :data:`tuner.trace.ops.COLUMNS` of the row)
======  ====  ===============================================================
0       i64   ts
8       i64   key
16      i64   ns_start
24      i64   ns_end
32      i64   user_key
40      i64   timer_ts
48      i32   value_size
52      i16   state
54      i8    op
55      i8    phase: 0 preload, 1 measure
======  ====  ===============================================================

The state table itself (names, kinds, key types) goes into the job spec, a Java properties file
(:func:`write_job_spec`), together with the Flink configuration layers and the result path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tuner.errors import TunerError
from tuner.fileio import atomic_target
from tuner.trace.ops import OpBatch, StreamHeader

__all__ = [
    "HEADER_BYTES",
    "MAGIC",
    "RECORD_BYTES",
    "RECORD_DTYPE",
    "VERSION",
    "OpsFileInfo",
    "encode_records",
    "read_ops_file",
    "state_entries",
    "write_job_spec",
    "write_ops_file",
]

MAGIC = b"TUNROPS\0"
VERSION = 1
HEADER_BYTES = 64
RECORD_DTYPE = np.dtype(
    {
        "names": [
            "ts",
            "key",
            "ns_start",
            "ns_end",
            "user_key",
            "timer_ts",
            "value_size",
            "state",
            "op",
            "phase",
        ],
        "formats": ["<i8", "<i8", "<i8", "<i8", "<i8", "<i8", "<i4", "<i2", "i1", "i1"],
        "offsets": [0, 8, 16, 24, 32, 40, 48, 52, 54, 55],
        "itemsize": 56,
    }
)
RECORD_BYTES = RECORD_DTYPE.itemsize
_FIELDS: tuple[str, ...] = tuple(n for n in RECORD_DTYPE.names or () if n != "phase")
_HEADER_DTYPE = np.dtype(
    {
        "names": ["magic", "version", "record_bytes", "preload", "measure", "n_states"],
        "formats": ["S8", "<u4", "<u4", "<i8", "<i8", "<u4"],
        "offsets": [0, 8, 12, 16, 24, 32],
        "itemsize": HEADER_BYTES,
    }
)


@dataclass(frozen=True)
class OpsFileInfo:
    """What a written stream file holds."""

    path: Path
    preload_rows: int
    measure_rows: int
    n_states: int

    @property
    def rows(self) -> int:
        """Rows of both phases."""
        return self.preload_rows + self.measure_rows


def _header_bytes(preload: int, measure: int, n_states: int) -> bytes:
    h = np.zeros(1, dtype=_HEADER_DTYPE)
    h["magic"] = MAGIC
    h["version"] = VERSION
    h["record_bytes"] = RECORD_BYTES
    h["preload"] = preload
    h["measure"] = measure
    h["n_states"] = n_states
    return h.tobytes()


def encode_records(batch: OpBatch, phase: int) -> bytes:
    """The batch's rows as 56-byte records (the layout above)."""
    rec = np.zeros(len(batch), dtype=RECORD_DTYPE)
    for name in ("ts", "key", "ns_start", "ns_end", "user_key", "timer_ts", "value_size"):
        rec[name] = getattr(batch, name)
    rec["state"] = batch.state
    rec["op"] = batch.op
    rec["phase"] = phase
    return rec.tobytes()


def _write_phase(
    f: BinaryIO, batches: Iterable[OpBatch], names: tuple[str, ...], phase: int
) -> int:
    rows = 0
    for batch in batches:
        if batch.states != names:
            raise ValueError(f"batch names states {batch.states}, header names {names}")
        if len(batch):
            f.write(encode_records(batch, phase))
            rows += len(batch)
    return rows


def write_ops_file(
    path: Path,
    header: StreamHeader,
    preload: Iterable[OpBatch],
    measure: Iterable[OpBatch],
) -> OpsFileInfo:
    """Write the stream for the Flink job, atomically (temporary file + rename).

    Batches are streamed, so a stream larger than memory can be written; the row counts in the
    header are filled in at the end.
    """
    names = header.names
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        f.write(_header_bytes(0, 0, len(names)))
        n_pre = _write_phase(f, preload, names, 0)
        n_meas = _write_phase(f, measure, names, 1)
        f.seek(0)
        f.write(_header_bytes(n_pre, n_meas, len(names)))
    return OpsFileInfo(path, n_pre, n_meas, len(names))


def read_ops_file(
    path: Path, names: tuple[str, ...], batch_rows: int = 65_536
) -> tuple[OpsFileInfo, Iterator[tuple[int, OpBatch]]]:
    """Read a stream file back: its header, and (phase, batch) pairs in file order.

    The job reads the same bytes in Java; this reader exists to test the writer and to let a
    user inspect what was sent to Flink.
    """
    raw = np.fromfile(path, dtype=np.uint8, count=HEADER_BYTES)
    if raw.shape[0] < HEADER_BYTES:
        raise TunerError("truncated operation stream (no header)", file=str(path))
    h = raw.view(_HEADER_DTYPE)[0]
    if bytes(h["magic"]).ljust(8, b"\0") != MAGIC:
        raise TunerError("not a tuner operation stream (bad magic)", file=str(path))
    if int(h["version"]) != VERSION or int(h["record_bytes"]) != RECORD_BYTES:
        raise TunerError(
            f"stream format {int(h['version'])}/{int(h['record_bytes'])} is not "
            f"{VERSION}/{RECORD_BYTES}",
            file=str(path),
        )
    info = OpsFileInfo(path, int(h["preload"]), int(h["measure"]), int(h["n_states"]))
    expected = HEADER_BYTES + info.rows * RECORD_BYTES
    if path.stat().st_size != expected:
        raise TunerError(
            f"`size == {expected}` must hold for {info.rows} rows, but got "
            f"{path.stat().st_size} bytes",
            file=str(path),
        )
    if info.n_states != len(names):
        raise TunerError(
            f"the stream has {info.n_states} states, but {len(names)} names were given",
            file=str(path),
        )
    records = np.memmap(path, dtype=RECORD_DTYPE, mode="r", offset=HEADER_BYTES, shape=(info.rows,))

    def batches() -> Iterator[tuple[int, OpBatch]]:
        for start in range(0, info.rows, batch_rows):
            chunk = np.asarray(records[start : start + batch_rows])
            # A batch never spans the phase boundary: cut it there.
            for phase in (0, 1):
                part = chunk[chunk["phase"] == phase]
                if part.shape[0]:
                    cols = {name: part[name] for name in _FIELDS}
                    yield phase, OpBatch.from_columns(names, cols)

    return info, batches()


def _escape(value: str) -> str:
    """A value as java.util.Properties.load reads it back."""
    out = []
    for i, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "=:#!" or (ch == " " and i == 0):
            out.append("\\" + ch)
        elif ord(ch) > 0x7E or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def write_job_spec(path: Path, entries: Mapping[str, str | int | bool]) -> None:
    """Write the job spec, a Java properties file (ISO-8859-1 with escapes, as Java reads it)."""
    lines = ["# tuner validate: job spec for ReplayJob (java.util.Properties)"]
    for key, value in entries.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        lines.append(f"{_escape(key)}={_escape(text)}")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def state_entries(header: StreamHeader) -> dict[str, str | int | bool]:
    """The state table of ``header`` as job-spec entries (``state.<i>.<field>``)."""
    out: dict[str, str | int | bool] = {
        "states.count": len(header.states),
        "max_parallelism": header.max_parallelism,
    }
    for i, s in enumerate(header.states):
        p = f"state.{i}."
        out.update(
            {
                p + "name": s.name,
                p + "kind": s.kind,
                p + "key_type": s.key_type,
                p + "key_size": s.key_size,
                p + "windowed": s.windowed,
                p + "user_key_size": s.user_key_size,
                p + "ttl": s.ttl,
            }
        )
    return out
