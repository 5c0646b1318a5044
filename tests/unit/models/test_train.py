"""The demand forecaster on a simulated chain: shape, determinism, errors and behaviour."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.errors import NotFittedError
from shelfcast.features.origin import origin_features
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.forecaster import BoosterParams, GBMForecaster
from shelfcast.models.train import ForecastConfig, fit_forecaster

CUTOFF = dt.date(2022, 12, 31)
FAST = ForecastConfig(n_origins=30, max_rows=40_000, n_estimators=80, learning_rate=0.15)


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame]:
    result = simulate(SimConfig(n_stores=2, n_items=12, n_days=540, seed=7))
    tables = result.tables()
    return build_panel(tables, freq="D", exogenous_roles=result.exogenous_roles), tables["calendar"]


def test_forecasts_every_series_for_every_step(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    model = fit_forecaster(panel, FeatureSpec.for_freq("D"), FAST, cutoff=CUTOFF, horizon=14, calendar=calendar)
    forecast = model.predict(panel, calendar=calendar)
    assert forecast.height == 24 * 14
    assert forecast["date"].min() == CUTOFF + dt.timedelta(days=1)
    assert forecast["date"].max() == CUTOFF + dt.timedelta(days=14)
    assert (forecast["forecast"] >= 0).all()


def test_same_seed_same_forecast(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    spec = FeatureSpec.for_freq("D")
    a = fit_forecaster(panel, spec, FAST, cutoff=CUTOFF, horizon=7, calendar=calendar).predict(panel, calendar=calendar)
    b = fit_forecaster(panel, spec, FAST, cutoff=CUTOFF, horizon=7, calendar=calendar).predict(panel, calendar=calendar)
    assert np.allclose(a["forecast"].to_numpy(), b["forecast"].to_numpy())


def test_forecast_beats_the_seasonal_naive_on_the_simulator(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    model = fit_forecaster(panel, FeatureSpec.for_freq("D"), FAST, cutoff=CUTOFF, horizon=28, calendar=calendar)
    forecast = model.predict(panel, calendar=calendar)
    actual = panel.frame.select("store_id", "item_id", "date", "y")
    naive = actual.with_columns(pl.col("date") + pl.duration(days=7)).rename({"y": "naive"})
    ev = forecast.join(actual, on=["store_id", "item_id", "date"]).join(naive, on=["store_id", "item_id", "date"])
    model_error = (ev["forecast"] - ev["y"]).abs().sum()
    naive_error = (ev["naive"] - ev["y"]).abs().sum()
    assert model_error < naive_error


def test_more_promotion_never_lowers_the_forecast_of_a_promo_sensitive_item(
    chain: tuple[Panel, pl.DataFrame],
) -> None:
    panel, calendar = chain
    spec = FeatureSpec.for_freq("D", future_price_promo=True)
    config = FAST.model_copy(update={"n_estimators": 150})
    model = fit_forecaster(panel, spec, config, cutoff=CUTOFF, horizon=14, calendar=calendar)
    later = pl.col("date") > CUTOFF
    # The most promo-sensitive item: the largest sales lift on promo days in the history.
    history = panel.frame.filter(~later)
    lift = history.group_by("item_id").agg(
        (pl.col("y").filter(pl.col("promo") == 1).mean() / pl.col("y").filter(pl.col("promo") == 0).mean()).alias(
            "lift"
        )
    )
    item = lift.drop_nulls().sort("lift", descending=True)["item_id"][0]
    planned = [
        Panel(
            panel.frame.with_columns(
                pl.when(later & (pl.col("item_id") == item))
                .then(pl.lit(flag, pl.Int8))
                .otherwise(pl.col("promo"))
                .alias("promo")
            ),
            panel.freq,
            panel.known_in_advance,
            panel.past_only,
            panel.categorical,
        )
        for flag in (0, 1)
    ]
    without, with_promo = (model.predict(p, calendar=calendar).filter(pl.col("item_id") == item) for p in planned)
    assert (with_promo["forecast"].to_numpy() >= without["forecast"].to_numpy() - 1e-9).all()
    assert with_promo["forecast"].sum() > without["forecast"].sum()


def test_unfitted_model_refuses_to_predict() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        GBMForecaster().predict(pl.DataFrame({"a": [1.0]}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_estimators": 0}, "`n_estimators` must be a positive integer, got 0"), ({"objective": "quantile"}, "`alpha`")],
)
def test_bad_model_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GBMForecaster(**kwargs)  # type: ignore[arg-type]


def test_horizon_must_be_positive(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, _ = chain
    with pytest.raises(ValueError, match="`horizon` must be a positive integer, got 0"):
        fit_forecaster(panel, FeatureSpec.for_freq("D"), FAST, cutoff=CUTOFF, horizon=0)


def test_xgboost_engine_works(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    config = FAST.model_copy(update={"engine": "xgboost", "n_estimators": 40})
    forecast = fit_forecaster(panel, FeatureSpec.for_freq("D"), config, cutoff=CUTOFF, horizon=7, calendar=calendar)
    assert forecast.predict(panel, calendar=calendar).height == 24 * 7


@pytest.mark.parametrize("censoring", ["none", "mask", "impute"])
def test_every_censoring_treatment_trains_and_predicts(chain: tuple[Panel, pl.DataFrame], censoring: str) -> None:
    panel, calendar = chain
    spec = FeatureSpec.for_freq("D", censoring=censoring)  # type: ignore[arg-type]
    model = fit_forecaster(panel, spec, FAST, cutoff=CUTOFF, horizon=7, calendar=calendar)
    assert model.predict(panel, calendar=calendar).height == 24 * 7
    assert "literal" not in model.model.encoder_.columns_


def test_a_young_series_level_falls_back_on_shorter_windows() -> None:
    from shelfcast.models.train import _scaled

    spec = FeatureSpec.for_freq("W")
    features = pl.DataFrame({"mean_52": [None, 8.0], "mean_13": [4.0, 9.0], "expanding_mean": [3.0, 7.0]})
    _, level = _scaled(features, spec, ForecastConfig())
    assert level.tolist() == pytest.approx([4.1, 8.1])  # not the 0.1 floor for the young series


def test_a_series_that_opens_out_of_stock_all_day_trains_with_imputed_demand(
    chain: tuple[Panel, pl.DataFrame],
) -> None:
    # FreshRetailNet has series whose first days are full-day stockouts: the
    # imputed demand is null there, and its expanding mean must be null, not 0/0.
    panel, calendar = chain
    store = panel.frame["store_id"][0]
    opening = (pl.col("store_id") == store) & (pl.col("date") <= CUTOFF - dt.timedelta(days=60))
    frame = panel.frame.with_columns(
        pl.when(opening).then(pl.lit(24.0)).otherwise(pl.col("stockout_hours")).alias("stockout_hours"),
        pl.when(opening).then(pl.lit(0.0)).otherwise(pl.col("y")).alias("y"),
    )
    out_of_stock = Panel(frame, panel.freq, panel.known_in_advance, panel.past_only, panel.categorical)
    spec = FeatureSpec.for_freq("D", censoring="impute")
    features = origin_features(out_of_stock, spec).filter(pl.col("store_id") == store)
    assert features["expanding_mean"].is_nan().sum() == 0
    assert features.filter(pl.col("date") <= CUTOFF - dt.timedelta(days=60))["expanding_mean"].null_count() > 0
    forecast = fit_forecaster(out_of_stock, spec, FAST, cutoff=CUTOFF, horizon=7, calendar=calendar).predict(
        out_of_stock, calendar=calendar
    )
    assert forecast["forecast"].is_finite().all()


def test_item_and_store_attributes_reach_the_model(chain: tuple[Panel, pl.DataFrame]) -> None:
    from shelfcast.models.data import useful_attributes

    panel, calendar = chain
    attributes = useful_attributes(panel)
    assert "category" in attributes
    spec = FeatureSpec.for_freq("D", categorical=("store_id", "item_id", *attributes))
    model = fit_forecaster(panel, spec, FAST, cutoff=CUTOFF, horizon=7, calendar=calendar)
    encoder = model.model.encoder_
    assert set(attributes) <= set(encoder.vocab_)  # encoded as categories, not dropped
    categories = panel.frame["category"].unique().to_list()
    assert sorted(encoder.vocab_["category"]) == sorted(categories)


def test_a_bare_forecaster_is_the_one_the_pipeline_trains() -> None:
    """GBMForecaster's defaults are ForecastConfig's (written once, in BoosterParams)."""
    bare, config = GBMForecaster(), ForecastConfig()
    assert {k: getattr(bare, k) for k in BoosterParams.model_fields} == config.model_dump(
        include=set(BoosterParams.model_fields)
    )


def _seasonal_weekly(weeks: int) -> Panel:
    """Ten series with a strong yearly season (a summer peak four times the winter), weekly, `weeks` long."""
    rng = np.random.default_rng(4)
    dates = pl.date_range(dt.date(2010, 1, 1), dt.date(2010, 1, 1) + dt.timedelta(weeks=weeks - 1), "1w", eager=True)
    week = dates.dt.week().to_numpy()
    season = 1.0 + 3.0 * np.exp(-(((week - 28) / 6.0) ** 2))
    frames = [
        pl.DataFrame(
            {
                "date": dates,
                "store_id": "S1",
                "item_id": f"I{i}",
                "units": np.round(rng.uniform(50, 500) * season * rng.uniform(0.9, 1.1, weeks)),
            }
        )
        for i in range(10)
    ]
    return build_panel({"sales": pl.concat(frames)}, freq="W")


def test_the_level_window_is_one_most_training_rows_had_whole() -> None:
    # A year and a bit of weekly history: most training origins had well under 52 weeks behind them.
    short, long = _seasonal_weekly(60), _seasonal_weekly(200)
    spec, config = FeatureSpec.for_freq("W"), ForecastConfig.for_freq("W", n_estimators=60, strategy="direct")
    young = fit_forecaster(short, spec, config, cutoff=short.frame["date"].max(), horizon=13)
    assert young.level_window is not None and young.level_window < 52
    old = fit_forecaster(long, spec, config, cutoff=long.frame["date"].max(), horizon=13)
    assert old.level_window == 52
