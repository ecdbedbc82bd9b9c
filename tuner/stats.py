"""Small statistics shared by the rooms that compare rankings (validation, the fit check, scale
transfer): one implementation each."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

__all__ = ["spearman"]


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (pandas: Pearson's r of the average ranks, correct with ties).

    NaN when fewer than two pairs or when one side has all values tied (no ranking to compare).
    """
    if len(xs) != len(ys):
        raise ValueError(f"`len(xs) == len(ys)` must hold, but got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        return math.nan
    # DataFrame.corr ranks with pandas' own code; Series.corr would need scipy.
    frame = pd.DataFrame({"x": list(xs), "y": list(ys)}, dtype=float)
    rho = frame.corr(method="spearman").to_numpy()[0, 1]
    return float(rho)
