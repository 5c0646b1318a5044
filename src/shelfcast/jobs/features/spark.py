"""The features job on Spark: the same feature rows as the local job, computed per group of series.

Series are independent, so each group of series (a hash of the series key,
`io.spark.groups.map_groups`) builds its own panel (`models.data.group_data`)
and runs the very function the local job runs (`jobs.features.rows.feature_rows`)
with what the driver decided for all of them: the cutoff (the data's last
date, not a group's), the risk window, the labelled origins and the stockout
definition. The driver collects the rows: the feature table has one row per
series and origin, which fits it where the sales did not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl

from shelfcast.features.frames import HORIZON
from shelfcast.features.panel import SERIES
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_shape
from shelfcast.io.spark.groups import PER_SERIES, first_series, map_groups, read_table, spark_schema, to_polars
from shelfcast.io.spark.session import group_count, open_session
from shelfcast.jobs.features.rows import demand_plan, demand_rows, feature_rows, labelled_origins, stock_definition
from shelfcast.models.data import group_data
from shelfcast.models.stockout import ORIGIN, window_steps
from shelfcast.settings import Settings
from shelfcast.types import Freq


def spark_feature_rows(
    settings: Settings, lake: Lake, *, cutoff: dt.date | None, risk_days: int, labelled: bool
) -> tuple[pl.DataFrame, pl.DataFrame | None, dt.date]:
    """The feature table `run_features` writes (the cutoff's rows, and the labelled origins' when `labelled`),
    computed on Spark at `settings.spark`; with `labelled`, the demand training table too; and the cutoff used."""
    from pyspark.sql import functions as sf

    shape = load_shape(lake)
    at = cutoff or shape.end
    sample = first_series(lake)
    probe = group_data(shape, sample)
    window = window_steps(probe.panel, risk_days)
    origins = labelled_origins(at, probe.panel.step, window) if labelled else []
    definition = stock_definition(probe.panel, risk_days) if labelled else None

    def rows(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        data = group_data(shape, tables)
        return feature_rows(data, cutoff=at, window=window, labelled=origins, definition=definition)

    session = open_session(settings.spark)
    tables = {t: read_table(session, lake, t) for t in PER_SERIES if lake.has(t)}
    schemas = {t: lake.scan(t).collect_schema() for t in tables}
    groups = group_count(session, settings.spark)

    def collected(fn: Callable[[dict[str, pl.DataFrame]], pl.DataFrame], order: list[str]) -> pl.DataFrame:
        like = fn(sample).schema
        got = to_polars(map_groups(session, tables, fn, spark_schema(like), groups=groups, schemas=schemas))
        # Spark hands back its own types (int32 for Int8, strings for categoricals): the local job's again.
        got = got.select(like.names()).cast({c: t for c, t in like.items() if t != pl.Null and got.schema[c] != t})
        return got.sort(order)

    table = collected(rows, [*SERIES, ORIGIN])
    if not labelled:
        return table, None, at
    starts = tables["sales"].groupBy(*SERIES).agg(sf.min("date").alias("first")).groupBy("first").count()
    plan = demand_plan(
        shape.config,
        cutoff=at,
        firsts={r["first"]: r["count"] for r in starts.collect()},
        step=probe.panel.step,
        horizon=Freq(shape.freq).default_horizon,
    )
    # At most `max_rows` rows (the plan's sample): they fit on the driver.
    demand = collected(lambda tables: demand_rows(group_data(shape, tables), plan), [*SERIES, ORIGIN, HORIZON])
    return table, demand, at
