"""The forecast job: train on what is known at a cutoff and write forecasts with quantiles."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shelfcast.io.checkpoint import FileCheckpoints
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.models.backtest import Progress
from shelfcast.models.data import parse_cutoff
from shelfcast.models.quantile_forecast import chosen_forecast
from shelfcast.settings import Settings

SELECTION_KEY = "shelfcast.selection"


@dataclass(frozen=True)
class ForecastReport:
    path: Path
    rows: int
    series: int
    cutoff: dt.date
    horizon: int
    model: str
    seconds: float
    selection: dict[str, Any]


def run_forecast(
    settings: Settings,
    *,
    cutoff: str | dt.date | None,
    horizon: int,
    out: Path,
    progress: Progress | None = None,
) -> ForecastReport:
    """Choose the candidate on rolling windows before the cutoff, then forecast from the cutoff.

    The Parquet file's key-value metadata `shelfcast.selection` holds the
    decision as JSON: the candidate, the metric, the reason, and every
    candidate's score per window.
    """
    started = time.perf_counter()
    data = load_model_data(Lake(settings.workspace))
    cutoff = parse_cutoff(cutoff, data)
    # A long final fit checkpoints every 50 rounds and resumes if interrupted.
    chosen = chosen_forecast(
        data,
        cutoff=cutoff,
        horizon=horizon,
        selection=settings.selection,
        checkpoints=FileCheckpoints(settings.workspace / "checkpoints"),
        progress=progress,
    )
    decision = chosen.selection.as_dict()
    result = chosen.frame.select("date", "store_id", "item_id", "forecast", "p10", "p50", "p90", "model").sort(
        "store_id", "item_id", "date"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write_parquet(out, metadata={SELECTION_KEY: json.dumps(decision)})
    return ForecastReport(
        out,
        result.height,
        result.select("store_id", "item_id").n_unique(),
        cutoff,
        horizon,
        str(result["model"][0]),
        time.perf_counter() - started,
        decision,
    )
