"""The features job: every series' features at the cutoff, as a table other systems (and the service) can read.

One row per series: its lags, rolling and seasonal statistics, attributes
and the planned values (promotions, prices, events) of the coming risk
window, computed from what is known at the cutoff by the same functions
training uses. Written to `<workspace>/features/latest.parquet`; with the
Delta prediction store also to the Delta tables `raw_sales` (the lake's
sales) and `features`, beside `predictions`, as a Databricks user expects.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.models.stockout import stockout_features, window_steps
from shelfcast.settings import Settings

FEATURE_FILE = Path("features") / "latest.parquet"


@dataclass(frozen=True)
class FeaturesReport:
    path: Path
    rows: int
    columns: int
    cutoff: dt.date
    delta_tables: list[Path]
    seconds: float


def run_features(settings: Settings, *, cutoff: dt.date | None = None, risk_days: int = 7) -> FeaturesReport:
    """Write the per-series features at the cutoff (default: the last date); Delta tables too with that store."""
    started = time.perf_counter()
    lake = Lake(settings.workspace)
    data = load_model_data(lake)
    cutoff = cutoff or data.last_date
    features = stockout_features(
        data.panel.as_known_at(cutoff), data.spec, [cutoff], window=window_steps(data.panel, risk_days)
    )
    path = settings.workspace / FEATURE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    features.write_parquet(staging)
    staging.replace(path)  # readers never see a half-written file
    delta: list[Path] = []
    if settings.prediction_store == "delta":
        from shelfcast.io.stores.delta import DeltaStore

        store = DeltaStore(settings.workspace / "delta")
        sales = lake.read("sales").with_columns(pl.col("date").dt.year().alias("year"))
        delta.append(store.write_table("raw_sales", sales, partition_by=["year"]))
        delta.append(store.write_table("features", features))
    return FeaturesReport(path, features.height, features.width, cutoff, delta, time.perf_counter() - started)
