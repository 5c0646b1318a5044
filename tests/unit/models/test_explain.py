"""Explanations of the stockout risk: contributions add up to the margin, directions follow the data, words read."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shelfcast.features.labels import StockoutDefinition
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.explain import Phrases, contributions, explain, margin
from shelfcast.models.forecaster import Engine, GBMForecaster
from shelfcast.models.stockout import StockoutConfig, StockoutModel

ENGINES: tuple[Engine, ...] = ("lightgbm", "xgboost")


def _frame(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    stockouts = rng.integers(0, 5, n).astype(np.float64)
    cover = rng.uniform(0, 10, n)
    mean_28 = rng.uniform(1, 20, n)
    frame = pl.DataFrame(
        {
            "store_id": rng.choice(["S1", "S2", "S3"], n),
            "item_id": rng.choice(["I1", "I2", "I3", "I4"], n),
            "stockout_days_7": stockouts,
            "days_of_cover": cover,
            "mean_7": mean_28 * rng.uniform(0.5, 1.5, n),
            "mean_28": mean_28,
            "promo_now": rng.integers(0, 2, n).astype(np.float64),
            "noise": rng.normal(size=n),
        }
    )
    # Risk rises with recent stockouts and falls with stock cover; ids matter a little (store S3 runs short).
    logit = 1.2 * stockouts - 0.8 * cover + 2.0 + np.where(frame["store_id"].to_numpy() == "S3", 0.7, 0.0)
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return frame, label


@pytest.fixture(scope="module", params=ENGINES)
def fitted(request: pytest.FixtureRequest) -> StockoutModel:
    frame, label = _frame(3000, seed=1)
    gbm = GBMForecaster(
        engine=request.param, objective="binary", n_estimators=40, learning_rate=0.2, num_leaves=7, min_child_samples=20
    ).fit(frame, label)
    # A monotone calibration that is not the identity: the risk must go through it.
    x = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    y = np.array([0.0, 0.1, 0.4, 0.9, 1.0])
    config = StockoutConfig(engine=request.param)
    return StockoutModel(FeatureSpec(), config, StockoutDefinition(), gbm, x, y, 0.35, float(label.mean()))


def _rows(model: StockoutModel, frame: pl.DataFrame) -> np.ndarray:
    return model.model.encoder_.transform(frame)


def test_contributions_add_up_to_the_margin(fitted: StockoutModel) -> None:
    frame, _ = _frame(200, seed=2)
    rows = _rows(fitted, frame)
    contrib = contributions(fitted.model, rows)
    assert contrib.shape == (200, len(fitted.model.encoder_.columns_) + 1)
    raw = margin(fitted.model, rows)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=0, atol=1e-4)
    # The margin is the booster's: its sigmoid is the probability `predict` gives.
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), fitted.model.predict_matrix(rows), atol=1e-5)
    assert np.abs(contrib[:, :-1]).sum() > 1.0  # the features do push


def test_explain_gives_the_calibrated_risk_and_the_margin(fitted: StockoutModel) -> None:
    frame, _ = _frame(20, seed=3)
    rows = _rows(fitted, frame)
    risks = fitted.predict_proba_matrix(rows)
    for k in range(rows.shape[0]):
        got = explain(fitted, rows[k], top=50)
        assert got.risk == pytest.approx(risks[k], abs=1e-12)
        assert got.threshold == 0.35 and got.label == (risks[k] >= 0.35)
        everything = got.base_value + sum(r.contribution for r in got.reasons)
        assert everything == pytest.approx(got.margin, abs=1e-9)
        assert got.margin == pytest.approx(margin(fitted.model, rows[k : k + 1])[0], abs=1e-4)
        assert all(r.contribution > 0 for r in got.up) and all(r.contribution < 0 for r in got.down)
        assert [r.contribution for r in got.up] == sorted((r.contribution for r in got.up), reverse=True)


def test_top_keeps_the_strongest(fitted: StockoutModel) -> None:
    frame, _ = _frame(1, seed=4)
    rows = _rows(fitted, frame)[0]
    every = explain(fitted, rows, top=50)
    two = explain(fitted, rows, top=2)
    assert two.up == every.up[:2] and two.down == every.down[:2]
    with pytest.raises(ValueError, match="`top` must be a positive integer, got 0"):
        explain(fitted, rows, top=0)
    with pytest.raises(ValueError, match="one row of 8 encoded features"):
        explain(fitted, rows[:3])


def _reason(model: StockoutModel, row: pl.DataFrame, feature: str) -> tuple[str, float, str]:
    got = explain(model, _rows(model, row)[0], top=50)
    found = [r for r in got.reasons if r.feature == feature]
    assert found, f"{feature} did not push at all"
    return found[0].direction, found[0].contribution, found[0].text


def test_raising_a_feature_moves_its_push_the_way_the_data_does(fitted: StockoutModel) -> None:
    base = _frame(1, seed=5)[0].with_columns(
        pl.lit(2.0).alias("stockout_days_7"), pl.lit(4.0).alias("days_of_cover"), pl.lit("S1").alias("store_id")
    )
    low_dir, low, low_text = _reason(fitted, base.with_columns(pl.lit(0.0).alias("stockout_days_7")), "stockout_days_7")
    high_dir, high, high_text = _reason(
        fitted, base.with_columns(pl.lit(4.0).alias("stockout_days_7")), "stockout_days_7"
    )
    assert (low_dir, high_dir) == ("down", "up") and high > low
    assert (low_text, high_text) == ("0 stockouts in the last 7 days", "4 stockouts in the last 7 days")
    # More stock cover, less risk.
    short, _, short_text = _reason(fitted, base.with_columns(pl.lit(0.5).alias("days_of_cover")), "days_of_cover")
    ample, _, _ = _reason(fitted, base.with_columns(pl.lit(9.5).alias("days_of_cover")), "days_of_cover")
    assert (short, ample) == ("up", "down") and short_text == "stock covers 0.5 days of sales"
    # The risk follows: the explanation's risk is higher with more stockouts.
    risky = explain(fitted, _rows(fitted, base.with_columns(pl.lit(4.0).alias("stockout_days_7")))[0])
    calm = explain(fitted, _rows(fitted, base.with_columns(pl.lit(0.0).alias("stockout_days_7")))[0])
    assert risky.risk > calm.risk


def test_ids_read_as_their_own_history(fitted: StockoutModel) -> None:
    row = _frame(1, seed=6)[0].with_columns(pl.lit("S3").alias("store_id"))
    direction, _, text = _reason(fitted, row, "store_id")
    assert (direction, text) == ("up", "this store's own history")


def _say(feature: str, freq: str = "D", **values: float | None) -> str:
    vocab = {"store_id": {"S1": 0}, "category": {"Dairy": 0, "Bakery": 1}}
    return Phrases(values, vocab, freq=freq).text(feature)


@pytest.mark.parametrize(
    ("feature", "values", "text"),
    [
        ("mean_7", {"mean_7": 13.0, "mean_28": 10.0}, "sold 30% above its 4-week average (13 vs 10 a day)"),
        ("mean_7", {"mean_7": 7.5, "mean_28": 10.0}, "sold 25% below its 4-week average (7.5 vs 10 a day)"),
        (
            "mean_7",
            {"mean_7": 10.2, "mean_28": 10.0},
            "sold 10.2 a day over the last 7 days, in line with its 4-week average",
        ),
        ("mean_28", {"mean_28": 10.0, "mean_91": 5.0}, "sold 100% above its 13-week average (10 vs 5 a day)"),
        ("mean_364", {"mean_364": 4.25}, "sold 4.2 a day over the last year"),
        ("stockout_days_7", {"stockout_days_7": 2.0}, "2 stockouts in the last 7 days"),
        ("stockout_days_28", {"stockout_days_28": 1.0}, "1 stockout in the last 4 weeks"),
        ("full_stockout_days_14", {"full_stockout_days_14": 3.0}, "3 full-day stockouts in the last 2 weeks"),
        ("days_of_cover", {"days_of_cover": 1.5}, "stock covers 1.5 days of sales"),
        ("days_of_cover", {"days_of_cover": None}, "stock cover unknown (no stock count)"),
        ("on_hand_now", {"on_hand_now": 12.0}, "12 units on hand"),
        ("on_hand_minus_safety", {"on_hand_minus_safety": -4.0}, "stock 4 units below safety stock"),
        ("promo_now", {"promo_now": 1.0}, "on promotion"),
        ("promo_now", {"promo_now": 0.0}, "not on promotion"),
        ("price_now", {"price_now": 9.0, "price_mean_28": 10.0}, "price 10% below its usual (9.00 vs 10.00)"),
        ("o_weekday", {"o_weekday": 5.0}, "weekend ahead (the coming days start on Saturday)"),
        ("o_weekday", {"o_weekday": 1.0}, "the coming days start on Tuesday"),
        ("steps_since_stockout", {"steps_since_stockout": 0.0}, "a stockout on the latest day"),
        ("steps_since_stockout", {"steps_since_stockout": 3.0}, "last stockout 3 days ago"),
        ("steps_since_stockout", {"steps_since_stockout": None}, "no stockout on record"),
        ("stockout_hours_now", {"stockout_hours_now": 5.0}, "out of stock 5 hours on the latest day"),
        ("lag_1", {"lag_1": 4.0}, "sold 4 units on the latest day"),
        ("lag_8", {"lag_8": 1.0}, "sold 1 unit 1 week before the latest day"),
        ("zero_share_28", {"zero_share_28": 0.25}, "no sales on 25% of the last 4 weeks"),
        ("store_id", {"store_id": 0.0}, "this store's own history"),
        ("item_id", {"item_id": None}, "an item new to the model"),
        ("mean_7", {"mean_7": 0.0, "mean_28": 3.25}, "no sales over the last 7 days (4-week average 3.2)"),
        ("w_max_promo", {"w_max_promo": 1.0}, "a promotion planned in the coming days"),
        ("w_mean_promo", {"w_mean_promo": 0.5}, "promotion planned on 50% of the coming days"),
        ("category", {"category": 1.0}, "its category (Bakery)"),
        ("past_temperature", {"past_temperature": 21.5}, "temperature 21.5 on the latest day"),
        ("o_month", {"o_month": 12.0}, "the season (December)"),
        ("mystery_feature", {"mystery_feature": 2.5}, "mystery_feature = 2.5"),
        ("mystery_feature", {"mystery_feature": None}, "mystery_feature = unknown"),
    ],
)
def test_phrases_of_known_features(feature: str, values: dict[str, float | None], text: str) -> None:
    assert _say(feature, **values) == text


def test_weekly_phrases_count_weeks() -> None:
    assert _say("mean_4", "W", mean_4=13.0, mean_13=10.0) == "sold 30% above its 13-week average (13 vs 10 a week)"
    assert _say("stockout_days_3", "W", stockout_days_3=2.0) == "2 stockouts in the last 3 weeks"
    assert _say("mean_52", "W", mean_52=3.0) == "sold 3 a week over the last year"
