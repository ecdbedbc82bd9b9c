"""Optuna's RDB storage on a database server, for a study shared by many machines.

Three concerns live here, so that the study loop stays free of them:

* **Secrets.** A password in a storage URL never leaves this module in clear: what is written
  (``run.json``) is the URL without it, what is shown is ``***``, and every message built from a
  database error is scrubbed. Without a password in the URL, libpq reads ``PGPASSWORD``,
  ``~/.pgpass`` or a service file (``postgresql://?service=NAME``) as for any PostgreSQL client.
* **Transient failures.** A database restart cuts every connection; calls are retried with
  backoff (and stale pooled connections are detected by SQLAlchemy's pre-ping) instead of
  ending a study that took hours. What no retry cures (authentication, a missing database, an
  option libpq refuses) ends at once.
* **Liveness.** Each running trial is kept alive by a heartbeat; a trial whose worker went
  silent (kill -9, a lost machine) is failed by whichever process looks next, and queued again
  with the same parameters (Optuna's stale-trial handling).
"""

from __future__ import annotations

import inspect
import logging
import random
import re
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import TunerError, TunerRuntimeError

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a storage call is retried before the study gives up (a database restart or a
# fail-over takes seconds to a few minutes), and the backoff between attempts.
RETRY_FOR_S = 600.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# Messages that no retry cures: authentication, a missing database or role, options libpq
# refuses, TLS the server cannot do. psycopg says "connection is bad" when libpq refused the
# connection string itself, before any network (a bogus sslmode, an unknown service).
_PERMANENT = re.compile(
    r"password authentication failed|no password supplied|does not exist|"
    r"permission denied|role .* is not permitted|no pg_hba.conf entry|"
    r"^connection is bad:|invalid connection option|invalid \S+ value|"
    r"does not support SSL|certificate",
    re.IGNORECASE | re.MULTILINE,
)
# SQLSTATE classes no retry cures: 28 invalid authorization, 3D invalid catalog (database),
# 42 syntax or access rule (a missing privilege).
_PERMANENT_SQLSTATE = ("28", "3D", "42")
# libpq's connection parameters that hold a secret (the password, and the client key's).
_SECRET_PARAMS = ("password", "sslpassword")
# A URL's userinfo password, whatever the URL (``scheme://user:SECRET@``).
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)[^\s@/]*(@)")
# ``password=SECRET`` in a URL's query or a libpq conninfo string, quoted or not.
_KEYWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.IGNORECASE)
# A password this short is masked only where it stands as a password (in a URL or after
# ``password=``): masked wherever it occurs, it would mask letters of every other word.
_MIN_BARE = 4
# Trials a lost worker left are re-run at most this often (then they stay failed).
MAX_RERUNS = 3
RERUN_OF = "rerun_of"


def parse_url(url: str) -> sqlalchemy.URL:
    """The URL parsed; a TunerError (with no password in it) when it is not a database URL."""
    try:
        parsed = sqlalchemy.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise TunerError(
            "not a database URL; expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DB",
            where="--storage",
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "sqlite", "mysql"):
        raise TunerError(
            f"unsupported database {parsed.get_backend_name()!r}; expected postgresql "
            "(sqlite and mysql also work as Optuna storages)",
            where="--storage",
        )
    return parsed


def driver_url(url: str) -> str:
    """The URL SQLAlchemy should open: ``postgresql://`` uses psycopg (version 3), the driver
    tuner installs (``pip install 'tuner[postgres]'``), whatever SQLAlchemy's default is."""
    parsed = parse_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def public_url(url: str) -> str:
    """The URL without its password (in the userinfo or as a ``password``/``sslpassword``
    query parameter): safe for run.json, logs and reports."""
    u = parse_url(url)
    # URL.set(password=None) keeps the password: build the URL anew without it.
    bare = sqlalchemy.URL.create(
        u.drivername,
        u.username,
        None,
        u.host,
        u.port,
        u.database,
        u.difference_update_query(_SECRET_PARAMS).query,
    )
    return bare.render_as_string(hide_password=False)


def same_storage(a: str | None, b: str | None) -> bool:
    """Whether two storage URLs name the same database, whatever password each carries."""
    if a is None or b is None:
        return a is b
    return public_url(a) == public_url(b)


def _spellings(secret: str) -> list[str]:
    """The ways a secret is written in a URL: as typed, percent-encoded as urllib does, and as
    SQLAlchemy renders it (``quote(safe=" +")``); longest first."""
    forms = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe=" +"),
    }
    return sorted(forms, key=len, reverse=True)


class Scrubber:
    """Removes one URL's password from any text, where it stands as a password: the URL as
    given or rendered, any URL's userinfo, ``password=`` in a query or conninfo string; and,
    when it is at least ``_MIN_BARE`` characters, as a word of its own anywhere."""

    def __init__(self, url: str | None) -> None:
        self._urls: list[tuple[str, str]] = []
        self._userinfo: re.Pattern[str] | None = None
        self._bare: re.Pattern[str] | None = None
        if not url:
            return
        parsed = parse_url(url)
        secrets = {parsed.password, *(parsed.query.get(k) for k in _SECRET_PARAMS)}
        found = sorted(
            {s for v in secrets if v for s in ([v] if isinstance(v, str) else v)}, key=len
        )
        if not found:
            return
        masked = public_url(url)
        self._urls = sorted(
            {(url, masked), (driver_url(url), driver_url(masked))},
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        forms = sorted({f for s in found for f in _spellings(s)}, key=len, reverse=True)
        alternatives = "|".join(re.escape(f) for f in forms)
        self._userinfo = re.compile(f":(?:{alternatives})@")
        long = [f for f in forms if len(f) >= _MIN_BARE]
        if long:
            self._bare = re.compile(
                "(?<!\\w)(?:" + "|".join(re.escape(f) for f in long) + ")(?!\\w)"
            )

    def __call__(self, text: str) -> str:
        for given, masked in self._urls:
            text = text.replace(given, masked)
        if self._userinfo is not None:
            text = self._userinfo.sub(":***@", text)
        text = _USERINFO.sub(r"\1***\2", text)
        text = _KEYWORD.sub(r"\1***", text)
        if self._bare is not None:
            text = self._bare.sub("***", text)
        return text


class _LogScrubber(logging.Filter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self._scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def scrub_logs(scrub: Scrubber) -> None:
    """Scrub the password from every record the root logger's handlers write."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_LogScrubber(scrub))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen:
        seen.append(e)
        orig = getattr(e, "orig", None)  # SQLAlchemy's wrapper around the driver's error
        e = orig if isinstance(orig, BaseException) else e.__cause__ or e.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """Whether a storage error may go away by itself (a restart, a cut connection)."""
    chain = _chain(exc)
    if any(_PERMANENT.search(str(e)) for e in chain):
        return False
    for e in chain:
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_PERMANENT_SQLSTATE):
            return False
        # A parameter the driver refused (psycopg: `invalid connection option`), or SQL the
        # database refused: not the network.
        if type(e).__name__ == "ProgrammingError":
            return False
    for e in chain:
        if isinstance(e, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
        if type(e).__module__.startswith("psycopg") and type(e).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return True
    return False


def _from_the_database(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's (SQLAlchemy's or the driver's), whose message may
    quote the connection, not one of tuner's own or Optuna's."""
    return isinstance(exc, sqlalchemy.exc.SQLAlchemyError) or type(exc).__module__.startswith(
        "psycopg"
    )


def describe(exc: BaseException, scrub: Scrubber) -> str:
    """One line for a storage error: the database's own message, never the password."""
    root = _chain(exc)[-1]
    first = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    return scrub(f"{type(root).__name__}: {first}")


class Retry:
    """Calls a storage operation until it succeeds, backing off while the database is away."""

    def __init__(
        self,
        scrub: Scrubber,
        where: str,
        retry_for_s: float = RETRY_FOR_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scrub = scrub
        self.where = where
        self.retry_for_s = retry_for_s
        self._sleep = sleep
        self.seconds = 0.0  # time spent in storage calls, retries included
        self.calls = 0
        self.retries = 0

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        start = time.monotonic()
        delay = BACKOFF_FIRST_S
        try:
            while True:
                try:
                    self.calls += 1
                    return fn()
                except Exception as exc:
                    if not is_transient(exc):
                        if _from_the_database(exc):
                            raise TunerRuntimeError(
                                f"storage {self.where} failed while trying to {what}: "
                                f"{describe(exc, self.scrub)}"
                            ) from None
                        raise
                    waited = time.monotonic() - start
                    if waited > self.retry_for_s:
                        raise TunerRuntimeError(
                            f"storage {self.where} unreachable for {waited:.0f} s while trying "
                            f"to {what}: {describe(exc, self.scrub)}"
                        ) from None
                    self.retries += 1
                    log.warning(
                        "storage unavailable (%s): %s; retrying in %.1f s",
                        what,
                        describe(exc, self.scrub),
                        delay,
                    )
                    self._sleep(delay * random.uniform(0.8, 1.2))
                    delay = min(BACKOFF_MAX_S, delay * 2)
        finally:
            self.seconds += time.monotonic() - start


def rerun_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a trial whose worker went silent again, with the same parameters (Optuna's
    RetryFailedTrialCallback, kept here so it behaves alike on Optuna 4 and 5)."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RERUNS:
        log.warning("trial %d lost its worker %d times; not re-run again", trial.number, MAX_RERUNS)
        return
    log.warning("trial %d lost its worker (no heartbeat); queued again", trial.number)
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={RERUN_OF: trial.number},
            system_attrs={"failed_trial": history[0], "retry_history": history},
        )
    )


def open_storage(url: str, *, heartbeat_s: int | None = None, retry: Retry) -> RDBStorage:
    """An RDB storage on ``url`` (connecting with retries); with ``heartbeat_s``, trials are
    kept alive by heartbeats and failed (and re-run) after ``2 × heartbeat_s`` of silence."""
    kwargs: dict[str, Any] = {"engine_kwargs": {"pool_pre_ping": True}}
    if heartbeat_s is not None:
        params = inspect.signature(RDBStorage.__init__).parameters
        # Optuna 4.9 renamed failed_trial_callback; both mean the same.
        cb = (
            "heartbeat_stale_trial_callback"
            if "heartbeat_stale_trial_callback" in params
            else "failed_trial_callback"
        )
        kwargs.update(
            heartbeat_interval=heartbeat_s, grace_period=2 * heartbeat_s, **{cb: rerun_stale}
        )
    target = driver_url(url)

    def create() -> RDBStorage:
        # Workers starting at once on an empty database all create Optuna's tables; on
        # PostgreSQL all but one may then fail on a duplicate catalog entry: try again.
        for attempt in range(5):
            try:
                with warnings.catch_warnings():
                    # heartbeat_interval is "experimental" in Optuna since 2.9; we rely on it.
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return RDBStorage(target, **kwargs)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                if attempt == 4:
                    raise
                time.sleep(0.2 + random.random())
        raise AssertionError("unreachable")

    def connect() -> RDBStorage:
        try:
            return create()
        except ModuleNotFoundError as exc:
            raise TunerError(
                f"the database driver is not installed ({exc.name}); pip install 'tuner[postgres]'",
                where="--storage",
            ) from None
        except Exception as exc:
            if is_transient(exc):
                raise
            raise TunerError(
                f"cannot open the storage {retry.where}: {describe(exc, retry.scrub)}",
                where="--storage",
            ) from None

    return retry("connect", connect)


class Heartbeat:
    """Records a trial's heartbeat every interval from a thread, for as long as the trial runs.
    Unlike Optuna's own thread it survives a database restart: a failed beat is logged and the
    next one tried."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval_s: float, scrub: Scrubber):
        self._storage = storage
        self._trial_id = trial_id
        self._interval = interval_s
        self._scrub = scrub
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def _beat(self) -> None:
        try:
            self._storage.record_heartbeat(self._trial_id)
        except Exception as exc:
            log.warning("heartbeat not recorded: %s", describe(exc, self._scrub))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fail_stale(study: optuna.Study) -> None:
    """Fail the trials whose worker stopped beating (each is queued again, see rerun_stale)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


# Passwords typed in this process, by their URL without one: opening the study again from
# run.json (the report) needs the password, which run.json must not hold.
_known_urls: dict[str, str] = {}


def remember_url(url: str) -> str:
    """Keep ``url``'s password in this process for :func:`load_shared_study`; return the URL
    without it (what run.json may hold)."""
    public = public_url(url)
    if url != public:
        _known_urls[public] = url
    return public


def retry_for(url: str) -> Retry:
    """A :class:`Retry` for the database at ``url``, its password scrubbed from logs too."""
    scrub = Scrubber(url)
    scrub_logs(scrub)
    return Retry(scrub, public_url(url))


def load_shared_study(url: str, name: str) -> optuna.Study:
    """The shared study of a finished run, to read (the report's importances). A URL without a
    password takes it from PGPASSWORD or ~/.pgpass, as any PostgreSQL client does."""
    full = _known_urls.get(url, url)
    retry = retry_for(full)
    retry.retry_for_s = 30.0  # a report should not hang for minutes on a database that is away
    try:
        storage = open_storage(full, retry=retry)
        return retry("open the study", lambda: optuna.load_study(study_name=name, storage=storage))
    except TunerRuntimeError as exc:
        raise TunerError(str(exc), where="run.json: storage") from None
    except KeyError:
        raise TunerError(f"no study {name!r} in {public_url(url)}", where="run.json") from None
