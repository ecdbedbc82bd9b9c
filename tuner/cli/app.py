"""The ``tuner`` command group and its entry point: every user mistake surfaces as a
:class:`~tuner.errors.TunerError`, printed as one line (``tuner: error: FILE: FIELD: what was
expected``) with exit code 2; a failure while running as one line with exit code 1."""

from __future__ import annotations

import errno
import logging
import sys
from typing import Any

import click

from tuner.errors import TunerError, TunerRuntimeError

EXIT_USAGE = 2  # a mistake in the input: the user can fix it
EXIT_FAILURE = 1  # a failure while running: a Flink crash, a full disk, failed trials
# OSErrors that say the machine failed, not that a path on the command line is wrong.
_RUNTIME_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM, errno.EROFS})


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Say ``message`` as tuner's one error line and exit with ``code``."""
    click.echo(f"tuner: error: {message}", err=True)
    sys.exit(code)


class TunerGroup(click.Group):
    """Turns a TunerError raised by any command (or subcommand) into one line and exit 2, a
    TunerRuntimeError into one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TunerError as exc:
            click.echo(f"tuner: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except TunerRuntimeError as exc:
            click.echo(f"tuner: failed: {exc}", err=True)
            ctx.exit(EXIT_FAILURE)


@click.group(cls=TunerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does (to stderr).")
@click.version_option(package_name="tuner")
def cli(verbose: bool) -> None:
    """Tune Flink's RocksDB state backend by measurement.

    tuner replays a Flink job's keyed-state access pattern (from a workload file or a recorded
    trace) against real RocksDB, laid out as Flink lays it out, under the job's memory budget;
    searches Flink's RocksDB options with Optuna; and writes paste-ready Flink configuration with
    the measured gain over Flink's defaults.

    Start with:  tuner run workloads/quickstart.yaml
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user mistakes into one line and exit code 2."""
    try:
        code = cli.main(args=argv, prog_name="tuner", standalone_mode=False)
    except TunerError as exc:
        fail(str(exc))
    except TunerRuntimeError as exc:
        click.echo(f"tuner: failed: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    except click.exceptions.Abort:
        click.echo("tuner: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        # Files named on the command line that cannot be read or written.
        where = f"{exc.filename}: " if exc.filename else ""
        code = EXIT_FAILURE if exc.errno in _RUNTIME_ERRNOS else EXIT_USAGE
        fail(f"{where}{exc.strerror or exc}", code)
    if isinstance(code, int) and code:
        sys.exit(code)
