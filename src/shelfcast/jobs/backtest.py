"""The backtest job: rolling-origin scores of the models and baselines on the lake's data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.models.backtest import BacktestConfig, DemandBacktest, Progress, backtest_demand
from shelfcast.settings import Settings

if TYPE_CHECKING:
    from shelfcast.models.risk import StockoutBacktest


def run_backtest(
    settings: Settings,
    *,
    windows: int,
    horizon: int,
    gap: int = 0,
    progress: Progress | None = None,
) -> DemandBacktest:
    """Backtest the demand forecaster against the baselines on the workspace's lake."""
    data = load_model_data(Lake(settings.workspace))
    config = BacktestConfig(windows=windows, horizon=horizon, gap=gap)
    return backtest_demand(data.panel, data.spec, data.config, config, calendar=data.calendar, progress=progress)


def backtest_json(result: DemandBacktest | StockoutBacktest, path: Path, *, task: str) -> None:
    """Write the scores (per model, overall and per window) as JSON."""
    payload: dict[str, Any] = {
        "task": task,
        "selected": result.selected,
        "cutoffs": [str(c) for c in result.cutoffs],
        "metrics": result.metrics.with_columns(pl.col(pl.Float64).fill_nan(None)).to_dicts(),
    }
    segments = getattr(result, "segments", None)
    if segments is not None:
        payload["segments"] = segments.with_columns(pl.col(pl.Float64).fill_nan(None)).to_dicts()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
