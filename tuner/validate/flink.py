"""Real Flink on this machine: find the jars, compile the replay job once, run it.

The job (``java/ReplayJob.java``, shipped as package data) is compiled with ``javac`` against
``<pyflink>/lib/*`` into ``<cache>/tuner/validate/<hash>/`` where the hash covers the job
source and the Flink version, so a new Flink or an edited job compiles afresh and everything
else reuses the classes. Flink comes from PyFlink's wheel (``pip install 'tuner[flink]'``),
whose ``lib/`` holds ``flink-dist`` with the RocksDB state backend and FRocksDB.

Each run is one JVM: ``java -cp '<pyflink>/lib/*:<classes>' ReplayJob <job.properties>``. The
JVM's resident set is sampled with psutil while it runs (the peak is what a container limit
would see); the job times its own processing, so JVM and cluster start are not in records/s.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tuner.errors import TunerError, TunerRuntimeError
from tuner.flink.versions import catalog_id
from tuner.supervise import dying_with_parent, watch

__all__ = [
    "FlinkInstall",
    "JobOutcome",
    "compile_java",
    "compile_job",
    "find_flink",
    "find_or_install_flink",
    "flink_in_venv",
    "for_flink_line",
    "install_flink",
    "java_command",
    "java_source",
    "job_source",
    "root_cause",
    "run_job",
]

log = logging.getLogger(__name__)

JOB_CLASS = "ReplayJob"
INSTALL_HINT = "pip install 'tuner[flink]' (apache-flink 2.3), or set TUNER_PYFLINK_HOME"
# Where `pip install apache-flink` was put on the machines this was developed on.
FALLBACK_VENVS: tuple[str, ...] = ("/tmp/flink23", "/tmp/flink120")
# The release install_flink fetches for each supported line.
RELEASES: Mapping[str, str] = {"2.3": "2.3.0", "1.20": "1.20.5"}
# What Flink's own launch scripts pass on Java 17 (env.java.opts.all in Flink's config.yaml).
JVM_OPENS: tuple[str, ...] = (
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
)
_DIST_JAR = re.compile(r"flink-dist(?:_[0-9.]+)?-([0-9][0-9A-Za-z.\-]*)\.jar")
_LOG4J = """\
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{HH:mm:ss,SSS}} %-5p %c{{1}} - %m%n
logger.checkpoint.name = org.apache.flink.runtime.checkpoint.CheckpointCoordinator
logger.checkpoint.level = INFO
logger.restore.name = org.apache.flink.state.rocksdb.restore
logger.restore.level = INFO
logger.restore1.name = org.apache.flink.contrib.streaming.state.restore
logger.restore1.level = INFO
logger.builder.name = org.apache.flink.state.rocksdb.RocksDBKeyedStateBackendBuilder
logger.builder.level = INFO
logger.builder1.name = org.apache.flink.contrib.streaming.state.RocksDBKeyedStateBackendBuilder
logger.builder1.level = INFO
logger.metrics.name = org.apache.flink.metrics.slf4j
logger.metrics.level = INFO
"""
# Those RocksDB restore lines time the backend's own part of a restore (tuner validate
# --restore), a few lines per restore; Flink 2.x and 1.20 name the packages differently.


@dataclass(frozen=True)
class FlinkInstall:
    """A Flink distribution usable from Java: PyFlink's package directory and its lib/."""

    home: Path  # the pyflink package directory
    version: str  # from the flink-dist jar's name, e.g. "2.3.0"

    @property
    def lib(self) -> Path:
        """The jars (flink-dist, table, log4j)."""
        return self.home / "lib"

    @property
    def classpath(self) -> str:
        """``<lib>/*`` as Java's class path wildcard."""
        return str(self.lib / "*")


def _install_at(home: Path) -> FlinkInstall | None:
    lib = home / "lib"
    if not lib.is_dir():
        return None
    for jar in sorted(lib.glob("flink-dist*.jar")):
        m = _DIST_JAR.fullmatch(jar.name)
        if m:
            return FlinkInstall(home=home, version=m.group(1))
    return None


def flink_in_venv(venv: Path) -> FlinkInstall | None:
    """The Flink of a virtualenv where ``apache-flink`` was pip-installed, or None."""
    for home in sorted(venv.glob("lib/python3*/site-packages/pyflink")):
        found = _install_at(home)
        if found is not None:
            return found
    return None


def _line(version: str) -> str:
    """The catalog line ("1.20" or "2.3") a Flink version belongs to."""
    return catalog_id(version)


def _candidates(version: str | None, venvs: Sequence[str]) -> Iterator[FlinkInstall]:
    """Every Flink this machine offers, most explicit first."""
    names = ["TUNER_PYFLINK_HOME"]
    if version is not None:
        names.insert(0, f"TUNER_PYFLINK_HOME_{_line(version).replace('.', '_')}")
    for name in names:
        env = os.environ.get(name)
        if env:
            found = _install_at(Path(env))
            if found is None:
                raise TunerError(
                    f"{name}={env} has no lib/flink-dist-*.jar; point it at the pyflink "
                    "package directory"
                )
            yield found
    spec = importlib.util.find_spec("pyflink")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            found = _install_at(Path(loc))
            if found is not None:
                yield found
    if version is not None:
        found = flink_in_venv(_cache_root() / "flink" / RELEASES[_line(version)])
        if found is not None:
            yield found
    for venv in venvs:
        found = flink_in_venv(Path(venv))
        if found is not None:
            yield found


def find_flink(version: str | None = None, venvs: Sequence[str] = FALLBACK_VENVS) -> FlinkInstall:
    """Locate Flink; with ``version`` ("1.20", "2.x", "2.3.0", ...) one of that line.

    Looks at ``TUNER_PYFLINK_HOME_<line>`` (``TUNER_PYFLINK_HOME_1_20``, ``..._2_3``), then
    ``TUNER_PYFLINK_HOME``, pyflink importable from this interpreter, what :func:`install_flink`
    put in tuner's cache, and the development venvs ``venvs``.
    """
    for found in _candidates(version, venvs):
        if version is None or _line(found.version) == _line(version):
            return found
    wanted = f"Flink {version}" if version is not None else "Flink"
    raise TunerError(f"no {wanted} installation found: {INSTALL_HINT}")


def find_or_install_flink(version: str) -> FlinkInstall:
    """Flink of ``version``'s line: this machine's (:func:`find_flink`), else that line's jars
    fetched once from PyPI into tuner's cache (:func:`install_flink`)."""
    try:
        return find_flink(version)
    except TunerError:
        log.info("no Flink %s here: fetching its jars from PyPI (once)", version)
        return install_flink(version)


def install_flink(version: str) -> FlinkInstall:
    """Fetch the jars of Flink ``version``'s line (PyPI's ``apache-flink-libraries``, without
    PyFlink's Python dependencies) into tuner's cache, once; return that installation.

    For what tuner runs on Flink itself (validation, config checks by Flink's own parser);
    takes about 15 s and 230 MB the first time.
    """
    release = RELEASES[_line(version)]
    prefix = _cache_root() / "flink" / release
    found = flink_in_venv(prefix)
    if found is not None:
        return found
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{release}-", dir=prefix.parent))
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                # Without it pip uninstalls this environment's own apache-flink-libraries (the
                # flink extra's Flink 2.x) before it installs the other line into the prefix.
                "--ignore-installed",
                "--prefix",
                str(tmp),
                f"apache-flink-libraries=={release}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise TunerRuntimeError(
                f"pip could not install apache-flink-libraries=={release}: "
                f"{proc.stderr.strip().splitlines()[-1:] or proc.returncode}"
            )
        with contextlib.suppress(OSError):  # another process won the race: use its copy
            os.replace(tmp, prefix)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = flink_in_venv(prefix)
    if found is None:
        raise TunerRuntimeError(f"apache-flink-libraries=={release} left no flink-dist jar")
    return found


def _tool(name: str) -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / name).exists():
        return str(Path(java_home) / "bin" / name)
    found = shutil.which(name)
    if found is None:
        raise TunerError(f"`{name}` not found: install a JDK 17 (or set JAVA_HOME)")
    return found


def java_source(class_name: str = JOB_CLASS) -> str:
    """The Java source of one of the shipped programs (package data under java/)."""
    return resources.files("tuner.validate").joinpath("java", f"{class_name}.java").read_text()


# Lines between these markers in a shipped Java program are kept for one Flink line only, for
# the few calls whose API differs between 1.20 and 2.x (a package move, a changed signature).
_LINE_BLOCKS: Mapping[str, tuple[str, str]] = {
    "2.x": ("//flink2{", "//}flink2"),
    "1.20": ("//flink1{", "//}flink1"),
}


def for_flink_line(text: str, flink_version: str) -> str:
    """Java source ``text`` for ``flink_version``'s line: the other line's marked blocks
    dropped."""
    keep = "2.x" if catalog_id(flink_version) != "1.20" else "1.20"
    drop = {marks for line, marks in _LINE_BLOCKS.items() if line != keep}
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        mark = line.strip()
        if any(mark == begin for begin, _ in drop):
            skipping = True
        elif any(mark == end for _, end in drop):
            skipping = False
        elif not skipping:
            out.append(line)
    return "".join(out)


def job_source() -> str:
    """The Java source of the replay job."""
    return java_source(JOB_CLASS)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuner" / "validate"


def compile_java(
    flink: FlinkInstall,
    class_name: str = JOB_CLASS,
    cache_dir: Path | None = None,
    source: str | None = None,
    with_sources: Sequence[str] = (),
    extra_sources: Mapping[str, str] | None = None,
) -> Path:
    """The directory holding the compiled ``class_name``; compiles on first use.

    ``source`` is its Java text (default: the shipped ``java/<class_name>.java`` of this
    package); ``with_sources`` names other shipped programs compiled with it (classes it uses).
    A class in a package is named by its path, ``com/example/Job``: its classes then land in
    ``<dir>/com/example/``. ``extra_sources`` adds Java texts by class name (not shipped
    programs: sources read from elsewhere, such as tools/nexmark's upstream checkout).
    The cache key is a hash of the sources and the Flink version. Concurrent callers are safe:
    each compiles into its own temporary directory and the first rename wins.
    """
    shipped = {name: for_flink_line(java_source(name), flink.version) for name in with_sources}
    sources = {class_name: source if source is not None else java_source(class_name)}
    if source is None:
        sources[class_name] = for_flink_line(sources[class_name], flink.version)
    sources.update(shipped)
    sources.update(extra_sources or {})
    key = "\0".join(f"{n}\0{s}" for n, s in sources.items())
    digest = hashlib.sha256(f"{flink.version}\0{key}".encode()).hexdigest()[:16]
    root = cache_dir if cache_dir is not None else _cache_root()
    target = root / digest
    if (target / f"{class_name}.class").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{digest}."))
    try:
        (tmp / "src").mkdir()
        srcs = []
        for name, text in sources.items():
            srcs.append(tmp / "src" / f"{name}.java")
            srcs[-1].parent.mkdir(parents=True, exist_ok=True)
            srcs[-1].write_text(text)
        classes = tmp / "classes"
        proc = subprocess.run(
            [
                _tool("javac"),
                "-nowarn",
                "-encoding",
                "UTF-8",
                "-cp",
                flink.classpath,
                "-d",
                str(classes),
                *map(str, srcs),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise TunerRuntimeError(
                f"compiling {class_name} against Flink {flink.version} failed:\n"
                f"{proc.stderr.strip()[-4000:]}"
            )
        with contextlib.suppress(OSError):  # another process won the race: use its classes
            os.replace(classes, target)
        log.info("compiled %s for Flink %s into %s", class_name, flink.version, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not (target / f"{class_name}.class").exists():
        raise TunerRuntimeError(f"compiled classes missing from {target}")
    return target


def compile_job(flink: FlinkInstall, cache_dir: Path | None = None) -> Path:
    """The directory of the compiled replay job classes (see :func:`compile_java`)."""
    return compile_java(flink, JOB_CLASS, cache_dir, with_sources=("StateCalls",))


def root_cause(output: str) -> str:
    """The two innermost exception messages of a Java stack trace (what a user can act on), or
    the last line of ``output`` when it holds no trace."""
    causes = [
        line.strip().removeprefix("Caused by: ")
        for line in output.splitlines()
        if line.startswith("Caused by: ") or line.startswith("Exception in thread")
    ]
    if causes:
        # The innermost cause is often a bare parse error ("For input string"); the one above it
        # names the key, so both are kept.
        distinct = list(dict.fromkeys(causes))
        return " / ".join(distinct[-2:])
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def java_command(
    flink: FlinkInstall,
    classes: Path,
    main_class: str,
    args: Sequence[str],
    workdir: Path,
    jvm_args: Sequence[str] = ("-Xms512m", "-Xmx1g"),
    extra_classpath: Sequence[Path] = (),
) -> list[str]:
    """The command line that runs ``main_class`` on Flink's class path (plus
    ``extra_classpath``), logging (log4j, WARN and checkpoint INFO) into ``workdir/flink.log``."""
    log_cfg = workdir / "log4j2.properties"
    log_cfg.write_text(_LOG4J.format(path=workdir / "flink.log"))
    return [
        _tool("java"),
        *JVM_OPENS,
        *jvm_args,
        f"-Dlog4j.configurationFile={log_cfg}",
        "-cp",
        os.pathsep.join([flink.classpath, str(classes), *map(str, extra_classpath)]),
        main_class,
        *args,
    ]


@dataclass(frozen=True)
class JobOutcome:
    """One JVM run of the job: its result file, and what was measured from outside."""

    result: dict[str, Any]  # the job's JSON result (see ReplayJob.main)
    wall_s: float  # process start to exit: JVM start + cluster + job + shutdown
    rss_peak_bytes: int  # peak resident set of the JVM, sampled
    workdir: Path


def _exited(proc: subprocess.Popen[bytes], wait_s: float) -> bool:
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def run_job(
    flink: FlinkInstall,
    classes: Path,
    spec_path: Path,
    result_path: Path,
    workdir: Path,
    *,
    timeout_s: float = 1800.0,
    jvm_args: Sequence[str] = ("-Xms512m", "-Xmx1g"),
    env: Mapping[str, str] | None = None,
    main: Sequence[str] | None = None,
    extra_classpath: Sequence[Path] = (),
) -> JobOutcome:
    """Run the job described by ``spec_path`` in a fresh JVM and return its result.

    ``main`` replaces the main class and its arguments (default: the replay job and
    ``spec_path``); ``extra_classpath`` is appended to the class path. The job writes
    ``result_path`` (JSON) when it has finished; a failed or timed-out job raises TunerError
    with the tail of its output and log.
    """
    log_file = workdir / "flink.log"
    main_class, args = (
        (main[0], list(main[1:])) if main is not None else (JOB_CLASS, [str(spec_path)])
    )
    cmd = java_command(flink, classes, main_class, args, workdir, jvm_args, extra_classpath)
    stdout = workdir / "java.out"
    with open(stdout, "wb") as out:
        proc = subprocess.Popen(
            dying_with_parent(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, **(env or {})},
            process_group=0,  # Ctrl-C stops the study after this job, not the job itself
        )
        try:
            seen = watch(
                proc.pid,
                lambda wait_s: _exited(proc, wait_s),
                timeout_s=timeout_s,
                what="the Flink job",
            )
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    if seen.stopped is not None:
        raise TunerRuntimeError(f"{seen.reason}; see {log_file}")
    if proc.returncode != 0 or not result_path.exists():
        raise TunerRuntimeError(
            f"the Flink job failed (exit {proc.returncode}): "
            f"{root_cause(stdout.read_text(errors='replace'))} (output: {stdout}, log: {log_file})"
        )
    result = json.loads(result_path.read_text())
    return JobOutcome(
        result=result, wall_s=seen.elapsed_s, rss_peak_bytes=seen.rss_peak_bytes, workdir=workdir
    )
