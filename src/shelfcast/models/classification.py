"""Stockout-alert metrics over 0/1 labels and risk scores, and their Polars-level evaluator.

Ranking metrics (ROC-AUC, PR-AUC) are nan when the labels hold one class
only; precision and recall are nan when undefined (no alerts, no positives).
An alert is raised when `score >= threshold`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from shelfcast.models.metrics import FloatArray, as_vector, column, require_columns, same_length

IntArray = npt.NDArray[np.int8]


def _binary(y_true: npt.ArrayLike, score: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    y, s = as_vector(y_true, "y_true"), as_vector(score, "score")
    same_length(y_true=y, score=s)
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise ValueError(f"`y_true` must hold 0/1 labels, got {y[bad[0]]} at index {bad[0]} ({bad.size} such rows)")
    return y.astype(np.int8), s


def _check_threshold(threshold: float) -> None:
    if not math.isfinite(threshold):
        raise ValueError(f"`threshold` must be a finite number, got {threshold}")


def _sklearn_metrics() -> ModuleType:
    # Imported on first use: scikit-learn takes about 2 s to import, which
    # callers that only need counts (the API, the dashboard) should not pay.
    return importlib.import_module("sklearn.metrics")


def _one_class(y: IntArray) -> bool:
    return bool(y.min() == y.max())


def roc_auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve; nan when `y_true` holds one class only."""
    y, s = _binary(y_true, score)
    return math.nan if _one_class(y) else float(_sklearn_metrics().roc_auc_score(y, s))


def pr_auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the precision-recall curve as average precision; nan when `y_true` holds one class only."""
    y, s = _binary(y_true, score)
    return math.nan if _one_class(y) else float(_sklearn_metrics().average_precision_score(y, s))


@dataclass(frozen=True)
class Confusion:
    """Counts of a thresholded alert against the labels."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def precision(self) -> float:
        """Share of alerts that were stockouts; nan without alerts."""
        alerts = self.tp + self.fp
        return self.tp / alerts if alerts else math.nan

    @property
    def recall(self) -> float:
        """Share of stockouts alerted; nan without stockouts."""
        positives = self.tp + self.fn
        return self.tp / positives if positives else math.nan

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0 when nothing was right, nan without alerts or stockouts."""
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else math.nan


def confusion(y_true: npt.ArrayLike, score: npt.ArrayLike, *, threshold: float) -> Confusion:
    """Confusion counts (tn, fp, fn, tp) of alerting when `score >= threshold`."""
    _check_threshold(threshold)
    y, s = _binary(y_true, score)
    alert, positive = s >= threshold, y == 1
    return Confusion(
        tn=int(np.sum(~alert & ~positive)),
        fp=int(np.sum(alert & ~positive)),
        fn=int(np.sum(~alert & positive)),
        tp=int(np.sum(alert & positive)),
    )


def precision(y_true: npt.ArrayLike, score: npt.ArrayLike, *, threshold: float) -> float:
    """Precision of alerting at `score >= threshold`; nan without alerts."""
    return confusion(y_true, score, threshold=threshold).precision


def recall(y_true: npt.ArrayLike, score: npt.ArrayLike, *, threshold: float) -> float:
    """Recall of alerting at `score >= threshold`; nan without positives."""
    return confusion(y_true, score, threshold=threshold).recall


def f1(y_true: npt.ArrayLike, score: npt.ArrayLike, *, threshold: float) -> float:
    """F1 of alerting at `score >= threshold`."""
    return confusion(y_true, score, threshold=threshold).f1


def precision_at_k(y_true: npt.ArrayLike, score: npt.ArrayLike, *, k: float) -> float:
    """Share of stockouts among the `k` highest scores.

    Args:
        k: a count (int >= 1; capped at the number of rows) or a fraction of
            the rows (float in (0, 1], rounded, at least one row). Ties at the
            cut keep the earlier rows.
    """
    y, s = _binary(y_true, score)
    if isinstance(k, bool) or not isinstance(k, int | float):
        raise ValueError(f"`k` must be a count or a fraction, got {k!r}")
    if isinstance(k, int):
        if k < 1:
            raise ValueError(f"`k` must be at least 1 when a count, got {k}")
        n = min(k, y.size)
    else:
        if not 0 < k <= 1:
            raise ValueError(f"`k` must be in (0, 1] when a fraction, got {k}; pass an int for a count")
        n = max(1, round(k * y.size))
    top = np.argsort(-s, kind="stable")[:n]
    return float(np.mean(y[top]))


def brier(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Brier score: mean squared difference between the probability `score` and the 0/1 label."""
    y, s = _binary(y_true, score)
    if s.min() < 0 or s.max() > 1:
        raise ValueError(
            f"`score` must be probabilities in [0, 1] for the Brier score, got range [{s.min()}, {s.max()}]"
        )
    return float(np.mean((s - y) ** 2))


def best_threshold(y_true: npt.ArrayLike, score: npt.ArrayLike, *, metric: Literal["f1"] = "f1") -> float:
    """The score threshold that maximises F1 on these rows (the highest such); nan when `y_true` has no positives.

    Pick it on earlier windows only and apply it to later ones: a threshold
    tuned on the rows it is scored on flatters the result.
    """
    if metric != "f1":
        raise ValueError(f"`metric` must be 'f1', got {metric!r}")
    y, s = _binary(y_true, score)
    if not y.any():
        return math.nan
    prec, rec, thresholds = _sklearn_metrics().precision_recall_curve(y, s)
    prec, rec = prec[:-1], rec[:-1]  # the last point (recall 0) has no threshold
    denom = prec + rec
    scores = np.divide(2 * prec * rec, denom, out=np.zeros_like(denom), where=denom > 0)
    # thresholds increase; among equal F1 prefer the highest (fewest alerts).
    best = len(scores) - 1 - int(np.argmax(scores[::-1]))
    return float(thresholds[best])


def stockout_metrics(
    frame: pl.DataFrame,
    *,
    label: str = "label_true",
    score: str = "risk",
    threshold: float,
    k: float | None = None,
) -> dict[str, float]:
    """Every stockout metric by name: n_rows, positive_rate, alert_rate, roc_auc, pr_auc, brier, precision, recall,
    f1, tn, fp, fn, tp, and precision_at_k when `k` is given.
    """
    require_columns(frame, "frame", [label, score])
    y, s = column(frame, label), column(frame, score)
    counts = confusion(y, s, threshold=threshold)
    out: dict[str, float] = {
        "n_rows": float(frame.height),
        "positive_rate": float(np.mean(y)),
        "alert_rate": float(np.mean(s >= threshold)),
        "roc_auc": roc_auc(y, s),
        "pr_auc": pr_auc(y, s),
        "brier": brier(y, s),
        "precision": counts.precision,
        "recall": counts.recall,
        "f1": counts.f1,
        "tn": float(counts.tn),
        "fp": float(counts.fp),
        "fn": float(counts.fn),
        "tp": float(counts.tp),
    }
    if k is not None:
        out["precision_at_k"] = precision_at_k(y, s, k=k)
    return out


def centered_isotonic(score: npt.ArrayLike, y_true: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """A strictly increasing calibration map: isotonic regression with each block's value placed at its mean score.

    Returns knots (x, y) for `np.interp`. The plain isotonic map is a staircase: every row of a block gets the
    same probability, so scores the model ranked apart tie and the ranking metrics fall. Joining the block
    centres keeps the model's order and the isotonic fit's probabilities (centred isotonic regression, Oron and
    Flournoy 2017).
    """
    y, s = _binary(y_true, score)
    order = np.argsort(s, kind="stable")
    s, yf = s[order], y[order].astype(np.float64)
    fitted = np.asarray(importlib.import_module("sklearn.isotonic").isotonic_regression(yf), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    counts = np.diff(np.r_[starts, s.size])
    x = np.add.reduceat(s, starts) / counts
    return x.astype(np.float64), fitted[starts]


def expected_f1_threshold(probability: npt.ArrayLike) -> float:
    """The threshold that maximises the F1 expected when `probability` is calibrated (needs no labels).

    Alerting on the top k rows expects sum(p of the top k) hits among k alerts, against sum(p) stockouts:
    expected F1(k) ~ 2 * hits / (k + sum(p)). Returns the k-th highest probability.
    """
    p = as_vector(probability, "probability")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"`probability` must lie in [0, 1], got range [{p.min()}, {p.max()}]")
    top = np.sort(p)[::-1]
    hits = np.cumsum(top)
    expected = 2 * hits / (np.arange(1, p.size + 1) + hits[-1])
    return float(top[int(np.argmax(expected))])


def base_rate_threshold(probability: npt.ArrayLike) -> float:
    """The threshold that alerts as many rows as the calibrated `probability` expects stockouts (sum of p)."""
    p = as_vector(probability, "probability")
    k = max(1, round(float(p.sum())))
    return float(np.sort(p)[::-1][min(k, p.size) - 1])


def half_f1_threshold(y_true: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    """Half the best F1 reached on these rows: the F1-optimal threshold for calibrated probabilities.

    For calibrated probabilities the threshold that maximises F1 is F1*/2 (Lipton, Elkan and Naryanaswamy
    2014). The best F1 is where its curve is flat, so it is estimated far more stably than where the curve
    peaks (the argmax that `best_threshold` returns). nan without positives.
    """
    y, p = _binary(y_true, probability)
    t = best_threshold(y, p)
    return math.nan if math.isnan(t) else f1(y, p, threshold=t) / 2
