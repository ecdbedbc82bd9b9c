"""A stand-in for optuna.Trial that draws the edges of the search space."""

from __future__ import annotations


class BoundTrial:
    """A stand-in for optuna.Trial that picks the low or high end of every range, and the
    ``choice``-th option of every categorical (wrapping), so that a handful of trials covers
    every value the search space can produce at its edges."""

    def __init__(self, high: bool, choice: int) -> None:
        self.high = high
        self.choice = choice

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        return high if self.high else low

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None
    ) -> float:
        return high if self.high else low

    def suggest_categorical(self, name: str, choices: list[str]) -> str:
        return choices[self.choice % len(choices)]
