"""The service recomputes the on-hand features for a stock count sent with a request: no train/serve skew.

A request's `on_hand` must give the features `origin_features_at` would give
if the lake had that count on the origin day.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.origin import ON_HAND_FEATURES, on_hand_features, origin_features_at, stock_inputs
from shelfcast.features.panel import SERIES, Panel, build_panel
from shelfcast.features.spec import FeatureSpec


@pytest.fixture(scope="module")
def panel() -> Panel:
    result = simulate(SimConfig(n_stores=2, n_items=6, n_days=120, seed=5))
    tables = {k: v for k, v in result.tables().items() if k != "movements"}
    # One item has no safety stock: its gap to it must be NaN, not a made-up value.
    stock = tables["inventory"].with_columns(
        pl.when(pl.col("item_id") == pl.col("item_id").min())
        .then(None)
        .otherwise(pl.col("safety_stock"))
        .alias("safety_stock")
    )
    return build_panel({**tables, "inventory": stock}, freq="D", exogenous_roles=result.exogenous_roles)


def _with_count(panel: Panel, counts: pl.DataFrame, origin: object) -> Panel:
    frame = (
        panel.frame.join(counts, on=list(SERIES), how="left")
        .with_columns(
            pl.when(pl.col("date") == origin).then(pl.col("new_on_hand")).otherwise(pl.col("on_hand")).alias("on_hand")
        )
        .drop("new_on_hand")
    )
    return Panel(frame, panel.freq, panel.known_in_advance, panel.past_only, panel.categorical, panel.extra)


def test_a_new_count_gives_the_features_the_lake_would_give(panel: Panel) -> None:
    spec = FeatureSpec.for_freq("D")
    origin = panel.dates[-1]
    inputs = stock_inputs(panel, origin).sort(SERIES)
    rng = np.random.default_rng(1)
    counts = inputs.select(*SERIES).with_columns(
        pl.Series("new_on_hand", rng.integers(0, 40, inputs.height).astype(np.float64))
    )
    expected = origin_features_at(_with_count(panel, counts, origin), spec, origin).sort(SERIES)
    got = on_hand_features(
        counts["new_on_hand"].to_numpy(),
        inputs["recent_sales"].to_numpy(),
        inputs["safety_stock"].fill_null(np.nan).to_numpy(),
    )
    assert set(got) == set(ON_HAND_FEATURES)
    for name in ON_HAND_FEATURES:
        want = expected[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        # The model reads float32: equal there is what matters.
        np.testing.assert_array_equal(got[name].astype(np.float32), want.astype(np.float32), err_msg=name)
    assert np.isnan(got["on_hand_minus_safety"]).any()


def test_stock_inputs_read_nothing_after_the_origin(panel: Panel) -> None:
    origin = panel.dates[-30]
    before = stock_inputs(panel, origin)
    changed = panel.frame.with_columns(
        pl.when(pl.col("date") > origin).then(pl.col("y") * 100 + 7).otherwise(pl.col("y")).alias("y")
    )
    after = stock_inputs(Panel(changed, panel.freq, panel.known_in_advance), origin)
    assert before.equals(after)
    assert before.height == panel.frame.select(SERIES).n_unique()
