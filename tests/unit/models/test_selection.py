"""Model choice users can trust: several windows, the data's metric, a margin before a baseline wins, fitted blends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.backtest import BLEND, MODEL, RECURSIVE, BacktestConfig, backtest_demand
from shelfcast.models.data import ModelData
from shelfcast.models.quantile_forecast import chosen_forecast
from shelfcast.models.selection import (
    SelectionConfig,
    choose,
    fit_blend_weight,
    resolve_metric,
    selection_windows,
)
from shelfcast.models.train import ForecastConfig

FAST = ForecastConfig(n_origins=20, max_rows=20_000, n_estimators=40, learning_rate=0.15, strategy="direct")
DAY, WEEK = dt.timedelta(days=1), dt.timedelta(days=7)
INCUMBENTS = [MODEL, RECURSIVE, BLEND]


def _metrics(scores: dict[str, list[float]]) -> pl.DataFrame:
    """A backtest's metrics frame: per model, one WAPE per window and the mean as "all"."""
    rows = []
    for model, values in scores.items():
        rows += [{"model": model, "window": str(i + 1), "wape": v} for i, v in enumerate(values)]
        rows.append({"model": model, "window": "all", "wape": float(np.mean(values))})
    return pl.DataFrame(rows)


def test_a_better_gbm_that_loses_one_window_to_the_naive_is_kept() -> None:
    metrics = _metrics({MODEL: [0.20, 0.31, 0.20], "seasonal_naive": [0.25, 0.30, 0.26]})
    chosen, reason = choose(metrics, metric="wape", incumbents=INCUMBENTS, margin=0.05)
    assert chosen == MODEL
    assert "best wape" in reason


def test_a_baseline_better_on_one_window_only_and_by_less_than_the_margin_does_not_replace_the_gbm() -> None:
    metrics = _metrics({MODEL: [0.20, 0.30, 0.20], "seasonal_naive": [0.21, 0.26, 0.21]})  # 0.2267 vs 0.2333
    chosen, reason = choose(metrics, metric="wape", incumbents=INCUMBENTS, margin=0.05)
    assert chosen == MODEL
    assert "wins only 1 of 3 windows" in reason and "5% margin" in reason


def test_a_baseline_that_wins_most_windows_or_by_the_margin_replaces_the_gbm() -> None:
    most = _metrics({MODEL: [0.22, 0.30, 0.20], "seasonal_naive": [0.21, 0.29, 0.21]})
    assert choose(most, metric="wape", incumbents=INCUMBENTS, margin=0.05) == (
        "seasonal_naive",
        "seasonal_naive wape 0.2367 beats gbm 0.24 and wins 2 of 3 windows",
    )
    clear = _metrics({MODEL: [0.30, 0.40, 0.20], "moving_average": [0.20, 0.30, 0.21]})
    chosen, reason = choose(clear, metric="wape", incumbents=INCUMBENTS, margin=0.05)
    assert chosen == "moving_average" and "wins 2 of 3" in reason
    lone = _metrics({MODEL: [0.40, 0.30, 0.30], "naive": [0.20, 0.31, 0.31]})  # one window, 18 % better overall
    chosen, reason = choose(lone, metric="wape", incumbents=INCUMBENTS, margin=0.05)
    assert chosen == "naive" and "better by 18.0% overall" in reason


def test_the_blend_is_an_incumbent_beside_the_gbms() -> None:
    metrics = _metrics({MODEL: [0.30, 0.30, 0.30], BLEND: [0.25, 0.31, 0.26], "seasonal_naive": [0.28, 0.29, 0.28]})
    chosen, _ = choose(metrics, metric="wape", incumbents=INCUMBENTS, margin=0.05)
    assert chosen == BLEND  # the best incumbent; the naive is worse overall than it


def test_choose_refuses_a_metric_the_backtest_lacks() -> None:
    with pytest.raises(ValueError, match="no 'smape'"):
        choose(_metrics({MODEL: [0.2]}), metric="smape", incumbents=INCUMBENTS, margin=0.05)


def test_the_metric_follows_the_data_unless_set() -> None:
    calendar = pl.DataFrame({"date": [dt.date(2024, 12, 25)], "event": ["christmas"]})
    assert resolve_metric(SelectionConfig(), calendar) == "wmae"
    assert resolve_metric(SelectionConfig(), None) == "wape"
    assert resolve_metric(SelectionConfig(), calendar.clear()) == "wape"
    assert resolve_metric(SelectionConfig(metric="smape"), calendar) == "smape"
    with pytest.raises(ValidationError, match="metric"):
        SelectionConfig(metric="accuracy")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="margin"):
        SelectionConfig(margin=1.5)


def test_windows_are_a_horizon_apart_when_the_history_allows_and_say_why_when_not() -> None:
    first = dt.date(2013, 1, 1)
    long = selection_windows(first, first + DAY * 1734, horizon=90, step=DAY, wanted=3)
    assert (long.count, long.stride, long.note) == (3, 90, None)
    # Walmart at its 2012-01-27 cutoff: 103 weeks of history, 39 to forecast.
    weekly = selection_windows(dt.date(2010, 2, 5), dt.date(2012, 1, 27), horizon=39, step=WEEK, wanted=3)
    assert (weekly.count, weekly.stride) == (3, 12)
    assert weekly.note == "windows overlap: one every 12 steps for a horizon of 39"
    short = selection_windows(first, first + DAY * 95, horizon=28, step=DAY, wanted=3)
    assert short.count == 2 and short.note is not None and "2 windows, not 3" in short.note
    tiny = selection_windows(first, first + DAY * 60, horizon=28, step=DAY, wanted=3)
    assert tiny.count == 1 and tiny.note is not None and tiny.note.startswith("one window")
    assert selection_windows(first, first + DAY * 60, horizon=28, step=DAY, wanted=1).note is None


def test_the_blend_weight_is_fitted_on_the_windows() -> None:
    rng = np.random.default_rng(0)
    truth = rng.gamma(2.0, 5.0, 2000)
    gbm, naive = truth + rng.normal(0, 2, truth.size), truth + rng.normal(0, 2, truth.size)
    frame = pl.DataFrame({"y": truth, "forecast": gbm, "forecast_sn": naive, "weight": np.ones(truth.size)})
    assert fit_blend_weight(frame, "wape") == pytest.approx(0.5, abs=0.1)  # two equal, independent errors
    exact = frame.with_columns(pl.col("y").alias("forecast"))
    assert fit_blend_weight(exact, "mae") == 1.0
    assert fit_blend_weight(frame.with_columns(pl.col("y").alias("forecast_sn")), "wmae") == 0.0


def _weekly_profile_chain(noise: float, *, own_profile: bool, seed: int = 3) -> Panel:
    """Twelve series: a weekly profile (each its own, or one for all) times a level, plus noise; nothing else."""
    rng = np.random.default_rng(seed)
    dates = pl.date_range(dt.date(2023, 1, 2), dt.date(2023, 12, 31), "1d", eager=True)
    shared = np.array([0.7, 0.8, 0.9, 1.0, 1.3, 1.6, 0.7])
    frames = []
    for s in range(12):
        profile = rng.uniform(0.2, 2.0, 7) if own_profile else shared
        mean = rng.uniform(5, 40) * profile[dates.dt.weekday().to_numpy() - 1]
        units = np.maximum(0.0, np.round(mean + rng.normal(0, noise, dates.len())))
        frames.append(pl.DataFrame({"date": dates, "store_id": f"S{s % 3}", "item_id": f"I{s}", "units": units}))
    return build_panel({"sales": pl.concat(frames)}, freq="D")


def test_when_last_week_is_the_whole_story_the_seasonal_naive_or_the_blend_is_chosen() -> None:
    # Each series repeats its own week exactly: the seasonal naive is right every day, the GBM only nearly.
    panel = _weekly_profile_chain(noise=0.0, own_profile=True)
    result = backtest_demand(panel, FeatureSpec.for_freq("D"), FAST, BacktestConfig(folds=3, horizon=14))
    assert result.selection is not None
    assert result.selected in ("seasonal_naive", BLEND), result.selection.reason
    if result.selected == BLEND:
        assert result.selection.blend_weight is not None and result.selection.blend_weight < 0.5


def test_a_gbm_that_is_truly_better_is_chosen() -> None:
    # Noise around one profile: the naive copies last week's noise, the GBM averages it away.
    panel = _weekly_profile_chain(noise=3.0, own_profile=False)
    result = backtest_demand(panel, FeatureSpec.for_freq("D"), FAST, BacktestConfig(folds=3, horizon=14))
    assert result.selection is not None
    assert result.selected in (MODEL, BLEND), result.selection.reason
    overall = result.selection.overall
    assert overall[result.selected] < overall["seasonal_naive"]


@pytest.fixture(scope="module")
def sim() -> ModelData:
    result = simulate(SimConfig(n_stores=2, n_items=6, n_days=400, seed=5))
    tables = result.tables()
    panel = build_panel(tables, freq="D", exogenous_roles=result.exogenous_roles)
    spec = FeatureSpec.for_freq("D", exogenous_known=(), exogenous_past=())
    return ModelData(panel, tables["calendar"], spec, FAST)


def test_the_decision_is_reproducible_and_recorded_per_window(sim: ModelData) -> None:
    cutoff = sim.last_date - DAY * 14
    first = chosen_forecast(sim, cutoff=cutoff, horizon=14)
    again = chosen_forecast(sim, cutoff=cutoff, horizon=14)
    assert first.selection.candidate == again.selection.candidate
    assert first.selection.as_dict() == again.selection.as_dict()
    decision = first.selection.as_dict()
    assert decision["metric"] == "wmae"  # the simulated chain has a calendar of events
    assert len(decision["cutoffs"]) == 3 and decision["windows_note"] is None
    assert set(decision["per_window"][MODEL]) == {"1", "2", "3"}
    assert decision["candidate"] in decision["overall"]
    assert first.frame["model"].unique().to_list() == [decision["candidate"]]
    # No window reaches past the cutoff: the last one ends on it.
    last_cutoff = dt.date.fromisoformat(decision["cutoffs"][-1])
    assert last_cutoff + DAY * 14 == cutoff


def test_a_baseline_alone_or_a_blend_is_served_by_the_trained_model(sim: ModelData) -> None:
    from dataclasses import replace

    from shelfcast.models.baselines import BASELINES
    from shelfcast.models.train import fit_forecaster

    cutoff = sim.last_date - DAY * 14
    model = fit_forecaster(sim.panel, sim.spec, FAST, cutoff=cutoff, horizon=14, calendar=sim.calendar)
    gbm = model.predict(sim.panel, calendar=sim.calendar)
    naive = BASELINES["seasonal_naive"](sim.panel, cutoff=cutoff, horizon=14)
    alone = replace(model, mix=("seasonal_naive", 0.0)).predict(sim.panel, calendar=sim.calendar)
    keys = ["store_id", "item_id", "date"]
    assert alone.sort(keys)["forecast"].to_list() == naive.sort(keys)["forecast"].to_list()
    mixed = replace(model, mix=("seasonal_naive", 0.25)).predict(sim.panel, calendar=sim.calendar).sort(keys)
    expected = 0.25 * gbm.sort(keys)["forecast"].to_numpy() + 0.75 * naive.sort(keys)["forecast"].to_numpy()
    np.testing.assert_allclose(mixed["forecast"].to_numpy(), expected, rtol=1e-9)
    assert replace(model, mix=("seasonal_naive", 0.25)).served == BLEND
    assert replace(model, mix=("naive", 0.0)).served == "naive"
