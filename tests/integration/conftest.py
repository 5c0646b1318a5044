"""Fixtures of the integration tests: a fresh PostgreSQL table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from helpers import PG_URL, require_postgres


@pytest.fixture
def postgres_table() -> Iterator[str]:
    """A fresh `schema.predictions` in the real PostgreSQL, dropped afterwards (skipped, or failed on CI, if down)."""
    require_postgres()
    schema = f"shelfcast_test_{uuid.uuid4().hex[:12]}"
    yield f"{schema}.predictions"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
