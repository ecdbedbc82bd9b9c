"""Flink's RocksDB key layout: key groups, composite keys, timer keys and values, as bytes.

Everything here is a pure function of numpy columns, so a batch of tens of thousands of state calls
is encoded with a handful of array operations instead of a Python loop per call.

Layouts (all integers big-endian, as Java's ``DataOutput.writeLong`` writes them):

* state entry:  ``key-group prefix | key | namespace [| user key]``
* timer entry:  ``key-group prefix | timestamp with its sign bit flipped | key | namespace``,
  empty value
* value:        ``[null flag 0x00 (map state)] [8-byte TTL timestamp] payload``

Keys are ``long`` (8 bytes) or ``string``: the key id rendered as ``key_size`` zero-padded decimal
ASCII digits and written as Flink's ``StringSerializer`` writes strings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import lz4.block
import numpy as np
import numpy.typing as npt

from tuner.trace.ops import StateInfo

KeyType = Literal["long", "string"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

_U32 = np.uint32


def key_group_prefix_bytes(max_parallelism: int) -> int:
    """Bytes of the key-group prefix: 1 up to 128 key groups, else 2.

    CompositeKeySerializationUtils.computeRequiredBytesInKeyGroupPrefix.
    """
    if not 1 <= max_parallelism <= 1 << 15:
        raise ValueError(f"`1 <= max_parallelism <= 32768` must hold, but got {max_parallelism=}")
    return 1 if max_parallelism <= 128 else 2


def java_long_hash(values: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """``Long.hashCode``: ``(int) (v ^ (v >>> 32))``, for an int64 array."""
    v = np.asarray(values, dtype=np.int64).view(np.uint64)
    return ((v ^ (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)


def java_string_hash(chars: U8) -> npt.NDArray[np.int32]:
    """``String.hashCode`` of ASCII strings given as an ``(n, length)`` uint8 matrix:
    ``s[0]*31^(n-1) + ... + s[n-1]`` in 32-bit wrapping arithmetic."""
    if chars.ndim != 2:
        raise ValueError(f"expected an (n, length) matrix, got shape {chars.shape}")
    length = chars.shape[1]
    powers = np.array([pow(31, length - 1 - i, 1 << 32) for i in range(length)], dtype=np.uint32)
    # uint32 products and sums wrap modulo 2**32, which is Java's int overflow.
    terms = chars.astype(np.uint32) * powers
    summed: npt.NDArray[np.uint32] = terms.sum(axis=1, dtype=np.uint32)
    return summed.view(np.int32)


def _rotl(x: npt.NDArray[np.uint32], r: int) -> npt.NDArray[np.uint32]:
    return (x << _U32(r)) | (x >> _U32(32 - r))


def murmur_hash(codes: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """Flink's ``MathUtils.murmurHash(int)``: a non-negative int per input int."""
    c = np.asarray(codes, dtype=np.int32).view(np.uint32).copy()
    c *= _U32(0xCC9E2D51)
    c = _rotl(c, 15)
    c *= _U32(0x1B873593)
    c = _rotl(c, 13)
    c = c * _U32(5) + _U32(0xE6546B64)
    c ^= _U32(4)
    c ^= c >> _U32(16)
    c *= _U32(0x85EBCA6B)
    c ^= c >> _U32(13)
    c *= _U32(0xC2B2AE35)
    c ^= c >> _U32(16)
    signed = c.view(np.int32).astype(np.int64)
    # Negative results are negated; Integer.MIN_VALUE (which has no positive twin) maps to 0.
    out = np.where(signed >= 0, signed, np.where(signed == -(1 << 31), 0, -signed))
    return out.astype(np.int32)


# RocksDB's data blocks are 4 KB by default (Flink's `block.blocksize` default), and each is
# compressed on its own: compressibility is measured per block of that size, here and in the
# recorder (TunerRecorderFactory.Recording.sampleBytes).
COMPRESS_BLOCK_BYTES = 4096
_POOL_BYTES = 1 << 20
_TOKEN = 8
# The range a payload pool can be made to: incompressible noise to long runs of one token.
MIN_COMPRESSIBILITY = 1.0
MAX_COMPRESSIBILITY = 50.0


def lz4_ratio(data: bytes, block: int = COMPRESS_BLOCK_BYTES) -> float:
    """Raw over LZ4-compressed bytes of ``data`` cut into ``block``-byte blocks, each compressed
    on its own as RocksDB compresses its data blocks (a last partial block is left out)."""
    raw = compressed = 0
    for lo in range(0, len(data) - block + 1, block):
        compressed += len(lz4.block.compress(data[lo : lo + block], store_size=False))
        raw += block
    if raw == 0:
        raise ValueError(f"`len(data) >= {block}` must hold, but got {len(data)}")
    return raw / compressed


def _payload_pool(size: int = _POOL_BYTES, seed: int = 7) -> bytes:
    # Random 8-byte tokens drawn from a small vocabulary: block compressors (LZ4, Snappy, ZSTD)
    # find repeats, as in real serialized records, instead of incompressible noise.
    rng = np.random.default_rng(seed)
    vocab = rng.integers(0, 256, size=(64, _TOKEN), dtype=np.uint8)
    picks = rng.integers(0, 64, size=size // _TOKEN)
    return vocab[picks].tobytes()


class _Tokens:
    """The draws a matched pool is made of, fixed by a seed, so that a pool is a monotone
    function of one mixing fraction: each 8-byte token is noise, a vocabulary token or a zero
    token, by where one uniform draw per token falls."""

    def __init__(self, size: int = _POOL_BYTES, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        n = size // _TOKEN
        self.u = rng.random(n)
        self.noise = rng.integers(0, 256, size=(n, _TOKEN), dtype=np.uint8)
        vocab = rng.integers(0, 256, size=(64, _TOKEN), dtype=np.uint8)
        self.vocab = vocab[rng.integers(0, 64, size=n)]

    def pool(self, x: float) -> bytes:
        """x in [0, 1]: the share of vocabulary tokens (the rest noise); x in [1, 2]: the
        share x - 1 of zero tokens (the rest vocabulary). Compressibility grows with x."""
        if x <= 1.0:
            out = np.where((self.u < x)[:, None], self.vocab, self.noise)
        else:
            out = np.where((self.u < x - 1.0)[:, None], np.uint8(0), self.vocab)
        return np.ascontiguousarray(out, dtype=np.uint8).tobytes()


@functools.lru_cache(maxsize=8)
def payload_pool(compressibility: float | None = None) -> bytes:
    """The bytes written values and the wide part of map user keys are cut from.

    ``None``: the fixed pool every replay used before recordings measured compressibility
    (LZ4 about 2.2x in 4 KB blocks). A ratio (raw over LZ4-compressed bytes in 4 KB blocks, as
    the recorder measures the job's own values and user keys): a pool of the same size mixed
    to that ratio (within 1 %), clamped to [1.0, 50]. The state then takes as many bytes in
    RocksDB's blocks as the job's does, so it meets the cache the job's meets (Nexmark q7's
    rows compress 1.3x; with the fixed pool its replayed state was 2.3x smaller than the job's).
    """
    if compressibility is None:
        return _payload_pool()
    target = min(MAX_COMPRESSIBILITY, max(MIN_COMPRESSIBILITY, float(compressibility)))
    tokens = _Tokens()
    lo, hi = 0.0, 2.0
    best, best_miss = b"", float("inf")
    for _ in range(30):  # bisection on the mixing fraction: the ratio grows with it
        mid = (lo + hi) / 2
        candidate = tokens.pool(mid)
        ratio = lz4_ratio(candidate)
        if abs(ratio - target) < best_miss:
            best, best_miss = candidate, abs(ratio - target)
        if best_miss <= 0.002 * target:
            break
        if ratio < target:
            lo = mid
        else:
            hi = mid
    return best


@functools.lru_cache(maxsize=8)
def payload_array(compressibility: float | None = None) -> U8:
    """:func:`payload_pool` as a read-only uint8 array (for window views over it)."""
    return np.frombuffer(payload_pool(compressibility), dtype=np.uint8)


# The fixed pool (see payload_pool): the replay's, Flink's backend's and the validation job's
# value bytes when nothing measured the job's, so that compression sees the same data.
PAYLOAD = payload_pool(None)


def render_string_keys(keys: npt.ArrayLike, key_size: int) -> U8:
    """Key ids as ``key_size`` zero-padded decimal ASCII digits, an ``(n, key_size)`` matrix."""
    k = np.asarray(keys, dtype=np.int64)
    if key_size < 1:
        raise ValueError(f"`key_size >= 1` must hold for string keys, but got {key_size=}")
    if k.size and (k.min() < 0 or (key_size < 19 and k.max() >= 10**key_size)):
        raise ValueError(
            f"string keys of {key_size} digits hold ids 0..{10**key_size - 1}, "
            f"but got ids in [{k.min()}, {k.max()}]"
        )
    digits = min(key_size, 19)
    out = np.full((k.shape[0], key_size), ord("0"), dtype=np.uint8)
    rest = k.copy()
    for i in range(digits):
        out[:, key_size - 1 - i] = (rest % 10 + ord("0")).astype(np.uint8)
        rest //= 10
    return out


def assign_key_groups(
    keys: npt.ArrayLike, key_type: KeyType, key_size: int, max_parallelism: int
) -> npt.NDArray[np.int32]:
    """Key group of each key id (KeyGroupRangeAssignment.assignToKeyGroup:
    ``murmurHash(key.hashCode()) % maxParallelism``)."""
    key_group_prefix_bytes(max_parallelism)
    if key_type == "long":
        hashes = java_long_hash(keys)
    elif key_type == "string":
        hashes = java_string_hash(render_string_keys(keys, key_size))
    else:
        raise ValueError(f"key type must be 'long' or 'string', but got {key_type!r}")
    return (murmur_hash(hashes) % max_parallelism).astype(np.int32)


def operator_key_groups(max_parallelism: int, parallelism: int, index: int) -> tuple[int, int]:
    """The key groups (first, last) subtask ``index`` of ``parallelism`` owns
    (KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex)."""
    if not 0 <= index < parallelism <= max_parallelism:
        raise ValueError(
            f"`0 <= index < parallelism <= max_parallelism` must hold, but got "
            f"({index=}, {parallelism=}, {max_parallelism=})"
        )
    start = (index * max_parallelism + parallelism - 1) // parallelism
    end = ((index + 1) * max_parallelism - 1) // parallelism
    return start, end


def _varint(value: int) -> bytes:
    # StringValue.writeString: 7 bits per byte, least significant group first, high bit = "more".
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _be_int64(values: npt.ArrayLike) -> U8:
    """An ``(n, 8)`` matrix of big-endian two's-complement longs (LongSerializer)."""
    return np.asarray(values, dtype=np.int64).astype(">i8").view(np.uint8).reshape(-1, 8)


def _prefix_matrix(key_groups: npt.NDArray[np.int32], prefix_bytes: int) -> U8:
    # CompositeKeySerializationUtils.writeKeyGroup: big-endian, prefix_bytes wide.
    kg = key_groups.astype(np.int64)
    if prefix_bytes == 1:
        return kg.astype(np.uint8).reshape(-1, 1)
    return np.stack([(kg >> 8).astype(np.uint8), (kg & 0xFF).astype(np.uint8)], axis=1)


@dataclass(frozen=True)
class KeyLayout:
    """How one state's RocksDB keys are laid out, in bytes."""

    key_type: KeyType = "long"
    key_size: int = 8  # string keys: characters
    windowed: bool = False
    user_key_size: int = 0  # map state: bytes of a user key; 0 for other kinds
    max_parallelism: int = 128
    compressibility: float | None = None  # of wide user keys' payload bytes (payload_pool)

    @staticmethod
    def for_state(
        info: StateInfo, max_parallelism: int, compressibility: float | None = None
    ) -> KeyLayout:
        """The layout of a state as Flink's RocksDB backend writes it; ``compressibility`` is
        the stream's (:attr:`StreamHeader.compressibility`), for wide map user keys."""
        if info.key_type not in ("long", "string"):
            raise ValueError(f"key type must be 'long' or 'string', but got {info.key_type!r}")
        return KeyLayout(
            key_type=info.key_type,  # type: ignore[arg-type]
            key_size=info.key_size,
            windowed=info.windowed,
            user_key_size=info.user_key_size if info.kind == "map" else 0,
            max_parallelism=max_parallelism,
            compressibility=compressibility,
        )

    @property
    def prefix_bytes(self) -> int:
        """Bytes of the key-group prefix."""
        return key_group_prefix_bytes(self.max_parallelism)

    @property
    def key_bytes(self) -> int:
        """Bytes of the serialized key."""
        if self.key_type == "long":
            return 8  # LongSerializer: 8 bytes, big-endian
        # StringSerializer -> StringValue.writeString: varint(len + 1), one byte per ASCII char.
        return len(_varint(self.key_size + 1)) + self.key_size

    @property
    def namespace_bytes(self) -> int:
        """Bytes of the serialized namespace."""
        # TimeWindow.Serializer writes start and end as two longs; VoidNamespaceSerializer.serialize
        # writes one zero byte.
        return 16 if self.windowed else 1

    @property
    def ambiguous(self) -> bool:
        """Whether Flink appends length suffixes after key and namespace.

        SerializedCompositeKeyBuilder does so only when key and namespace serializers are both
        variable-length (CompositeKeySerializationUtils.isAmbiguousKeyPossible: getLength() < 0).
        VoidNamespaceSerializer.getLength() is 0 and TimeWindow.Serializer.getLength() is 16 (both
        fixed, checked against Flink 2.3.0), so no layout modelled here carries the suffixes.
        """
        return False

    @property
    def entry_prefix_bytes(self) -> int:
        """Bytes of ``key-group | key | namespace``: a value entry, or a map's shared prefix."""
        return self.prefix_bytes + self.key_bytes + self.namespace_bytes

    @property
    def entry_bytes(self) -> int:
        """Bytes of a full entry key (map state: with the user key)."""
        return self.entry_prefix_bytes + self.user_key_size

    @property
    def timer_bytes(self) -> int:
        """Bytes of a timer entry key."""
        return self.prefix_bytes + 8 + self.key_bytes + self.namespace_bytes

    def key_groups(self, keys: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Key group of each key id."""
        return assign_key_groups(keys, self.key_type, self.key_size, self.max_parallelism)

    def group_prefix(self, key_group: int) -> bytes:
        """The serialized key-group prefix every entry of ``key_group`` starts with."""
        if not 0 <= key_group < self.max_parallelism:
            raise ValueError(
                f"`0 <= key_group < max_parallelism` must hold, but got "
                f"({key_group=}, max_parallelism={self.max_parallelism})"
            )
        return key_group.to_bytes(self.prefix_bytes, "big")

    def serialize_keys(self, keys: npt.ArrayLike) -> U8:
        """An ``(n, key_bytes)`` matrix: each key as its serializer writes it."""
        if self.key_type == "long":
            return _be_int64(keys)
        chars = render_string_keys(keys, self.key_size)
        header = np.frombuffer(_varint(self.key_size + 1), dtype=np.uint8)
        return np.hstack([np.broadcast_to(header, (chars.shape[0], header.size)), chars])

    def serialize_namespaces(self, ns_start: npt.ArrayLike, ns_end: npt.ArrayLike) -> U8:
        """An ``(n, namespace_bytes)`` matrix of TimeWindow(start, end) or VoidNamespace."""
        start = np.asarray(ns_start, dtype=np.int64)
        if not self.windowed:
            return np.zeros((start.shape[0], 1), dtype=np.uint8)
        return np.hstack([_be_int64(start), _be_int64(ns_end)])

    def serialize_user_keys(self, user_keys: npt.ArrayLike) -> U8:
        """An ``(n, user_key_size)`` matrix of map user keys.

        A user key id is written as LongSerializer writes it: only its low bytes when narrower
        than 8 (the id must then fit, unsigned); when wider, the 8 bytes of the id and then
        ``user_key_size - 8`` bytes of the payload pool (:func:`payload_pool` of the layout's
        compressibility) chosen by the id, so that a wide user key
        (a join's or a distinct aggregate's whole row) compresses and prefix-encodes as a row
        does, not as zero padding would (Nexmark q7's 65-byte user keys: 5.7 MB of live data in
        the replay against the job's 38 MB, with zero padding). Non-negative ids therefore sort
        in numeric order, as Flink's map iteration order over serialized user keys would.
        """
        uk = np.asarray(user_keys, dtype=np.int64)
        size = self.user_key_size
        if size < 1:
            raise ValueError(f"`user_key_size >= 1` must hold for map state, but got {size=}")
        if uk.size and uk.min() < 0:
            raise ValueError(f"map user key ids must be >= 0, but got {int(uk.min())}")
        raw = _be_int64(uk)
        if size == 8:
            return raw
        if size > 8:
            fill = size - 8
            pool = payload_array(self.compressibility)
            offsets = (uk * 7919 + 13) % (len(pool) - fill)
            # Rows of a window view: one copy of n x fill bytes, no n x fill index matrix.
            tail = np.lib.stride_tricks.sliding_window_view(pool, fill)[offsets]
            return np.ascontiguousarray(np.hstack([raw, tail]))
        if uk.size and uk.max() >= 1 << (8 * size):
            raise ValueError(
                f"user key ids must fit in {size} bytes (< {1 << (8 * size)}), "
                f"but got {int(uk.max())}"
            )
        return np.ascontiguousarray(raw[:, 8 - size :])

    def entry_keys(
        self,
        keys: npt.ArrayLike,
        ns_start: npt.ArrayLike,
        ns_end: npt.ArrayLike,
        user_keys: npt.ArrayLike | None = None,
    ) -> U8:
        """Composite keys (SerializedCompositeKeyBuilder): an ``(n, width)`` matrix.

        With ``user_keys`` (map state) the user key is appended; without, the matrix is the
        ``key-group | key | namespace`` prefix (a value entry, or a map's prefix).
        """
        k = np.asarray(keys, dtype=np.int64)
        parts = [
            _prefix_matrix(self.key_groups(k), self.prefix_bytes),
            self.serialize_keys(k),
            self.serialize_namespaces(ns_start, ns_end),
        ]
        if user_keys is not None:
            parts.append(self.serialize_user_keys(user_keys))
        return np.ascontiguousarray(np.hstack(parts))

    def timer_keys(
        self,
        keys: npt.ArrayLike,
        timestamps: npt.ArrayLike,
        ns_start: npt.ArrayLike,
        ns_end: npt.ArrayLike,
    ) -> U8:
        """Timer entries (RocksDBCachingPriorityQueueSet.serializeElement + TimerSerializer):
        key-group prefix, timestamp with the sign bit flipped (MathUtils.flipSignBit) so that
        unsigned byte order is numeric order, then key and namespace. An ``(n, width)`` matrix."""
        k = np.asarray(keys, dtype=np.int64)
        ts = np.asarray(timestamps, dtype=np.int64).view(np.uint64) ^ np.uint64(1 << 63)
        ts_bytes = ts.astype(">u8").view(np.uint8).reshape(-1, 8)
        parts = [
            _prefix_matrix(self.key_groups(k), self.prefix_bytes),
            ts_bytes,
            self.serialize_keys(k),
            self.serialize_namespaces(ns_start, ns_end),
        ]
        return np.ascontiguousarray(np.hstack(parts))


def rows_to_bytes(matrix: U8) -> list[bytes]:
    """The rows of an ``(n, width)`` uint8 matrix as ``bytes`` objects (one copy, then slices)."""
    n, width = matrix.shape
    flat = np.ascontiguousarray(matrix).tobytes()
    return [flat[i : i + width] for i in range(0, n * width, width)]


def value_header_bytes(*, map_value: bool, ttl: bool) -> int:
    """Bytes Flink puts in front of the user payload of one stored value."""
    return (1 if map_value else 0) + (8 if ttl else 0)


def value_headers(timestamps: npt.ArrayLike, *, map_value: bool, ttl: bool) -> U8:
    """An ``(n, header)`` matrix of what precedes each payload.

    Map values start with a null flag (RocksDBMapState.serializeValueNullSensitive:
    ``writeBoolean(value == null)``, so 0x00 for a present value); with TTL the user value is a
    TtlValue, serialized by TtlStateFactory.TtlSerializer as the last-access timestamp (a long)
    followed by the user value.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    parts: list[U8] = []
    if map_value:
        parts.append(np.zeros((ts.shape[0], 1), dtype=np.uint8))
    if ttl:
        parts.append(_be_int64(ts))
    if not parts:
        return np.zeros((ts.shape[0], 0), dtype=np.uint8)
    return np.ascontiguousarray(np.hstack(parts))


@dataclass(frozen=True)
class CompositeKey:
    """A decoded state entry key (``user_key`` is -1 without one; namespace -1/-1 when void)."""

    key_group: int
    key: int
    ns_start: int = -1
    ns_end: int = -1
    user_key: int = -1


@dataclass(frozen=True)
class TimerKey:
    """A decoded timer entry key."""

    key_group: int
    timestamp: int
    key: int
    ns_start: int = -1
    ns_end: int = -1


def _decode_key(data: bytes, pos: int, layout: KeyLayout) -> tuple[int, int]:
    if layout.key_type == "long":
        return int.from_bytes(data[pos : pos + 8], "big", signed=True), pos + 8
    length = 0
    shift = 0
    while True:
        b = data[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    chars = length - 1  # writeString stores length + 1 (0 means null)
    text = data[pos : pos + chars].decode("ascii")
    return int(text), pos + chars


def _decode_namespace(data: bytes, pos: int, layout: KeyLayout) -> tuple[int, int, int]:
    if not layout.windowed:
        if data[pos] != 0:
            raise ValueError(f"VoidNamespace byte must be 0, got {data[pos]}")
        return -1, -1, pos + 1
    start = int.from_bytes(data[pos : pos + 8], "big", signed=True)
    end = int.from_bytes(data[pos + 8 : pos + 16], "big", signed=True)
    return start, end, pos + 16


def decode_composite_key(data: bytes, layout: KeyLayout) -> CompositeKey:
    """Inverse of :meth:`KeyLayout.entry_keys` for one key (tests and debugging)."""
    pb = layout.prefix_bytes
    key_group = int.from_bytes(data[:pb], "big")
    key, pos = _decode_key(data, pb, layout)
    ns_start, ns_end, pos = _decode_namespace(data, pos, layout)
    user_key = -1
    if pos < len(data):
        user_key = int.from_bytes(data[pos : pos + 8], "big")  # a wide key's id leads it
    if layout.user_key_size and len(data) != layout.entry_bytes:
        raise ValueError(f"map entry key must be {layout.entry_bytes} bytes, got {len(data)}")
    return CompositeKey(key_group, key, ns_start, ns_end, user_key)


def decode_timer_key(data: bytes, layout: KeyLayout) -> TimerKey:
    """Inverse of :meth:`KeyLayout.timer_keys` for one key."""
    pb = layout.prefix_bytes
    key_group = int.from_bytes(data[:pb], "big")
    flipped = int.from_bytes(data[pb : pb + 8], "big")
    timestamp = (flipped ^ (1 << 63)) - (1 << 64 if flipped < (1 << 63) else 0)
    key, pos = _decode_key(data, pb + 8, layout)
    ns_start, ns_end, _ = _decode_namespace(data, pos, layout)
    return TimerKey(key_group, timestamp, key, ns_start, ns_end)
