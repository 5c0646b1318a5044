"""The explicit-feature form of /predict moves the model's input (issue 14): each alias, with and without ids.

The model here is a small LightGBM classifier on synthetic rows whose risk
rises with demand and promotion and falls with price and stock cover,
trained with monotone constraints in those directions, so a direction test
fails only when the serving path does not move the input.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from shelfcast.features.labels import StockoutDefinition
from shelfcast.features.origin import on_hand_features
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.forecaster import GBMForecaster
from shelfcast.models.stockout import StockoutConfig, StockoutModel
from shelfcast.service.online import OnlineScorer, SeriesTable

# Each alias, a low and a high value, and the direction the risk moves from low to high.
ALIAS_MOVES = {
    "price": (1.0, 9.0, -1),
    "promo": (0.0, 1.0, +1),
    "daily_sales": (0.0, 40.0, +1),
    "inventory": (0.0, 200.0, -1),
    "rolling_mean_7": (1.0, 40.0, +1),
    "rolling_mean_28": (1.0, 40.0, +1),
}
DIRECTION = {
    "lag_1": 1,
    "mean_7": 1,
    "mean_28": 1,
    "price_now": -1,
    "promo_now": 1,
    "on_hand_now": -1,
    "days_of_cover": -1,
    "on_hand_minus_safety": -1,
}


def _frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    demand = rng.uniform(0.0, 40.0, n)
    on_hand = rng.uniform(0.0, 200.0, n)
    safety = rng.uniform(0.0, 20.0, n)
    moved = on_hand_features(on_hand, demand, safety)
    return pl.DataFrame(
        {
            "store_id": rng.choice(["S0", "S1"], n),
            "item_id": rng.choice(["I0", "I1", "I2"], n),
            "lag_1": demand + rng.normal(0, 3, n).clip(-demand),
            "mean_7": demand,
            "mean_28": demand + rng.normal(0, 2, n).clip(-demand),
            "price_now": rng.uniform(1.0, 9.0, n),
            "promo_now": rng.integers(0, 2, n).astype(np.float64),
            **moved,
        }
    )


@pytest.fixture(scope="module")
def scorer() -> OnlineScorer:
    rng = np.random.default_rng(3)
    frame = _frame(rng, 6000)
    demand = (frame["lag_1"] + frame["mean_7"] + frame["mean_28"]).to_numpy() / 3
    cover = np.log1p(frame["days_of_cover"].to_numpy())
    gap = frame["on_hand_minus_safety"].to_numpy() / 50
    logit = 0.08 * demand + 1.0 * frame["promo_now"].to_numpy() - 0.3 * frame["price_now"].to_numpy() - cover - gap
    y = (rng.random(frame.height) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    booster = GBMForecaster(
        objective="binary",
        n_estimators=60,
        learning_rate=0.1,
        num_leaves=7,
        min_child_samples=20,
        monotone=DIRECTION,
        n_jobs=1,
    ).fit(frame, y)
    model = StockoutModel(
        spec=FeatureSpec(),
        config=StockoutConfig(),
        definition=StockoutDefinition(),
        model=booster,
        calibration_x=np.array([0.0, 1.0]),
        calibration_y=np.array([0.0, 1.0]),
        threshold=0.5,
        positive_rate=float(y.mean()),
    )
    series = _frame(np.random.default_rng(4), 3).with_columns(
        pl.Series("store_id", ["S0", "S0", "S1"]), pl.Series("item_id", ["I0", "I1", "I2"])
    )
    table = SeriesTable(
        origin=dt.date(2026, 11, 1),
        index={(s, i): n for n, (s, i) in enumerate(series.select("store_id", "item_id").iter_rows())},
        matrix=booster.encoder_.transform(series),
        recent_sales=series["mean_7"].to_numpy(),
        safety_stock=(series["on_hand_now"] - series["on_hand_minus_safety"]).to_numpy(),
        rule=np.zeros(3),
        recent_stockout=np.zeros(3),
    )
    return OnlineScorer(table, model)


def _risk(scorer: OnlineScorer, features: dict[str, float], *, ids: bool) -> float:
    rows = scorer.rows([("S0", "I1")]) if ids else None
    return float(scorer.score(scorer.matrix(rows, count=1, features=[features])).risk[0])


@pytest.mark.parametrize("ids", [True, False], ids=["with-ids", "without-ids"])
@pytest.mark.parametrize("alias", list(ALIAS_MOVES))
def test_each_alias_moves_the_risk_in_its_direction(scorer: OnlineScorer, alias: str, ids: bool) -> None:
    low, high, direction = ALIAS_MOVES[alias]
    before, after = _risk(scorer, {alias: low}, ids=ids), _risk(scorer, {alias: high}, ids=ids)
    assert np.sign(after - before) == direction, (alias, before, after)


@pytest.mark.parametrize("count", [0.0, 7.0, 1000.0])
def test_inventory_is_the_same_input_as_on_hand(scorer: OnlineScorer, count: float) -> None:
    rows = scorer.rows([("S0", "I0"), ("S1", "I2")])
    by_feature = scorer.matrix(rows, count=2, features=[{"inventory": count}, {"on_hand_now": count}])
    by_count = scorer.matrix(rows, count=2, on_hand=np.array([count, count]))
    np.testing.assert_array_equal(by_feature, by_count)
    assert (
        by_count[0, scorer.position["days_of_cover"]] != scorer.table.matrix[rows[0], scorer.position["days_of_cover"]]
    )
    counts = scorer.stock_counts([None, count], [{"inventory": count}, None])
    np.testing.assert_array_equal(counts, [count, count])


def test_without_ids_the_unsent_features_are_a_typical_series(scorer: OnlineScorer) -> None:
    """Not missing values (a row the model never saw); a sent count divides by the sent rolling mean."""
    row = scorer.matrix(None, count=1, features=[{"inventory": 10.0, "rolling_mean_7": 4.9}])
    numeric = [scorer.position[c] for c in scorer.settable]
    assert not np.isnan(row[0, numeric]).any()
    assert row[0, scorer.position["days_of_cover"]] == np.float32(10.0 / (4.9 + 0.1))
    payloads = [{"price": 2.0}, {"promo": 1.0}, {"daily_sales": 30.0}, {"inventory": 0.0}, {"rolling_mean_7": 35.0}]
    risks = {_risk(scorer, p, ids=False) for p in payloads}
    assert len(risks) >= 3, risks  # not one risk whatever is sent
