"""Predictions in PostgreSQL: COPY into a temporary staging table, then replace the scoring day in one transaction.

The table's key is (scored_on, store_id, item_id, date): a scoring day holds
one forecast per series and date, whichever model made it, so a re-run of the
day (even with a new champion) replaces its rows instead of adding to them.
The day is replaced as a whole (delete, then insert from staging), so series
dropped since the last run do not linger. Readers on other connections see
the old day until the commit, and a failure anywhere rolls everything back.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from collections.abc import Iterable

import polars as pl
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from shelfcast.errors import ConfigError, StoreError
from shelfcast.io.stores.base import store_errors
from shelfcast.io.stores.batches import ordered_batches
from shelfcast.io.stores.schema import PREDICTION_COLUMNS, PREDICTION_KEY, PREDICTION_SCHEMA, validate_predictions
from shelfcast.redact import redact

log = logging.getLogger(__name__)
_COPY_ROWS = 100_000
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PG_TYPES = {
    pl.Date(): "date",
    pl.Datetime("us", "UTC"): "timestamptz",
    pl.String(): "text",
    pl.Int32(): "integer",
    pl.Float64(): "double precision",
    pl.Boolean(): "boolean",
}


def split_table(name: str) -> tuple[str, str]:
    """`schema.table` or `table` (schema public), each a plain SQL identifier."""
    parts = name.split(".")
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise ConfigError(f"`prediction_table` must be TABLE or SCHEMA.TABLE of letters, digits and _, got {name!r}")
    return ("public", parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _password(url: str) -> str | None:
    """The password of a URL or key/value connection string (None if it has none or cannot be parsed)."""
    try:
        password = conninfo_to_dict(url).get("password")
        return str(password) if password else None
    except psycopg.Error:
        return None


class PostgresStore:
    """A `predictions` table (name configurable) in the database at `url`."""

    def __init__(self, url: str, *, table: str = "predictions") -> None:
        self.url = url
        self._secret = _password(url)
        self.schema, self.table = split_table(table)
        self._target = sql.Identifier(self.schema, self.table)

    @property
    def location(self) -> str:
        return f"{redact(self.url, self._secret)} table {self.schema}.{self.table}"

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(self.url, connect_timeout=5, options="-c timezone=UTC")
        except psycopg.OperationalError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = lines[0].removeprefix("connection failed: ") if lines else type(exc).__name__
            raise StoreError(redact(f"PostgreSQL at {self.url} is unreachable: {reason}", self._secret)) from None

    @store_errors(psycopg.Error, OSError)
    def check(self) -> None:
        with self.connect() as conn:
            self.create(conn)

    def create(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        columns = [
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name),
                sql.SQL(_PG_TYPES[c.dtype]),
                sql.SQL("" if c.nullable else " NOT NULL"),
            )
            for c in PREDICTION_COLUMNS
        ]
        key = sql.SQL(", ").join(sql.Identifier(k) for k in PREDICTION_KEY)
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
                    self._target, sql.SQL(", ").join(columns), key
                )
            )
            found = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                (self.schema, self.table),
            ).fetchall()
        missing = [c for c in PREDICTION_SCHEMA if c not in {row[0] for row in found}]
        if missing:
            # A table from an older shelfcast (or someone else's): say so rather than fail inside COPY.
            raise StoreError(
                f"{self.location} exists without column(s) {', '.join(missing)}: add them "
                f"(ALTER TABLE ... ADD COLUMN), drop the table, or set `prediction_table` to a new name"
            )

    @store_errors(psycopg.Error, OSError)
    def write(self, predictions: pl.DataFrame, *, scored_on: dt.date) -> int:
        frame = validate_predictions(predictions, scored_on=scored_on)
        with self.connect() as conn:
            self.create(conn)
            replace_day(conn, self._target, frame, scored_on=scored_on)
        return frame.height

    @store_errors(psycopg.Error, OSError)
    def write_batches(self, batches: Iterable[pl.DataFrame], *, scored_on: dt.date) -> int:
        """Replace the day with rows arriving in batches (Spark's scores), staged as they come, swapped once.

        Each batch is checked as `write` checks a frame, and the batches must come
        in key order (`ordered_batches`: a row repeated across batches is refused
        by name, as the table's key would); any failure rolls the whole day back.
        """
        with self.connect() as conn:
            self.create(conn)
            return stage_and_swap(
                conn,
                self._target,
                ordered_batches(batches, scored_on=scored_on),
                columns=list(PREDICTION_SCHEMA),
                scored_on=scored_on,
            )

    @store_errors(psycopg.Error, OSError)
    def read(self, *, scored_on: dt.date | None = None) -> pl.DataFrame:
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in PREDICTION_SCHEMA)
        order = sql.SQL(", ").join(sql.Identifier(k) for k in PREDICTION_KEY)
        where = sql.SQL("WHERE scored_on = %s" if scored_on else "")
        query = sql.SQL("SELECT {} FROM {} {} ORDER BY {}").format(columns, self._target, where, order)
        with self.connect() as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.{self.table}",)).fetchone()
            if not exists or exists[0] is None:
                return pl.DataFrame(schema=PREDICTION_SCHEMA)
            rows = conn.execute(query, (scored_on,) if scored_on else None).fetchall()
        return pl.DataFrame(rows, schema=PREDICTION_SCHEMA, orient="row")

    @store_errors(psycopg.Error, OSError)
    def latest_day(self) -> dt.date | None:
        query = sql.SQL("SELECT max(scored_on) FROM {}").format(self._target)
        with self.connect() as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.{self.table}",)).fetchone()
            if not exists or exists[0] is None:
                return None
            row = conn.execute(query).fetchone()
        day = row[0] if row else None
        return day if isinstance(day, dt.date) else None


def replace_day(
    conn: psycopg.Connection[tuple[object, ...]], target: sql.Composable, frame: pl.DataFrame, *, scored_on: dt.date
) -> None:
    """COPY `frame` into a staging table, then swap the day's rows, all in one transaction."""
    stage_and_swap(conn, target, [frame], columns=frame.columns, scored_on=scored_on)


def stage_and_swap(
    conn: psycopg.Connection[tuple[object, ...]],
    target: sql.Composable,
    frames: Iterable[pl.DataFrame],
    *,
    columns: list[str],
    scored_on: dt.date,
) -> int:
    """COPY every frame (each of `columns`, in order) into a staging table, then swap the day's rows, all in one
    transaction; the rows staged. Frames are read one at a time, so the day need not fit in memory."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    staged = 0
    with conn.transaction():
        # LIKE copies the NOT NULL constraints: a bad row fails the COPY, before the table is touched.
        conn.execute(sql.SQL("CREATE TEMP TABLE shelfcast_staging (LIKE {}) ON COMMIT DROP").format(target))
        copy = sql.SQL("COPY shelfcast_staging ({}) FROM STDIN (FORMAT csv, NULL '\\N')").format(names)
        with conn.cursor().copy(copy) as pipe:
            for frame in frames:
                rows = frame.select(columns)
                for offset in range(0, rows.height, _COPY_ROWS):
                    buf = io.BytesIO()
                    rows.slice(offset, _COPY_ROWS).write_csv(buf, include_header=False, null_value="\\N")
                    pipe.write(buf.getvalue())
                staged += rows.height
        swap_day(conn, target, names, scored_on)
    return staged


def swap_day(
    conn: psycopg.Connection[tuple[object, ...]], target: sql.Composable, names: sql.Composable, scored_on: dt.date
) -> None:
    deleted = conn.execute(sql.SQL("DELETE FROM {} WHERE scored_on = %s").format(target), (scored_on,)).rowcount
    inserted = conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM shelfcast_staging").format(target, names, names)
    ).rowcount
    log.info("predictions of %s: %d replaced by %d", scored_on, deleted, inserted)
