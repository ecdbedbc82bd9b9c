"""Does real Flink accept a configuration file? Every key read through its typed ConfigOption.

Flink ignores a key it does not know and fails only when a job reads an unparseable value, so an
emitted file is checked the strict way: ``java/ConfigCheck.java`` loads it with Flink's own
loader (``GlobalConfiguration.loadConfiguration``) and reads each key through the ConfigOption
declaring it (RocksDB options, checkpointing, state backend). Works with Flink 2.x
(``config.yaml``) and 1.20 (``flink-conf.yaml``), each compiled against its own jars.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from tuner.errors import TunerError, TunerRuntimeError
from tuner.validate.flink import JVM_OPENS, FlinkInstall, _tool, compile_java

__all__ = ["KeyVerdict", "check_with_flink"]

CHECK_CLASS = "ConfigCheck"
Status = Literal["OK", "UNKNOWN", "INVALID"]


@dataclass(frozen=True)
class KeyVerdict:
    """What Flink made of one key of one file."""

    file: str  # the file as given
    key: str  # "*" when the whole file could not be loaded
    status: Status
    detail: str  # the typed value Flink read, or its error

    @property
    def ok(self) -> bool:
        """Whether Flink knows the key and parsed its value."""
        return self.status == "OK"


def check_with_flink(
    flink: FlinkInstall, files: Sequence[Path], workdir: Path, timeout_s: float = 300.0
) -> list[KeyVerdict]:
    """Flink's verdict on every key of every file (``config.yaml`` or ``flink-conf.yaml``).

    Each file is copied alone into a directory of its own, under its own name, because Flink's
    loader reads a whole configuration directory.
    """
    classes = compile_java(flink, CHECK_CLASS)
    dirs: dict[str, str] = {}
    for i, f in enumerate(files):
        if f.name not in ("config.yaml", "flink-conf.yaml"):
            raise TunerError(
                "Flink reads config.yaml (2.x) or flink-conf.yaml (1.x), not this name",
                file=str(f),
            )
        conf_dir = workdir / f"conf-{i}"
        conf_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, conf_dir / f.name)
        dirs[str(conf_dir)] = str(f)
    proc = subprocess.run(
        [
            _tool("java"),
            *JVM_OPENS,
            "-Dlog4j2.level=OFF",
            "-cp",
            f"{flink.classpath}:{classes}",
            CHECK_CLASS,
            *dirs,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    verdicts = []
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or parts[0] not in dirs:
            continue
        where, key, status, detail = parts
        verdicts.append(KeyVerdict(dirs[where], key, cast(Status, status), detail))
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and all(v.ok for v in verdicts)):
        raise TunerRuntimeError(
            f"ConfigCheck failed (exit {proc.returncode}): {proc.stderr[-2000:]}"
        )
    return verdicts
