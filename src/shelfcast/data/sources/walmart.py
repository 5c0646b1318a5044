"""Kaggle "Walmart Recruiting - Store Sales Forecasting": weekly sales per store department.

train -> sales (Store x Dept; Weekly_Sales is a dollar value), features ->
store-level exogenous covariates and the holiday calendar, stores -> stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from shelfcast.data.dates import parse_expr
from shelfcast.data.readers import EXTRA_PREFIX, LINE, scan_table
from shelfcast.data.sources.base import RawPart, SourceData, as_text_id, find_file, flag_events
from shelfcast.data.validate import detect_date_formats
from shelfcast.errors import ConfigError
from shelfcast.schemas import CALENDAR, ExogenousRole

# Markdowns are planned promotions, so they are known for the weeks ahead;
# the economic and weather series are only observed after the fact.
EXOGENOUS_ROLES: dict[str, ExogenousRole] = {
    "Temperature": "past_only",
    "Fuel_Price": "past_only",
    **{f"MarkDown{i}": "known_in_advance" for i in range(1, 6)},
    "CPI": "past_only",
    "Unemployment": "past_only",
}
# Kaggle flags four holidays, one per month in which they fall.
HOLIDAYS_BY_MONTH = {2: "Super Bowl", 9: "Labor Day", 11: "Thanksgiving", 12: "Christmas"}
OTHER_HOLIDAY = "Holiday"
# Kaggle's CSV files write missing markdowns and CPI as NA.
_MISSING = "NA"

NOTES = (
    "walmart: sales.units is Weekly_Sales, the sales VALUE in dollars per store department and week, not a "
    "unit count; weeks with negative sales (returns or adjustments above sales) are quarantined by negative_units.",
    "walmart: item_id is the department (Dept), shared by all stores; dates are the week-ending Friday, as given "
    "(the manifest's period_anchor is `end`: a date looks up the week that holds it).",
    "walmart: the calendar is built from features.IsHoliday (it covers the test weeks too); train.IsHoliday is "
    "fed as a second calendar part, so its rows merge into the same events and any train holiday week that "
    "features does not flag shows up as an extra calendar row.",
)


class WalmartSource:
    """A folder with train, features and stores (.parquet or .csv)."""

    name: ClassVar[str] = "walmart"
    train_columns = ("Store", "Dept", "Date", "Weekly_Sales", "IsHoliday")
    features_columns = ("Store", "Date", *EXOGENOUS_ROLES, "IsHoliday")
    stores_columns = ("Store", "Type", "Size")

    def __init__(self, *, date_format: str | None = None, delimiter: str | None = None) -> None:
        self.date_format = date_format
        self.delimiter = delimiter

    def load(self, path: Path) -> SourceData:
        if not path.is_dir():
            raise ConfigError(f"`--source walmart` expects the folder holding train, features and stores, got {path}")
        train_file = find_file(path, "train", what="Walmart train file")
        features_file = find_file(path, "features", what="Walmart features file")
        stores_file = find_file(path, "stores", what="Walmart stores file")
        train = scan_table(train_file, required=self.train_columns, delimiter=self.delimiter)
        features = scan_table(features_file, required=self.features_columns, delimiter=self.delimiter)
        stores = scan_table(stores_file, required=self.stores_columns, delimiter=self.delimiter)

        sales = train.select(
            pl.col(LINE),
            pl.col("Date").alias("date"),
            as_text_id("Store", "store_id"),
            as_text_id("Dept", "item_id"),
            pl.col("Weekly_Sales").alias("units"),
            pl.selectors.starts_with(EXTRA_PREFIX),
        )
        exogenous = features.select(
            pl.col(LINE),
            pl.col("Date").alias("date"),
            as_text_id("Store", "store_id"),
            pl.lit(None, pl.String).alias("item_id"),
            *[self._number(features, c) for c in EXOGENOUS_ROLES],
            pl.selectors.starts_with(EXTRA_PREFIX),
        )
        store_master = stores.select(
            pl.col(LINE),
            as_text_id("Store", "store_id"),
            pl.col("Type").alias("type"),
            pl.col("Size").alias("size"),
            pl.selectors.starts_with(EXTRA_PREFIX),
        )
        fmt = self.date_format
        parts = [
            RawPart("stores", str(stores_file), store_master, date_format=fmt, dtypes={"size": pl.Int64()}),
            RawPart("sales", str(train_file), sales, date_format=fmt),
            RawPart("exogenous", str(features_file), exogenous, date_format=fmt),
            self._holidays(features, features_file),
            self._holidays(train, train_file),
        ]
        return SourceData(parts=parts, exogenous_roles=EXOGENOUS_ROLES, notes=NOTES, frequency="W", period_anchor="end")

    @staticmethod
    def _number(lf: pl.LazyFrame, column: str) -> pl.Expr:
        """A numeric column as given, with the CSV's NA marker read as missing rather than as a bad number."""
        if lf.collect_schema()[column] != pl.String():
            return pl.col(column)
        return pl.when(pl.col(column).str.strip_chars() != _MISSING).then(pl.col(column)).alias(column)

    def _holidays(self, lf: pl.LazyFrame, file: Path) -> RawPart:
        """Calendar rows for the flagged weeks of a train or features file, named by month."""
        fmt = self.date_format
        if lf.collect_schema()["Date"] == pl.String():
            # Detected on the whole file, not on the few holiday weeks (which
            # could read both day- and month-first), and handed to validation
            # so the event name and the date come from the same reading.
            fmt = detect_date_formats(lf.select(pl.col("Date").alias("date")), CALENDAR, fmt)["date"]
            month = parse_expr(pl.col("Date"), fmt).dt.month()
        else:
            month = pl.col("Date").dt.month()
        name = month.replace_strict(HOLIDAYS_BY_MONTH, default=OTHER_HOLIDAY, return_dtype=pl.String)
        flagged, event = flag_events(lf, "IsHoliday", name)
        rows = flagged.select(
            pl.col(LINE),
            pl.col("Date").alias("date"),
            event,
            pl.lit(None, pl.String).alias("store_id"),
            pl.lit(None, pl.String).alias("region"),
            pl.lit("holiday").alias("kind"),
            pl.selectors.starts_with(EXTRA_PREFIX),
        )
        return RawPart("calendar", str(file), rows, date_format=fmt)


__all__ = ["WalmartSource"]
