"""Extract Flink's RocksDB option catalog from the real Flink jars.

Usage::

    python tools/catalog/extract_catalog.py --pyflink-lib DIR --version 2.3 \
        -o tuner/flink/data/catalog-2.3.json

DIR is ``<site-packages>/pyflink/lib`` of a ``pip install apache-flink==X`` venv. The script
compiles ExtractCatalog.java against the jars in a temporary directory, runs it, normalises
its output and writes the JSON atomically. Needs ``javac`` and ``java`` (17) on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
JAVA_SOURCE = Path(__file__).with_name("ExtractCatalog.java")

# The keys outside the RocksDB classes that tuner's emitted config uses.
EXTRA_KEYS = (
    "state.backend.type",
    "execution.checkpointing.incremental",
    "state.backend.incremental",
    "execution.checkpointing.interval",
)

# Where each version declares the non-RocksDB keys of EXTRA_KEYS; 1.20 keeps the checkpoint
# interval in ExecutionCheckpointingOptions as well.
_OTHER_CLASSES: dict[str, tuple[str, ...]] = {
    "2": (
        "org.apache.flink.configuration.StateBackendOptions",
        "org.apache.flink.configuration.CheckpointingOptions",
    ),
    "1": (
        "org.apache.flink.configuration.StateBackendOptions",
        "org.apache.flink.configuration.CheckpointingOptions",
        "org.apache.flink.streaming.api.environment.ExecutionCheckpointingOptions",
    ),
}
# Flink 2.0 moved the RocksDB backend from org.apache.flink.contrib.streaming.state to
# org.apache.flink.state.rocksdb (2.x keeps deprecated shims under the old name; not read).
_ROCKSDB_PACKAGES: dict[str, str] = {
    "2": "org/apache/flink/state/rocksdb/",
    "1": "org/apache/flink/contrib/streaming/state/",
}


def rocksdb_option_classes(lib: Path, major: str) -> tuple[str, ...]:
    """Every RocksDB*Options class of the backend's package tree in flink-dist (configurable
    options, memory options, native metrics, manual compaction, ...): found, not listed, so a
    class added in a later release is never missed."""
    jars = sorted(lib.glob("flink-dist*.jar"))
    if not jars:
        raise SystemExit(f"no flink-dist jar in {lib}")
    package = _ROCKSDB_PACKAGES[major]
    with zipfile.ZipFile(jars[0]) as jar:
        names = sorted(
            name
            for name in jar.namelist()
            if name.startswith(package)
            and name.endswith("Options.class")
            and "$" not in name
            and name.rsplit("/", 1)[1].startswith("RocksDB")
        )
    return tuple(name.removesuffix(".class").replace("/", ".") for name in names)


_ROCKSDB_PREFIX = "state.backend.rocksdb."


def _flink_release(lib: Path) -> str:
    """The full Flink version, read from the flink-dist jar's name."""
    for jar in lib.glob("flink-dist*.jar"):
        match = re.fullmatch(r"flink-dist(?:_[0-9.]+)?-([0-9][0-9A-Za-z.\-]*)\.jar", jar.name)
        if match:
            return match.group(1)
    raise SystemExit(f"no flink-dist-<version>.jar in {lib}: is this a pyflink/lib directory?")


def _run_extractor(lib: Path, classes: tuple[str, ...]) -> list[dict[str, Any]]:
    classpath = os.pathsep.join([str(lib / "*")])
    with tempfile.TemporaryDirectory(prefix="tuner-catalog-") as tmp:
        subprocess.run(
            ["javac", "-d", tmp, "-cp", classpath, str(JAVA_SOURCE)],
            check=True,
        )
        args = []
        for name in classes:
            if name.rsplit(".", 1)[1].startswith("RocksDB"):
                args.append(name)
            else:
                args.append(f"{name}={','.join(EXTRA_KEYS)}")
        result = subprocess.run(
            ["java", "-cp", os.pathsep.join([classpath, tmp]), "ExtractCatalog", *args],
            check=True,
            capture_output=True,
            text=True,
        )
    options: list[dict[str, Any]] = json.loads(result.stdout)
    return options


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    if raw["type"] == "Enum":
        value_type = "List<Enum>" if raw["list"] else "Enum"
    elif raw["list"]:
        raise SystemExit(f"{raw['key']}: list of {raw['type']} is not supported by the catalog")
    else:
        value_type = raw["type"]
    option: dict[str, Any] = {
        "key": raw["key"],
        "type": value_type,
        "default": raw["default"],
        "fallback_keys": raw["fallback_keys"],
        "deprecated_keys": raw["deprecated_keys"],
        "description": raw["description"],
        "declared_in": f"{raw['class']}.{raw['field']}",
    }
    if raw["type"] == "Enum":
        # ConfigurationUtils.convertToEnum matches a value against each constant's toString(),
        # ignoring case; for every enum in these classes toString() is the constant's name.
        if raw["enum_strings"] != raw["enum_names"]:
            raise SystemExit(f"{raw['key']}: enum toString() differs from name(); update catalog")
        option["enum_values"] = raw["enum_strings"]
    return option


def build_catalog(lib: Path, version: str) -> dict[str, Any]:
    """Extract the catalog for the Flink whose jars are in ``lib``; ``version`` is "2.3" etc."""
    release = _flink_release(lib)
    if not release.startswith(version + "."):
        raise SystemExit(f"--version {version} does not match the jars' Flink {release}")
    major = version.split(".", 1)[0]
    classes = (*rocksdb_option_classes(lib, major), *_OTHER_CLASSES[major])
    seen: dict[str, dict[str, Any]] = {}
    for raw in _run_extractor(lib, classes):
        option = _normalise(raw)
        # 1.20 declares execution.checkpointing.interval in two classes; keep the first.
        seen.setdefault(option["key"], option)
    known = {
        alias
        for option in seen.values()
        for alias in (option["key"], *option["fallback_keys"], *option["deprecated_keys"])
    }
    missing = [key for key in EXTRA_KEYS if key not in known]
    if missing and missing != ["state.backend.incremental"]:
        raise SystemExit(f"Flink {release} declares none of {missing}")
    rocksdb = sorted(k for k in seen if k.startswith(_ROCKSDB_PREFIX))
    others = sorted(k for k in seen if not k.startswith(_ROCKSDB_PREFIX))
    return {
        "format_version": FORMAT_VERSION,
        "flink_version": version,
        "flink_release": release,
        "generated_by": "tools/catalog/extract_catalog.py",
        "classes": list(classes),
        "options": [seen[key] for key in rocksdb + others],
    }


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp creates the file 0600; a shipped data file should be readable by all.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def render(catalog: dict[str, Any]) -> str:
    """The catalog as the JSON text shipped in tuner/flink/data/."""
    return json.dumps(catalog, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyflink-lib", type=Path, required=True, help="<venv>/.../pyflink/lib")
    parser.add_argument("--version", required=True, choices=["1.20", "2.3"], help="catalog id")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    catalog = build_catalog(args.pyflink_lib, args.version)
    write_atomically(args.output, render(catalog))
    print(f"{args.output}: {len(catalog['options'])} options from Flink {catalog['flink_release']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
