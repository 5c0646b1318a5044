"""The monitoring window: the same features and predictions as scoring at each origin, and no later data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.labels import StockoutDefinition
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.io.model_files import load_reference, save_forecaster, save_reference
from shelfcast.models.stockout import StockoutConfig, fit_stockout, stockout_features
from shelfcast.models.train import ForecastConfig, TrainedForecaster, fit_forecaster
from shelfcast.models.window import PREDICTION, model_window, window_origins

CUTOFF = dt.date(2022, 9, 30)


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame]:
    result = simulate(SimConfig(n_stores=2, n_items=3, n_days=300, seed=5))
    tables = result.tables()
    return build_panel(tables, freq="D", exogenous_roles=result.exogenous_roles), tables["calendar"]


@pytest.fixture(scope="module")
def forecaster(chain: tuple[Panel, pl.DataFrame]) -> TrainedForecaster:
    panel, calendar = chain
    config = ForecastConfig(n_origins=20, n_estimators=30, learning_rate=0.2, strategy="direct")
    return fit_forecaster(panel, FeatureSpec.for_freq("D"), config, cutoff=CUTOFF, horizon=7, calendar=calendar)


def test_window_origins_end_one_step_before_the_end() -> None:
    origins = window_origins(dt.date(2024, 3, 29), days=28, step=dt.timedelta(days=1))
    assert len(origins) == 28 and origins[-1] == dt.date(2024, 3, 28) and origins[0] == dt.date(2024, 3, 1)
    assert len(window_origins(dt.date(2024, 3, 29), days=28, step=dt.timedelta(days=7))) == 4


def test_demand_window_equals_scoring_features_at_each_origin(
    chain: tuple[Panel, pl.DataFrame], forecaster: TrainedForecaster
) -> None:
    panel, calendar = chain
    window = model_window(forecaster, panel, end=CUTOFF, days=14, calendar=calendar)
    assert window["origin"].n_unique() == 14 and window["origin"].max() == CUTOFF - dt.timedelta(days=1)
    columns = forecaster.model.encoder_.columns_
    for origin in (CUTOFF - dt.timedelta(days=14), CUTOFF - dt.timedelta(days=1)):
        scored = forecaster.feature_rows(panel, calendar=calendar, origin=origin, horizon=1).sort("store_id", "item_id")
        mine = window.filter(pl.col("origin") == origin)
        assert mine.select(columns).equals(scored.select(columns))
        assert np.allclose(mine[PREDICTION].to_numpy(), forecaster.score(scored))


def test_window_ignores_data_after_its_end(chain: tuple[Panel, pl.DataFrame], forecaster: TrainedForecaster) -> None:
    panel, calendar = chain
    scrambled = Panel(
        panel.frame.with_columns(
            pl.when(pl.col("date") > CUTOFF).then(pl.col("y") * 100 + 7).otherwise(pl.col("y")).alias("y")
        ),
        panel.freq,
        panel.known_in_advance,
        panel.past_only,
        panel.categorical,
    )
    a = model_window(forecaster, panel, end=CUTOFF, days=7, calendar=calendar)
    b = model_window(forecaster, scrambled, end=CUTOFF, days=7, calendar=calendar)
    assert a.equals(b)


def test_stockout_window_and_reference_round_trip(chain: tuple[Panel, pl.DataFrame], tmp_path: Path) -> None:
    panel, _ = chain
    config = StockoutConfig(n_origins=20, n_estimators=20, holdout_origins=5)
    model = fit_stockout(panel, FeatureSpec.for_freq("D"), config, StockoutDefinition(), cutoff=CUTOFF)
    window = model_window(model, panel, end=CUTOFF, days=7, max_rows=20)
    assert window.select("store_id", "item_id").n_unique() < 6  # whole series sampled under max_rows
    last = window.filter(pl.col("origin") == CUTOFF - dt.timedelta(days=1))
    direct = stockout_features(panel.until(CUTOFF), model.spec, [CUTOFF - dt.timedelta(days=1)], window=7)
    direct = direct.join(last.select("store_id", "item_id"), on=["store_id", "item_id"], how="semi")
    assert np.allclose(last[PREDICTION].to_numpy(), model.predict_proba(direct))
    save_reference(window, tmp_path)
    loaded = load_reference(tmp_path)
    assert loaded is not None and loaded.equals(window)
    assert load_reference(tmp_path / "older-model") is None


def test_a_model_folder_without_reference_still_loads(forecaster: TrainedForecaster, tmp_path: Path) -> None:
    folder = save_forecaster(forecaster, tmp_path / "m")
    assert load_reference(folder) is None
