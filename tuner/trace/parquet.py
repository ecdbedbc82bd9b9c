"""The trace file: an operation stream stored as Parquet, so a replay can run without its generator.

Layout (version 1)
------------------

* One row per state call, with exactly the columns of :data:`tuner.trace.ops.COLUMNS`
  (``ts``, ``state``, ``op``, ``key``, ``ns_start``, ``ns_end``, ``user_key``, ``value_size``,
  ``timer_ts``) at their dtypes, plus a ``phase`` column (int8: 0 preload, 1 measure).
* ``op`` holds the :class:`~tuner.trace.ops.Op` codes as int8. The codes are stable: a code is
  never reused or renumbered; new calls get new codes (and a new format version).
* ``state`` indexes the header's state table (below).
* One row group per batch. All preload row groups come first, then all measure row groups;
  a row group never mixes phases, and its ``phase`` column statistics (min = max) say which
  phase it holds, so a reader finds the split without scanning rows. The ``phase`` column
  repeats that per row, for readers such as pandas or DuckDB that look at rows.
* File key-value metadata (all values UTF-8 text):

  ==============  ============================================================================
  key             value
  ==============  ============================================================================
  ``format``      ``tuner-trace``
  ``version``     ``1``; a reader refuses a version newer than the one it knows
  ``header``      JSON: ``{"max_parallelism": int, "states": [{"name", "kind", "key_type",
                  "key_size", "windowed", "user_key_size", "ttl"}, ...]}`` (StreamHeader)
  ==============  ============================================================================

Files are written atomically (a temporary file in the same directory, then a rename), so a
reader never sees half a trace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tuner.errors import TunerError
from tuner.fileio import atomic_target
from tuner.flink.limits import MAX_PARALLELISM, MAX_SERIALIZED_BYTES
from tuner.trace.ops import (
    COLUMNS,
    COMPRESSIBILITY_RANGE,
    KEY_TYPES,
    MAX_STATES,
    STATE_KINDS,
    Op,
    OpBatch,
    StateInfo,
    StreamHeader,
)

__all__ = ["FORMAT", "PHASES", "VERSION", "Trace", "read_trace", "write_trace"]

FORMAT = "tuner-trace"
VERSION = 1
# Calls per batch the replay reads at a time (a slice of a row group).
STREAM_ROWS = 1 << 16
PHASES: tuple[Literal["preload", "measure"], ...] = ("preload", "measure")
TracePhase = Literal["preload", "measure"]

_SCHEMA = pa.schema(
    [
        pa.field(name, pa.from_numpy_dtype(np.dtype(dtype)), nullable=False)
        for name, dtype in COLUMNS
    ]
    + [pa.field("phase", pa.int8(), nullable=False)]
)
_MAGIC = b"PAR1"


def _header_json(header: StreamHeader) -> str:
    fields: dict[str, Any] = {
        "max_parallelism": header.max_parallelism,
        "states": [dataclasses.asdict(s) for s in header.states],
    }
    if header.compressibility is not None:
        fields["compressibility"] = header.compressibility
    return json.dumps(fields)


def _table(batch: OpBatch, phase: int) -> pa.Table:
    arrays = [pa.array(col) for col in batch.columns().values()]
    arrays.append(pa.array(np.full(len(batch), phase, dtype=np.int8)))
    return pa.Table.from_arrays(arrays, schema=_SCHEMA)


def write_trace(
    path: str | os.PathLike[str],
    header: StreamHeader,
    preload_batches: Iterable[OpBatch],
    measure_batches: Iterable[OpBatch],
    extra_metadata: Mapping[str, str] | None = None,
) -> None:
    """Write a trace to ``path`` atomically: the old file (if any) stays until the new one is whole.

    Batches are streamed (one row group each), so a trace larger than memory can be written.
    Every batch must name the header's states in its order. ``extra_metadata`` adds key-value
    metadata (e.g. ``recording``: what an imported recording knew beyond the rows).
    """
    # All metadata is known before the first row: it goes in with the schema (pyarrow < 17,
    # which the Flink extra pins, cannot add file metadata after the rows).
    schema = _SCHEMA.with_metadata(
        {
            **(extra_metadata or {}),
            "format": FORMAT,
            "version": str(VERSION),
            "header": _header_json(header),
        }
    )
    with (
        atomic_target(Path(path)) as tmp,
        # Dictionaries only where values repeat (state, op, phase): on the id and time columns
        # they cost time and grow the file (5M rows: 51 -> 34 MB, 20 % faster).
        pq.ParquetWriter(
            tmp, schema, compression="zstd", use_dictionary=["state", "op", "phase"]
        ) as writer,
    ):
        for code, batches in enumerate((preload_batches, measure_batches)):
            for batch in batches:
                if batch.states != header.names:
                    raise ValueError(
                        f"batch names states {batch.states}, header names {header.names}"
                    )
                if len(batch):
                    writer.write_table(_table(batch, code).replace_schema_metadata(schema.metadata))


@dataclass(frozen=True)
class Trace:
    """An opened trace file: its header, row counts, and its batches read on demand."""

    path: Path
    header: StreamHeader
    phase_rows: dict[str, int]
    _row_groups: dict[str, range]

    def batches(self, phase: TracePhase) -> Iterator[OpBatch]:
        """The batches of ``phase`` in file order, one per row group, checked as they are read."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        names = self.header.names
        n_states = len(names)
        code = PHASES.index(phase)
        pf = _open(self.path)
        for rg in self._row_groups[phase]:
            # A row group can hold millions of calls (an imported recording writes 1M a group);
            # read in slices, so the replay's buffers stay small beside the budget it measures.
            slices = pf.iter_batches(batch_size=STREAM_ROWS, row_groups=[rg])
            while True:
                try:
                    table = next(slices, None)
                except (OSError, pa.ArrowException) as e:
                    raise self._error(
                        f"row group {rg} is unreadable (truncated or corrupt): {e}"
                    ) from e
                if table is None:
                    break
                for name, _ in COLUMNS:
                    nulls = table.column(name).null_count
                    if nulls:
                        # A null read as a number would be INT64_MIN or 0: a call that never was.
                        raise self._error(
                            f"row group {rg}: column `{name}` must hold no nulls, but has {nulls}"
                        )
                cols = {
                    name: table.column(name).to_numpy(zero_copy_only=False) for name, _ in COLUMNS
                }
                try:
                    batch = OpBatch.from_columns(names, cols)
                except (ValueError, TypeError) as e:
                    raise self._error(f"row group {rg} has a column of the wrong type: {e}") from e
                if np.any(table.column("phase").to_numpy(zero_copy_only=False) != code):
                    raise self._error(f"row group {rg} mixes phases; expected only {phase} rows")
                _check_range(self, rg, "op", batch.op, 0, max(Op))
                _check_range(self, rg, "state", batch.state, 0, n_states - 1)
                yield batch

    def _error(self, message: str) -> TunerError:
        return TunerError(message, file=str(self.path))


def _check_range(
    trace: Trace, rg: int, column: str, values: np.ndarray[Any, Any], lo: int, hi: int
) -> None:
    if values.shape[0] == 0:
        return
    bad = (values < lo) | (values > hi)
    if bad.any():
        first = int(values[np.argmax(bad)])
        raise trace._error(
            f"row group {rg}: `{lo} <= {column} <= {hi}` must hold, but got {column}={first}"
        )


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException, ValueError) as e:  # ValueError: a name not UTF-8
        raise TunerError(f"cannot read the trace: {e}", file=str(path)) from e


def _diagnose(path: Path) -> None:
    """Name the usual ways a file is not a readable Parquet file, before pyarrow's message."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, size - 4))
        tail = f.read(4)
    if head != _MAGIC:
        raise TunerError("not a Parquet file (no PAR1 magic at its start)", file=str(path))
    if tail != _MAGIC or size < 12:
        raise TunerError(
            "truncated Parquet file (no PAR1 magic at its end); was it copied whole?",
            file=str(path),
        )


# A trace's header is a few KiB; the cap keeps a crafted one from costing time before the rows.
MAX_HEADER_CHARS = 16 << 20


def _header_error(path: Path, where: str, expected: str, value: object) -> TunerError:
    try:
        shown = json.dumps(value)
    except (ValueError, RecursionError):
        shown = type(value).__name__
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return TunerError(
        f"must be {expected}, but got {shown}",
        file=str(path),
        where="metadata header" + (f".{where}" if where else ""),
    )


def _int_field(path: Path, where: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _header_error(path, where, f"an integer in [{lo}, {hi}]", value)
    return value


def _state_info(s: object, i: int, path: Path) -> StateInfo:
    where = f"states[{i}]"
    if not isinstance(s, dict):
        raise _header_error(path, where, "a JSON object", s)
    unknown = set(s) - {f.name for f in dataclasses.fields(StateInfo)}
    if unknown:
        raise TunerError(
            f"unknown state fields {sorted(unknown)}", file=str(path), where=f"states[{i}]"
        )
    name, kind = s.get("name"), s.get("kind")
    if not isinstance(name, str) or not name:
        raise _header_error(path, f"{where}.name", "a non-empty string", name)
    if kind not in STATE_KINDS:
        raise _header_error(path, f"{where}.kind", f"one of {', '.join(STATE_KINDS)}", kind)
    key_type = s.get("key_type", StateInfo.key_type)
    if key_type not in KEY_TYPES:
        raise _header_error(path, f"{where}.key_type", "long or string", key_type)
    for flag in ("windowed", "ttl"):
        if not isinstance(s.get(flag, False), bool):
            raise _header_error(path, f"{where}.{flag}", "true or false", s[flag])
    sizes = {
        key: _int_field(path, f"{where}.{key}", s.get(key, 8), 1, MAX_SERIALIZED_BYTES)
        for key in ("key_size", "user_key_size")
    }
    return StateInfo(
        name=name,
        kind=kind,
        key_type=key_type,
        windowed=s.get("windowed", False),
        ttl=s.get("ttl", False),
        **sizes,
    )


def _parse_header(text: str, path: Path) -> StreamHeader:
    """The ``header`` metadata as a StreamHeader, every field checked for type and range."""
    if len(text) > MAX_HEADER_CHARS:
        raise TunerError(
            f"metadata `header` is {len(text):,} characters, more than the {MAX_HEADER_CHARS:,} "
            "a trace's header may hold",
            file=str(path),
        )
    try:
        raw: Any = json.loads(text)
    except ValueError as e:
        raise TunerError(f"malformed `header` metadata: {e}", file=str(path)) from None
    except RecursionError:
        raise TunerError("malformed `header` metadata: nested too deeply", file=str(path)) from None
    if not isinstance(raw, dict):
        raise _header_error(path, "", "a JSON object", raw)
    states = raw.get("states")
    if not isinstance(states, list):
        raise _header_error(path, "states", "a list of states", states)
    if len(states) > MAX_STATES:
        raise _header_error(path, "states", f"at most {MAX_STATES:,} states", len(states))
    infos = tuple(_state_info(s, i, path) for i, s in enumerate(states))
    first: dict[str, int] = {}
    for i, info in enumerate(infos):
        if info.name in first:
            raise _header_error(
                path, f"states[{i}].name", f"unique (also states[{first[info.name]}])", info.name
            )
        first[info.name] = i
    raw_parallelism = raw.get("max_parallelism")
    parallelism = _int_field(path, "max_parallelism", raw_parallelism, 1, MAX_PARALLELISM)
    ratio = raw.get("compressibility")
    if ratio is not None and (
        isinstance(ratio, bool)
        or not isinstance(ratio, int | float)
        or not COMPRESSIBILITY_RANGE[0] <= ratio <= COMPRESSIBILITY_RANGE[1]
    ):
        lo, hi = COMPRESSIBILITY_RANGE
        raise _header_error(path, "compressibility", f"a number from {lo} to {hi}", ratio)
    return StreamHeader(
        states=infos,
        max_parallelism=parallelism,
        compressibility=None if ratio is None else float(ratio),
    )


def recording_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``tuner trace import`` stored of the recording a trace came from (records, sample,
    the share of task time in state calls); {} for a generated trace."""
    meta = pq.ParquetFile(Path(path)).metadata.metadata or {}
    raw = meta.get(b"recording")
    if raw is None:
        return {}
    try:
        value = json.loads(raw.decode())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Open the trace at ``path`` and check its metadata and schema (rows are checked as read)."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError:
        raise TunerError("no such trace file", file=str(p)) from None
    if not stat.S_ISREG(mode):
        # A FIFO would block the reader, a device never end.
        raise TunerError("a trace must be a regular file", file=str(p))
    _diagnose(p)
    pf = _open(p)
    try:
        meta = {k.decode(): v.decode() for k, v in (pf.metadata.metadata or {}).items()}
    except UnicodeDecodeError as e:
        raise TunerError(
            f"key-value metadata must be UTF-8 text, but a {e.reason} at byte {e.start}",
            file=str(p),
        ) from None
    if meta.get("format") != FORMAT:
        raise TunerError(
            f"not a tuner trace: metadata `format` must be {FORMAT!r}, but got "
            f"{meta.get('format')!r}",
            file=str(p),
        )
    try:
        version = int(meta.get("version", ""))
    except ValueError:
        raise TunerError(
            f"metadata `version` must be an integer, but got {meta.get('version')!r}", file=str(p)
        ) from None
    if version > VERSION:
        raise TunerError(
            f"trace format version {version} is newer than this tuner reads ({VERSION}); "
            "upgrade tuner",
            file=str(p),
        )
    if version < 1:
        raise TunerError(f"`version >= 1` must hold, but got {version=}", file=str(p))
    header = _parse_header(meta.get("header", ""), p)
    found = pf.schema_arrow
    missing = [f.name for f in _SCHEMA if f.name not in found.names]
    if missing:
        raise TunerError(f"missing columns: {', '.join(missing)}", file=str(p))
    for f in _SCHEMA:
        got = found.field(f.name).type
        if got != f.type:
            # A silent cast could wrap values (an int64 op code of 300 into int8), so refuse.
            raise TunerError(f"column `{f.name}` must be {f.type}, but got {got}", file=str(p))
    # Each row group holds one phase; preload ones first. The `phase` column is read rather than
    # its statistics: pyarrow (16) aborts the whole process on statistics it cannot decode (a
    # corrupt file), while a read fails with an exception. It is one int8 per row, dictionary
    # encoded. (Nulls in any column are refused as the row groups are read.)
    sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    phases: list[int] = []
    for i in range(pf.num_row_groups):
        try:
            values = pf.read_row_group(i, columns=["phase"]).column(0)
            low, high = (v.as_py() for v in pc.min_max(values).values())
        except (OSError, pa.ArrowException, ValueError) as e:
            raise TunerError(
                f"row group {i} is unreadable (truncated or corrupt): {e}", file=str(p)
            ) from e
        if len(values) == 0:
            phases.append(phases[-1] if phases else 0)
            continue
        if values.null_count or low != high or low not in (0, 1):
            raise TunerError(
                f"row group {i} mixes phases, or has a `phase` other than 0 (preload) and 1 "
                "(measure)",
                file=str(p),
            )
        phases.append(int(low))
    split = next((i for i, ph in enumerate(phases) if ph != 0), len(phases))
    if any(ph != 1 for ph in phases[split:]):
        raise TunerError("preload row groups must all come before the measured ones", file=str(p))
    rows = {"preload": int(sum(sizes[:split])), "measure": int(sum(sizes[split:]))}
    if not header.states and sum(sizes):
        raise TunerError(
            f"metadata header.states is empty, but the trace has {sum(sizes):,} rows; each row's "
            "`state` must index a state",
            file=str(p),
        )
    groups = {"preload": range(0, split), "measure": range(split, len(sizes))}
    return Trace(path=p, header=header, phase_rows=rows, _row_groups=groups)
