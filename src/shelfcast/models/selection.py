"""Which forecast users get: the candidate chosen on several rolling windows, by the metric that fits the data.

One rule serves `forecast`, `train` (the registered model) and `score` (which
serves what `train` chose):

- Candidates are scored on the same windows (rolling origins before the
  cutoff) by the selection metric: WMAE when the data has events to weigh
  (the calendar), WAPE otherwise, or the `selection.metric` setting.
- The GBM (the better of its direct and recursive strategies) or the blend
  of it with the seasonal naive is the incumbent. A simpler candidate (a
  baseline) replaces it only when it is better overall *and* either wins on
  most windows or is better overall by a clear margin (`selection.margin`):
  one lucky window does not send users back to a naive forecast.
- The blend's weight is fitted on the windows (a grid of weights, by the
  selection metric). Its score on each window uses the weight fitted on the
  *other* windows, so the blend is not judged on the windows that set it.

`selection_windows` places the windows: as many as asked (default 3) where
the history allows, each as long as the horizon, one horizon apart; with a
shorter history they overlap (one every `stride` steps) or are fewer, and
the reason is kept in the decision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from shelfcast.models.metrics import mae, rmse, scaled_errors, series_scales, smape, wape, wmae

SelectionMetric = Literal["auto", "wape", "wmae", "mae", "rmse", "smape", "mase"]
METRICS: tuple[str, ...] = ("wape", "wmae", "mae", "rmse", "smape", "mase")
BLEND_GRID = tuple(round(0.05 * k, 2) for k in range(21))
# The shortest history a window's model trains on, in days: eight weeks (at least the horizon).
MIN_TRAIN_DAYS = 56


class SelectionConfig(BaseModel):
    """How the forecast's candidate is chosen (the `selection` settings section)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: SelectionMetric = Field(
        "auto", description="Metric candidates are chosen by; auto: WMAE when the calendar has events, else WAPE."
    )
    windows: int = Field(3, ge=1, le=12, description="Rolling windows candidates are scored on (fewer if short).")
    margin: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="A baseline replaces the GBM when better overall and on most windows, or by this share overall.",
    )


def resolve_metric(config: SelectionConfig, calendar: pl.DataFrame | None) -> str:
    """The metric the selection uses: the setting, or for "auto" WMAE when there are events to weigh, else WAPE."""
    if config.metric != "auto":
        return config.metric
    return "wmae" if calendar is not None and not calendar.is_empty() else "wape"


@dataclass(frozen=True)
class Windows:
    """Where the selection windows fall: `count` windows of `horizon` steps, `stride` steps apart."""

    count: int
    stride: int
    note: str | None = None


def selection_windows(first: dt.date, end: dt.date, *, horizon: int, step: dt.timedelta, wanted: int) -> Windows:
    """`wanted` windows ending on `end`, one horizon apart where the history allows.

    Each window's model needs some history before its cutoff (at least the
    horizon and eight weeks): with less, the windows move closer together
    (overlapping, down to a quarter of the horizon apart) and then become fewer.
    """
    available = (end - first).days // step.days
    min_train = max(horizon, math.ceil(MIN_TRAIN_DAYS / step.days))
    room = available - min_train - horizon
    if wanted == 1 or room <= 0:
        note = None if wanted == 1 else f"one window: {available} steps of history leave no room for more"
        return Windows(1, horizon, note)
    least = max(1, horizon // 4)
    count = wanted
    while count > 1 and room // (count - 1) < least:
        count -= 1
    if count == 1:
        return Windows(1, horizon, f"one window: {available} steps of history leave no room for more")
    stride = min(horizon, room // (count - 1))
    notes = []
    if count < wanted:
        notes.append(f"{count} windows, not {wanted}: {available} steps of history")
    if stride < horizon:
        notes.append(f"windows overlap: one every {stride} steps for a horizon of {horizon}")
    return Windows(count, stride, "; ".join(notes) or None)


def metric_value(
    frame: pl.DataFrame,
    metric: str,
    *,
    history: pl.DataFrame | None = None,
    season: int = 7,
    scales: pl.DataFrame | None = None,
) -> float:
    """One metric of forecasts against actuals (`y`, `forecast`, and `weight` for WMAE).

    MASE reads the series' `scales` (`series_scales`), else computes them from `history`.
    """
    y = frame["y"].to_numpy().astype(np.float64)
    f = frame["forecast"].to_numpy().astype(np.float64)
    simple: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "wape": wape,
        "mae": mae,
        "rmse": rmse,
        "smape": smape,
    }
    if metric in simple:
        return float(simple[metric](y, f))
    if metric == "wmae":
        return float(wmae(y, f, weights=frame["weight"].to_numpy()))
    if metric == "mase":
        if scales is None and history is None:
            raise ValueError("MASE needs the history before the windows")
        if scales is None:
            assert history is not None
            scales = series_scales(history, season=season)
        return float(scaled_errors(frame, scales).mase)
    raise ValueError(f"unknown selection metric {metric!r}; use one of {', '.join(METRICS)}")


def fit_blend_weight(
    frame: pl.DataFrame,
    metric: str,
    *,
    history: pl.DataFrame | None = None,
    season: int = 7,
    scales: pl.DataFrame | None = None,
) -> float:
    """The GBM's weight in w * gbm + (1 - w) * seasonal naive that scores best on `frame`.

    `frame` holds `y`, `weight`, the GBM's `forecast` and the naive's
    `forecast_sn`; ties go to the larger GBM weight.
    """
    best, best_w = math.inf, 1.0
    for w in reversed(BLEND_GRID):
        mixed = frame.with_columns((pl.col("forecast") * w + pl.col("forecast_sn") * (1 - w)).alias("forecast"))
        value = metric_value(mixed, metric, history=history, season=season, scales=scales)
        if value < best - 1e-12:
            best, best_w = value, w
    return best_w


@dataclass(frozen=True)
class Selection:
    """The chosen candidate, why, and the per-window scores it was chosen on."""

    candidate: str
    metric: str
    reason: str
    scores: pl.DataFrame  # model, window (1..n), cutoff, value
    overall: dict[str, float]
    cutoffs: list[dt.date]
    blend_weight: float | None = None
    blend_gbm: str | None = None  # the GBM the blend mixes with the seasonal naive
    windows_note: str | None = None
    blend_weights: dict[int, float] = field(default_factory=dict)  # per window: the weight fitted on the others

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: for the forecast file's metadata, the MLflow run and `--json`."""
        per_window: dict[str, dict[str, float]] = {}
        for row in self.scores.iter_rows(named=True):
            per_window.setdefault(row["model"], {})[str(row["window"])] = row["value"]
        return {
            "candidate": self.candidate,
            "metric": self.metric,
            "reason": self.reason,
            "cutoffs": [c.isoformat() for c in self.cutoffs],
            "windows_note": self.windows_note,
            "blend_weight": self.blend_weight,
            "blend_gbm": self.blend_gbm,
            "overall": self.overall,
            "per_window": per_window,
        }


def choose(
    metrics: pl.DataFrame,
    *,
    metric: str,
    incumbents: Sequence[str],
    margin: float,
) -> tuple[str, str]:
    """(candidate, reason) from backtest metrics (`model`, `window` "all" or "1".., the metric's column).

    The best of `incumbents` (the GBMs and the blend) stays unless a simpler
    candidate is better overall and wins on most windows or by `margin`.
    """
    if metric not in metrics.columns:
        raise ValueError(f"the backtest has no {metric!r} to choose by")
    overall = {r["model"]: r[metric] for r in metrics.filter(pl.col("window") == "all").iter_rows(named=True)}
    windows = metrics.filter(pl.col("window") != "all")
    n = windows["window"].n_unique()
    per_window = {
        (r["model"], r["window"]): r[metric] for r in windows.select("model", "window", metric).iter_rows(named=True)
    }
    present = [m for m in incumbents if m in overall and not _missing(overall[m])]
    if not present:
        best = min((m for m in overall if not _missing(overall[m])), key=lambda m: overall[m])
        return best, f"no GBM forecast to compare; {best} has the best {metric} ({overall[best]:.4g})"
    incumbent = min(present, key=lambda m: overall[m])
    others = sorted((m for m in overall if m not in incumbents and not _missing(overall[m])), key=lambda m: overall[m])
    closest: str | None = None
    for other in others:
        if overall[other] >= overall[incumbent]:
            break
        wins = sum(
            1
            for w in windows["window"].unique().to_list()
            if per_window.get((other, w), math.inf) < per_window.get((incumbent, w), math.inf)
        )
        gain = 1 - overall[other] / overall[incumbent] if overall[incumbent] else 0.0
        if wins * 2 > n or gain >= margin:
            why = f"wins {wins} of {n} windows" if wins * 2 > n else f"better by {gain:.1%} overall"
            return other, (
                f"{other} {metric} {overall[other]:.4g} beats {incumbent} {overall[incumbent]:.4g} and {why}"
            )
        closest = closest or (
            f"{other} is better overall ({overall[other]:.4g} against {overall[incumbent]:.4g}, {gain:.1%}) "
            f"but wins only {wins} of {n} windows and by less than the {margin:.0%} margin"
        )
    if closest is not None:
        return incumbent, f"{incumbent} kept: {closest}"
    return incumbent, f"{incumbent} has the best {metric} ({overall[incumbent]:.4g}) over {n} window(s)"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
