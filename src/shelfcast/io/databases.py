"""The databases the MLflow and Prefect servers keep their state in, on the PostgreSQL server of the settings.

`deploy/postgres/init.sql` creates them for compose; `shelfcast stack up` creates them here when missing, and
gives each server its SQLAlchemy URL (MLflow through psycopg, Prefect through asyncpg).
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

from shelfcast.errors import ConfigError, StackError
from shelfcast.redact import redact


def _parts(postgres_url: str) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(postgres_url).items() if v is not None}
    except psycopg.ProgrammingError:
        raise ConfigError("`postgres_url` is not a PostgreSQL connection string") from None


def database_url(postgres_url: str, database: str, *, driver: str) -> str:
    """A SQLAlchemy URL (`postgresql+DRIVER://...`) of `database` on the server `postgres_url` names, with its
    user, password and port. A socket folder as host goes into the query, as SQLAlchemy expects."""
    parts = _parts(postgres_url)
    host = parts.get("host")
    query = {}
    if host and host.startswith("/"):
        query, host = {"host": host}, None
    url = URL.create(
        f"postgresql+{driver}",
        username=parts.get("user"),
        password=parts.get("password"),
        host=host or ("127.0.0.1" if not query else None),
        port=int(parts["port"]) if parts.get("port") else None,
        database=database,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def ensure_database(postgres_url: str, database: str) -> bool:
    """Create `database` on the server of `postgres_url` unless it exists. Returns True if it was created."""
    secret = _parts(postgres_url).get("password")
    try:
        with psycopg.connect(postgres_url, connect_timeout=5, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if found:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            return True
    except psycopg.errors.InsufficientPrivilege:
        raise StackError(
            f"the user of `postgres_url` may not create the database {database!r}: create it once as an "
            "administrator (see deploy/postgres/init.sql), or use `--backend sqlite`"
        ) from None
    except psycopg.errors.DuplicateDatabase:
        return False  # another process created it meanwhile
    except psycopg.OperationalError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0].removeprefix("connection failed: ") if lines else type(exc).__name__
        raise StackError(
            redact(
                f"PostgreSQL at {postgres_url} is unreachable: {reason}; start it, set SHELFCAST_POSTGRES_URL, or "
                "use `--backend sqlite`",
                secret,
            )
        ) from None


def drop_database(postgres_url: str, database: str) -> None:
    """Drop `database` (for tests and `stack` users cleaning up), its sessions closed first."""
    with psycopg.connect(postgres_url, connect_timeout=5, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)))
