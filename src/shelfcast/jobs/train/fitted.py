"""What a training fit hands to the logging of its run, whichever engine fitted it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl


@dataclass(frozen=True)
class Fitted:
    candidate: str
    model: Any
    metrics: pl.DataFrame
    cutoffs: list[dt.date]
    params: dict[str, Any]
    example: pl.DataFrame
    reports: list[Path | None]
    backtest: Any
    # demand: score quantiles per horizon from the candidate's backtest residuals (p10/p50/p90 at scoring).
    quantiles: pl.DataFrame | None = None
