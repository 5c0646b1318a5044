"""A backtest's scores as a JSON file (logged with each training run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.models.backtest import DemandBacktest
from shelfcast.models.risk import StockoutBacktest


def backtest_json(result: DemandBacktest | StockoutBacktest, path: Path, *, task: str) -> None:
    """Write the scores (per model, overall and per window) as JSON."""
    payload: dict[str, Any] = {
        "task": task,
        "selected": result.selected,
        "cutoffs": [str(c) for c in result.cutoffs],
        "metrics": result.metrics.with_columns(pl.col(pl.Float64).fill_nan(None)).to_dicts(),
    }
    selection = getattr(result, "selection", None)
    if selection is not None:
        payload["selection"] = selection.as_dict()
    segments = getattr(result, "segments", None)
    if segments is not None:
        payload["segments"] = segments.with_columns(pl.col(pl.Float64).fill_nan(None)).to_dicts()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
