"""PNG reports for a training run: feature importance, forecast vs actual, confusion matrix, calibration.

matplotlib is not a dependency of shelfcast (MLflow brings it today): every
function returns None, writing nothing, when it cannot be imported.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl

log = logging.getLogger(__name__)


def _pyplot() -> ModuleType | None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; no display on servers
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no plots")
        return None
    return plt


def feature_importance_png(importance: pl.DataFrame, path: Path, *, top: int = 20) -> Path | None:
    plt = _pyplot()
    if plt is None or importance.is_empty():
        return None
    head = importance.sort("gain", descending=True).head(top).reverse()
    fig, ax = plt.subplots(figsize=(7, 0.3 * head.height + 1.2))
    ax.barh(head["feature"].to_list(), head["gain"].to_numpy())
    ax.set_xlabel("total gain")
    ax.set_title(f"Feature importance (top {head.height})")
    return _save(plt, fig, path)


def forecast_vs_actual_png(forecasts: pl.DataFrame, path: Path, *, models: list[str], n_series: int = 4) -> Path | None:
    """Actual and each model's forecast over the last backtest window, for the biggest series."""
    plt = _pyplot()
    if plt is None or forecasts.is_empty():
        return None
    last = forecasts.filter(pl.col("window") == forecasts["window"].max())
    top = (
        last.filter(pl.col("model") == models[0])
        .group_by("store_id", "item_id")
        .agg(pl.col("y").sum())
        .sort("y", "store_id", "item_id", descending=[True, False, False])
        .head(n_series)
    )
    fig, axes = plt.subplots(top.height, 1, figsize=(8, 2.2 * top.height), squeeze=False)
    for ax, (store, item, _) in zip(axes[:, 0], top.rows(), strict=True):
        series = last.filter((pl.col("store_id") == store) & (pl.col("item_id") == item)).sort("date")
        actual = series.filter(pl.col("model") == models[0])
        ax.plot(actual["date"].to_list(), actual["y"].to_numpy(), color="black", label="actual")
        for name in models:
            part = series.filter(pl.col("model") == name)
            ax.plot(part["date"].to_list(), part["forecast"].to_numpy(), label=name)
        ax.set_title(f"store {store}, item {item}", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    return _save(plt, fig, path)


def confusion_png(tn: float, fp: float, fn: float, tp: float, path: Path) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    counts = np.array([[tn, fp], [fn, tp]])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, f"{int(value):,}", ha="center", va="center")
    ax.set_xticks([0, 1], ["no alert", "alert"])
    ax.set_yticks([0, 1], ["no stockout", "stockout"])
    ax.set_title("Confusion matrix (backtest, held-out threshold)")
    return _save(plt, fig, path)


def calibration_png(risk: np.ndarray, label: np.ndarray, path: Path, *, bins: int = 10) -> Path | None:
    """Mean observed stockout rate per bin of predicted risk, against the diagonal."""
    plt = _pyplot()
    if plt is None or risk.size == 0:
        return None
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(risk, edges) - 1, 0, bins - 1)
    used = [b for b in range(bins) if np.any(which == b)]
    predicted = [float(risk[which == b].mean()) for b in used]
    observed = [float(label[which == b].mean()) for b in used]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(predicted, observed, marker="o")
    ax.set_xlabel("predicted risk")
    ax.set_ylabel("observed stockout rate")
    ax.set_title("Calibration (backtest)")
    return _save(plt, fig, path)


def _save(plt: ModuleType, fig: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=90)  # type: ignore[attr-defined]
    plt.close(fig)
    return path
