"""Predictions as Parquet in the workspace, one hive partition per scoring day, queryable with DuckDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from shelfcast.errors import StoreError
from shelfcast.io.files import atomic_write, remove_orphans
from shelfcast.io.stores.base import store_errors
from shelfcast.io.stores.batches import ordered_batches
from shelfcast.io.stores.schema import PREDICTION_KEY, PREDICTION_SCHEMA, validate_predictions

PART = "part.parquet"
_FAILURES = (OSError, pl.exceptions.PolarsError, pa.ArrowException)  # a full disk, no permission, a damaged file
VIEW = "predictions"


class ParquetStore:
    """`<root>/scored_on=YYYY-MM-DD/part.parquet`; the day is in the path, not in the file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    @store_errors(*_FAILURES)
    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def partition(self, scored_on: dt.date) -> Path:
        return self.root / f"scored_on={scored_on.isoformat()}" / PART

    @store_errors(*_FAILURES)
    def write(self, predictions: pl.DataFrame, *, scored_on: dt.date) -> int:
        frame = validate_predictions(predictions, scored_on=scored_on).sort(PREDICTION_KEY)
        target = self.partition(scored_on)
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(target.parent)  # what a scorer killed mid-write left
        rows = frame.drop("scored_on")
        # A reader sees the old file or the new one, never half of either: rename is atomic. The temporary name is
        # unique, so two scorings of one day never take each other's file (the last one renamed wins).
        atomic_write(target, lambda tmp: rows.write_parquet(tmp, compression="zstd", statistics=True), error=StoreError)
        return frame.height

    @store_errors(*_FAILURES)
    def write_batches(self, batches: Iterable[pl.DataFrame], *, scored_on: dt.date) -> int:
        """Replace the day with rows arriving in batches (Spark's scores), each checked as `write` checks a frame.

        The batches must come sorted by key, each after the last (`ordered_batches` checks it): the file is then
        sorted as `write` sorts it, and no row repeats across batches. The file is renamed into place only once
        complete, so readers see the old day or the new one, as with `write`.
        """
        target = self.partition(scored_on)
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(target.parent)
        schema = pl.DataFrame(schema=PREDICTION_SCHEMA).drop("scored_on").to_arrow().schema
        written = 0

        def stream(tmp: Path) -> None:
            nonlocal written
            with pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True) as out:
                for batch in ordered_batches(batches, scored_on=scored_on):
                    out.write_table(batch.drop("scored_on").to_arrow().cast(schema))
                    written += batch.height

        atomic_write(target, stream, error=StoreError)
        return written

    @store_errors(*_FAILURES)
    def read(self, *, scored_on: dt.date | None = None) -> pl.DataFrame:
        if scored_on is not None:
            path = self.partition(scored_on)
            if not path.exists():
                return pl.DataFrame(schema=PREDICTION_SCHEMA)
            frame = pl.read_parquet(path).with_columns(pl.lit(scored_on).alias("scored_on"))
        elif not any(self.root.glob(f"scored_on=*/{PART}")):
            return pl.DataFrame(schema=PREDICTION_SCHEMA)
        else:
            frame = pl.read_parquet(
                self.root / "**" / PART, hive_partitioning=True, hive_schema={"scored_on": pl.Date()}
            )
        return frame.select(PREDICTION_SCHEMA.keys()).sort(PREDICTION_KEY)

    @store_errors(*_FAILURES)
    def latest_day(self) -> dt.date | None:
        days = []
        for path in self.root.glob(f"scored_on=*/{PART}"):
            try:
                days.append(dt.date.fromisoformat(path.parent.name.removeprefix("scored_on=")))
            except ValueError:  # a folder someone else made: not a scoring day
                continue
        return max(days, default=None)

    def query(self, sql: str) -> pl.DataFrame:
        """Run DuckDB SQL over the view `predictions` (every scoring day, `scored_on` from the path)."""
        import duckdb

        pattern = str(self.root / f"scored_on=*/{PART}").replace("'", "''")
        with duckdb.connect() as con:
            con.execute(
                f"CREATE VIEW {VIEW} AS SELECT * FROM read_parquet('{pattern}', "
                "hive_partitioning = true, hive_types = {'scored_on': DATE})"
            )
            result: pl.DataFrame = con.sql(sql).pl()
            return result
