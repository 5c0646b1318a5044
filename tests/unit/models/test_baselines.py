"""Baselines: hand-computed forecasts on tiny panels, leak checks, weekly seasonality, residual quantiles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.panel import Panel, build_panel
from shelfcast.models.baselines import (
    BASELINES,
    moving_average,
    naive,
    quantile_column,
    seasonal_naive,
    seasonal_naive_quantiles,
)

D0 = dt.date(2024, 1, 1)


def day(i: int) -> dt.date:
    """Day i of the tiny panels (day 1 = D0)."""
    return D0 + dt.timedelta(days=i - 1)


def series(store: str, item: str, values: Sequence[float], *, start: int = 1, step_days: int = 1) -> pl.DataFrame:
    dates = [D0 + dt.timedelta(days=(start - 1 + i) * step_days) for i in range(len(values))]
    return pl.DataFrame(
        {"store_id": store, "item_id": item, "date": dates, "y": [float(v) for v in values]},
        schema={"store_id": pl.String, "item_id": pl.String, "date": pl.Date, "y": pl.Float64},
    )


def panel(*parts: pl.DataFrame, freq: str = "D") -> Panel:
    return Panel(pl.concat(parts).sort("store_id", "item_id", "date"), freq)


@pytest.fixture(scope="module")
def sim_panel() -> Panel:
    res = simulate(SimConfig(n_stores=2, n_items=4, n_days=120, seed=3))
    return build_panel(res.tables(), freq="D", exogenous_roles=res.exogenous_roles)


def values(frame: pl.DataFrame, item: str = "A") -> list[float]:
    return frame.filter(pl.col("item_id") == item)["forecast"].to_list()


def test_naive_repeats_last_value_on_dates_stepping_from_the_cutoff() -> None:
    p = panel(series("S", "A", list(range(1, 15))))
    out = naive(p, cutoff=day(14), horizon=3)
    assert out.columns == ["store_id", "item_id", "date", "forecast"]
    assert out["date"].to_list() == [day(15), day(16), day(17)]
    assert values(out) == [14.0, 14.0, 14.0]


def test_only_data_up_to_the_cutoff_is_used() -> None:
    p = panel(series("S", "A", list(range(1, 15))))
    assert values(naive(p, cutoff=day(10), horizon=2)) == [10.0, 10.0]
    assert values(moving_average(p, cutoff=day(10), horizon=1, window=2)) == [9.5]
    assert naive(p, cutoff=day(10), horizon=2)["date"].to_list() == [day(11), day(12)]


def test_seasonal_naive_takes_the_value_a_week_earlier_and_repeats_the_last_week() -> None:
    p = panel(series("S", "A", list(range(1, 15))))
    out = seasonal_naive(p, cutoff=day(14), horizon=10)
    assert values(out) == [8, 9, 10, 11, 12, 13, 14, 8, 9, 10]
    assert out["date"].to_list() == [day(i) for i in range(15, 25)]


def test_series_that_ended_before_the_cutoff_are_forecast_from_their_last_values() -> None:
    p = panel(series("S", "A", list(range(1, 15))), series("S", "B", list(range(101, 111))))
    cutoff = day(14)
    assert values(naive(p, cutoff=cutoff, horizon=2), "B") == [110.0, 110.0]
    assert values(moving_average(p, cutoff=cutoff, horizon=1, window=2), "B") == [109.5]
    # Day 15 is 5 days after B's last day (10): one week back is day 8, phase kept.
    assert values(seasonal_naive(p, cutoff=cutoff, horizon=4), "B") == [108, 109, 110, 104]
    assert naive(p, cutoff=cutoff, horizon=2).filter(pl.col("item_id") == "B")["date"].to_list() == [day(15), day(16)]


def test_series_starting_after_the_cutoff_get_no_forecast() -> None:
    p = panel(series("S", "A", [1, 2, 3, 4]), series("S", "C", [5, 6], start=5))
    assert set(naive(p, cutoff=day(4), horizon=2)["item_id"]) == {"A"}


def test_seasonal_naive_falls_back_to_the_last_value_when_history_is_shorter_than_a_season() -> None:
    p = panel(series("S", "A", [3, 5, 7]))
    assert values(seasonal_naive(p, cutoff=day(3), horizon=2)) == [7.0, 7.0]


def test_moving_average_default_window_is_28_days() -> None:
    p = panel(series("S", "A", [100] * 10 + [1] * 28))
    assert values(moving_average(p, cutoff=day(38), horizon=1)) == [1.0]
    weekly = panel(series("S", "A", [100, 100, 2, 4, 6, 8], step_days=7), freq="W")
    assert values(moving_average(weekly, cutoff=D0 + dt.timedelta(weeks=5), horizon=1)) == [5.0]


def test_seasonal_naive_on_weekly_data_repeats_the_value_52_weeks_earlier() -> None:
    p = panel(series("S", "A", list(range(60)), step_days=7), freq="W")
    cutoff = D0 + dt.timedelta(weeks=59)
    out = seasonal_naive(p, cutoff=cutoff, horizon=53)
    assert out["date"].to_list()[:2] == [cutoff + dt.timedelta(weeks=1), cutoff + dt.timedelta(weeks=2)]
    # Week 60 (0-based) is forecast by week 8, week 111 by week 59, week 112 by week 8 again.
    assert values(out)[0] == 8.0
    assert values(out)[51] == 59.0
    assert values(out)[52] == 8.0


def test_every_baseline_ignores_anything_after_the_cutoff(sim_panel: Panel) -> None:
    cutoff = dt.date(2022, 3, 15)
    frame = sim_panel.frame
    later = pl.col("date") > cutoff
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    scrambled = Panel(
        frame.with_columns(pl.when(later).then(pl.col(c) * 7 + 1000).otherwise(pl.col(c)).alias(c) for c in numeric),
        sim_panel.freq,
    )
    for name, baseline in BASELINES.items():
        before = baseline(sim_panel, cutoff=cutoff, horizon=14)
        assert before.height == 8 * 14, name
        assert before.equals(baseline(scrambled, cutoff=cutoff, horizon=14)), name
    quantiles = seasonal_naive_quantiles(sim_panel, cutoff=cutoff, horizon=14)
    assert quantiles.equals(seasonal_naive_quantiles(scrambled, cutoff=cutoff, horizon=14))


def test_quantiles_add_empirical_residual_quantiles_to_the_seasonal_naive() -> None:
    week1 = [10.0] * 7
    week2 = [10.0 + i for i in range(7)]
    p = panel(series("S", "A", week1 + week2))
    out = seasonal_naive_quantiles(p, cutoff=day(14), horizon=8, n_seasons=1)
    assert out.columns == ["store_id", "item_id", "date", "forecast", "p10", "p50", "p90"]
    first = out.row(0, named=True)
    # Residuals of the last week against the week before: 0..6; linear quantiles 0.6, 3, 5.4.
    assert first["forecast"] == 10.0
    assert first["p10"] == pytest.approx(10.6)
    assert first["p50"] == pytest.approx(13.0)
    assert first["p90"] == pytest.approx(15.4)
    # Two seasons back needs three weeks of history: unknown, so null rather than made up.
    assert out.row(7, named=True)["p10"] is None


def test_quantiles_are_ordered_non_negative_and_complete_on_simulated_data(sim_panel: Panel) -> None:
    out = seasonal_naive_quantiles(sim_panel, cutoff=dt.date(2022, 4, 1), horizon=21)
    assert out.null_count().sum_horizontal().item() == 0
    assert (out["p10"] >= 0).all()
    assert ((out["p10"] <= out["p50"]) & (out["p50"] <= out["p90"])).all()


def test_quantiles_are_clipped_at_zero() -> None:
    p = panel(series("S", "A", [50.0] * 7 + [0.0] * 7))
    out = seasonal_naive_quantiles(p, cutoff=day(14), horizon=1, n_seasons=1)
    assert out.row(0, named=True)["p10"] == 0.0


def test_quantile_column_names() -> None:
    assert [quantile_column(q) for q in (0.1, 0.5, 0.9, 0.025)] == ["p10", "p50", "p90", "p2.5"]


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"horizon": 0}, "`horizon`"), ({"horizon": 2, "window": -1}, "`window`")]
)
def test_bad_arguments_are_named_with_their_value(kwargs: dict[str, int], message: str) -> None:
    p = panel(series("S", "A", [1, 2, 3]))
    with pytest.raises(ValueError, match=message) as info:
        moving_average(p, cutoff=day(3), **kwargs)
    assert "got" in str(info.value)


def test_bad_levels_and_cutoff_types_are_refused() -> None:
    p = panel(series("S", "A", [1, 2, 3]))
    with pytest.raises(ValueError, match="`levels`"):
        seasonal_naive_quantiles(p, cutoff=day(3), horizon=1, levels=(0.1, 1.0))
    with pytest.raises(TypeError, match="`cutoff`"):
        naive(p, cutoff=dt.datetime(2024, 1, 3), horizon=1)


def test_registry_names() -> None:
    assert set(BASELINES) == {"naive", "seasonal_naive", "moving_average_28"}
