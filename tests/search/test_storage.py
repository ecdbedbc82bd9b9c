"""Storage URLs, password scrubbing and retries (no database needed)."""

from __future__ import annotations

import urllib.parse

import psycopg
import pytest
import sqlalchemy.exc
from hypothesis import given
from hypothesis import strategies as st

from tuner.errors import TunerError, TunerRuntimeError
from tuner.search.storage import Retry, Scrubber, driver_url, is_transient, public_url

PASSWORDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=4
)


@given(PASSWORDS)
def test_a_password_never_survives_public_url_or_the_scrubber(password: str) -> None:
    quoted = urllib.parse.quote(password, safe="")
    url = f"postgresql://tuner:{quoted}@db.example:5432/studies"
    assert public_url(url) == "postgresql://tuner@db.example:5432/studies"
    scrub = Scrubber(url)
    text = f"failed for {password} ({quoted}) at {url}"
    assert password not in scrub(text)
    assert quoted not in scrub(text)


def test_postgresql_urls_open_with_psycopg_and_keep_their_password() -> None:
    assert driver_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert driver_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert driver_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("url", ["not a url", "redis://h/0", "postgresql//u:secret@h/db"])
def test_a_bad_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(TunerError) as err:
        public_url(url)
    assert "secret" not in str(err.value)
    assert "--storage" in str(err.value)


def _operational(message: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(message))


def test_a_cut_connection_is_transient_a_wrong_password_is_not() -> None:
    assert is_transient(_operational("server closed the connection unexpectedly"))
    assert not is_transient(_operational('password authentication failed for user "x"'))
    assert not is_transient(ValueError("bad value"))


def _wrapped(driver_error: Exception) -> sqlalchemy.exc.DBAPIError:
    """As SQLAlchemy raises a psycopg error (the driver's exception as ``orig``)."""
    wrapper = sqlalchemy.exc.DBAPIError.instance(None, None, driver_error, psycopg.Error)
    assert isinstance(wrapper, sqlalchemy.exc.DBAPIError)
    return wrapper


@pytest.mark.parametrize(
    "error",
    [
        # Messages as psycopg 3 reports them (seen against PostgreSQL 15).
        psycopg.OperationalError('connection is bad: invalid sslmode value: "bogus"'),
        psycopg.OperationalError('connection is bad: definition of service "x" not found'),
        psycopg.ProgrammingError('invalid connection option "bogusopt"'),
        psycopg.OperationalError(
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            "server does not support SSL, but SSL was required"
        ),
        psycopg.OperationalError(
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            'FATAL:  database "nosuch" does not exist'
        ),
    ],
)
def test_bad_options_are_not_retried(error: Exception) -> None:
    assert not is_transient(_wrapped(error))


@pytest.mark.parametrize(
    "message",
    [
        'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused',
        "consuming input failed: server closed the connection unexpectedly",
        "terminating connection due to administrator command",
    ],
)
def test_a_lost_connection_is_retried(message: str) -> None:
    assert is_transient(_wrapped(psycopg.OperationalError(message)))


def test_a_permanent_database_error_mid_study_is_one_line_without_the_password() -> None:
    url = "postgresql://u:hunter2@h/db"

    def call() -> None:
        raise _wrapped(psycopg.ProgrammingError("permission denied for table trials (hunter2)"))

    retry = Retry(Scrubber(url), public_url(url), sleep=lambda s: pytest.fail("retried"))
    with pytest.raises(TunerRuntimeError) as err:
        retry("store a trial", call)
    assert "hunter2" not in str(err.value)
    assert "\n" not in str(err.value)
    assert "store a trial: ProgrammingError: permission denied" in str(err.value)


def test_retry_backs_off_until_the_database_is_back() -> None:
    sleeps: list[float] = []
    attempts = iter([_operational("connection refused")] * 3 + [None])

    def call() -> str:
        exc = next(attempts)
        if exc is not None:
            raise exc
        return "done"

    retry = Retry(Scrubber(None), "postgresql://u@h/db", sleep=sleeps.append)
    assert retry("count trials", call) == "done"
    assert retry.retries == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]  # exponential, with jitter under 20 %


def test_retry_gives_up_after_its_deadline_with_a_scrubbed_message() -> None:
    url = "postgresql://u:hunter2@h/db"

    def call() -> None:
        raise _operational("connection to h failed (password hunter2 was sent)")

    retry = Retry(Scrubber(url), public_url(url), retry_for_s=0.0, sleep=lambda s: None)
    with pytest.raises(TunerRuntimeError) as err:
        retry("ask for a trial", call)
    assert "hunter2" not in str(err.value)
    assert "postgresql://u@h/db" in str(err.value)


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("postgresql://u@h/db?password=s3cret", "postgresql://u@h/db"),
        (
            "postgresql://u@h/db?sslmode=require&password=s3cret",
            "postgresql://u@h/db?sslmode=require",
        ),
        (
            "postgresql://u@h/db?sslpassword=k3y&sslmode=verify-full",
            "postgresql://u@h/db?sslmode=verify-full",
        ),
        ("postgresql://u:s3cret@h/db?password=s3cret", "postgresql://u@h/db"),
    ],
)
def test_public_url_drops_a_password_given_as_a_query_parameter(url: str, public: str) -> None:
    assert public_url(url) == public


@given(PASSWORDS)
def test_the_scrubber_removes_every_spelling_of_a_password(password: str) -> None:
    """As typed, percent-encoded (urllib's and SQLAlchemy's quote(safe=" +") spellings), in the
    userinfo or as a ?password= query parameter, and as SQLAlchemy renders the driver URL."""
    spellings = {
        password,
        urllib.parse.quote(password, safe=""),
        urllib.parse.quote_plus(password),
        urllib.parse.quote(password, safe=" +"),
    }
    for url in (
        f"postgresql://tuner:{urllib.parse.quote(password, safe='')}@db.example/studies",
        f"postgresql://tuner@db.example/studies?password={urllib.parse.quote_plus(password)}",
    ):
        scrub = Scrubber(url)
        text = " | ".join(
            [
                url,
                driver_url(url),
                *(f"postgresql://tuner:{s}@db.example/studies" for s in spellings),
                *(f"postgresql://tuner@db.example/studies?password={s}&x=1" for s in spellings),
            ]
        )
        clean = scrub(text)
        for s in spellings:
            assert f":{s}@" not in clean and f"password={s}&" not in clean, (s, clean)
        assert "tuner@db.example/studies" in clean


@pytest.mark.parametrize("password", ["a", "e", "o", "1", "tu"])
def test_a_short_password_masks_only_where_it_is_a_password(password: str) -> None:
    url = f"postgresql://tuner:{password}@db.example:5432/studies"
    text = (
        f"cannot open the storage postgresql://tuner:{password}@db.example:5432/studies: "
        'FATAL: database "studies" does not exist (tuner 1.0)'
    )
    assert Scrubber(url)(text) == (
        "cannot open the storage postgresql://tuner@db.example:5432/studies: "
        'FATAL: database "studies" does not exist (tuner 1.0)'
    )


def test_a_short_password_in_another_rendering_of_the_url_is_masked() -> None:
    scrub = Scrubber("postgresql://tuner:a@db.example/studies")
    assert scrub("at sqlite+x://tuner:a@db.example/a") == "at sqlite+x://tuner:***@db.example/a"


def test_a_password_in_a_libpq_conninfo_string_is_scrubbed() -> None:
    scrub = Scrubber("postgresql://u:pw@h/db")
    assert scrub("host=h password=pw dbname=db") == "host=h password=*** dbname=db"
    assert scrub("host=h password='p w' dbname=db") == "host=h password=*** dbname=db"
