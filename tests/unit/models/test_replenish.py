"""Replenishment: hand-computed policy numbers, directions (service level, variance), validation, end to end."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.errors import DataValidationError
from shelfcast.features.panel import build_panel
from shelfcast.models.baselines import seasonal_naive_quantiles
from shelfcast.models.replenish import Z90, lead_time_demand, replenishment, stock_position

Z95 = 1.6448536269514722


def demand(**columns: list[float] | list[int]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    return pl.DataFrame({"store_id": ["S"] * n, "item_id": [f"I{i}" for i in range(n)], **columns})


def stock(on_hand: list[float | None], on_order: list[float | None] | None = None) -> pl.DataFrame:
    frame = pl.DataFrame({"store_id": ["S"] * len(on_hand), "item_id": [f"I{i}" for i in range(len(on_hand))]})
    frame = frame.with_columns(pl.Series("on_hand", on_hand, dtype=pl.Float64))
    return frame if on_order is None else frame.with_columns(pl.Series("on_order", on_order, dtype=pl.Float64))


def test_hand_computed_policy() -> None:
    out = replenishment(
        demand(lt_mean=[100.0], lt_std=[10.0]), stock=stock([50.0], [20.0]), lead_time_days=4, review_period_days=7
    ).row(0, named=True)
    assert out["safety_stock"] == pytest.approx(Z95 * 10)
    assert out["reorder_point"] == pytest.approx(100 + Z95 * 10)
    # L + R = 11 days scaled from 4 at a constant daily rate: mean 275, std 10 * sqrt(11 / 4).
    order_up_to = 275 + Z95 * 10 * math.sqrt(11 / 4)
    assert out["order_up_to"] == pytest.approx(order_up_to)
    assert out["inventory_position"] == 70.0
    assert out["order_quantity"] == pytest.approx(order_up_to - 70)
    assert out["reorder_now"] is True
    assert (out["lead_time_days"], out["review_period_days"], out["service_level"]) == (4, 7, 0.95)


def test_without_on_hand_there_is_no_order_and_no_flag() -> None:
    out = replenishment(demand(lt_mean=[10.0, 10.0], lt_std=[1.0, 1.0]), stock=stock([None, 3.0]), lead_time_days=2)
    assert out["order_quantity"][0] is None
    assert out["reorder_now"][0] is None
    assert out["order_quantity"][1] is not None
    plain = replenishment(demand(lt_mean=[10.0], lt_std=[1.0]), lead_time_days=2)
    assert plain["order_quantity"].to_list() == [None]
    assert plain["on_order"].to_list() == [None]


def test_higher_service_level_means_more_safety_stock() -> None:
    levels = (0.6, 0.8, 0.9, 0.95, 0.99, 0.999)
    safety = [
        replenishment(demand(lt_mean=[20.0], lt_std=[4.0]), lead_time_days=3, service_level=sl)["safety_stock"].item()
        for sl in levels
    ]
    assert safety == sorted(safety)
    assert len(set(safety)) == len(safety)


def test_order_quantity_is_never_negative() -> None:
    out = replenishment(
        demand(lt_mean=[10.0, 10.0, 0.0], lt_std=[2.0, 2.0, 0.0]),
        stock=stock([1e6, 0.0, 5.0], [0.0, 1e6, None]),
        lead_time_days=3,
    )
    assert out["order_quantity"].to_list() == [0.0, 0.0, 0.0]
    assert out["reorder_now"].to_list() == [False, False, False]


def test_zero_variance_gives_zero_safety_stock() -> None:
    out = replenishment(demand(lt_mean=[30.0], lt_std=[0.0]), stock=stock([0.0]), lead_time_days=3).row(0, named=True)
    assert out["safety_stock"] == 0.0
    assert out["reorder_point"] == 30.0
    assert out["order_up_to"] == pytest.approx(30.0 * 10 / 3)


def test_lead_time_quantiles_are_read_as_a_normal() -> None:
    spread = 2 * Z90 * 5.0
    out = replenishment(demand(lt_p10=[50.0 - spread / 2], lt_p50=[50.0], lt_p90=[50.0 + spread / 2]), lead_time_days=5)
    assert out["lt_mean"].item() == 50.0
    assert out["lt_std"].item() == pytest.approx(5.0)


def test_lead_time_demand_sums_daily_means_and_variances() -> None:
    sd = 2.0
    forecasts = pl.DataFrame(
        {
            "store_id": ["S"] * 3,
            "item_id": ["A"] * 3,
            "date": [dt.date(2024, 1, d) for d in (3, 1, 2)],
            "p50": [30.0, 10.0, 20.0],
        }
    ).with_columns((pl.col("p50") - Z90 * sd).alias("p10"), (pl.col("p50") + Z90 * sd).alias("p90"))
    out = lead_time_demand(forecasts, lead_time_days=2, review_period_days=1).row(0, named=True)
    assert out["lt_mean"] == pytest.approx(30.0)
    assert out["lt_std"] == pytest.approx(sd * math.sqrt(2))
    assert out["ltr_mean"] == pytest.approx(60.0)
    assert out["ltr_std"] == pytest.approx(sd * math.sqrt(3))
    # A `forecast` column is taken as the daily mean in preference to the median.
    with_mean = lead_time_demand(
        forecasts.with_columns(forecast=pl.col("p50") + 1), lead_time_days=2, review_period_days=1
    )
    assert with_mean["lt_mean"].item() == pytest.approx(32.0)
    with pytest.raises(DataValidationError, match="fewer forecast days"):
        lead_time_demand(forecasts, lead_time_days=2, review_period_days=7)


def test_per_store_lead_times_and_zero_lead_time() -> None:
    frame = demand(lt_mean=[8.0, 8.0], lt_std=[1.0, 1.0]).with_columns(store_id=pl.Series(["S1", "S2"]))
    lead = pl.DataFrame({"store_id": ["S1", "S2"], "lead_time_days": [2, 4]})
    out = replenishment(frame, lead_time_days=lead, review_period_days=2)
    assert out["lead_time_days"].to_list() == [2, 4]
    assert out["order_up_to"][0] > out["order_up_to"][1]  # same lead-time demand, faster supplier: more per day
    with pytest.raises(DataValidationError, match="zero lead time"):
        replenishment(demand(lt_mean=[0.0], lt_std=[0.0]), lead_time_days=0)
    given = demand(lt_mean=[0.0], lt_std=[0.0], ltr_mean=[7.0], ltr_std=[0.0])
    assert replenishment(given, lead_time_days=0)["order_up_to"].item() == 7.0


@pytest.mark.parametrize("service_level", [0.5, 1.0, 0.3, 1.5])
def test_service_level_out_of_range_is_refused(service_level: float) -> None:
    with pytest.raises(ValueError, match=r"`service_level` must be in \(0.5, 1\), got"):
        replenishment(demand(lt_mean=[1.0], lt_std=[1.0]), lead_time_days=1, service_level=service_level)


def test_bad_inputs_are_refused_with_the_series_named() -> None:
    with pytest.raises(DataValidationError, match=r"negative demand.*S/I0"):
        replenishment(demand(lt_mean=[-1.0], lt_std=[1.0]), lead_time_days=1)
    with pytest.raises(ValueError, match=r"`lead_time_days`.*got -2"):
        replenishment(demand(lt_mean=[1.0], lt_std=[1.0]), lead_time_days=-2)
    with pytest.raises(DataValidationError, match="negative lead time"):
        replenishment(demand(lt_mean=[1.0], lt_std=[1.0], lead_time_days=[-1]))
    with pytest.raises(DataValidationError, match="no lead time"):
        replenishment(demand(lt_mean=[1.0], lt_std=[1.0]))
    with pytest.raises(DataValidationError, match="needs lead-time demand"):
        replenishment(demand(mean=[1.0]), lead_time_days=1)
    with pytest.raises(DataValidationError, match="review period"):
        replenishment(
            demand(lt_mean=[1.0], lt_std=[1.0], ltr_mean=[2.0], ltr_std=[1.0], review_period_days=[14]),
            lead_time_days=1,
        )


def test_simulated_end_to_end() -> None:
    res = simulate(SimConfig(n_stores=2, n_items=4, n_days=150, seed=5))
    tables = res.tables()
    panel = build_panel(tables, freq="D", exogenous_roles=res.exogenous_roles)
    cutoff = dt.date(2022, 5, 1)
    forecasts = seasonal_naive_quantiles(panel, cutoff=cutoff, horizon=14)
    lead = tables["stores"].select("store_id", "lead_time_days")
    stats = lead_time_demand(forecasts, lead_time_days=lead)
    out = replenishment(stats, stock=stock_position(panel, cutoff=cutoff))
    assert out.height == 8
    assert out.select("safety_stock", "order_quantity", "reorder_now").null_count().sum_horizontal().item() == 0
    assert (out["order_quantity"] >= 0).all()
    assert (out["order_up_to"] >= out["reorder_point"]).all()
