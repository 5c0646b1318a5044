"""Promotion gates: direction of the metric, baselines, champion on shared windows, floors."""

from __future__ import annotations

import pytest

from shelfcast.models.gates import GateFloors, evaluate_gates, mean_over

W1, W2, W3 = "2024-01-01", "2024-01-29", "2024-02-26"


def scores(metric: str, *values: float, windows: tuple[str, ...] = (W1, W2)) -> dict[str, dict[str, float]]:
    return {w: {metric: v} for w, v in zip(windows, values, strict=True)}


def test_demand_challenger_that_beats_baselines_passes_without_champion() -> None:
    result = evaluate_gates(
        "demand",
        challenger=scores("wape", 0.30, 0.32),
        baselines={"seasonal_naive": scores("wape", 0.40, 0.42), "naive": scores("wape", 0.5, 0.5)},
        champion=None,
        floors=GateFloors(),
    )
    assert result.passed, result.reason
    assert result.values["wape.best_baseline"] == pytest.approx(0.41)
    assert "beats the best baseline seasonal_naive" in result.reason


def test_demand_challenger_worse_than_a_baseline_is_refused() -> None:
    result = evaluate_gates(
        "demand",
        challenger=scores("wape", 0.45, 0.45),
        baselines={"seasonal_naive": scores("wape", 0.40, 0.42)},
        champion=None,
        floors=GateFloors(),
    )
    assert not result.passed
    assert "does not beat the best baseline seasonal_naive" in result.reason


def test_champion_compared_on_shared_windows_with_tolerance() -> None:
    challenger = scores("wape", 0.31, 0.33, windows=(W2, W3))
    champion = scores("wape", 0.10, 0.30, windows=(W1, W2))  # only W2 is shared: 0.31 vs 0.30
    base = {"naive": scores("wape", 0.9, 0.9, windows=(W2, W3))}
    strict = evaluate_gates("demand", challenger=challenger, baselines=base, champion=champion, floors=GateFloors())
    assert not strict.passed and "worse than the champion's 0.3000 on 1 shared window(s)" in strict.reason
    loose = evaluate_gates(
        "demand", challenger=challenger, baselines=base, champion=champion, floors=GateFloors(tolerance=0.05)
    )
    assert loose.passed, loose.reason
    other = scores("wape", 0.1, windows=(W1,))
    apart = evaluate_gates("demand", challenger=challenger, baselines=base, champion=other, floors=GateFloors())
    assert apart.passed and "other backtest windows" in apart.reason


def test_a_champion_rebacktested_on_the_challengers_windows_is_compared_and_said_so() -> None:
    challenger = scores("wape", 0.40, 0.44, windows=(W2, W3))
    base = {"naive": scores("wape", 0.9, 0.9, windows=(W2, W3))}
    rerun = scores("wape", 0.30, 0.32, windows=(W2, W3))
    worse = evaluate_gates(
        "demand", challenger=challenger, baselines=base, champion=rerun, floors=GateFloors(), champion_rebacktested=True
    )
    assert not worse.passed
    assert "worse than the champion's 0.3100 on 2 shared window(s)" in worse.reason
    assert "the champion re-backtested on the challenger's windows" in worse.reason
    assert worse.values["wape.champion"] == pytest.approx(0.31) and worse.values["champion_rebacktested"] == 1.0
    better = evaluate_gates(
        "demand", challenger=rerun, baselines=base, champion=challenger, floors=GateFloors(), champion_rebacktested=True
    )
    assert better.passed and "vs champion 0.4200 on 2 shared window(s) (the champion re-backtested" in better.reason
    # Its own run's scores (the default) say nothing about a re-backtest.
    own = evaluate_gates("demand", challenger=rerun, baselines=base, champion=challenger, floors=GateFloors())
    assert "re-backtested" not in own.reason and "champion_rebacktested" not in own.values


def test_floors() -> None:
    base = {"naive": scores("wape", 0.9, 0.9)}
    result = evaluate_gates(
        "demand",
        challenger=scores("wape", 0.5, 0.5),
        baselines=base,
        champion=None,
        floors=GateFloors(demand_max_wape=0.4),
    )
    assert not result.passed and "gate_demand_max_wape=0.4" in result.reason
    stockout = {W1: {"pr_auc": 0.6, "f1": 0.5}, W2: {"pr_auc": 0.7, "f1": 0.6}}
    rule = {"rule": scores("pr_auc", 0.3, 0.3)}
    low = evaluate_gates(
        "stockout", challenger=stockout, baselines=rule, champion=None, floors=GateFloors(stockout_min_f1=0.7)
    )
    assert not low.passed and "gate_stockout_min_f1=0.7" in low.reason
    assert evaluate_gates("stockout", challenger=stockout, baselines=rule, champion=None, floors=GateFloors()).passed


def test_stockout_higher_is_better_and_quantile_risk_is_not_a_gate() -> None:
    result = evaluate_gates(
        "stockout",
        challenger=scores("pr_auc", 0.4, 0.4),
        baselines={"rule": scores("pr_auc", 0.5, 0.5), "quantile_risk": scores("pr_auc", 0.1, 0.1)},
        champion=None,
        floors=GateFloors(),
    )
    assert not result.passed and "best baseline rule" in result.reason


def test_nan_windows_are_left_out() -> None:
    assert mean_over({W1: {"f1": float("nan")}, W2: {"f1": 0.5}}, "f1") == 0.5
    result = evaluate_gates(
        "demand", challenger={W1: {"wape": float("nan")}}, baselines={}, champion=None, floors=GateFloors()
    )
    assert not result.passed and "no wape" in result.reason
