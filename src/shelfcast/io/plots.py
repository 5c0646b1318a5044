"""PNG reports: a training run's feature importance, forecast vs actual, confusion matrix, calibration; a policy
replay's service/stock trade-off.

matplotlib is not a dependency of shelfcast (MLflow brings it today): every
function returns None, writing nothing, when it cannot be imported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

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


def policy_tradeoff_png(
    curve: list[dict[str, Any]],
    points: list[dict[str, Any]],
    path: Path,
    *,
    beyond: Sequence[dict[str, Any]] = (),
) -> Path | None:
    """Realised cycle service level against average units on hand: one line per swept policy, one dot per fixed one.

    `curve` rows have policy, service_setting, cycle_service_level and
    avg_on_hand; `points` adds the policies without a setting (the chain's
    rule); `beyond` continues a policy's line, dashed, past the sweep.
    """
    plt = _pyplot()
    if plt is None or not curve:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for policy in dict.fromkeys(row["policy"] for row in curve):
        rows = sorted((r for r in curve if r["policy"] == policy), key=lambda r: r["service_setting"])
        stock = [r["avg_on_hand"] for r in rows]
        service = [100 * r["cycle_service_level"] for r in rows]
        (line,) = ax.plot(stock, service, marker="o", label=policy)
        more = sorted((r for r in beyond if r["policy"] == policy), key=lambda r: r["service_setting"])
        if more:
            ax.plot(
                [stock[-1], *(r["avg_on_hand"] for r in more)],
                [service[-1], *(100 * r["cycle_service_level"] for r in more)],
                marker="x",
                linestyle="--",
                color=line.get_color(),
            )
            last = more[-1]
            ax.annotate(
                f"{last['service_setting']:.2%}",
                (last["avg_on_hand"], 100 * last["cycle_service_level"]),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color=line.get_color(),
            )
        for r, x, y in zip(rows, stock, service, strict=True):
            if r["service_setting"] in (rows[0]["service_setting"], 0.95, rows[-1]["service_setting"]):
                ax.annotate(
                    f"{r['service_setting']:.0%}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=7,
                    color=line.get_color(),
                )
    for r in points:
        if r.get("service_setting") is None:
            ax.scatter([r["avg_on_hand"]], [100 * r["cycle_service_level"]], marker="s", color="black", zorder=3)
            ax.annotate(
                r["policy"],
                (r["avg_on_hand"], 100 * r["cycle_service_level"]),
                textcoords="offset points",
                xytext=(5, 3),
                fontsize=8,
            )
    ax.set_xlabel("average units on hand per store-item")
    ax.set_ylabel("realised cycle service level (%)")
    ax.set_title("Service against stock (labels: service setting)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(plt, fig, path)
