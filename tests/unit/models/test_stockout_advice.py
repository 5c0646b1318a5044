"""The stockout job's pure helpers: which definition the data supports, weekly forecasts as days."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.errors import ConfigError, DataValidationError
from shelfcast.features.labels import definition_for
from shelfcast.features.panel import Panel
from shelfcast.models.replenish import Z90, daily_forecast, reorder_advice

D0 = dt.date(2024, 1, 1)


def panel(freq: str = "D", **columns: list[float]) -> Panel:
    frame = pl.DataFrame({"store_id": "S", "item_id": "A", "date": [D0, D0 + dt.timedelta(days=7)], "y": [1.0, 2.0]})
    return Panel(frame.with_columns(pl.Series(k, v) for k, v in columns.items()), freq)


def test_sales_only_data_has_no_stockout_definition() -> None:
    with pytest.raises(DataValidationError, match="stockout risk needs stock data, and the lake has sales only"):
        definition_for(panel(), risk_days=7, min_hours=None)


def test_min_hours_needs_hours() -> None:
    assert definition_for(panel(on_hand=[3.0, 0.0]), risk_days=7, min_hours=None).use_on_hand
    assert definition_for(panel(stockout_hours=[0.0, 5.0]), risk_days=7, min_hours=4).min_hours == 4
    with pytest.raises(ConfigError, match="`--min-hours` 4 needs stockout hours, but the inventory has on_hand only"):
        definition_for(panel(on_hand=[3.0, 0.0]), risk_days=7, min_hours=4)


WEEKS = pl.DataFrame(
    {
        "store_id": "S",
        "item_id": "A",
        "date": [D0, D0 + dt.timedelta(days=7)],
        "h": [1, 2],
        "forecast": [70.0, 140.0],
        "p10": [50.0, 100.0],
        "p50": [68.0, 138.0],
        "p90": [95.0, 180.0],
    }
)


def test_weekly_forecasts_become_days_with_the_weeks_mean_and_variance() -> None:
    days = daily_forecast(WEEKS)
    assert days.height == 14 and days["date"].to_list() == [D0 + dt.timedelta(days=i) for i in range(14)]
    sd = ((pl.col("p90") - pl.col("p10")) / (2 * Z90)).alias("sd")
    # Seven independent days add up to the week: means add, variances add.
    weeks = days.group_by("h").agg(pl.col("forecast").sum(), sd.pow(2).sum().sqrt()).sort("h")
    assert weeks["forecast"].to_list() == pytest.approx(WEEKS["forecast"].to_list())
    assert weeks["sd"].to_list() == pytest.approx(WEEKS.select(sd)["sd"].to_list())


def test_reorder_advice_on_weekly_data_covers_lead_time_and_review_period() -> None:
    # Two weeks of forecasts cover a 7-day lead time plus a 7-day review period.
    advice = reorder_advice(panel("W"), WEEKS, cutoff=D0, lead_time_days=7, service_level=0.95)
    row = advice.row(0, named=True)
    assert row["reorder_point"] == pytest.approx(70.0 + row["safety_stock"])
    assert row["order_up_to"] > 210.0
