"""Fixtures of the integration tests: a fresh PostgreSQL table."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_URL = os.environ.get("SHELFCAST_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


@pytest.fixture
def postgres_table() -> Iterator[str]:
    """A fresh `schema.predictions` in the real PostgreSQL, dropped afterwards (skipped, or failed on CI, if down)."""
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable: {exc}")
    schema = f"shelfcast_test_{uuid.uuid4().hex[:12]}"
    yield f"{schema}.predictions"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
