"""The fuzz tests' budget: small and fixed in CI, larger on demand.

Each test runs its own ``max_examples`` (all of them together well under a minute), with a fixed
seed, so CI is repeatable. ``TUNER_FUZZ_EXAMPLES=N`` runs N examples per test with fresh random
seeds: the long runs that look for new findings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from tuner.errors import TunerError

T = TypeVar("T", bound=Callable[..., Any])

_LONG = int(os.environ.get("TUNER_FUZZ_EXAMPLES", "0"))


def budget(ci_examples: int) -> Callable[[T], T]:
    """Hypothesis settings for one fuzz test: ``ci_examples`` in CI, the env's number if set."""
    return settings(
        max_examples=_LONG or ci_examples,
        derandomize=not _LONG,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def refused_or_read(call: Callable[[], object]) -> None:
    """The fuzz property: ``call`` succeeds or raises TunerError (exit 2); any other exception
    (a traceback for the user) propagates and fails the test."""
    try:
        call()
    except TunerError as error:
        text = str(error)
        # One line, nothing for the terminal to interpret.
        assert text.isprintable(), text


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """``data`` with each edit applied: (position, kind, byte) with kind 0 replace a byte,
    1 insert one, 2 delete one, 3 cut the rest off."""
    out = bytearray(data)
    for position, kind, value in edits:
        if not out:
            break
        at = position % len(out)
        if kind == 0:
            out[at] = value
        elif kind == 1:
            out.insert(at, value)
        elif kind == 2:
            del out[at]
        else:
            del out[at:]
    return bytes(out)
