from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.backtest import (
    BLEND,
    MODEL,
    RECURSIVE,
    BacktestConfig,
    backtest_demand,
    blend,
    candidates,
    cutoffs,
    score_fitted,
)
from shelfcast.models.baselines import BASELINES
from shelfcast.models.train import ForecastConfig, fit_forecaster

FAST = ForecastConfig(n_origins=20, max_rows=20_000, n_estimators=60, learning_rate=0.15)
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame]:
    result = simulate(SimConfig(n_stores=2, n_items=8, n_days=420, seed=11))
    tables = result.tables()
    return build_panel(tables, freq="D", exogenous_roles=result.exogenous_roles), tables["calendar"]


def test_cutoffs_end_the_last_window_on_the_last_date() -> None:
    last = dt.date(2024, 3, 31)
    config = BacktestConfig(folds=3, horizon=7, gap=2)
    assert cutoffs(last, config, DAY) == [last - DAY * 9 - DAY * 14, last - DAY * 9 - DAY * 7, last - DAY * 9]
    assert cutoffs(last, config.model_copy(update={"step": 1}), DAY)[-2:] == [last - DAY * 10, last - DAY * 9]


def test_every_candidate_is_scored_on_the_same_rows(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    result = backtest_demand(
        panel, FeatureSpec.for_freq("D"), FAST, BacktestConfig(folds=2, horizon=7, gap=1), calendar=calendar
    )
    assert set(result.forecasts["model"].unique()) == {MODEL, RECURSIVE, BLEND, *BASELINES}
    rows = result.forecasts.group_by("model").len()["len"].unique().to_list()
    assert len(rows) == 1  # same rows for every candidate
    assert result.forecasts["h"].min() == 2  # the gap is skipped
    overall = result.metrics.filter(pl.col("window") == "all")
    assert set(overall["model"]) == {MODEL, RECURSIVE, BLEND, *BASELINES}
    # Chosen by WMAE (the chain has events): the best overall, or a GBM/blend a baseline did not clearly beat.
    assert result.selection is not None and result.selection.metric == "wmae"
    assert result.selected in (overall.sort("wmae")["model"][0], MODEL, RECURSIVE, BLEND)
    segments = result.segments
    assert segments is not None
    assert set(segments["dimension"]) == {"store_id", "velocity", "category"}
    assert set(segments.filter(pl.col("dimension") == "velocity")["segment"]) <= {"slow", "medium", "fast"}


def test_intervals_come_only_from_earlier_windows(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, calendar = chain
    result = backtest_demand(
        panel, FeatureSpec.for_freq("D"), FAST, BacktestConfig(folds=3, horizon=7), calendar=calendar
    )
    model = result.forecasts.filter(pl.col("model") == MODEL)
    assert model.filter(pl.col("window") == 1)["p10"].null_count() == model.filter(pl.col("window") == 1).height
    later = model.filter(pl.col("window") > 1)
    assert later["p10"].null_count() == 0
    assert (later["p10"] <= later["p50"]).all() and (later["p50"] <= later["p90"]).all()
    coverage = result.metrics.filter((pl.col("model") == MODEL) & (pl.col("window") == "all"))["coverage_80"][0]
    assert 0.5 < coverage <= 1.0


def test_too_little_history_is_a_clear_error(chain: tuple[Panel, pl.DataFrame]) -> None:
    panel, _ = chain
    with pytest.raises(ValueError, match="not enough history for 20 window"):
        backtest_demand(panel, FeatureSpec.for_freq("D"), FAST, BacktestConfig(folds=20, horizon=28))


@pytest.mark.parametrize("only", [MODEL, RECURSIVE, BLEND, "seasonal_naive"])
def test_only_the_chosen_candidate_is_computed(
    chain: tuple[Panel, pl.DataFrame], only: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shelfcast.models import backtest as bt

    panel, calendar = chain
    fits: list[str] = []
    real_fit = bt.fit_forecaster
    monkeypatch.setattr(bt, "fit_forecaster", lambda *a, **k: (fits.append(a[2].strategy), real_fit(*a, **k))[1])
    cutoff = dt.date(2022, 12, 31)
    spec = FeatureSpec.for_freq("D")
    everything = candidates(panel, spec, FAST, cutoff=cutoff, steps=7, calendar=calendar)
    fits.clear()
    out = candidates(panel, spec, FAST, cutoff=cutoff, steps=7, calendar=calendar, only=only)
    assert list(out) == [only]
    assert fits == {MODEL: ["direct"], RECURSIVE: ["recursive"], BLEND: ["direct"], "seasonal_naive": []}[only]
    assert BLEND not in everything  # the backtest builds its blends, with fitted weights
    expected = blend(everything[MODEL], everything["seasonal_naive"], 0.5) if only == BLEND else everything[only]
    assert out[only].sort(["store_id", "item_id", "date"]).equals(expected.sort(["store_id", "item_id", "date"]))
    with pytest.raises(ValueError, match="unknown candidate"):
        candidates(panel, spec, FAST, cutoff=cutoff, steps=7, calendar=calendar, only="prophet")


def test_a_fitted_model_scored_as_is_matches_the_backtest_and_never_sees_its_windows(
    chain: tuple[Panel, pl.DataFrame],
) -> None:
    panel, calendar = chain
    spec, config = FeatureSpec.for_freq("D"), FAST.model_copy(update={"strategy": "direct"})
    window = BacktestConfig(folds=1, horizon=7)
    result = backtest_demand(panel, spec, config, window, calendar=calendar)
    (cutoff,) = result.cutoffs
    # The model the backtest fitted at its cutoff, fitted again and scored as it is: the same rows and scores.
    model = fit_forecaster(panel, spec, config, cutoff=cutoff, horizon=7, calendar=calendar)
    cutoffs, metrics = score_fitted(model, panel, window, name=MODEL, calendar=calendar)
    assert cutoffs == [cutoff]
    theirs = result.metrics.filter((pl.col("model") == MODEL) & (pl.col("window") == "1"))
    mine = metrics.filter(pl.col("window") == "1")
    for column in ("n_rows", "wape", "mae", "wmae"):
        assert mine[column][0] == pytest.approx(theirs[column][0], rel=1e-9), column
    # A model trained a day past the cutoff learned from the window's days: refused.
    later = fit_forecaster(panel, spec, config, cutoff=cutoff + DAY, horizon=7, calendar=calendar)
    with pytest.raises(ValueError, match="after the first cutoff"):
        score_fitted(later, panel, window, name=MODEL, calendar=calendar)
