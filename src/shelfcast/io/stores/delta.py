"""The Delta prediction store: the Delta table `<workspace>/delta/predictions`, beside the raw and feature
tables written on request (`io.delta_tables`).

Predictions are partitioned by `scored_on`; a write replaces that day with a
replace-where overwrite (one atomic commit), so earlier versions stay
readable by time travel until vacuumed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from shelfcast.io.stores.base import store_errors
from shelfcast.io.stores.schema import PREDICTION_KEY, PREDICTION_SCHEMA, validate_predictions

_FAILURES = (OSError, DeltaError, pa.ArrowException)


class DeltaStore:
    """The `predictions` Delta table under `<root>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def path(self) -> Path:
        return self.root / "predictions"

    @store_errors(*_FAILURES)
    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @store_errors(*_FAILURES)
    def write(self, predictions: pl.DataFrame, *, scored_on: dt.date) -> int:
        frame = validate_predictions(predictions, scored_on=scored_on)
        write_deltalake(
            self.path,
            frame.to_arrow(),
            mode="overwrite",
            partition_by=["scored_on"],
            predicate=f"scored_on = '{scored_on.isoformat()}'",
        )
        return frame.height

    @store_errors(*_FAILURES)
    def read(self, *, scored_on: dt.date | None = None, version: int | None = None) -> pl.DataFrame:
        """One scoring day or all of them, at the latest version or an earlier one (time travel)."""
        if not DeltaTable.is_deltatable(str(self.path)):
            return pl.DataFrame(schema=PREDICTION_SCHEMA)
        table = DeltaTable(self.path, version=version)
        filters = [("scored_on", "=", scored_on)] if scored_on else None
        frame = pl.from_arrow(table.to_pyarrow_table(filters=filters))
        assert isinstance(frame, pl.DataFrame)
        return frame.select(PREDICTION_SCHEMA.keys()).cast(pl.Schema(PREDICTION_SCHEMA)).sort(PREDICTION_KEY)

    @store_errors(*_FAILURES)
    def latest_day(self) -> dt.date | None:
        if not DeltaTable.is_deltatable(str(self.path)):
            return None
        days = [dt.date.fromisoformat(p["scored_on"]) for p in DeltaTable(self.path).partitions() if p.get("scored_on")]
        return max(days, default=None)

    @store_errors(*_FAILURES)
    def version(self) -> int | None:
        return DeltaTable(self.path).version() if DeltaTable.is_deltatable(str(self.path)) else None
