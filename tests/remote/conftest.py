"""A real PostgreSQL for the tests of tuning on many machines: one throw-away cluster per test
session (tests/pgcluster.py), one fresh database per test. In CI (CI=true) a cluster that
cannot start fails the run instead of skipping."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from tests.pgcluster import Cluster, ClusterUnavailable, remove_cluster, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        import psycopg  # noqa: F401

        cluster = start_cluster()
    except (ClusterUnavailable, ImportError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and could not be started: {exc}")
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield cluster
    remove_cluster(cluster)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh, empty database; its URL carries the password."""
    return pg_cluster.create_database("t_" + secrets.token_hex(6))
