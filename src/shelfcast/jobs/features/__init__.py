"""The features job: every series' features at the cutoff, as a table other systems (and the service) can read.

One row per series: its lags, rolling and seasonal statistics, attributes
and the planned values (promotions, prices, events) of the coming risk
window, computed from what is known at the cutoff by the same functions
training uses. Written to `<workspace>/features/latest.parquet`.

With `table_format="delta"` (`shelfcast pipeline run --format delta`; the
default when the prediction store is Delta) also the Delta tables a
Databricks user expects under `<workspace>/delta/` (see `io.delta_tables`):
`raw_<table>` for every lake table, kept in step with the lake, and
`features`: the cutoff's rows plus the rows of the latest labelled origins
with their stockout label (what the classifier trains on), and
`demand_training`: the demand forecaster's training rows at the cutoff
(features and the demand at the target date as `label`, a seeded sample of
at most the forecast config's `max_rows`), one overwrite each per run.

`engine="spark"` computes the rows on Spark, per group of series, with the
same function (`jobs.features.rows.feature_rows`; see `jobs.features.spark`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from shelfcast.io.delta_tables import (
    DEMAND_TABLE,
    FEATURE_TABLE,
    TableVersion,
    delta_root,
    lake_source,
    write_frame,
    write_raw_tables,
)
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.table_formats import TableFormat
from shelfcast.jobs.features.rows import (
    LABEL,
    demand_plan,
    demand_rows,
    feature_rows,
    labelled_origins,
    series_starts,
    stock_definition,
)
from shelfcast.models.stockout import ORIGIN, window_steps
from shelfcast.settings import Engine, Settings
from shelfcast.types import Freq

FEATURE_FILE = Path("features") / "latest.parquet"


@dataclass(frozen=True)
class FeaturesReport:
    path: Path
    rows: int
    columns: int
    cutoff: dt.date
    delta_tables: list[TableVersion]
    seconds: float
    engine: Engine = "local"
    table_rows: int = 0  # rows of the Delta feature table (cutoff and labelled origins); 0 without Delta
    tables: dict[str, int] = field(default_factory=dict)  # Delta table -> version


def format_for(settings: Settings, table_format: TableFormat | None) -> TableFormat:
    """The format asked for, else Delta with the Delta prediction store (as before `--format`), else Parquet only."""
    return table_format or ("delta" if settings.prediction_store == "delta" else "parquet")


def run_features(
    settings: Settings,
    *,
    cutoff: dt.date | None = None,
    risk_days: int = 7,
    engine: Engine = "local",
    table_format: TableFormat | None = None,
) -> FeaturesReport:
    """Write the per-series features at the cutoff (default: the last date); the Delta tables too when asked."""
    started = time.perf_counter()
    lake = Lake(settings.workspace)
    delta = format_for(settings, table_format) == "delta"
    if engine == "spark":
        from shelfcast.jobs.features.spark import spark_feature_rows

        table, demand, cutoff = spark_feature_rows(settings, lake, cutoff=cutoff, risk_days=risk_days, labelled=delta)
    else:
        data = load_model_data(lake)
        cutoff = cutoff or data.last_date
        window = window_steps(data.panel, risk_days)
        origins = labelled_origins(cutoff, data.panel.step, window) if delta else []
        definition = stock_definition(data.panel, risk_days) if delta else None
        table = feature_rows(data, cutoff=cutoff, window=window, labelled=origins, definition=definition)
        demand = None
        if delta:
            plan = demand_plan(
                data.config,
                cutoff=cutoff,
                firsts=series_starts(data.panel),
                step=data.panel.step,
                horizon=Freq(data.panel.freq).default_horizon,
            )
            demand = demand_rows(data, plan)
    features = latest(table, cutoff)
    path = settings.workspace / FEATURE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    features.write_parquet(staging)
    staging.replace(path)  # readers never see a half-written file
    written: list[TableVersion] = []
    if delta:
        root = delta_root(settings.workspace)
        source = lake_source(lake)
        written = [*write_raw_tables(lake, root), write_frame(root, FEATURE_TABLE, table, source=source)]
        if demand is not None:
            written.append(write_frame(root, DEMAND_TABLE, demand, source=source))
    return FeaturesReport(
        path,
        features.height,
        features.width,
        cutoff,
        written,
        time.perf_counter() - started,
        engine=engine,
        table_rows=table.height if delta else 0,
        tables={v.name: v.version for v in written},
    )


def latest(table: pl.DataFrame, cutoff: dt.date) -> pl.DataFrame:
    """The cutoff's rows of a feature table, without the label: what the service scores."""
    return table.filter(pl.col(ORIGIN) == cutoff).drop(LABEL, strict=False)
