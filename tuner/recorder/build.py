"""Build the recorder jar against the user's Flink, and the configuration lines that switch it on.

The recorder (``java/TunerRecorderFactory.java``, shipped as package data) is compiled with the
same cached ``javac`` helper as the validation job (:func:`tuner.validate.flink.compile_java`),
then packed into a jar next to its classes: ``<cache>/tuner/recorder/<hash>/tuner-recorder.jar``.
Blocks between ``//flink2{`` and ``//}flink2`` are Flink 2.x-only methods and are dropped for
1.20 (KeyedStateBackend.java gained them in 2.0).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tuner.errors import TunerError
from tuner.flink.versions import major
from tuner.recorder.format import MAX_RECORDING_BYTES
from tuner.validate.flink import (
    FlinkInstall,
    compile_java,
    find_or_install_flink,
    for_flink_line,
)

__all__ = [
    "FACTORY_CLASS",
    "FLINK_VERSIONS",
    "RecorderJar",
    "build_jar",
    "config_lines",
    "find_flink_version",
    "recorder_source",
]


FACTORY_CLASS = "TunerRecorderFactory"
FLINK_VERSIONS = ("2.x", "1.20")
JAR_NAME = "tuner-recorder.jar"


@dataclass(frozen=True)
class RecorderJar:
    """A built recorder: the jar and the Flink it was compiled against."""

    path: Path
    flink: FlinkInstall


def check_version(flink_version: str) -> str:
    """``2.x`` or ``1.20`` for any spelling tuner supports; anything else is a TunerError."""
    return "2.x" if major(flink_version) == 2 else "1.20"


def find_flink_version(flink_version: str) -> FlinkInstall:
    """The Flink jars to compile against for ``flink_version`` (``2.x`` or ``1.20``): this
    machine's, else that line's jars fetched once from PyPI into tuner's cache."""
    return find_or_install_flink(check_version(flink_version))


def recorder_source(flink_version: str) -> str:
    """The recorder's Java source for ``flink_version`` (2.x-only blocks dropped for 1.20)."""
    text = resources.files("tuner.recorder").joinpath("java", f"{FACTORY_CLASS}.java").read_text()
    return for_flink_line(text, check_version(flink_version))


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuner" / "recorder"


def build_jar(flink_version: str = "2.x", cache_dir: Path | None = None) -> RecorderJar:
    """Compile the recorder against the installed Flink ``flink_version`` (cached) and pack it."""
    flink = find_flink_version(flink_version)
    classes = compile_java(
        flink,
        FACTORY_CLASS,
        cache_dir if cache_dir is not None else _cache_root(),
        source=recorder_source(flink.version),
    )
    jar = classes / JAR_NAME
    if jar.exists():
        return RecorderJar(path=jar, flink=flink)
    fd, tmp = tempfile.mkstemp(dir=classes, prefix=".jar.")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for cls in sorted(classes.glob("*.class")):
                z.write(cls, cls.name)
        os.replace(tmp, jar)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return RecorderJar(path=jar, flink=flink)


def config_lines(
    directory: str,
    *,
    sample: float = 1.0,
    max_events: int | None = None,
    max_bytes: int | None = None,
    flink_version: str = "2.x",
    secret: str | None = None,
    delegate: str = "rocksdb",
) -> str:
    """The configuration lines that switch recording on, for ``config.yaml`` (2.x) or
    ``flink-conf.yaml`` (1.20). A fresh secret (the key of the keyed hash) is drawn unless
    given; keep it out of the recording you share."""
    version = check_version(flink_version)
    if not 0.0 < sample <= 1.0:
        raise TunerError(f"`0 < --sample <= 1` must hold, but got {sample}")
    if max_events is not None and max_events < 1:
        raise TunerError(f"`--max-events >= 1` must hold, but got {max_events}")
    if max_bytes is not None and not 1 << 16 <= max_bytes <= MAX_RECORDING_BYTES:
        raise TunerError(
            f"`65536 <= --max-bytes <= {MAX_RECORDING_BYTES}` must hold (the importer reads no "
            f"larger file), but got {max_bytes}"
        )
    if not directory:
        raise TunerError("--dir must name a directory")
    key = secret if secret is not None else secrets.token_hex(16)
    file_name = "config.yaml" if version == "2.x" else "flink-conf.yaml"
    lines = [
        f"# tuner recorder ({file_name}, Flink {version}): put tuner-recorder.jar in Flink's lib/",
        "# (`tuner recorder jar` prints it). Remove these lines to stop recording.",
        # StateBackendLoader.java: a StateBackendFactory class name is accepted here.
        f"state.backend.type: {FACTORY_CLASS}",
        f"tuner.recorder.delegate: {delegate}",
        f"tuner.recorder.dir: {_scalar(directory)}",
        f"tuner.recorder.sample: {sample!r}",
        f"tuner.recorder.secret: {key}",
    ]
    if max_events is not None:
        lines.append(f"tuner.recorder.max-events: {max_events}")
    if max_bytes is not None:
        lines.append(f"tuner.recorder.max-bytes: {max_bytes}")
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    """A path as a plain value both config.yaml (YAML) and flink-conf.yaml read the same way."""
    if not text.isprintable():
        # A newline would end the line and start another config line of the path's choosing.
        raise TunerError(
            f"--dir {text!r}: use a path without control characters (newline, tab, escape)"
        )
    if any(c in text for c in ":#'\"{}[],&*!|>%@`") or text != text.strip():
        raise TunerError(
            f"--dir {text!r}: use a path without YAML special characters (: # quotes brackets)"
        )
    return text
