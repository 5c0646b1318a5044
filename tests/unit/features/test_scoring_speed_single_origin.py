"""Scoring at one origin takes shortcuts (`origin_features_at`, `phase_features_at`): they must change no bit.

Each shortcut is compared with the general path, which computes every date's
features, on a simulated chain made awkward on purpose: series that start
late or stop early, days without a sales row, full-day stockouts (null
demand), hourly stockout flags, a past and a known-in-advance covariate.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features import build, frames
from shelfcast.features.build import build_features, phase_features, phase_features_at
from shelfcast.features.frames import ORIGIN, model_rows
from shelfcast.features.origin import origin_features, origin_features_at
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.train import ForecastConfig, fit_forecaster

LATE_START = dt.date(2022, 6, 1)
SPECS = {
    "default": FeatureSpec.for_freq("D"),
    "no censoring, covariates": FeatureSpec.for_freq(
        "D",
        censoring="none",
        exogenous_past=("temperature", "cpi"),
        exogenous_known=("planned_markdown",),
        future_price_promo=True,
    ),
    "hashed, attributes": FeatureSpec.for_freq(
        "D", hash_buckets=64, crosses=(("store_id", "item_id"),), categorical=("store_id", "item_id", "category")
    ),
}


def _awkward_tables() -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    result = simulate(SimConfig(n_stores=3, n_items=8, n_days=420, seed=11))
    tables = {k: v for k, v in result.tables().items() if k != "movements"}
    sales, stock = tables["sales"], tables["inventory"]
    items = sales["item_id"].unique().sort()
    late = (pl.col("item_id") == items[1]) & (pl.col("date") < LATE_START)
    stops = (pl.col("item_id") == items[2]) & (pl.col("store_id") == "S001") & (pl.col("date") > dt.date(2022, 12, 1))
    # Every fifth row with no sale is missing, as when a source only records sales.
    sales = sales.filter(~late, ~stops).filter((pl.col("units") > 0) | (pl.int_range(pl.len()) % 5 != 0))
    rng = np.random.default_rng(0)
    hourly = [
        [int(v) for v in rng.integers(0, 2, 24)] if rng.uniform() < 0.05 else [0] * 24 for _ in range(stock.height)
    ]
    stock = stock.filter(~late, ~stops)
    stock = stock.with_columns(
        pl.Series("hourly_stockout", hourly[: stock.height], dtype=pl.List(pl.Int8)),
        pl.when(pl.int_range(pl.len()) % 97 == 0)
        .then(24.0)
        .otherwise(pl.col("stockout_hours"))
        .alias("stockout_hours"),
    )
    exogenous = tables["exogenous"].with_columns(
        pl.col("date").dt.ordinal_day().cast(pl.Float64).alias("planned_markdown")
    )
    roles = dict(result.exogenous_roles) | {"planned_markdown": "known_in_advance"}
    return {**tables, "sales": sales, "inventory": stock, "exogenous": exogenous}, roles


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame]:
    tables, roles = _awkward_tables()
    return build_panel(tables, freq="D", exogenous_roles=roles), tables["calendar"]


def _origins(panel: Panel) -> list[dt.date]:
    """Mid-history, near the end, the last day, and 9 days into the late series (shorter than most windows)."""
    dates = panel.dates
    return [dates[len(dates) // 2], dates[-20], dates[-1], LATE_START + dt.timedelta(days=9)]


def _by_date(panel: Panel) -> Panel:
    """The panel with its series interleaved (sorted by date first), each still in date order."""
    return Panel(panel.frame.sort("date", "store_id", "item_id"), panel.freq, panel.known_in_advance)


@pytest.mark.parametrize("name", SPECS)
def test_origin_features_at_one_origin_are_the_general_ones_on_that_date(
    chain: tuple[Panel, pl.DataFrame], name: str
) -> None:
    panel, _ = chain
    for origin in _origins(panel):
        known = panel.as_known_at(origin)
        general = origin_features(known, SPECS[name]).filter(pl.col("date") == origin)
        assert_frame_equal(origin_features_at(known, SPECS[name], origin), general, check_exact=True)


def test_blocks_of_series_and_a_nan_change_nothing(
    chain: tuple[Panel, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    panel, _ = chain
    spec = SPECS["default"]
    origin = _origins(panel)[1]
    general = origin_features(panel, spec).filter(pl.col("date") == origin)
    monkeypatch.setattr(frames, "BLOCK_ROWS", 1_000)  # about 3 series a block
    assert_frame_equal(origin_features_at(panel, spec, origin), general, check_exact=True)
    # A NaN sale sends every feature down the window path.
    frame = panel.frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(float("nan")).otherwise("y").alias("y")
    )
    odd = Panel(frame, panel.freq, panel.known_in_advance, panel.past_only, panel.categorical)
    general = origin_features(odd, spec).filter(pl.col("date") == origin)
    assert_frame_equal(origin_features_at(odd, spec, origin), general, check_exact=True)


def test_a_panel_not_sorted_by_series_gives_the_same_features(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, _ = chain
    spec = SPECS["default"]
    origin = _origins(panel)[0]
    sorted_by = [*build.KEYS]
    expected = origin_features(panel, spec).filter(pl.col("date") == origin)
    interleaved = _by_date(panel)
    general = origin_features(interleaved, spec).filter(pl.col("date") == origin).sort(sorted_by)
    assert_frame_equal(general, expected, check_exact=True)
    assert_frame_equal(origin_features_at(interleaved, spec, origin).sort(sorted_by), expected, check_exact=True)


def test_phase_features_at_one_origin_cover_the_last_season(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, _ = chain
    spec = SPECS["default"]
    for origin in _origins(panel):
        known = panel.as_known_at(origin)
        last_season = pl.col("date").is_between(origin - dt.timedelta(days=spec.season - 1), origin)
        general = phase_features(known, spec).filter(last_season)
        assert_frame_equal(phase_features_at(known, spec, origin), general, check_exact=True)


@pytest.mark.parametrize("name", SPECS)
def test_single_origin_rows_get_the_features_of_the_general_path(chain: tuple[Panel, pl.DataFrame], name: str) -> None:
    panel, calendar = chain
    spec = SPECS[name]
    for origin in _origins(panel):
        known = panel.as_known_at(origin)
        rows = model_rows(known, spec, [origin], list(range(1, 15)))
        tables = {"origin_table": origin_features(known, spec), "phase_table": phase_features(known, spec)}
        general = build_features(known, spec, rows, calendar=calendar, **tables)
        assert_frame_equal(build_features(known, spec, rows, calendar=calendar), general, check_exact=True)


def test_weekly_single_origin_rows_get_the_features_of_the_general_path() -> None:
    result = simulate(SimConfig(n_stores=2, n_items=5, n_days=800, seed=4, freq="W"))
    panel = build_panel(result.tables(), freq="W", exogenous_roles=result.exogenous_roles)
    spec = FeatureSpec.for_freq("W")
    origin = panel.dates[-3]
    known = panel.as_known_at(origin)
    rows = model_rows(known, spec, [origin], list(range(1, 9)))
    tables = {"origin_table": origin_features(known, spec), "phase_table": phase_features(known, spec)}
    general = build_features(known, spec, rows, calendar=result.calendar, **tables)
    assert_frame_equal(build_features(known, spec, rows, calendar=result.calendar), general, check_exact=True)


def test_forecasts_from_one_origin_are_those_of_the_general_path(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    spec = SPECS["default"]
    config = ForecastConfig(strategy="direct", n_origins=20, max_rows=20_000, n_estimators=40)
    origin = _origins(panel)[1]
    model = fit_forecaster(panel, spec, config, cutoff=origin, horizon=14, calendar=calendar)
    known = panel.as_known_at(origin)
    rows = model_rows(known, spec, [origin], list(range(1, 15)))
    tables = {"origin_table": origin_features(known, spec), "phase_table": phase_features(known, spec)}
    general = build_features(known, spec, rows, calendar=calendar, **tables)
    forecast = model.predict(panel, calendar=calendar)
    assert forecast["date"].to_list() == general["target_date"].to_list()
    assert np.array_equal(forecast["forecast"].to_numpy(), model.score(general))
    assert general[ORIGIN].unique().to_list() == [origin]
