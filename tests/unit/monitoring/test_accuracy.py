"""Live accuracy: only known actuals count, per model version, and the degradation rule."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.monitoring.accuracy import (
    demand_by_version,
    demand_over_time,
    demand_scored,
    is_degraded,
    stockout_by_version,
    stockout_over_time,
    stockout_scored,
)

D = dt.date(2024, 3, 1)


def _day(k: int) -> dt.date:
    return D + dt.timedelta(days=k)


def _predictions() -> pl.DataFrame:
    # Scored on day 0 by v1 for days 1..3, on day 2 by v2 for days 3..5; one series.
    rows = [(0, k, k, 10.0, "1") for k in (1, 2, 3)] + [(2, 2 + h, h, 12.0, "2") for h in (1, 2, 3)]
    return pl.DataFrame(
        {
            "scored_on": [_day(r[0]) for r in rows],
            "store_id": "s",
            "item_id": "i",
            "date": [_day(r[1]) for r in rows],
            "horizon": [r[2] for r in rows],
            "forecast": [r[3] for r in rows],
            "stockout_risk": [0.9 if r[4] == "1" else 0.2 for r in rows],
            "stockout_label": [r[4] == "1" for r in rows],
            "model_version": [r[4] for r in rows],
            "stockout_model_version": [r[4] for r in rows],
        }
    )


def test_demand_counts_only_known_days_per_version() -> None:
    actuals = pl.DataFrame({"store_id": "s", "item_id": "i", "date": [_day(k) for k in range(1, 5)], "units": 8.0})
    scored = demand_scored(_predictions(), actuals, known_until=_day(4), lookback_days=28)
    assert scored.height == 5  # day 5 has no actual yet
    by = demand_by_version(scored)
    assert by["1"].value == pytest.approx(2 / 8) and by["1"].rows == 3
    assert by["2"].value == pytest.approx(4 / 8) and by["2"].days == 2
    assert by["1"].extra["mape"] == pytest.approx(25.0)
    over = demand_over_time(scored)
    assert over.filter(pl.col("date") == _day(3)).height == 2
    narrow = demand_scored(_predictions(), actuals, known_until=_day(4), lookback_days=1)
    assert narrow["date"].unique().to_list() == [_day(4)]


def test_stockout_needs_a_closed_window() -> None:
    labels = pl.DataFrame(
        {
            "store_id": "s",
            "item_id": "i",
            "origin": [_day(0), _day(2)],
            "window_end": [_day(7), _day(9)],
            "label": pl.Series([1, None], dtype=pl.Int8),  # the second window is not over yet
        }
    )
    scored = stockout_scored(_predictions(), labels, known_until=_day(8), lookback_days=28)
    assert scored.height == 1 and scored["origin"][0] == _day(0) and scored["label_true"][0] == 1.0
    by = stockout_by_version(scored)
    assert set(by) == {"1"} and by["1"].rows == 1 and by["1"].extra["f1"] == pytest.approx(1.0)
    assert stockout_over_time(scored)["value"][0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("live", "backtest", "higher", "expected"),
    [(0.30, 0.25, False, False), (0.31, 0.25, False, True), (0.55, 0.7, True, True), (0.6, 0.7, True, False)],
)
def test_degraded_is_a_fraction_of_the_backtest(live: float, backtest: float, higher: bool, expected: bool) -> None:
    assert is_degraded(live, backtest, higher_is_better=higher, tolerance=0.2) is expected
    assert not is_degraded(None, backtest, higher_is_better=higher, tolerance=0.2)


def test_demand_relative_to_the_seasonal_naive_on_the_same_rows() -> None:
    """The naive is the value whole weeks before the target, at least as far back as the origin: a forecast
    made on day 0 for day 3 (h=3) is judged against day 3 - 7; for day 9 (h=9) against day 9 - 14."""
    day0 = dt.date(2024, 1, 14)
    history = pl.DataFrame(
        {
            "store_id": "S1",
            "item_id": "I1",
            "date": pl.date_range(day0 - dt.timedelta(days=20), day0 + dt.timedelta(days=10), eager=True),
        }
    ).with_columns(pl.int_range(pl.len()).cast(pl.Float64).alias("units"))
    value = {d: u for d, u in history.select("date", "units").iter_rows()}
    preds = pl.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "item_id": ["I1", "I1"],
            "date": [day0 + dt.timedelta(days=3), day0 + dt.timedelta(days=9)],
            "horizon": [3, 9],
            "forecast": [value[day0 + dt.timedelta(days=3)] + 1, value[day0 + dt.timedelta(days=9)] - 1],
            "model_version": ["7", "7"],
        }
    )
    scored = demand_scored(preds, history, known_until=day0 + dt.timedelta(days=10), lookback_days=28)
    assert scored["naive"].to_list() == [value[day0 - dt.timedelta(days=4)], value[day0 - dt.timedelta(days=5)]]
    version = demand_by_version(scored)["7"]
    # The model is off by 1 on each row, the naive by 7 and 14 (units grow by 1 a day).
    assert version.relative == pytest.approx(2 / 21)
