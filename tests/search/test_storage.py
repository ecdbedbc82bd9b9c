"""Storage URLs, password scrubbing and retries (no database needed)."""

from __future__ import annotations

import urllib.parse

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
