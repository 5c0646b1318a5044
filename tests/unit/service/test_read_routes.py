"""The read routes on a scoring day held in memory: spans per series, weekly periods, ranking and advice."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from fastapi import HTTPException
from prediction_rows import SCORED_ON, prediction_rows

from shelfcast.service.predictions import ScoringDay
from shelfcast.service.routes_read import alerts, forecast, reorder


def _day(frame: pl.DataFrame) -> ScoringDay:
    return ScoringDay.of(frame, SCORED_ON)


def test_spans_cover_each_series_rows_in_date_order() -> None:
    day = _day(prediction_rows(series=3, horizon=4).sample(fraction=1.0, shuffle=True, seed=3))
    assert len(day.spans) == 3
    for (store, item), (start, end) in day.spans.items():
        rows = day.rows.slice(start, end - start)
        assert set(rows["store_id"]) == {store} and set(rows["item_id"]) == {item}
        assert rows["horizon"].to_list() == [1, 2, 3, 4]
    # Sorted by store then item: S0/I0, S0/I2, S1/I1.
    assert day.series["forecast_7"].to_list() == pytest.approx([4 * 5.0, 4 * 7.0, 4 * 6.0])


def test_a_date_inside_a_week_finds_that_weeks_forecast() -> None:
    weekly = prediction_rows(series=1, horizon=3).with_columns(
        (pl.lit(SCORED_ON) + pl.duration(days=7 * pl.col("horizon"))).alias("date")
    )
    day = _day(weekly)
    first_week = SCORED_ON + dt.timedelta(days=7)
    inside = forecast(day, "S0", "I0", first_week + dt.timedelta(days=3))
    assert [p.date for p in inside.points] == [first_week]
    with pytest.raises(HTTPException) as outside:
        forecast(day, "S0", "I0", SCORED_ON + dt.timedelta(days=40))
    assert outside.value.status_code == 404 and "outside what was scored" in str(outside.value.detail)


def test_alerts_rank_by_risk_and_reorder_keeps_positive_orders() -> None:
    day = _day(prediction_rows(series=4))
    every = alerts(day, store_id=None, min_risk=0.0, limit=10)
    assert [a.stockout_risk for a in every.alerts] == sorted((a.stockout_risk for a in every.alerts), reverse=True)
    flagged = alerts(day, store_id=None, min_risk=None, limit=10)
    assert {(a.store_id, a.item_id) for a in flagged.alerts} == {("S0", "I2"), ("S1", "I3")}
    assert alerts(day, store_id="S1", min_risk=0.0, limit=1).count == 2  # counted before the limit
    lines = reorder(day, "S0", include_all=False).lines
    assert [line.item_id for line in lines] == ["I0", "I2"]
    with pytest.raises(HTTPException) as unknown:
        reorder(day, "S9", include_all=False)
    assert unknown.value.status_code == 404


def test_a_scoring_without_risk_says_so() -> None:
    with pytest.raises(HTTPException) as none:
        alerts(_day(prediction_rows(stock=False)), store_id=None, min_risk=None, limit=10)
    assert none.value.status_code == 409 and "no stockout risk" in str(none.value.detail)


def test_a_single_week_ending_period_holds_the_days_before_its_date() -> None:
    from shelfcast.service.routes_read import Period
    from shelfcast.types import PeriodAnchor

    friday = SCORED_ON + dt.timedelta(days=(4 - SCORED_ON.weekday()) % 7 + 7)
    weekly = prediction_rows(series=1, horizon=1).with_columns(pl.lit(friday).alias("date"))
    day = _day(weekly)
    week = Period(7, PeriodAnchor.END)
    for inside in (friday - dt.timedelta(days=6), friday):
        assert [p.date for p in forecast(day, "S0", "I0", inside, week).points] == [friday]
    for outside in (friday + dt.timedelta(days=1), friday - dt.timedelta(days=7)):
        with pytest.raises(HTTPException):
            forecast(day, "S0", "I0", outside, week)
