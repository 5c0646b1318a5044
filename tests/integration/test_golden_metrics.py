"""Golden metrics: the backtest scores of a small seeded simulated chain, pinned to the third decimal.

The backtests are those `shelfcast backtest` runs, with its default models. A
change to the simulator, the panel, the features, the models or the metrics
that was not meant to move them shows up here. The numbers are deterministic:
fixed seeds, LightGBM with `deterministic` and row-wise histograms, the same
in three runs in separate processes and with any thread count
(`shelfcast.threads` picks it from the free CPUs).

When a change moves them on purpose (a new feature, another default): check
that they moved the way the change meant (the failure lists every number that
differs), then copy the new values here in the same commit and say why in its
message. Never widen the tolerance to make a change pass.
"""

from __future__ import annotations

import polars as pl
import pytest
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig
from shelfcast.jobs.backtest import run_backtest
from shelfcast.jobs.stockout import backtest_stockout
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration

# 8 series of 300 days; a low safety stock so the stockout windows have positives (6 of 16 rows).
CHAIN = SimConfig(
    n_stores=2, n_items=4, n_days=300, seed=8, min_base_demand=1.0, max_base_demand=30.0, safety_factor=0.25
)
TOLERANCE = 5e-4  # the third decimal

# model -> metric over both windows (`window == "all"`).
GOLDEN_DEMAND = {
    "gbm": {
        "wape": 0.6020,
        "mae": 3.9427,
        "rmse": 6.5559,
        "bias": 0.4776,
        "mase": 0.8348,
        "pinball_p50": 2.3832,
        "coverage_80": 0.6339,
    },
    "gbm_recursive": {
        "wape": 0.6008,
        "mae": 3.9346,
        "rmse": 6.6813,
        "bias": -0.0620,
        "mase": 0.8478,
        "pinball_p50": 2.4460,
        "coverage_80": 0.6429,
    },
    "blend_gbm_seasonal_naive": {"wape": 0.6104, "mae": 3.9977, "rmse": 6.7652, "bias": -0.0471, "mase": 0.8570},
    "moving_average_28": {"wape": 0.5960, "mae": 3.9034, "rmse": 6.7378, "bias": -0.3839, "mase": 0.8231},
    "naive": {"wape": 0.9100, "mae": 5.9598, "rmse": 9.1561, "bias": 0.9509, "mase": 1.1773},
    "seasonal_naive": {"wape": 0.7860, "mae": 5.1473, "rmse": 8.2740, "bias": -0.6116, "mase": 1.0547},
}
GOLDEN_STOCKOUT = {
    "classifier": {"pr_auc": 0.7022, "roc_auc": 0.8000, "brier": 0.1775, "alert_rate": 0.5625, "positive_rate": 0.375},
    "quantile_risk": {
        "pr_auc": 0.7384,
        "roc_auc": 0.7000,
        "brier": 0.3156,
        "alert_rate": 0.5625,
        "positive_rate": 0.375,
    },
    "rule": {"pr_auc": 0.5625, "roc_auc": 0.7000, "brier": 0.2500, "alert_rate": 0.2500, "positive_rate": 0.375},
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return ingest_chain(tmp_path_factory.mktemp("golden"), CHAIN)


def overall(metrics: pl.DataFrame, golden: dict[str, dict[str, float]]) -> dict[str, float]:
    """`model.metric` -> value over all windows, for the models and metrics `golden` names (flat, for approx)."""
    rows = {r["model"]: r for r in metrics.filter(pl.col("window") == "all").iter_rows(named=True)}
    return {f"{m}.{k}": rows[m][k] for m, names in golden.items() for k in names}


def flat(golden: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{m}.{k}": v for m, values in golden.items() for k, v in values.items()}


def test_demand_backtest_scores_are_pinned(chain: Settings) -> None:
    result = run_backtest(chain, folds=2, horizon=14)
    assert [c.isoformat() for c in result.cutoffs] == ["2022-10-01", "2022-10-15"]
    assert set(result.metrics["model"]) == set(GOLDEN_DEMAND)
    assert overall(result.metrics, GOLDEN_DEMAND) == pytest.approx(flat(GOLDEN_DEMAND), abs=TOLERANCE)
    # The moving average is 0.8 % better by WMAE but wins one window of two: below the margin, the GBM stays.
    assert result.selected == "gbm_recursive"
    assert result.selection is not None and "wins only 1 of 2 windows" in result.selection.reason


def test_stockout_backtest_scores_are_pinned(chain: Settings) -> None:
    result = backtest_stockout(chain, folds=2, risk_days=7, min_hours=None)
    assert [c.isoformat() for c in result.cutoffs] == ["2022-10-15", "2022-10-22"]
    assert set(result.metrics["model"]) == set(GOLDEN_STOCKOUT)
    assert overall(result.metrics, GOLDEN_STOCKOUT) == pytest.approx(flat(GOLDEN_STOCKOUT), abs=TOLERANCE)
    assert result.selected == "quantile_risk"
