"""The largest values Flink and its RocksDB state backend accept, for bounding what tuner reads.

A workload, trace or recording that asks for more describes no job Flink can run; refusing it
early also keeps a hostile file from making the generator or a reader allocate without end.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_PARALLELISM", "MAX_SERIALIZED_BYTES"]

# KeyGroupRangeAssignment.UPPER_BOUND_MAX_PARALLELISM (Short.MAX_VALUE + 1).
MAX_PARALLELISM: Final = 1 << 15

# RocksDB's JNI bridge passes keys and values as Java byte[], so a key or a value is at most
# 2^31 - 1 bytes (docs/content/docs/ops/state/state_backends.md, "Limitations of the
# EmbeddedRocksDBStateBackend").
# The trace's value_size column and the generator's sizes are int32 for the same reason.
MAX_SERIALIZED_BYTES: Final = (1 << 31) - 1
