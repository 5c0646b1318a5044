"""Stockout metrics: hand-computed values, single-class edge cases and the Polars-level evaluator."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from shelfcast.models.classification import (
    Confusion,
    best_threshold,
    brier,
    confusion,
    f1,
    pr_auc,
    precision,
    precision_at_k,
    recall,
    roc_auc,
    stockout_metrics,
)
from shelfcast.models.metrics import by_segment

# scikit-learn's own documentation example: ROC-AUC 0.75, average precision 0.83.
Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_ranking_metrics_by_hand() -> None:
    assert roc_auc(Y, S) == pytest.approx(0.75)
    # Ranked: 0.8 (hit, P=1), 0.4 (miss), 0.35 (hit, P=2/3); AP = (1 + 2/3) / 2
    assert pr_auc(Y, S) == pytest.approx(5 / 6)
    assert brier(Y, S) == pytest.approx((0.01 + 0.16 + 0.65**2 + 0.04) / 4)


def test_thresholded_metrics_by_hand() -> None:
    assert confusion(Y, S, threshold=0.5) == Confusion(tn=2, fp=0, fn=1, tp=1)
    assert precision(Y, S, threshold=0.5) == 1.0
    assert recall(Y, S, threshold=0.5) == 0.5
    assert f1(Y, S, threshold=0.5) == pytest.approx(2 / 3)
    # The threshold is inclusive: 0.35 itself alerts.
    assert confusion(Y, S, threshold=0.35) == Confusion(tn=1, fp=1, fn=0, tp=2)


def test_precision_at_k_as_count_or_fraction() -> None:
    assert precision_at_k(Y, S, k=1) == 1.0
    assert precision_at_k(Y, S, k=2) == 0.5  # 0.8 (hit), 0.4 (miss)
    assert precision_at_k(Y, S, k=0.25) == 1.0
    assert precision_at_k(Y, S, k=0.75) == pytest.approx(2 / 3)
    assert precision_at_k(Y, S, k=100) == 0.5  # capped at every row
    with pytest.raises(ValueError, match="`k` must be at least 1"):
        precision_at_k(Y, S, k=0)
    with pytest.raises(ValueError, match=r"`k` must be in \(0, 1\] when a fraction"):
        precision_at_k(Y, S, k=1.5)


def test_single_class_gives_nan_without_crashing() -> None:
    for labels in ([0, 0, 0], [1, 1, 1]):
        assert math.isnan(roc_auc(labels, [0.1, 0.5, 0.9]))
        assert math.isnan(pr_auc(labels, [0.1, 0.5, 0.9]))
    counts = confusion([0, 0, 0], [0.1, 0.2, 0.3], threshold=0.5)
    assert counts == Confusion(tn=3, fp=0, fn=0, tp=0)
    assert math.isnan(counts.precision) and math.isnan(counts.recall) and math.isnan(counts.f1)
    assert math.isnan(best_threshold([0, 0, 0], [0.1, 0.2, 0.3]))
    assert f1([1, 1], [0.1, 0.2], threshold=0.5) == 0.0


def test_best_threshold_achieves_the_max_f1() -> None:
    # Candidates: 0.1 -> 2/3, 0.35 -> 0.8, 0.4 -> 0.5, 0.8 -> 2/3
    assert best_threshold(Y, S) == 0.35
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    best = best_threshold(y, s, metric="f1")
    top = max(f1(y, s, threshold=t) for t in np.unique(s))
    assert f1(y, s, threshold=best) == pytest.approx(top)
    with pytest.raises(ValueError, match="`metric` must be 'f1'"):
        best_threshold(y, s, metric="recall")  # type: ignore[arg-type]


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"`y_true` must hold 0/1 labels, got 2\.0 at index 1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="`y_true` and `score` must have the same length"):
        brier([0, 1], [0.1])
    with pytest.raises(ValueError, match="`score` has 1 NaN"):
        pr_auc([0, 1], [0.1, math.nan])
    with pytest.raises(ValueError, match=r"`score` must be probabilities in \[0, 1\]"):
        brier([0, 1], [0.1, 3.0])
    with pytest.raises(ValueError, match="`threshold` must be a finite number"):
        confusion([0, 1], [0.1, 0.2], threshold=math.nan)


def test_stockout_metrics_and_segments() -> None:
    frame = pl.DataFrame({"store_id": ["a", "a", "b", "b"], "label_true": [False, False, True, True], "risk": S})
    out = stockout_metrics(frame.with_columns(label_true=pl.Series(Y).cast(pl.Boolean)), threshold=0.5, k=2)
    assert out["roc_auc"] == pytest.approx(0.75)
    assert (out["tn"], out["fp"], out["fn"], out["tp"]) == (2.0, 0.0, 1.0, 1.0)
    assert out["precision_at_k"] == 0.5 and out["alert_rate"] == 0.25 and out["positive_rate"] == 0.5
    table = by_segment(frame, "store_id", stockout_metrics, threshold=0.5)
    assert table.height == 2 and table["store_id"].to_list() == ["a", "b"]
    assert all(math.isnan(v) for v in table["roc_auc"].to_list())  # each store holds one class
    with pytest.raises(ValueError, match=r"`frame` lacks column\(s\) 'risk'"):
        stockout_metrics(frame.drop("risk"), threshold=0.5)
