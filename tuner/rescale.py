"""A change of the job's parallelism before a restore, as ``--rescale`` gives it.

It is kept as the factor the parallelism is multiplied by: ``4.0`` (it grew four-fold, so a new
subtask owns a quarter of an old one's key groups) or ``0.25`` (it shrank four-fold, so the one
subtask left owns four old ones' key groups and restores from their four handles). A float, so
that run.json and trials.csv hold it as a plain number; ``1.0`` is a restore without a change.
"""

from __future__ import annotations

import re

from tuner.errors import TunerError

NONE = 1.0
_FORM = re.compile(r"\s*(?:(\d+)|1\s*/\s*(\d+))\s*")


def parse_rescale(text: str, *, where: str = "--rescale") -> float:
    """``"N"`` (the parallelism grows N-fold) or ``"1/N"`` (it shrinks N-fold), N ≥ 2."""
    m = _FORM.fullmatch(text)
    n = int(m.group(1) or m.group(2)) if m else 0
    if n < 2:
        raise TunerError(
            f"{text!r} is not a change of parallelism: expected N (it grows N-fold) or 1/N "
            "(it shrinks N-fold), with N an integer of at least 2",
            where=where,
        )
    return float(n) if m and m.group(1) else 1.0 / n


def grown_by(rescale: float) -> int:
    """N where the parallelism grew N-fold, else 1."""
    return round(rescale) if rescale > 1 else 1


def shrunk_by(rescale: float) -> int:
    """N where the parallelism shrank N-fold, else 1."""
    return round(1.0 / rescale) if 0 < rescale < 1 else 1


def rescale_label(rescale: float) -> str:
    """How --rescale is written for this change: ``"4"``, ``"1/4"``, or ``"1"`` for none."""
    if shrunk_by(rescale) > 1:
        return f"1/{shrunk_by(rescale)}"
    return str(grown_by(rescale))


def describe_rescale(rescale: float) -> str:
    """The restore a change of parallelism measures, in words (empty for none)."""
    if grown_by(rescale) > 1:
        n = grown_by(rescale)
        return (
            f"as subtask 0 after the parallelism grew {n}-fold: the first 1/{n} of the "
            "replayed subtask's key groups, clipped from its whole checkpoint"
        )
    if shrunk_by(rescale) > 1:
        n = shrunk_by(rescale)
        return (
            f"as the one subtask left after the parallelism shrank {n}-fold: the replayed "
            f"subtask's key groups merged from {n} old subtasks' checkpoints"
        )
    return ""
