"""The one error type for user mistakes, carrying the file and field it is about."""

from __future__ import annotations


class TunerError(Exception):
    """A mistake in user input (workload, trace, config file, CLI argument).

    The CLI turns it into one line on stderr and exit code 2; nothing else should.
    ``where`` is a field path (``states[0].value_size``) or a position (``line 3, column 5``).
    """

    def __init__(self, message: str, *, file: str | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.where = where

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.where) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class TunerRuntimeError(Exception):
    """A runtime failure (Flink crash, full disk, failed trials, a database gone for good):
    the CLI prints it as one line and exits with code 1."""
