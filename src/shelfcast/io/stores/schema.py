"""The prediction row: what every prediction store holds, and its check before a write.

One row per series, scoring day and forecast date. Series-level values
(stockout risk, label, threshold and the reorder advice) are repeated on each
of the series' horizon rows, so a reader needs no join.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.schemas import Column

_STR = pl.String()
_F64 = pl.Float64()
_DATE = pl.Date()
SCORED_AT = pl.Datetime("us", "UTC")

PREDICTION_COLUMNS: tuple[Column, ...] = (
    Column("scored_on", _DATE, "Scoring day: the partition a re-run of that day replaces."),
    Column("scored_at", SCORED_AT, "When the batch ran (UTC)."),
    Column("store_id", _STR, "Store key."),
    Column("item_id", _STR, "Item key."),
    Column("date", _DATE, "Forecast day (weekly data: the period's date)."),
    Column("horizon", pl.Int32(), "Steps after the cutoff, 1 = the first forecast period.", minimum=1),
    Column("forecast", _F64, "Point forecast of demand.", minimum=0.0),
    Column("p10", _F64, "10 % quantile of demand.", minimum=0.0),
    Column("p50", _F64, "Median demand.", minimum=0.0),
    Column("p90", _F64, "90 % quantile of demand.", minimum=0.0),
    Column(
        "stockout_risk",
        _F64,
        "Calibrated probability of a stockout in the risk window; null on sales-only data.",
        nullable=True,
        minimum=0.0,
        maximum=1.0,
    ),
    Column("stockout_label", pl.Boolean(), "Alert: risk >= threshold; null on sales-only data.", nullable=True),
    Column("threshold", _F64, "Alert threshold chosen on held-out origins.", nullable=True, minimum=0.0, maximum=1.0),
    Column("safety_stock", _F64, "Safety stock for the service level.", nullable=True, minimum=0.0),
    Column("reorder_point", _F64, "Order when the stock position falls below this.", nullable=True, minimum=0.0),
    Column("order_up_to", _F64, "Target stock position after an order.", nullable=True, minimum=0.0),
    Column("order_quantity", _F64, "Units to order now; null where stock is unknown.", nullable=True, minimum=0.0),
    Column("model_name", _STR, "Registered demand model that produced the forecast."),
    Column("model_version", _STR, "Its version (`local` when not from the registry)."),
    Column("run_id", _STR, "MLflow run id of the demand model; null when not tracked.", nullable=True),
    Column(
        "stockout_model_version",
        _STR,
        "Version of the stockout model that gave the risk (`local` when not from the registry); null without risk.",
        nullable=True,
    ),
)
PREDICTION_SCHEMA: dict[str, pl.DataType] = {c.name: c.dtype for c in PREDICTION_COLUMNS}
PREDICTION_KEY = ("scored_on", "store_id", "item_id", "date")


def validate_predictions(frame: pl.DataFrame, *, scored_on: dt.date) -> pl.DataFrame:
    """The frame in schema order if every column and row fits, else a DataValidationError naming the column.

    Integer and float columns of another width are cast; anything else of the
    wrong type is refused rather than guessed.
    """
    missing = [c for c in PREDICTION_SCHEMA if c not in frame.columns]
    if missing:
        raise DataValidationError(f"predictions miss column(s) {', '.join(missing)}")
    extra = [c for c in frame.columns if c not in PREDICTION_SCHEMA]
    if extra:
        raise DataValidationError(f"predictions have unexpected column(s) {', '.join(extra)}")
    casts = []
    for col in PREDICTION_COLUMNS:
        dtype = frame.schema[col.name]
        same = dtype in (col.dtype, pl.Null)
        widened = (dtype.is_integer() and col.dtype.is_integer()) or (dtype.is_numeric() and col.dtype == _F64)
        if same or widened:
            casts.append(pl.col(col.name).cast(col.dtype))
        else:
            raise DataValidationError(f"predictions column `{col.name}` is {dtype}, expected {col.dtype}")
    typed = frame.select(casts)
    for col in PREDICTION_COLUMNS:
        _check_column(typed, col)
    other = typed.filter(pl.col("scored_on") != scored_on)
    if other.height:
        raise DataValidationError(
            f"predictions column `scored_on` must be {scored_on} (the day being written), got {other['scored_on'][0]}"
        )
    duplicated = typed.select(PREDICTION_KEY).is_duplicated()
    if duplicated.any():
        first = typed.filter(duplicated).row(0, named=True)
        key = ", ".join(f"{k}={first[k]}" for k in PREDICTION_KEY)
        raise DataValidationError(f"predictions have more than one row for ({key})")
    return typed


def _check_column(frame: pl.DataFrame, col: Column) -> None:
    c = pl.col(col.name)
    rules: list[tuple[str, pl.Expr]] = []
    if not col.nullable:
        rules.append(("is empty", c.is_null()))
    if col.dtype == _F64:
        rules.append(("is NaN or infinite", c.is_not_null() & ~c.is_finite()))
    if col.minimum is not None:
        rules.append((f"is below {col.minimum:g}", c < col.minimum))
    if col.maximum is not None:
        rules.append((f"is above {col.maximum:g}", c > col.maximum))
    for problem, failing in rules:
        bad = frame.select(failing.fill_null(False).sum()).item()
        if bad:
            value = frame.filter(failing.fill_null(False))[col.name][0]
            raise DataValidationError(
                f"predictions column `{col.name}` {problem} in {bad:,} row(s) (first value: {value!r})"
            )
