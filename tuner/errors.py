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
        return printable(f"{prefix}: {self.message}" if prefix else self.message)


def printable(text: str) -> str:
    """``text`` with each non-printable character (newline, ESC, other control codes) escaped as
    ``repr`` escapes it: a name read from a hostile file can neither drive the terminal nor split
    a one-line error in two."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class TunerRuntimeError(Exception):
    """A failure while running, not a mistake in the input: a Flink job that crashed, a full disk,
    a trial stream in which every measurement failed, a tool (javac) that broke.

    The CLI turns it into one line on stderr and exit code 1 (input mistakes exit 2).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
