"""A fingerprint of an operation stream: what every machine of a shared study compares, so all
replay exactly the same state calls.

It hashes the stream's content (the header and each column's values, per phase), not the
Parquet bytes: two pyarrow versions may encode the same rows differently, and the split into
row groups does not change what is replayed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np

from tuner.trace.ops import COLUMNS
from tuner.trace.parquet import PHASES, Trace


def stream_sha256(trace: Trace) -> str:
    """SHA-256 (hex) of the trace's header and rows."""
    out = hashlib.sha256()
    header = {
        "max_parallelism": trace.header.max_parallelism,
        "states": [asdict(s) for s in trace.header.states],
    }
    out.update(json.dumps(header, sort_keys=True).encode())
    for phase in PHASES:
        cols = {name: hashlib.sha256() for name, _ in COLUMNS}
        rows = 0
        for batch in trace.batches(phase):
            rows += len(batch)
            for name, dtype in COLUMNS:
                # Fixed byte order, so a big-endian machine gets the same digest.
                values = np.ascontiguousarray(
                    getattr(batch, name), dtype=np.dtype(dtype).newbyteorder("<")
                )
                cols[name].update(values.tobytes())
        out.update(f"{phase}:{rows}".encode())
        for name, _ in COLUMNS:
            out.update(cols[name].digest())
    return out.hexdigest()
