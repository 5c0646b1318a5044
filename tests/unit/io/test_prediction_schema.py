"""The prediction row check: a bad frame is refused with the column named, a good one passes typed."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from prediction_rows import SCORED_ON, prediction_rows

from shelfcast.errors import ConfigError, DataValidationError
from shelfcast.io.stores.postgres import redact, split_table
from shelfcast.io.stores.schema import PREDICTION_SCHEMA, validate_predictions


def test_valid_rows_pass_in_schema_order() -> None:
    frame = prediction_rows()
    shuffled = frame.select(reversed(frame.columns))
    checked = validate_predictions(shuffled, scored_on=SCORED_ON)
    assert checked.schema == pl.Schema(PREDICTION_SCHEMA)
    assert checked.equals(frame)


def test_sales_only_rows_with_null_stockout_columns_pass() -> None:
    frame = prediction_rows(stock=False).with_columns(pl.lit(None).alias("stockout_label"))
    checked = validate_predictions(frame, scored_on=SCORED_ON)
    assert checked["stockout_risk"].null_count() == checked.height
    assert checked["stockout_label"].dtype == pl.Boolean


def test_other_numeric_widths_are_cast() -> None:
    frame = prediction_rows().with_columns(pl.col("horizon").cast(pl.Int64), pl.col("forecast").cast(pl.Float32))
    checked = validate_predictions(frame, scored_on=SCORED_ON)
    assert checked["horizon"].dtype == pl.Int32
    assert checked["forecast"].dtype == pl.Float64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("p90"), "miss column(s) p90"),
        (lambda f: f.with_columns(pl.lit(1).alias("extra")), "unexpected column(s) extra"),
        (lambda f: f.with_columns(pl.col("date").cast(pl.String)), "column `date` is String, expected Date"),
        (lambda f: f.with_columns(pl.col("store_id").cast(pl.Categorical)), "column `store_id` is Categorical"),
        (lambda f: f.with_columns(pl.lit(None, pl.Float64).alias("forecast")), "column `forecast` is empty"),
        (lambda f: f.with_columns(pl.lit(float("nan")).alias("p50")), "column `p50` is NaN or infinite"),
        (lambda f: f.with_columns(pl.lit(-1.0).alias("p10")), "column `p10` is below 0"),
        (lambda f: f.with_columns(pl.lit(1.5).alias("stockout_risk")), "column `stockout_risk` is above 1"),
        (lambda f: f.with_columns(pl.lit(0, pl.Int32).alias("horizon")), "column `horizon` is below 1"),
        (lambda f: f.with_columns(pl.lit(None, pl.String).alias("model_name")), "column `model_name` is empty"),
    ],
)
def test_bad_frames_name_the_column(change: object, message: str) -> None:
    frame = change(prediction_rows())  # type: ignore[operator]
    with pytest.raises(DataValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_predictions(frame, scored_on=SCORED_ON)


def test_rows_of_another_scoring_day_are_refused() -> None:
    with pytest.raises(DataValidationError, match=r"`scored_on` must be 2026-11-24"):
        validate_predictions(prediction_rows(), scored_on=SCORED_ON + dt.timedelta(days=1))


def test_duplicate_keys_are_refused() -> None:
    frame = prediction_rows()
    with pytest.raises(DataValidationError, match="more than one row for"):
        validate_predictions(pl.concat([frame, frame.head(1)]), scored_on=SCORED_ON)


def test_table_names_are_plain_identifiers() -> None:
    assert split_table("predictions") == ("public", "predictions")
    assert split_table("ops.preds") == ("ops", "preds")
    for bad in ("a.b.c", "drop table;", "1abc", ""):
        with pytest.raises(ConfigError, match="prediction_table"):
            split_table(bad)


def test_passwords_are_hidden_in_messages() -> None:
    assert redact("postgresql://u:secret@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert redact("postgresql://127.0.0.1:5432/test") == "postgresql://127.0.0.1:5432/test"
