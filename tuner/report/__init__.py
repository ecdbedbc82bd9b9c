"""Plots and report.md, rendered only from a run directory (never during the run).

``data`` computes what each plot and table shows (pure, tested), ``plots`` draws it with
matplotlib, ``markdown`` writes report.md. ``render_report`` does all three for one run, and
can be called again at any time: ``tuner report DIR``.
"""

from tuner.report.markdown import render_markdown, render_report

__all__ = ["render_markdown", "render_report"]
