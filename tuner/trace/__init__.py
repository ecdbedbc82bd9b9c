"""The operation stream: its columns, its generator, and the trace file that stores it."""

from tuner.trace.generator import generate, stream_header
from tuner.trace.inspect import TraceSummary, render_text, summarize
from tuner.trace.ops import COLUMNS, Op, OpBatch, StateInfo, StreamHeader
from tuner.trace.parquet import Trace, read_trace, write_trace

__all__ = [
    "COLUMNS",
    "Op",
    "OpBatch",
    "StateInfo",
    "StreamHeader",
    "Trace",
    "TraceSummary",
    "generate",
    "read_trace",
    "render_text",
    "stream_header",
    "summarize",
    "write_trace",
]
