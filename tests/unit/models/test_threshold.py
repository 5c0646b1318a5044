"""Calibration and threshold choice for stockout alerts: the pure pieces, checked by hand and on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shelfcast.models.classification import (
    base_rate_threshold,
    centered_isotonic,
    expected_f1_threshold,
    f1,
    half_f1_threshold,
    pr_auc,
)
from shelfcast.models.stockout import Holdout, calibration_map, choose_threshold


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label is drawn from the probability itself: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 3.0, n)
    return p, (rng.uniform(size=n) < p).astype(np.float64)


def test_centered_isotonic_keeps_the_order_and_the_block_values() -> None:
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    label = np.array([0, 1, 0, 0, 1, 1])
    x, y = centered_isotonic(score, label)
    # Blocks: {0.1} -> 0, {0.2, 0.3, 0.4} -> 1/3, {0.5, 0.6} -> 1; knots at the block means.
    assert x == pytest.approx([0.1, 0.3, 0.55])
    assert y == pytest.approx([0.0, 1 / 3, 1.0])
    rng = np.random.default_rng(1)
    raw = rng.uniform(size=2000)
    truth = (rng.uniform(size=2000) < raw**2).astype(float)
    kx, ky = centered_isotonic(raw, truth)
    assert np.all(np.diff(kx) > 0) and np.all(np.diff(ky) > 0)
    inner = (raw > kx[0]) & (raw < kx[-1])
    mapped = np.interp(raw[inner], kx, ky)
    # Strictly increasing between the end knots: the ranking (and PR-AUC) of the raw scores is kept.
    assert pr_auc(truth[inner], mapped) == pytest.approx(pr_auc(truth[inner], raw[inner]))
    with pytest.raises(ValueError, match="must not be empty"):
        centered_isotonic([], [])


def test_expected_f1_threshold_by_hand_and_against_the_realised_optimum() -> None:
    # Top k = 1: 2*0.9/(1+1.6) = 0.692; k = 2: 2*1.4/(2+1.6) = 0.778; k = 3: 2*1.5/(3+1.6) = 0.652.
    assert expected_f1_threshold([0.1, 0.9, 0.5, 0.1]) == 0.5
    p, y = _calibrated(20_000, 2)
    t = expected_f1_threshold(p)
    best = max(f1(y, p, threshold=c) for c in np.quantile(p, np.linspace(0.5, 0.99, 60)))
    assert f1(y, p, threshold=t) == pytest.approx(best, abs=0.01)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        expected_f1_threshold([0.2, 1.5])


def test_half_f1_threshold_is_half_the_best_f1_and_near_the_optimum_when_calibrated() -> None:
    p, y = _calibrated(20_000, 3)
    t = half_f1_threshold(y, p)
    best = max(f1(y, p, threshold=c) for c in np.unique(np.round(p, 3)))
    assert t == pytest.approx(best / 2, abs=0.005)
    assert f1(y, p, threshold=t) == pytest.approx(best, abs=0.01)
    assert math.isnan(half_f1_threshold([0, 0], [0.1, 0.2]))


def test_base_rate_threshold_alerts_as_many_rows_as_stockouts_expected() -> None:
    p = np.array([0.9, 0.6, 0.3, 0.1, 0.1])  # 2 stockouts expected
    t = base_rate_threshold(p)
    assert t == 0.6 and int((p >= t).sum()) == 2


def _holdout(seed: int = 4) -> Holdout:
    p, y = _calibrated(3000, seed)
    raw = p**0.5  # a monotone distortion the calibration must undo
    return Holdout(
        raw=raw,
        label=y,
        origin=np.repeat(np.arange(6), 500),
        current_first=raw[:500],
        current_final=np.clip(raw[:500] * 1.2, 0, 1.2),  # the refit scores the same rows on a stretched scale
    )


def test_the_matched_map_reads_the_final_models_scores_on_the_held_out_scale() -> None:
    holdout = _holdout()
    x, y = calibration_map(holdout, "centered", matched=False)
    mx, my = calibration_map(holdout, "centered")
    same_rows_first = np.interp(holdout.current_first, x, y)
    same_rows_final = np.interp(holdout.current_final, mx, my)
    assert np.allclose(same_rows_first, same_rows_final, atol=0.02)
    # Unmatched, the stretched scores would read as higher probabilities.
    assert np.interp(holdout.current_final, x, y).mean() > same_rows_first.mean() + 0.02


def test_choose_threshold_methods() -> None:
    holdout = _holdout()
    probability = np.interp(holdout.raw, *calibration_map(holdout, "centered", matched=False))
    current = probability[:500]
    for method in ("holdout_f1", "half_f1", "origin_median", "expected_f1", "base_rate"):
        t = choose_threshold(probability, holdout.label, holdout.origin, method=method, current=current)  # type: ignore[arg-type]
        assert 0 < t < 1, method
    none = np.zeros_like(holdout.label)
    assert choose_threshold(probability, none, holdout.origin, method="half_f1") == 0.5
    with pytest.raises(ValueError, match="needs the cutoff's probabilities"):
        choose_threshold(probability, holdout.label, holdout.origin, method="expected_f1")
    with pytest.raises(ValueError, match="`method` must be one of"):
        choose_threshold(probability, holdout.label, holdout.origin, method="best")  # type: ignore[arg-type]


def test_a_refit_on_a_stretched_scale_misleads_the_old_choice_not_the_new() -> None:
    # Synthetic scores, not a chain: the held-out model scores sqrt(p); the refit model (trained on more rows)
    # scores the cutoff's rows more confidently. The old choice applies the held-out staircase to the refit's
    # scores as they are and alerts too many rows; matching the scales and the expected-F1 threshold do not.
    rng = np.random.default_rng(7)
    p_held, y_held = _calibrated(6000, 8)
    p_now = rng.beta(0.6, 3.0, 6000)
    y_now = (rng.uniform(size=6000) < p_now).astype(np.float64)
    holdout = Holdout(
        raw=p_held**0.5,
        label=y_held,
        origin=np.repeat(np.arange(6), 1000),
        current_first=p_now**0.5,
        current_final=p_now**0.3,
    )
    old_map = calibration_map(holdout, "isotonic")
    old_t = choose_threshold(np.interp(holdout.raw, *old_map), holdout.label, holdout.origin, method="holdout_f1")
    old_f1 = f1(y_now, np.interp(holdout.current_final, *old_map), threshold=old_t)
    new_map = calibration_map(holdout, "centered")
    current = np.interp(holdout.current_final, *new_map)
    new_t = choose_threshold(np.array([]), holdout.label, holdout.origin, method="expected_f1", current=current)
    new_f1 = f1(y_now, current, threshold=new_t)
    best = max(f1(y_now, p_now, threshold=c) for c in np.quantile(p_now, np.linspace(0.5, 0.99, 60)))
    assert new_f1 > old_f1 + 0.02
    assert new_f1 == pytest.approx(best, abs=0.015)
