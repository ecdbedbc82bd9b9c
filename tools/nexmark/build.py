"""Build the Nexmark generator and Flink table source from upstream's sources, with plain javac.

    git clone https://github.com/nexmark/nexmark      # once; any later commit works the same
    python tools/nexmark/build.py --nexmark nexmark   # prints the jar's path

``--nexmark`` is a checkout (a directory holding ``nexmark-flink/``) or a bare git directory (the
``HEAD`` commit is read, or ``--rev``). Nothing of nexmark's is kept in this repository: the sources
are read from there, compiled against the Flink jars that ``pip install apache-flink`` ships
(found as ``tuner validate`` finds Flink) and cached in ``~/.cache/tuner/nexmark/<hash>/``
(``$XDG_CACHE_HOME`` is honoured), the hash covering the sources and the Flink version:

    nexmark-flink.jar   the classes below and META-INF/services (the ``nexmark`` connector)
    queries/            upstream's SQL: ddl_gen.sql, ddl_views.sql, q0.sql .. q23.sql
    com/github/...      the compiled classes

What is compiled: the table source and the generator it drives, nothing else of
``nexmark-flink/src/main/java/com/github/nexmark/flink/``:

    model/*, generator/GeneratorConfig, generator/NexmarkGenerator, generator/model/*,
    source/*, udf/*, NexmarkConfiguration, utils/NexmarkUtils

Left out: the benchmark driver and its metric client (Benchmark, QueryRunner*, metric/*,
workload/*, utils/AutoClosableProcess, utils/NexmarkGlobalConfiguration, FlinkNexmarkOptions)
and the side-input CLI (generator/SideInputGenerator). Of the whole module only
metric/FlinkRestClient fails to compile against Flink's jars (it needs Apache httpclient, which
Flink does not ship); everything the table source needs is in flink-dist and
flink-table-api-java-uber (commons-io, commons-cli, jsr305's Nullable, slf4j, shaded Jackson).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tuner.errors import TunerError  # noqa: E402
from tuner.validate.flink import FlinkInstall, compile_java, find_or_install_flink  # noqa: E402

__all__ = [
    "JAR_NAME",
    "NexmarkBuild",
    "build",
    "read_sources",
    "selected",
]

log = logging.getLogger(__name__)

MODULE = "nexmark-flink/src/main"
JAVA = f"{MODULE}/java/"
PACKAGE = "com/github/nexmark/flink/"
SERVICES = "META-INF/services/org.apache.flink.table.factories.Factory"
JAR_NAME = "nexmark-flink.jar"
# The factory Flink's SPI loads for 'connector' = 'nexmark'; compile_java checks its class exists.
FACTORY = PACKAGE + "source/NexmarkTableSourceFactory"
# What the table source and its generator need (see the module docstring), as path patterns
# under com/github/nexmark/flink/.
KEEP = re.compile(
    r"(model/[^/]+|generator/(GeneratorConfig|NexmarkGenerator)|generator/model/[^/]+"
    r"|source/[^/]+|udf/[^/]+|NexmarkConfiguration|utils/NexmarkUtils)\.java"
)


@dataclass(frozen=True)
class NexmarkBuild:
    """A built table source: the jar, upstream's SQL files and the Flink it was built for."""

    jar: Path
    queries: Path  # the directory of ddl_gen.sql, ddl_views.sql, q*.sql
    flink: FlinkInstall
    classes: int  # how many classes were compiled

    def query_file(self, name: str) -> Path:
        """Upstream's ``<name>.sql`` (``q5``), or a TunerError listing the ones there are."""
        path = self.queries / f"{name}.sql"
        if not path.is_file():
            known = sorted(p.stem for p in self.queries.glob("q*.sql"))
            raise TunerError(f"no query {name!r} in nexmark's queries/: one of {', '.join(known)}")
        return path


def selected(path: str) -> bool:
    """True for a source file of the module that the table source needs."""
    prefix = JAVA + PACKAGE
    return path.startswith(prefix) and KEEP.fullmatch(path[len(prefix) :]) is not None


def _is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def _git(git_dir: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise TunerError(
            f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}",
            file=str(git_dir),
        )
    return proc.stdout


def read_sources(nexmark: Path, rev: str = "HEAD") -> dict[str, bytes]:
    """Every file under ``nexmark-flink/src/main/`` of a checkout or a bare git directory, by its
    path in the repository (``rev`` applies to a git directory only)."""
    if _is_git_dir(nexmark):
        names = _git(nexmark, "ls-tree", "-r", "--name-only", rev, MODULE).decode().splitlines()
        return {n: _git(nexmark, "show", f"{rev}:{n}") for n in names}
    base = nexmark / MODULE
    if not base.is_dir():
        raise TunerError(
            f"neither a nexmark checkout (no {MODULE}/) nor a bare git directory; clone it with "
            "`git clone https://github.com/nexmark/nexmark`",
            file=str(nexmark),
        )
    return {
        str(p.relative_to(nexmark)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
    }


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuner" / "nexmark"


def _pack(classes: Path, services: bytes, jar: Path) -> int:
    """Write ``jar`` from every class under ``classes`` and the connector's service file."""
    fd, tmp = tempfile.mkstemp(dir=jar.parent, prefix=".jar.")
    os.close(fd)
    count = 0
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            z.writestr(SERVICES, services)
            for cls in sorted(classes.rglob("*.class")):
                z.write(cls, cls.relative_to(classes).as_posix())
                count += 1
        os.replace(tmp, jar)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return count


def _write_queries(files: Mapping[str, bytes], target: Path) -> None:
    prefix = f"{MODULE}/resources/queries/"
    if target.is_dir():
        return
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".queries."))
    try:
        for name, data in files.items():
            if name.startswith(prefix) and name.endswith(".sql") and "/" not in name[len(prefix) :]:
                (tmp / name[len(prefix) :]).write_bytes(data)
        with contextlib.suppress(OSError):  # another build won the race: use its copy
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build(
    nexmark: Path,
    *,
    rev: str = "HEAD",
    flink_version: str = "2.3",
    cache_dir: Path | None = None,
) -> NexmarkBuild:
    """Compile the table source and generator of ``nexmark`` (a checkout or a git directory)
    against this machine's Flink (once per source and Flink version) and return the build."""
    files = read_sources(nexmark, rev)
    sources = {
        name[len(JAVA) : -len(".java")]: data.decode("utf-8")
        for name, data in files.items()
        if selected(name)
    }
    services = files.get(f"{MODULE}/resources/{SERVICES}")
    if FACTORY not in sources or services is None:
        raise TunerError(
            f"no {FACTORY}.java or {SERVICES} under {MODULE}: not the nexmark repository?",
            file=str(nexmark),
        )
    flink = find_or_install_flink(flink_version)
    main = sources.pop(FACTORY)  # the class compile_java checks for; the others come with it
    root = cache_dir if cache_dir is not None else _cache_root()
    out = compile_java(flink, FACTORY, root, source=main, extra_sources=sources)
    jar = out / JAR_NAME
    count = sum(1 for _ in out.rglob("*.class"))
    if not jar.exists():
        count = _pack(out, services, jar)
        log.info("packed %d classes into %s", count, jar)
    _write_queries(files, out / "queries")
    return NexmarkBuild(jar=jar, queries=out / "queries", flink=flink, classes=count)


def main(argv: list[str] | None = None) -> int:
    """``build.py --nexmark DIR``: build (or find cached) and print the jar's path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--nexmark",
        type=Path,
        default=os.environ.get("TUNER_NEXMARK_SRC"),
        required=os.environ.get("TUNER_NEXMARK_SRC") is None,
        help="a nexmark checkout or bare git directory (default: $TUNER_NEXMARK_SRC)",
    )
    parser.add_argument("--rev", default="HEAD", help="commit to read from a git directory")
    parser.add_argument("--flink-version", default="2.3")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        b = build(args.nexmark, rev=args.rev, flink_version=args.flink_version)
    except TunerError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 2
    print(f"{b.jar}  ({b.classes} classes, Flink {b.flink.version}; SQL in {b.queries})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
