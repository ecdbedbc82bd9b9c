"""How much of a workload's TTL state is expired but still stored at the end of its replay.

    python tools/ttl_expired_share.py WORKLOAD

The replay has no compaction-time expiry (Flink's FlinkCompactionFilter); this is the share of
each TTL state's stored entries (and bytes, value plus a 24-byte key estimate) that such a
filter could drop at the end of the measured phase, an upper bound of what it changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tuner.trace.generator import generate, stream_header
from tuner.trace.ops import Op
from tuner.workload import load_workload

_WRITES = (int(Op.UPDATE), int(Op.ADD), int(Op.PUT))


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args and args[0] in ("-h", "--help") else 2
    w = load_workload(Path(args[0]))
    header = stream_header(w)
    ttl = {i: s.ttl_ms for i, s in enumerate(w.states) if s.ttl_ms}
    last: dict[int, dict[int, tuple[int, int]]] = {i: {} for i in ttl}
    end = 0
    for phase in ("preload", "measure"):
        for b in generate(w, phase):
            rows = zip(
                b.state.tolist(),
                b.op.tolist(),
                b.key.tolist(),
                b.ts.tolist(),
                b.value_size.tolist(),
                strict=True,
            )
            for st, op, key, ts, size in rows:
                end = max(end, ts)
                if st not in ttl:
                    continue
                if op in _WRITES:
                    last[st][key] = (ts, size)
                elif op == int(Op.CLEAR):
                    last[st].pop(key, None)
    for st, entries in last.items():
        ts = np.array([v[0] for v in entries.values()], dtype=np.int64)
        size = np.array([v[1] for v in entries.values()], dtype=np.int64) + 24
        expired = ts + int(ttl[st] or 0) <= end
        print(
            f"{header.states[st].name}: {len(entries)} stored, {int(expired.sum())} expired "
            f"({expired.mean():.1%} of entries, {size[expired].sum() / size.sum():.1%} of bytes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
