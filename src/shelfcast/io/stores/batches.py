"""A scoring day's predictions arriving in batches (Spark's scores, too many for one frame): checked as they come.

Each store still replaces the day whole: the batches are staged (a temporary
file, a staging table, uncommitted Delta files) and swapped in once all have
arrived and passed the checks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from shelfcast.errors import DataValidationError
from shelfcast.io.stores.base import store_errors
from shelfcast.io.stores.schema import PREDICTION_KEY, PREDICTION_SCHEMA, validate_predictions

if TYPE_CHECKING:
    from shelfcast.io.stores.delta import DeltaStore

_ROW_KEY = tuple(k for k in PREDICTION_KEY if k != "scored_on")  # scored_on is the day's, the same on every row


def ordered_batches(batches: Iterable[pl.DataFrame], *, scored_on: dt.date) -> Iterator[pl.DataFrame]:
    """Each batch checked (`validate_predictions`), sorted by key, and after the previous batch's last row.

    In key order a row repeated across batches would be out of order, so the
    checks together refuse duplicates over the whole day without holding it.
    """
    last: tuple[object, ...] | None = None
    for batch in batches:
        frame = validate_predictions(batch, scored_on=scored_on)
        if frame.is_empty():
            continue
        keys = frame.select(_ROW_KEY)
        if not keys.equals(keys.sort(_ROW_KEY)):
            raise DataValidationError("prediction batches must each be sorted by store_id, item_id, date")
        first = keys.row(0)
        if last is not None and not first > last:
            where = ", ".join(f"{k}={v}" for k, v in zip(_ROW_KEY, first, strict=True))
            raise DataValidationError(f"predictions have more than one row for (or are out of order at) ({where})")
        last = keys.row(-1)
        yield frame


def arrow_schema() -> pa.Schema:
    """The Arrow schema of a prediction frame (as `pl.DataFrame.to_arrow` gives it)."""
    return pl.DataFrame(schema=PREDICTION_SCHEMA).to_arrow().schema


def _delta_failures() -> tuple[type[Exception], ...]:
    from deltalake.exceptions import DeltaError

    return (OSError, DeltaError, pa.ArrowException)


def write_delta_batches(store: DeltaStore, batches: Iterable[pl.DataFrame], *, scored_on: dt.date) -> int:
    """Replace the day of the Delta store's predictions with rows arriving in batches, in one commit.

    The same replace-where overwrite `DeltaStore.write` makes, fed from an
    Arrow stream: the data files are written as batches come, and the commit
    that makes them visible happens only after the last one (a failure leaves
    files no version lists). Here rather than in `io/stores/delta.py` (another
    change owns that file); it belongs there as `DeltaStore.write_batches`.
    """
    from deltalake import write_deltalake

    schema = arrow_schema()
    written = 0

    def stream() -> Iterator[pa.RecordBatch]:
        nonlocal written
        for frame in ordered_batches(batches, scored_on=scored_on):
            written += frame.height
            yield from frame.to_arrow().cast(schema).to_batches()

    @store_errors(*_delta_failures())
    def write(_: DeltaStore) -> None:
        write_deltalake(
            store.path,
            pa.RecordBatchReader.from_batches(schema, stream()),
            mode="overwrite",
            partition_by=["scored_on"],
            predicate=f"scored_on = '{scored_on.isoformat()}'",
        )

    write(store)
    return written
