"""The recursive strategy: shape, features equal to the builder's at every step, no leakage, and selection."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features import build
from shelfcast.features.build import build_features
from shelfcast.features.frames import HORIZON, ORIGIN, model_rows
from shelfcast.features.panel import KEYS, SERIES, Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models import recursive
from shelfcast.models.backtest import BLEND, MODEL, RECURSIVE, BacktestConfig, backtest_demand, candidates
from shelfcast.models.baselines import BASELINES
from shelfcast.models.recursive import recursion_panel, recursive_forecast
from shelfcast.models.train import ForecastConfig, TrainedForecaster, fit_forecaster, training_frame

CUTOFF = dt.date(2022, 12, 31)
FAST = ForecastConfig(n_origins=20, max_rows=20_000, n_estimators=40, learning_rate=0.15, strategy="recursive")
SPEC = FeatureSpec.for_freq("D", exogenous_known=("planned_markdown",), exogenous_past=("temperature", "cpi"))


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame]:
    result = simulate(SimConfig(n_stores=2, n_items=5, n_days=540, seed=7))
    tables = result.tables()
    # A covariate known in advance, so the target side is covered too.
    exo = tables["exogenous"].with_columns(pl.col("date").dt.ordinal_day().cast(pl.Float64).alias("planned_markdown"))
    roles = dict(result.exogenous_roles) | {"planned_markdown": "known_in_advance"}
    panel = build_panel({**tables, "exogenous": exo}, freq="D", exogenous_roles=roles)
    return panel, tables["calendar"]


@pytest.fixture(scope="module")
def model(chain: tuple[Panel, pl.DataFrame]) -> TrainedForecaster:
    panel, calendar = chain
    return fit_forecaster(panel, SPEC, FAST, cutoff=CUTOFF, horizon=21, calendar=calendar)


def _ragged(panel: Panel, cutoff: dt.date) -> Panel:
    """One series starts 40 days before the cutoff (young), another stops 10 days before it (gone),
    a third was out of stock all day every day so far (no usable demand at all)."""
    ids = panel.frame.select(SERIES).unique().sort(SERIES).rows()
    young, gone, empty = ((pl.col("store_id") == s) & (pl.col("item_id") == i) for s, i in ids[:3])
    day = dt.timedelta(days=1)
    keep = ~(young & (pl.col("date") < cutoff - 40 * day)) & ~(gone & (pl.col("date") > cutoff - 10 * day))
    out = panel.frame.filter(keep).with_columns(
        pl.when(empty & (pl.col("date") <= cutoff))
        .then(24.0)
        .otherwise(pl.col("stockout_hours"))
        .alias("stockout_hours")
    )
    return dataclasses.replace(panel, frame=out)


def _filled(panel: Panel, spec: FeatureSpec, forecast: pl.DataFrame, cutoff: dt.date, horizon: int) -> Panel:
    """The panel the loop reads, with the forecasts written in as the demand after the cutoff."""
    known = recursion_panel(panel, spec, origin=cutoff, horizon=horizon)
    frame = known.frame.join(forecast.select(*KEYS, "forecast"), on=list(KEYS), how="left").with_columns(
        pl.when(pl.col("date") > cutoff).then(pl.col("forecast")).otherwise(pl.col("y")).alias("y")
    )
    return dataclasses.replace(known, frame=frame.drop("forecast"))


def _assert_same_features(reference: pl.DataFrame, got: pl.DataFrame, where: str) -> None:
    assert sorted(reference.columns) == sorted(got.columns), where
    for column in reference.columns:
        a, b = reference[column], got[column]
        assert a.is_null().equals(b.is_null()), f"{column} nulls differ at {where}"
        if a.dtype.is_numeric():
            x, y = a.cast(pl.Float64).to_numpy(), b.cast(pl.Float64).to_numpy()
            assert np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True), f"{column} differs at {where}"
        else:
            assert a.equals(b), f"{column} differs at {where}"


def test_recursive_forecasts_have_the_direct_models_rows(
    chain: tuple[Panel, pl.DataFrame], model: TrainedForecaster
) -> None:
    panel, calendar = chain
    forecast = model.predict(panel, calendar=calendar)
    assert forecast.columns == ["store_id", "item_id", "date", "h", "forecast"]
    assert forecast.height == 10 * 21
    assert forecast["date"].min() == CUTOFF + dt.timedelta(days=1)
    assert forecast["date"].max() == CUTOFF + dt.timedelta(days=21)
    steps = forecast.select((pl.col("date") - pl.lit(CUTOFF)).dt.total_days().cast(pl.Int32)).to_series()
    assert steps.equals(forecast[HORIZON], check_names=False)
    assert forecast["forecast"].is_finite().all() and (forecast["forecast"] >= 0).all()
    direct = fit_forecaster(
        panel, SPEC, FAST.model_copy(update={"strategy": "direct"}), cutoff=CUTOFF, horizon=21, calendar=calendar
    ).predict(panel, calendar=calendar)
    assert direct.schema == forecast.schema
    assert direct.select(*KEYS, HORIZON).equals(forecast.select(*KEYS, HORIZON))
    # Fed its own forecasts, not the actuals: it is a different forecast from the direct one.
    assert not np.allclose(direct["forecast"].to_numpy(), forecast["forecast"].to_numpy())


def test_forecasts_past_the_end_of_the_panel(chain: tuple[Panel, pl.DataFrame]) -> None:
    # The forecast job's case: the panel ends at the cutoff. Without the known-in-advance
    # covariate (absent past the panel's end) the forecasts match those made on the full panel.
    panel, calendar = chain
    spec = SPEC.model_copy(update={"exogenous_known": ()})
    fitted = fit_forecaster(panel, spec, FAST, cutoff=CUTOFF, horizon=14, calendar=calendar)
    full = fitted.predict(panel, calendar=calendar)
    ending = fitted.predict(panel.until(CUTOFF), calendar=calendar)
    assert ending.select(*KEYS, HORIZON).equals(full.select(*KEYS, HORIZON))
    assert np.allclose(ending["forecast"].to_numpy(), full["forecast"].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("layout", ["full", "ends_at_cutoff", "young_and_gone"])
def test_every_steps_features_equal_the_builders_on_the_filled_panel(
    chain: tuple[Panel, pl.DataFrame], model: TrainedForecaster, layout: str
) -> None:
    # The loop computes demand features in numpy over a window of the last
    # `history_needed` steps; they must equal the builder's over the whole history.
    panel, calendar = chain
    panel = {"full": panel, "ends_at_cutoff": panel.until(CUTOFF), "young_and_gone": _ragged(panel, CUTOFF)}[layout]
    seen: list[pl.DataFrame] = []

    def score(features: pl.DataFrame) -> np.ndarray:
        seen.append(features)
        return model.score(features)

    horizon = 21
    forecast = recursive_forecast(panel, SPEC, score, origin=CUTOFF, horizon=horizon, calendar=calendar)
    filled = _filled(panel, SPEC, forecast, CUTOFF, horizon)
    series = forecast.select(SERIES).unique().sort(SERIES)
    assert len(seen) == horizon
    for k, got in enumerate(seen):
        origin = CUTOFF + dt.timedelta(days=k)
        rows = model_rows(filled, SPEC, [origin], [1], series=series)
        reference = build_features(filled, SPEC, rows, calendar=calendar)
        _assert_same_features(reference, got.sort(*SERIES), f"step {k + 1} ({layout})")


def test_weekly_steps_equal_the_builder_too() -> None:
    result = simulate(SimConfig(n_stores=1, n_items=4, n_days=1400, seed=5, freq="W"))
    panel = build_panel(result.tables(), freq="W", exogenous_roles=result.exogenous_roles)
    spec = FeatureSpec.for_freq("W")
    cutoff = panel.frame["date"].max() - dt.timedelta(weeks=20)
    seen: list[pl.DataFrame] = []

    def score(features: pl.DataFrame) -> np.ndarray:
        # Any deterministic function of the features will do: later steps read it back.
        seen.append(features)
        return np.nan_to_num(features["lag_1"].to_numpy(), nan=1.0) * 0.7 + features["t_month"].to_numpy()

    forecast = recursive_forecast(panel, spec, score, origin=cutoff, horizon=12)
    filled = _filled(panel, spec, forecast, cutoff, 12)
    series = forecast.select(SERIES).unique().sort(SERIES)
    for k, got in enumerate(seen):
        origin = cutoff + dt.timedelta(weeks=k)
        reference = build_features(filled, spec, model_rows(filled, spec, [origin], [1], series=series))
        _assert_same_features(reference, got.sort(*SERIES), f"week {k + 1}")


def test_features_are_built_once_not_per_step(
    chain: tuple[Panel, pl.DataFrame], model: TrainedForecaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel, calendar = chain
    calls: list[int] = []

    def counting(*args: object, **kwargs: object) -> pl.DataFrame:
        calls.append(1)
        return build.build_features(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(recursive, "build_features", counting)
    model.predict(panel, calendar=calendar, horizon=30)
    assert len(calls) == 1


def _scramble_after(panel: Panel, cutoff: dt.date, keep: set[str]) -> Panel:
    """Every value after `cutoff` replaced by noise, except the columns in `keep`."""
    rng = np.random.default_rng(0)
    later = pl.col("date") > cutoff
    numeric = [c for c, t in panel.frame.schema.items() if t.is_numeric() and c not in keep]
    noise = {c: pl.Series(rng.uniform(0, 1000, panel.frame.height)) for c in numeric}
    frame = panel.frame.with_columns(pl.when(later).then(noise[c]).otherwise(pl.col(c)).alias(c) for c in numeric)
    return dataclasses.replace(panel, frame=frame)


def test_nothing_after_the_cutoff_reaches_the_recursive_forecast(
    chain: tuple[Panel, pl.DataFrame], model: TrainedForecaster
) -> None:
    # y, inventory, past-only covariates and (undeclared) price and promotion plans
    # after the cutoff all turn to noise: the forecasts must not move.
    panel, calendar = chain
    honest = model.predict(panel, calendar=calendar)
    scrambled = model.predict(_scramble_after(panel, CUTOFF, {"planned_markdown"}), calendar=calendar)
    assert honest.equals(scrambled)


def test_the_leak_check_notices_a_declared_promotion_plan(chain: tuple[Panel, pl.DataFrame]) -> None:
    # With `future_price_promo` the plan is legitimately read at later origins: the same
    # scramble then moves the forecasts, so the check above has teeth.
    panel, calendar = chain
    spec = SPEC.model_copy(update={"future_price_promo": True})
    fitted = fit_forecaster(panel, spec, FAST, cutoff=CUTOFF, horizon=14, calendar=calendar)
    honest = fitted.predict(panel, calendar=calendar)
    scrambled = fitted.predict(_scramble_after(panel, CUTOFF, {"planned_markdown"}), calendar=calendar)
    assert not np.allclose(honest["forecast"].to_numpy(), scrambled["forecast"].to_numpy())


def test_the_recursive_model_trains_on_one_step_rows_from_every_origin(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    config = FAST.model_copy(update={"n_origins": 5, "origin_stride": 7})
    features, _, _ = training_frame(panel, SPEC, config, cutoff=CUTOFF, horizon=28, calendar=calendar)
    assert set(features[HORIZON].unique()) == {1}
    origins = features[ORIGIN].unique().sort()
    assert origins.len() == 35  # every step over the span the direct model samples weekly
    assert origins.max() == CUTOFF - dt.timedelta(days=1)


def test_strategy_is_auto_by_default_and_checked() -> None:
    assert ForecastConfig().strategy == "auto"
    with pytest.raises(ValidationError, match="strategy"):
        ForecastConfig(strategy="sideways")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("strategy", "gbms"), [("direct", {MODEL}), ("recursive", {RECURSIVE}), ("auto", {MODEL, RECURSIVE})]
)
def test_the_strategy_decides_which_gbms_are_candidates(
    chain: tuple[Panel, pl.DataFrame], strategy: str, gbms: set[str]
) -> None:
    panel, calendar = chain
    config = FAST.model_copy(update={"strategy": strategy, "n_estimators": 20})
    out = candidates(panel, SPEC, config, cutoff=CUTOFF, steps=7, calendar=calendar)
    assert set(out) == gbms | set(BASELINES)  # the backtest builds the blend itself
    for frame in out.values():
        assert frame.height == 10 * 7


def test_auto_backtest_scores_both_strategies_and_selects_one(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    config = FAST.model_copy(update={"strategy": "auto", "n_estimators": 20})
    result = backtest_demand(panel, SPEC, config, BacktestConfig(folds=2, horizon=7), calendar=calendar)
    overall = result.metrics.filter(pl.col("window") == "all")
    assert {MODEL, RECURSIVE} <= set(overall["model"])
    # Chosen by WMAE (the chain has events): the best of the GBMs and the blend, unless a baseline clearly wins.
    assert result.selection is not None and result.selection.metric == "wmae"
    incumbents = overall.filter(pl.col("model").is_in([MODEL, RECURSIVE, BLEND])).sort("wmae")
    assert result.selected in (incumbents["model"][0], *BASELINES)
    # Each GBM's intervals come from its own residuals in earlier windows.
    for name in (MODEL, RECURSIVE):
        later = result.forecasts.filter((pl.col("model") == name) & (pl.col("window") == 2))
        assert later["p10"].null_count() == 0
        assert overall.filter(pl.col("model") == name)["coverage_80"].is_not_null().all()
