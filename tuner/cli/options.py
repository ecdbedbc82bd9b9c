"""Options and helpers more than one command shares: each flag is declared once here, so its
name, default and help read the same wherever it appears."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from tuner.costmodel import PRESETS
from tuner.errors import TunerError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIME_BUDGET = "15 min"  # tuner run's wall time unless --time-budget says otherwise


def time_budget_seconds(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> float | None:
    """--time-budget as seconds (a Flink duration: `15 min`, `900 s`, `1 h`), or None for
    `none`. A mistake is a TunerError: one line naming the flag, exit 2."""
    if value is None or value.strip().lower() == "none":
        return None
    from tuner.units import parse_duration_ms

    expected = "a duration such as `15 min`, `900 s` or `1 h`, or `none`"
    try:
        ms = parse_duration_ms(value, iso8601=False)
    except ValueError as exc:
        # The parser's own expectation lists Flink's forms (days and more), not a budget's:
        # keep only what it says about a unit, then the budget's one expectation.
        unit = f"{exc}; " if "unit" in str(exc) else ""
        raise TunerError(
            f"{unit}expected {expected}, got {value!r}", where="--time-budget"
        ) from None
    if not value.strip() or not any(c.isalpha() for c in value):
        raise TunerError(
            f"give a unit, e.g. `{value.strip()} min`; got {value!r}; expected {expected}",
            where="--time-budget",
        )
    if ms < 1000:
        raise TunerError(f"at least 1 s, got {value!r}", where="--time-budget")
    return ms / 1000


def rescale_factor(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """--rescale as the factor the parallelism changes by (tuner.rescale): `4` or `1/4`."""
    if value is None:
        return None
    from tuner.rescale import parse_rescale

    return parse_rescale(value)


def fmt_duration(seconds: float | None) -> str:
    """Seconds as `42s`, `3m05s` or `1h02m` (`?` when unknown)."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _figure(p: Any) -> str:
    """The best figure in the objective's own unit."""
    from tuner.search.study import CHECKPOINT_BYTES, RESTORE_S, THROUGHPUT

    metric = getattr(p, "best_metric", THROUGHPUT)
    if metric == RESTORE_S:
        return f"restore {p.best_value * 1000:,.0f} ms"
    if metric == CHECKPOINT_BYTES:
        return f"checkpoint {p.best_value / 2**20:,.1f} MiB"
    return f"{p.best_value / 1000:.1f}k ops/s"


class ProgressLine:
    """One status line on stderr: redrawn in place on a terminal, a log line per step otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, p: Any) -> None:
        width = 24
        filled = int(width * p.done / p.total) if p.total else 0
        bar = "#" * filled + "-" * (width - filled)
        best = f"best {_figure(p)} ({p.best_label})" if p.best_value else "best -"
        line = f"[{bar}] {p.done}/{p.total} {p.phase} | {best} | left ~{fmt_duration(p.eta_s)}"
        if line == self.last:
            return
        self.last = line
        if self.tty:
            click.echo("\r" + line.ljust(110), err=True, nl=False)
        else:
            click.echo(line, err=True)

    def close(self) -> None:
        """End the redrawn line."""
        if self.tty and self.last:
            click.echo("", err=True)


class StopAfterCurrent:
    """Ctrl-C asks the study to stop after the running trial; a second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> StopAfterCurrent:
        self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        click.echo(
            "\ntuner: stopping after the current trial (Ctrl-C again to abort now)", err=True
        )

    def __call__(self) -> bool:
        return self.requested


def disk_option(help_text: str) -> Callable[[F], F]:
    """--disk: a tuner.costmodel preset that prices counted I/O."""
    return click.option("--disk", type=click.Choice(list(PRESETS)), default=None, help=help_text)


def jobs_option(help_text: str) -> Callable[[F], F]:
    """--jobs/-j: measurements at once."""
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True, help=help_text
    )


# Where a password for --storage may come from, so that it stays out of `ps`.
STORAGE_SECRETS = (
    "Keep the password out of the URL (where `ps` shows it): libpq takes it from PGPASSWORD, "
    "~/.pgpass (PGPASSFILE) or a service file (postgresql://?service=NAME, PGSERVICEFILE); "
    "or give the whole URL in TUNER_STORAGE instead of --storage."
)


def storage_option(help_text: str, required: bool = False) -> Callable[[F], F]:
    """--storage: a database URL for a study shared by many machines; TUNER_STORAGE when the
    option is not given (a URL with a password in the environment, not on the command line)."""
    return click.option(
        "--storage",
        default=None,
        required=required,
        envvar="TUNER_STORAGE",
        show_envvar=True,
        help=f"{help_text} {STORAGE_SECRETS}",
    )


def repeats_option(default: int, minimum: int, help_text: str) -> Callable[[F], F]:
    """--repeats: how often a configuration is measured."""
    return click.option(
        "--repeats",
        type=click.IntRange(min=minimum),
        default=default,
        show_default=True,
        help=help_text,
    )


def flink_version_option(
    default: str | None = "2.x",
    help_text: str = "Flink the job runs on: 2.x (2.0 .. 2.3) or 1.20.",
) -> Callable[[F], F]:
    """--flink-version: the Flink line a file is for (required when ``default`` is None)."""
    return click.option(
        "--flink-version",
        default=default,
        required=default is None,
        show_default=default is not None,
        help=help_text,
    )


def output_option(
    help_text: str, *, required: bool = False, dest: str = "output"
) -> Callable[[F], F]:
    """-o/--output (also --out): the file or directory a command writes."""
    return click.option(
        "--output",
        "--out",
        "-o",
        dest,
        type=click.Path(path_type=Path),
        default=None,
        required=required,
        help=help_text,
    )
