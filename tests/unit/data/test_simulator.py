"""Data tests of the retail-chain simulator: invariants, realism and drift."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from shelfcast.data.sim_calendar import black_friday, easter_sunday
from shelfcast.data.simulator import DriftSpec, SimConfig, SimResult, simulate
from shelfcast.schemas import SCHEMAS, row_rule_exprs, structural_problems

KEYS = ["date", "store_id", "item_id"]
SMALL = SimConfig(seed=11, n_stores=5, n_items=20, n_days=400)


@pytest.fixture(scope="module")
def result() -> SimResult:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def weekly() -> SimResult:
    return simulate(SMALL.model_copy(update={"freq": "W"}))


def _daily(result: SimResult) -> pl.DataFrame:
    """Sales, stock and true demand side by side."""
    stock = result.inventory.select(*KEYS, "on_hand", "stockout_hours")
    return result.sales.join(stock, on=KEYS).join(result.truth, on=KEYS)


def _balance_errors(result: SimResult) -> pl.DataFrame:
    """Rows where on_hand(t) != on_hand(t-1) + received + transfers in - out - units."""
    mv = result.movements
    inflow = mv.group_by("date", pl.col("to_store_id").alias("store_id"), "item_id").agg(
        pl.col("quantity").sum().alias("inflow")
    )
    outflow = (
        mv.filter(pl.col("from_store_id").is_not_null())
        .group_by("date", pl.col("from_store_id").alias("store_id"), "item_id")
        .agg(pl.col("quantity").sum().alias("outflow"))
    )
    frame = (
        result.inventory.select(*KEYS, "on_hand")
        .join(result.sales.select(*KEYS, "units"), on=KEYS)
        .join(inflow, on=KEYS, how="left")
        .join(outflow, on=KEYS, how="left")
        .fill_null(0.0)
        .sort("store_id", "item_id", "date")
    )
    expected = pl.col("on_hand").shift(1) + pl.col("inflow") - pl.col("outflow") - pl.col("units")
    frame = frame.with_columns(expected.over("store_id", "item_id").alias("expected"))
    return frame.filter(pl.col("expected").is_not_null() & (pl.col("expected") != pl.col("on_hand")))


def test_same_seed_gives_identical_frames(result: SimResult) -> None:
    again = simulate(SMALL)
    for name, frame in result.tables().items():
        assert frame.equals(again.tables()[name]), name
    assert result.truth.equals(again.truth)


def test_different_seed_gives_different_frames(result: SimResult) -> None:
    other = simulate(SMALL.model_copy(update={"seed": 12}))
    assert not result.sales.equals(other.sales)
    assert not result.items.equals(other.items)


@pytest.mark.parametrize("freq", ["D", "W"])
def test_canonical_frames_conform_to_schemas(freq: str, result: SimResult, weekly: SimResult) -> None:
    sim = result if freq == "D" else weekly
    for name, frame in sim.tables().items():
        schema = SCHEMAS[name]
        assert structural_problems(schema, frame.schema) == [], name
        for rule in row_rule_exprs(schema, frame.columns):
            assert frame.filter(rule.failing).height == 0, f"{name}: {rule.name}"
        assert not frame.select(schema.keys).is_duplicated().any(), f"{name} keys not unique"
        assert frame.height > 0, name


def test_one_row_per_store_item_day(result: SimResult) -> None:
    assert result.sales.height == SMALL.n_stores * SMALL.n_items * SMALL.n_days
    assert result.inventory.select(KEYS).equals(result.sales.select(KEYS))
    assert result.truth.select(KEYS).equals(result.sales.select(KEYS))
    assert result.sales["store_id"].str.contains(r"^S\d{3}$").all()
    assert result.sales["item_id"].str.contains(r"^I\d{4}$").all()


def test_units_are_whole_and_revenue_is_units_times_price(result: SimResult) -> None:
    sales = result.sales
    assert (sales["units"] == sales["units"].round()).all()
    assert ((sales["revenue"] - sales["units"] * sales["price"]).abs() < 0.006).all()


def test_stockout_rate_is_realistic_and_follows_the_safety_factor(result: SimResult) -> None:
    assert 0.015 <= result.stockout_rate <= 0.07
    lean = simulate(SMALL.model_copy(update={"safety_factor": 0.25}))
    safe = simulate(SMALL.model_copy(update={"safety_factor": 2.0}))
    assert lean.stockout_rate > result.stockout_rate > safe.stockout_rate
    measured = (result.inventory["stockout_hours"] > 0).mean()
    assert measured == pytest.approx(result.stockout_rate)


def test_sales_are_demand_censored_by_stock(result: SimResult) -> None:
    day = _daily(result).with_columns((pl.col("on_hand") + pl.col("units")).alias("available"))
    assert (day["units"] <= day["demand"]).all()
    assert (day["units"].to_numpy() == np.minimum(day["demand"].to_numpy(), day["available"].to_numpy())).all()
    assert (day["lost_units"] == day["demand"] - day["units"]).all()
    assert ((day["lost_units"] > 0) == day["censored"]).all()
    assert day["censored"].sum() > 0


def test_stockout_hours_follow_availability(result: SimResult) -> None:
    day = _daily(result).with_columns((pl.col("on_hand") + pl.col("units")).alias("available"))
    empty = day.filter(pl.col("available") == 0)
    assert (empty["stockout_hours"] == 24).all()
    partial = day.filter((pl.col("available") > 0) & pl.col("censored"))
    expected = 24 * (1 - partial["available"] / partial["demand"])
    assert ((partial["stockout_hours"] - expected).abs() < 1e-9).all()
    stocked = day.filter((pl.col("available") > 0) & ~pl.col("censored"))
    assert (stocked["stockout_hours"] == 0).all()


@pytest.mark.parametrize("freq", ["D", "W"])
def test_inventory_balance_holds_exactly(freq: str, result: SimResult, weekly: SimResult) -> None:
    sim = result if freq == "D" else weekly
    assert _balance_errors(sim).height == 0


def test_movements_are_receipts_and_transfers(result: SimResult) -> None:
    mv = result.movements
    receipts = mv.filter(pl.col("kind") == "receipt")
    transfers = mv.filter(pl.col("kind") == "transfer")
    assert receipts["from_store_id"].is_null().all()
    assert transfers.height > 0 and transfers["from_store_id"].is_not_null().all()
    assert (transfers["from_store_id"] != transfers["to_store_id"]).all()
    assert transfers.height < receipts.height / 5  # occasional
    assert (mv["quantity"] > 0).all() and (mv["quantity"] == mv["quantity"].round()).all()
    assert mv["movement_id"].str.contains(r"^M\d{6,}$").all() and mv["movement_id"].is_unique().all()


def test_weekly_seasonality_differs_by_day_of_week(result: SimResult) -> None:
    by_dow = result.truth.group_by(pl.col("date").dt.weekday()).agg(pl.col("demand").mean())
    means = by_dow["demand"]
    assert means.max() / means.min() > 1.2


def test_christmas_lead_up_raises_demand(result: SimResult) -> None:
    # Per-series ratios on days without promotion, so a few big items or promotions cannot decide.
    day = _daily(result).filter(pl.col("promo") == 0)
    base = pl.col("date").is_between(dt.date(2022, 11, 7), dt.date(2022, 11, 20))
    lead_up = pl.col("date").is_between(dt.date(2022, 12, 17), dt.date(2022, 12, 23))
    christmas = pl.col("date") == dt.date(2022, 12, 25)
    per_series = day.group_by("store_id", "item_id").agg(
        pl.col("demand").filter(base).mean().alias("base"),
        pl.col("demand").filter(lead_up).mean().alias("lead_up"),
        pl.col("demand").filter(christmas).mean().alias("christmas"),
    )
    ratios = per_series.filter(pl.col("base") > 2).select(
        (pl.col("lead_up") / pl.col("base")).median().alias("lead_up"),
        (pl.col("christmas") / pl.col("base")).median().alias("christmas"),
    )
    assert ratios["lead_up"].item() > 1.15
    assert ratios["christmas"].item() < 0.6


def test_summer_categories_have_yearly_seasonality(result: SimResult) -> None:
    summer_items = result.items.filter(pl.col("category").is_in(["beverages", "frozen"]))["item_id"]
    assert summer_items.len() > 0
    truth = result.truth.filter(pl.col("item_id").is_in(summer_items.implode()))
    july = truth.filter(pl.col("date").dt.month() == 7)["demand"].mean()
    january = truth.filter(pl.col("date").dt.month() == 1)["demand"].mean()
    assert july > 1.3 * january  # type: ignore[operator]


def test_promotions_lift_units(result: SimResult) -> None:
    per_series = result.sales.group_by("store_id", "item_id").agg(
        pl.col("units").filter(pl.col("promo") == 1).mean().alias("on"),
        pl.col("units").filter(pl.col("promo") == 0).mean().alias("off"),
    )
    lift = per_series.filter(pl.col("off") > 1).select((pl.col("on") / pl.col("off")).median()).item()
    assert lift > 1.3
    assert 0.02 < result.sales["promo"].cast(pl.Float64).mean() < 0.3  # type: ignore[operator]


def test_slow_movers_have_many_zero_days_and_fast_movers_few(result: SimResult) -> None:
    per_series = result.truth.group_by("store_id", "item_id").agg(
        pl.col("demand").mean().alias("mean"), (pl.col("demand") == 0).mean().alias("zeros")
    )
    slow = per_series.filter(pl.col("mean") < 0.3)
    fast = per_series.filter(pl.col("mean") > 20)
    assert slow.height > 0 and fast.height > 0
    assert (slow["zeros"] > 0.7).all()
    assert (fast["zeros"] < 0.05).all()
    assert per_series["mean"].max() / per_series["mean"].min() > 100  # type: ignore[operator]


def test_level_drift_shifts_demand_from_its_date(result: SimResult) -> None:
    start = dt.date(2022, 9, 1)
    drift = DriftSpec(kind="level", start=start, magnitude=1.5)
    drifted = simulate(SMALL.model_copy(update={"drift": drift}))
    before = pl.col("date") < start
    assert drifted.truth.filter(before).equals(result.truth.filter(before))
    ratio = drifted.truth.filter(~before)["demand"].sum() / result.truth.filter(~before)["demand"].sum()
    assert 1.4 < ratio < 1.6


def test_promo_drift_makes_promotions_more_frequent(result: SimResult) -> None:
    start = dt.date(2022, 7, 1)
    drifted = simulate(SMALL.model_copy(update={"drift": DriftSpec(kind="promo", start=start, magnitude=3.0)}))
    after = pl.col("date") >= start
    share_new = drifted.sales.filter(after)["promo"].cast(pl.Float64).mean()
    share_old = result.sales.filter(after)["promo"].cast(pl.Float64).mean()
    assert share_new > 1.8 * share_old  # type: ignore[operator]


def test_seasonality_drift_changes_the_weekly_profile(result: SimResult) -> None:
    start = dt.date(2022, 7, 1)
    spec = DriftSpec(kind="seasonality", start=start, magnitude=1.0)
    drifted = simulate(SMALL.model_copy(update={"drift": spec}))

    def profile(sim: SimResult) -> np.ndarray:
        after = sim.truth.filter(pl.col("date") >= start)
        by_dow = after.group_by(pl.col("date").dt.weekday()).agg(pl.col("demand").sum()).sort("date")
        values = by_dow["demand"].to_numpy()
        return values / values.sum()

    assert np.abs(profile(drifted) - profile(result)).max() > 0.02


def test_weekly_frequency_aggregates_the_daily_simulation(result: SimResult, weekly: SimResult) -> None:
    assert (weekly.sales["date"].dt.weekday() == 1).all()
    assert weekly.sales["units"].sum() == result.sales["units"].sum()
    assert weekly.truth["demand"].sum() == result.truth["demand"].sum()
    n_weeks = result.sales["date"].dt.truncate("1w").n_unique()
    assert weekly.sales.height == n_weeks * SMALL.n_stores * SMALL.n_items
    last_day = result.inventory.filter(pl.col("date") == pl.col("date").max())["on_hand"]
    last_week = weekly.inventory.filter(pl.col("date") == pl.col("date").max())["on_hand"]
    assert last_day.equals(last_week)


def test_calendar_holds_the_computed_holidays(result: SimResult) -> None:
    events = dict(zip(result.calendar["event"].to_list(), result.calendar["date"].to_list(), strict=False))
    assert dt.date(2022, 4, 17) in result.calendar["date"].to_list()  # Easter 2022
    assert events["Black Friday"] in (dt.date(2022, 11, 25), dt.date(2023, 11, 24))
    assert (result.calendar["kind"] == "holiday").all()


def test_computus_and_black_friday() -> None:
    assert easter_sunday(2024) == dt.date(2024, 3, 31)
    assert easter_sunday(2025) == dt.date(2025, 4, 20)
    assert easter_sunday(2038) == dt.date(2038, 4, 25)
    assert black_friday(2024) == dt.date(2024, 11, 29)
    assert black_friday(2025) == dt.date(2025, 11, 28)


def test_exogenous_scopes_and_roles(result: SimResult) -> None:
    exo = result.exogenous
    assert set(result.exogenous_roles) == {"temperature", "cpi", "fuel_price"}
    assert set(result.exogenous_roles.values()) <= {"past_only", "known_in_advance"}
    glob = exo.filter(pl.col("store_id").is_null())
    assert glob.height == SMALL.n_days and glob["cpi"].is_not_null().all()
    per_store = exo.filter(pl.col("store_id").is_not_null())
    assert per_store["temperature"].is_not_null().all()
    assert exo["item_id"].is_null().all()


def test_master_data(result: SimResult) -> None:
    items, stores = result.items, result.stores
    assert {"category", "brand", "name_en", "name_ar", "base_price"} <= set(items.columns)
    assert {"type", "size", "region", "opening_date", "lead_time_days"} <= set(stores.columns)
    assert items["name_ar"].str.contains(r"[\u0600-\u06FF]").all()
    assert (stores["opening_date"] < SMALL.start_date).all()


@pytest.mark.parametrize(
    ("update", "argument"),
    [
        ({"n_stores": 0}, "n_stores"),
        ({"n_days": -1}, "n_days"),
        ({"max_lead_time_days": 1}, "max_lead_time_days"),
        ({"drift": DriftSpec(kind="level", start=dt.date(2030, 1, 1), magnitude=1.2)}, "drift.start"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_config_names_the_argument(update: dict[str, object], argument: str) -> None:
    with pytest.raises(ValidationError, match=argument):
        SimConfig.model_validate({**SMALL.model_dump(), **update})


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        SMALL.n_days = 3  # type: ignore[misc]
