"""Spark's prediction rows into a prediction store: staged as Parquet by the executors, then swapped in whole.

The executors write the scores, sorted by key, as Parquet files in a staging
folder (Spark's commit keeps one attempt's output per task, so a retried task
adds no rows); the driver then streams those files batch by batch into the
store's own batch writer, which replaces the day atomically as `write` does
(a renamed file, one PostgreSQL transaction, one Delta commit). The day never
has to fit in the driver's memory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow.parquet as pq

from shelfcast.io.stores import PREDICTION_SCHEMA, PredictionStore
from shelfcast.io.stores.schema import SCORED_AT

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ROW_KEY = ("store_id", "item_id", "date")
# Spark writes timestamps its own way (INT96 by default): the run's constant day and time are added on the driver.
CONSTANT = ("scored_on", "scored_at")
BATCH_ROWS = 100_000


@dataclass
class Written:
    """What went into the store: rows, series, alerts (None without any risk) and the first row's stockout version."""

    rows: int = 0
    series: int = 0
    alerts: int = 0
    risk: bool = False
    stockout_version: str | None = None
    staged: float = 0.0  # perf_counter when Spark had scored and staged every row (the rest is the store's write)

    def add(self, frame: pl.DataFrame) -> None:
        if not self.rows and frame.height:
            self.stockout_version = frame["stockout_model_version"][0]
        self.rows += frame.height
        # Every series has exactly one row at horizon 1, carrying its series-level risk and label.
        first = frame.filter(pl.col("horizon") == 1)
        self.series += first.height
        self.alerts += int(first["stockout_label"].fill_null(False).sum())
        self.risk = self.risk or frame["stockout_risk"].is_not_null().any()


def row_columns() -> list[str]:
    """The prediction columns Spark computes (all but the run's constant day and time)."""
    return [c for c in PREDICTION_SCHEMA if c not in CONSTANT]


def write_scores(
    scored: DataFrame,
    store: PredictionStore,
    *,
    scored_on: dt.date,
    scored_at: dt.datetime,
    staging: Path,
) -> Written:
    """Replace `scored_on` in `store` with the rows of `scored` (prediction columns but `scored_on`/`scored_at`).

    `staging` is a folder the executors and the driver both reach (the workspace); it is removed afterwards.
    """
    sweep_staging(staging)
    folder = staging.resolve() / f"scores-{scored_on.isoformat()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Persisted: the sort samples its input before shuffling it, and the scoring must run once, not twice.
    scored.persist()
    try:
        scored.select(row_columns()).orderBy(*ROW_KEY).write.parquet(str(folder))
        files = sorted(folder.glob("part-*.parquet"))  # part numbers follow the sort's ranges: key order
        written = Written(staged=time.perf_counter())
        batches = _tally(_staged(files, scored_on=scored_on, scored_at=scored_at), written)
        count = write_batches(store, batches, scored_on=scored_on)
        assert count == written.rows, (count, written.rows)
        return written
    finally:
        scored.unpersist()
        shutil.rmtree(folder, ignore_errors=True)


_STAGED = re.compile(r"scores-\d{4}-\d{2}-\d{2}-(\d+)-[0-9a-f]{8}")


def sweep_staging(staging: Path) -> list[Path]:
    """Remove the staging folders of scorings that died before cleaning up (a driver killed with -9): those whose
    driver process (its pid in the name, on this machine: the driver writes here) is gone. Returns them."""
    removed = []
    for folder in staging.glob("scores-*"):
        named = _STAGED.fullmatch(folder.name)
        if named is None or _alive(int(named[1])):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _staged(files: list[Path], *, scored_on: dt.date, scored_at: dt.datetime) -> Iterator[pl.DataFrame]:
    """The staged rows in batches, with the run's day and time, in the store's column order."""
    constant = [
        pl.lit(scored_on).alias("scored_on"),
        pl.lit(scored_at.astimezone(dt.UTC)).cast(SCORED_AT).alias("scored_at"),
    ]
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame.with_columns(constant).select(PREDICTION_SCHEMA.keys())


def _tally(batches: Iterable[pl.DataFrame], written: Written) -> Iterator[pl.DataFrame]:
    for frame in batches:
        written.add(frame)
        yield frame


def write_batches(store: PredictionStore, batches: Iterable[pl.DataFrame], *, scored_on: dt.date) -> int:
    """The store's batch writer (the day replaced whole); a store without one gets every batch in one frame."""
    from shelfcast.io.stores.delta import DeltaStore

    if isinstance(store, DeltaStore):
        from shelfcast.io.stores.batches import write_delta_batches

        return write_delta_batches(store, batches, scored_on=scored_on)
    writer = getattr(store, "write_batches", None)
    if writer is not None:
        count: int = writer(batches, scored_on=scored_on)
        return count
    frames = list(batches)
    return store.write(pl.concat(frames) if frames else pl.DataFrame(schema=PREDICTION_SCHEMA), scored_on=scored_on)
