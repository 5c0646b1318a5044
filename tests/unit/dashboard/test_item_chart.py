"""The Item page's chart: the right days marked, units and dates on the axes, readable without colour."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from shelfcast.dashboard.item_chart import FORECAST, SOLD, STOCKOUT, contribution_chart, item_chart

DAY = dt.date(2024, 3, 1)


def history() -> pl.DataFrame:
    days = [DAY + dt.timedelta(days=n) for n in range(10)]
    return pl.DataFrame(
        {
            "date": days,
            "units": [5.0, 4, 0, 6, 2, 0, 3, 4, 5, 1],
            "promo": [0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
            "price": [2.0] * 10,
            "on_hand": [9.0, 5, 0, 7, 3, None, 4, 2, 6, 0],
            "stockout_hours": [None, None, None, None, None, 5.0, None, None, None, None],
        }
    )


def forecast() -> pl.DataFrame:
    days = [DAY + dt.timedelta(days=10 + n) for n in range(3)]
    return pl.DataFrame({"date": days, "p10": [1.0, 1, 1], "p50": [3.0, 3, 3], "p90": [6.0, 6, 6]})


def layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec["layer"])


def rows(spec: dict[str, Any], layer: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec["datasets"][layer["data"]["name"]])


def test_stockout_days_are_crossed_and_shaded() -> None:
    events = pl.DataFrame({"date": [DAY + dt.timedelta(days=4)], "event": ["Easter"]})
    spec = item_chart(history(), forecast(), events, cutoff=DAY + dt.timedelta(days=9)).to_dict()
    marks = {
        (layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]): layer for layer in layers(spec)
    }
    crossed = rows(spec, marks["point"])
    # On hand 0 (days 2 and 9) or hours out of stock (day 5): three stockout days, a cross each and a shaded band.
    assert sorted(r["date"][:10] for r in crossed) == ["2024-03-03", "2024-03-06", "2024-03-10"]
    assert marks["point"]["encoding"]["shape"]["scale"]["range"] == ["cross"]
    assert len(rows(spec, marks["rect"])) == 3
    assert len(rows(spec, marks["tick"])) == 2  # the promotion days
    line = rows(spec, marks["line"])
    assert {r["what"] for r in line} == {SOLD, FORECAST}
    # The two lines differ by dash as well as by colour; axes name the unit and the date.
    assert marks["line"]["encoding"]["strokeDash"]["scale"]["range"] == [[1, 0], [6, 3]]
    assert marks["line"]["encoding"]["y"]["title"] == "Units per day"
    assert marks["line"]["encoding"]["x"]["title"] == "Date"
    assert any(r.get("event") == "Easter" for layer in layers(spec) if "data" in layer for r in rows(spec, layer))
    assert STOCKOUT in str(spec)


def test_weekly_data_says_weeks_and_a_missing_forecast_is_fine() -> None:
    spec = item_chart(history(), None, pl.DataFrame(schema={"date": pl.Date, "event": pl.String}), unit="week")
    line = next(layer for layer in spec.to_dict()["layer"] if layer["mark"]["type"] == "line")
    assert line["encoding"]["y"]["title"] == "Units per week"


def test_contributions_say_the_direction_in_the_legend_not_only_by_colour() -> None:
    reasons = pl.DataFrame(
        {
            "text": ["sold 30% above its 4-week average", "on promotion"],
            "contribution": [0.8, -0.3],
            "direction": ["up", "down"],
        }
    )
    spec = contribution_chart(reasons).to_dict()
    assert "raises the risk" in spec["encoding"]["color"]["legend"]["labelExpr"]
    assert spec["encoding"]["x"]["title"].startswith("Push on the risk")
