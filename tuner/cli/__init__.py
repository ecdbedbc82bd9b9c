"""The ``tuner`` command: parse arguments, call the library, print.

The commands live by theme: :mod:`.tune` (run, worker, report), :mod:`.measure` (check-config,
compare, size, noise, validate, bench) and :mod:`.record` (trace, workload, recorder); the
shared options in :mod:`.options`, the group and the entry point in :mod:`.app`. A command
parses, calls one library function and prints: what it decides lives in the library
(:mod:`tuner.launch` for `tuner run`).
"""

from tuner.cli import measure, record, tune  # noqa: F401  (each registers its commands)
from tuner.cli.app import EXIT_FAILURE, EXIT_USAGE, cli, main

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "cli", "main"]
