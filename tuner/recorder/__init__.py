"""The recorder: a Flink state backend (Java, shipped as source) that records a running job's
keyed-state calls, and the reader of its files."""

from tuner.recorder.build import FACTORY_CLASS, RecorderJar, build_jar, config_lines
from tuner.recorder.format import Recording, read_recording

__all__ = [
    "FACTORY_CLASS",
    "RecorderJar",
    "Recording",
    "build_jar",
    "config_lines",
    "read_recording",
]
