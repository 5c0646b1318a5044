from __future__ import annotations

import datetime as dt

import polars as pl

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.build import build_features, stable_bucket
from shelfcast.features.frames import model_rows
from shelfcast.features.panel import build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.train import ForecastConfig, fit_forecaster


def test_buckets_are_stable_and_in_range() -> None:
    values = pl.Series(["I0001", "I0002", "I0001", None])
    first = stable_bucket(values, 64)
    assert first.to_list() == stable_bucket(values, 64).to_list()
    assert first[0] == first[2]
    assert first.is_between(0, 63).all()
    # Pinned: a change here would silently re-map every stored model's hashed features.
    assert stable_bucket(pl.Series(["I0001", "S001|I0002"]), 1024).to_list() == [792, 347]


def test_hashed_ids_and_crosses_feed_the_model() -> None:
    result = simulate(SimConfig(n_stores=2, n_items=8, n_days=200, seed=2))
    panel = build_panel(result.tables(), freq="D", exogenous_roles=result.exogenous_roles)
    spec = FeatureSpec.for_freq(
        "D", hash_buckets=32, crosses=(("item_id", "store_id"), ("item_id", "t_month")), categorical=()
    )
    rows = model_rows(panel, spec, [dt.date(2022, 6, 1)], [1, 2])
    features = build_features(panel, spec, rows)
    assert {"hash_store_id", "hash_item_id", "cross_item_id_store_id", "cross_item_id_t_month"} <= set(features.columns)
    config = ForecastConfig(n_origins=10, max_rows=5000, n_estimators=20)
    model = fit_forecaster(panel, spec, config, cutoff=dt.date(2022, 6, 30), horizon=7)
    assert "cross_item_id_t_month" in model.model.encoder_.vocab_
    assert model.predict(panel).height == 16 * 7
