"""The recorder's file format (written by ``java/TunerRecorderFactory.java``) and its reader.

One file per operator subtask and restart attempt, ``<dir>/<job id>/<operator>.<subtask>.
<attempt>.<nanos>.tunerrec``. All integers little-endian.

==========  ====================================================================================
part        layout
==========  ====================================================================================
header      ``TUNERREC`` (8 bytes), u32 format version (1), u32 n, u32 CRC32 of the JSON, n
            bytes of JSON: format,
            flink_version, job_id, operator, task, subtask, attempt, parallelism,
            max_parallelism, sample, random_secret, hash (``siphash-2-4``), started_ms
blocks      u8 type, 3 zero bytes, u32 payload length, u32 CRC32 of the payload, u32 count,
            then the payload. Type 1: one state definition (JSON: id, name, kind, namespace
            ``void|window|other|timer``, ttl), written before the first event naming it.
            Type 2: ``count`` events of 48 bytes (below). Type 3: the footer (JSON), last.
event       i64 ts (processing time, ms), u64 key (SipHash-2-4 of the serialized key under the
            recording's secret), i64 ns_a, i64 ns_b (TimeWindow start/end; -1/-1 VoidNamespace;
            another namespace: its hash in ns_a), i64 aux (map user-key hash; timer timestamp),
            i32 size (bytes of the serialized value written; -1 unknown), u16 state id, u8 op
            (:class:`tuner.trace.ops.Op` codes), u8 flags (1 window ns, 2 other ns, 4 size unknown)
footer      JSON: events, dropped_events, stopped (null, ``max-events``, ``max-bytes``,
            ``io-error: ...``), key_switches, sampled_key_switches, state_calls,
            timed_calls, timed_ns (wall time of the timed calls), timer_cost_ns (what
            reading that clock twice costs, subtracted per timed call), timed_log2_ns (timed
            calls by log2 of their ns: [count, sum]), long_calls, long_wall_ns and long_cpu_ns
            (timed calls of 2^20 ns or more: their count, wall time and thread CPU time; absent
            from recorders before them), task_cpu_ns (the task
            thread's CPU time from its first state call to close), wall_ns, key_lengths and
            user_key_lengths (histograms of serialized lengths: exact to 64, 65 for longer),
            key_long_bytes and user_key_long_bytes (the bytes of those longer than 64, so their
            mean length is known; absent from recorders before them), payload_raw_bytes and
            payload_lz4_bytes (a sample of written values and wide map user keys, in 4 KB
            blocks, before and after LZ4; absent from recorders before them), ended_ms
==========  ====================================================================================

A file without a footer was not closed (the job was killed, or still runs): it is refused as
truncated, as is a block cut short or one whose CRC does not match. Recordings come from other
machines, so the reader trusts nothing in them: only a regular file of at most
:data:`MAX_RECORDING_BYTES` is read, and every header, state and footer field the import uses is
checked for its type and range before use (a TunerError naming the file and the field).
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tuner.errors import TunerError
from tuner.fileio import read_regular_file
from tuner.flink.limits import MAX_PARALLELISM, MAX_SERIALIZED_BYTES
from tuner.trace.ops import STATE_KINDS

__all__ = [
    "EVENT_DTYPE",
    "FLAG_NS_OTHER",
    "FLAG_NS_WINDOW",
    "FLAG_SIZE_UNKNOWN",
    "MAGIC",
    "MAX_RECORDING_BYTES",
    "SUFFIX",
    "VERSION",
    "Recording",
    "read_recording",
    "recording_files",
    "write_recording",
]

MAGIC = b"TUNERREC"
VERSION = 1
SUFFIX = ".tunerrec"
BLOCK_STATE, BLOCK_EVENTS, BLOCK_FOOTER = 1, 2, 3
FLAG_NS_WINDOW, FLAG_NS_OTHER, FLAG_SIZE_UNKNOWN = 1, 2, 4
EVENT_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("key", "<u8"),
        ("ns_a", "<i8"),
        ("ns_b", "<i8"),
        ("aux", "<i8"),
        ("size", "<i4"),
        ("state", "<u2"),
        ("op", "u1"),
        ("flags", "u1"),
    ]
)
assert EVENT_DTYPE.itemsize == 48
_BLOCK = struct.Struct("<B3sIII")
_FILE_HEADER = struct.Struct("<8sIII")
KINDS = STATE_KINDS
NAMESPACES = ("void", "window", "other", "timer")
# The recorder stops a file at --max-bytes (1 GiB unless set; `tuner recorder config` allows up
# to this): a larger file is not one it wrote.
MAX_RECORDING_BYTES = 4 << 30
# An operator's keyed states and timer services: jobs have a handful, a trace holds at most
# MAX_STATES (all operators together); the bound keeps a crafted file's cost to a fraction of a
# second.
MAX_STATES_PER_FILE = 1024
_MAX_OP = 10  # Op.FIRE_TIMER, the highest code the recorder writes
_INT64 = 1 << 63
_ABSENT = object()


@dataclass(frozen=True)
class Recording:
    """One recorded file: its header, state table, events (``EVENT_DTYPE``) and footer."""

    path: Path
    header: dict[str, Any]
    states: tuple[dict[str, Any], ...]
    events: npt.NDArray[np.void]
    footer: dict[str, Any]

    @property
    def subtask(self) -> int:
        """The operator subtask index this file recorded."""
        return int(self.header.get("subtask", 0))

    @property
    def operator(self) -> str:
        """Flink's operator identifier."""
        return str(self.header.get("operator", ""))


def _error(path: Path, offset: int, message: str) -> TunerError:
    return TunerError(message, file=str(path), where=f"offset {offset}")


def _json(raw: bytes, path: Path, offset: int, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _error(path, offset, f"corrupt {what} (not JSON: {e})") from None
    except RecursionError:
        raise _error(path, offset, f"corrupt {what} (JSON nested too deeply)") from None
    if not isinstance(value, dict):
        raise _error(path, offset, f"corrupt {what} (not a JSON object)")
    return value


class _Fields:
    """Type and range checks of one JSON object's fields; a failure names the file and field."""

    def __init__(self, obj: Mapping[str, Any], path: Path, where: str) -> None:
        self.obj = obj
        self.path = path
        self.where = where

    def fail(self, key: str, expected: str, value: object) -> TunerError:
        try:
            shown = repr(value)
        except (ValueError, RecursionError):  # an int past Python's digit limit; deep nesting
            shown = f"a {type(value).__name__} too large to show"
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return TunerError(
            f"must be {expected}, but got {shown}", file=str(self.path), where=f"{self.where}.{key}"
        )

    def integer(self, key: str, lo: int, hi: int, value: object = _ABSENT) -> int | None:
        """The field (or ``value`` found under it) as an int in ``[lo, hi]``; None if absent."""
        if value is _ABSENT:
            if key not in self.obj:
                return None
            value = self.obj[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, f"an integer in [{lo}, {hi}]", value)
        return value

    def number(self, key: str, lo: float, hi: float, *, low_open: bool = False) -> float | None:
        if key not in self.obj:
            return None
        value = self.obj[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(value, float):
            ok = math.isfinite(value)
        if not ok or not (lo < value if low_open else lo <= value) or not value <= hi:
            bounds = f"({lo}, {hi}]" if low_open else f"[{lo}, {hi}]"
            raise self.fail(key, f"a finite number in {bounds}", value)
        return float(value)

    def text(self, key: str, *, choices: Sequence[str] = (), required: bool = False) -> None:
        if key not in self.obj and not required:
            return
        value = self.obj.get(key)
        if not isinstance(value, str) or (choices and value not in choices) or value == "":
            expected = f"one of {', '.join(choices)}" if choices else "a non-empty string"
            raise self.fail(key, expected, value)

    def boolean(self, key: str) -> None:
        if key in self.obj and not isinstance(self.obj[key], bool):
            value = self.obj[key]
            raise self.fail(key, "true or false", value)

    def mapping(self, key: str) -> Mapping[str, Any]:
        if key not in self.obj:
            return {}
        value = self.obj[key]
        if not isinstance(value, dict):
            raise self.fail(key, "a JSON object", value)
        return value

    def histogram(self, key: str, counts: Mapping[str, Any], lo: int, hi: int) -> None:
        """``{"<length>": count}``: lengths in ``[lo, hi]`` as decimal text, counts >= 0."""
        for length, count in counts.items():
            if not (length.isdecimal() and length.isascii()) or not lo <= int(length) <= hi:
                raise self.fail(key, f"keyed by integers in [{lo}, {hi}]", length)
            self.integer(f"{key}.{length}", 0, _INT64 - 1, count)


def _check_header(header: dict[str, Any], path: Path) -> None:
    f = _Fields(header, path, "header")
    for key in ("job_id", "operator", "flink_version"):
        value = header.get(key)
        if key in header and not isinstance(value, str):
            raise f.fail(key, "a string", value)
    f.integer("subtask", 0, MAX_PARALLELISM - 1)
    f.integer("max_parallelism", 1, MAX_PARALLELISM)
    f.number("sample", 0.0, 1.0, low_open=True)


def _check_state(state: dict[str, Any], index: int, path: Path) -> None:
    f = _Fields(state, path, f"states[{index}]")
    # State ids are given in order of definition: 0, 1, ...
    f.integer("id", index, index, state.get("id"))
    f.text("name", required=True)
    f.text("kind", choices=KINDS, required=True)
    f.text("namespace", choices=NAMESPACES)
    f.boolean("ttl")


def _check_footer(footer: dict[str, Any], path: Path) -> None:
    f = _Fields(footer, path, "footer")
    for key in (
        "events",
        "dropped_events",
        "key_switches",
        "sampled_key_switches",
        "state_calls",
        "timed_calls",
        "timed_ns",
        "timer_cost_ns",
        "wall_ns",
    ):
        f.integer(key, 0, _INT64 - 1)
    f.integer("task_cpu_ns", -1, _INT64 - 1)  # -1: the JVM could not measure thread CPU time
    for key in ("long_calls", "long_wall_ns", "long_cpu_ns"):  # recorders since issue 16
        if key in footer:
            f.integer(key, 0, _INT64 - 1)
    # Recorders since compressibility was measured; LZ4 never grows a 4 KB block past 4,128.
    raw = f.integer("payload_raw_bytes", 0, _INT64 - 1) or 0
    f.integer("payload_lz4_bytes", 0, raw + raw // 64)
    f.integer("ended_ms", -_INT64, _INT64 - 1)
    stopped = footer.get("stopped")
    if stopped is not None and not isinstance(stopped, str):
        raise f.fail("stopped", "null or a string", stopped)
    # Buckets by log2 of a call's nanoseconds (a long): 0 .. 63, each [count, sum of ns].
    for bucket, pair in f.mapping("timed_log2_ns").items():
        if not (bucket.isdecimal() and bucket.isascii()) or not 0 <= int(bucket) <= 63:
            raise f.fail("timed_log2_ns", "keyed by integers in [0, 63]", bucket)
        if not isinstance(pair, list) or len(pair) != 2:
            raise f.fail(f"timed_log2_ns.{bucket}", "a [count, sum] pair", pair)
        for value in pair:
            f.integer(f"timed_log2_ns.{bucket}", 0, _INT64 - 1, value)
    f.histogram("key_lengths", f.mapping("key_lengths"), 0, MAX_SERIALIZED_BYTES)
    for state, counts in f.mapping("user_key_lengths").items():
        # Keyed by state id; an id naming no state is never looked up.
        if not (state.isdecimal() and state.isascii()):
            raise f.fail("user_key_lengths", "keyed by state ids", state)
        if not isinstance(counts, dict):
            raise f.fail(f"user_key_lengths.{state}", "a JSON object", counts)
        f.histogram(f"user_key_lengths.{state}", counts, 0, MAX_SERIALIZED_BYTES)
    f.integer("key_long_bytes", 0, _INT64 - 1)
    for state, total in f.mapping("user_key_long_bytes").items():
        if not (state.isdecimal() and state.isascii()):
            raise f.fail("user_key_long_bytes", "keyed by state ids", state)
        f.integer(f"user_key_long_bytes.{state}", 0, _INT64 - 1, total)


def read_recording(path: str | os.PathLike[str]) -> Recording:
    """Read and check one recording file; any damage is a TunerError naming file and offset
    (or field)."""
    p = Path(path)
    try:
        data = read_regular_file(p, MAX_RECORDING_BYTES, "a recording")
    except OSError as e:
        raise TunerError(f"cannot read the recording: {e.strerror}", file=str(p)) from None
    if len(data) < _FILE_HEADER.size:
        raise _error(p, 0, f"truncated: {len(data)} bytes, shorter than the file header")
    magic, version, n, header_crc = _FILE_HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise _error(p, 0, f"not a tuner recording (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise _error(
            p, 8, f"recording format version {version} is not one this tuner reads ({VERSION})"
        )
    off = _FILE_HEADER.size
    if off + n > len(data):
        raise _error(p, off, "truncated inside the JSON header")
    if zlib.crc32(data[off : off + n]) != header_crc:
        raise _error(p, off, "corrupt header (CRC32 mismatch)")
    header = _json(data[off : off + n], p, off, "header")
    _check_header(header, p)
    off += n
    states: list[dict[str, Any]] = []
    chunks: list[npt.NDArray[np.void]] = []
    footer: dict[str, Any] | None = None
    view = memoryview(data)
    while off < len(data):
        if footer is not None:
            raise _error(p, off, "bytes after the footer")
        if off + _BLOCK.size > len(data):
            raise _error(p, off, "truncated inside a block header")
        btype, pad, length, crc, count = _BLOCK.unpack_from(data, off)
        expected_count = {BLOCK_STATE: 1, BLOCK_FOOTER: 0}.get(btype, count)
        if pad != b"\0\0\0" or count != expected_count:
            raise _error(p, off, "corrupt block header")
        start = off + _BLOCK.size
        if start + length > len(data):
            raise _error(
                p, off, f"truncated block: {length} bytes announced, {len(data) - start} present"
            )
        payload = view[start : start + length]
        if zlib.crc32(payload) != crc:
            raise _error(p, off, "corrupt block (CRC32 mismatch)")
        if btype == BLOCK_EVENTS:
            if length != count * EVENT_DTYPE.itemsize:
                raise _error(p, off, f"corrupt event block: {length} bytes for {count} events")
            chunks.append(np.frombuffer(payload, dtype=EVENT_DTYPE))
        elif btype == BLOCK_STATE:
            if len(states) == MAX_STATES_PER_FILE:
                raise _error(
                    p,
                    off,
                    f"more than {MAX_STATES_PER_FILE:,} states in one operator: more than a "
                    "recording holds",
                )
            state = _json(bytes(payload), p, off, "state definition")
            _check_state(state, len(states), p)
            states.append(state)
        elif btype == BLOCK_FOOTER:
            footer = _json(bytes(payload), p, off, "footer")
            _check_footer(footer, p)
        else:
            raise _error(p, off, f"corrupt block: unknown block type {btype}")
        off = start + length
    if footer is None:
        raise _error(
            p,
            off,
            "truncated: no footer (the job was killed, or still runs; the recorder "
            "writes the footer when the task ends)",
        )
    events = np.concatenate(chunks) if chunks else np.zeros(0, dtype=EVENT_DTYPE)
    if events.shape[0]:
        bad_state = int(events["state"].max()) >= len(states)
        bad_op = int(events["op"].max()) > _MAX_OP
        if bad_state or bad_op:
            raise _error(p, off, "corrupt events: a state id or op code out of range")
        if int(events["size"].min()) < -1:
            raise _error(
                p, off, f"corrupt events: a size of {int(events['size'].min())} (-1 is unknown)"
            )
    return Recording(p, header, tuple(states), events, footer)


def recording_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The recording files under ``directory`` (any depth), sorted; a TunerError if none."""
    d = Path(directory)
    if not d.is_dir():
        raise TunerError("no such recording directory", file=str(d))
    files = sorted(d.rglob(f"*{SUFFIX}"))
    if not files:
        raise TunerError(f"no recording files (*{SUFFIX}) in the directory", file=str(d))
    return files


def write_recording(
    path: str | os.PathLike[str],
    header: dict[str, Any],
    states: Sequence[dict[str, Any]],
    events: npt.NDArray[np.void],
    footer: dict[str, Any] | None,
    *,
    block_events: int = 5461,
    version: int = VERSION,
) -> None:
    """Write a recording as the Java recorder does (all states first, then events in blocks,
    then the footer; no footer when ``footer`` is None). For tests and benchmarks."""

    def block(kind: int, payload: bytes, count: int) -> bytes:
        return _BLOCK.pack(kind, b"\0\0\0", len(payload), zlib.crc32(payload), count) + payload

    raw = json.dumps(header).encode()
    parts = [_FILE_HEADER.pack(MAGIC, version, len(raw), zlib.crc32(raw)), raw]
    for s in states:
        parts.append(block(BLOCK_STATE, json.dumps(s).encode(), 1))
    ev = np.ascontiguousarray(events, dtype=EVENT_DTYPE)
    for lo in range(0, ev.shape[0], block_events):
        chunk = ev[lo : lo + block_events]
        parts.append(block(BLOCK_EVENTS, chunk.tobytes(), chunk.shape[0]))
    if footer is not None:
        parts.append(block(BLOCK_FOOTER, json.dumps(footer).encode(), 0))
    Path(path).write_bytes(b"".join(parts))
