"""One scoring day of a prediction store, indexed for readers (the service's read routes, the dashboard).

Reading a whole day is the expensive part; `day_stamp` says cheaply whether
the day held is still the store's latest, so readers re-read only when a
newer day appears or that day is re-scored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.features.panel import SERIES
from shelfcast.io.stores.base import PredictionStore

SERIES_COLUMNS = (
    "stockout_risk",
    "stockout_label",
    "threshold",
    "safety_stock",
    "reorder_point",
    "order_up_to",
    "order_quantity",
    "model_name",
    "model_version",
    "stockout_model_version",
)


@dataclass(frozen=True)
class ScoringDay:
    """One scoring day: every row, where each series' rows start and end, and one row per series."""

    scored_on: dt.date
    scored_at: dt.datetime
    rows: pl.DataFrame  # sorted by store_id, item_id, date
    spans: dict[tuple[str, str], tuple[int, int]]
    series: pl.DataFrame  # one row per series: ids, the series-level columns, and the first week's forecast
    first: dt.date
    last: dt.date

    @classmethod
    def of(cls, frame: pl.DataFrame, scored_on: dt.date) -> ScoringDay:
        rows = frame.sort(*SERIES, "date")
        keys = rows.select(SERIES)
        change = np.flatnonzero(
            np.r_[True, (keys["store_id"][1:] != keys["store_id"][:-1]).to_numpy()]
            | np.r_[True, (keys["item_id"][1:] != keys["item_id"][:-1]).to_numpy()]
        )
        ends = [*change[1:].tolist(), rows.height]
        spans = {
            (keys["store_id"][int(s)], keys["item_id"][int(s)]): (int(s), e) for s, e in zip(change, ends, strict=True)
        }
        series = rows.group_by(SERIES, maintain_order=True).agg(
            *[pl.col(c).first() for c in SERIES_COLUMNS],
            pl.col("forecast").filter(pl.col("horizon") <= 7).sum().alias("forecast_7"),
        )
        scored_at = rows["scored_at"].max()
        first, last = rows["date"].min(), rows["date"].max()
        assert isinstance(scored_at, dt.datetime) and isinstance(first, dt.date) and isinstance(last, dt.date)
        return cls(scored_on, scored_at, rows, spans, series, first, last)

    def series_rows(self, store_id: str, item_id: str) -> pl.DataFrame | None:
        """The rows of one series (every horizon), or None when it was not scored that day."""
        span = self.spans.get((store_id, item_id))
        return None if span is None else self.rows.slice(span[0], span[1] - span[0])


def day_stamp(store: PredictionStore, day: dt.date) -> object:
    """What changes when `day` is re-scored, where that is cheap to ask: the Parquet file's time, the Delta
    table's version; None elsewhere (PostgreSQL re-runs of a day are seen on a reload). OSError from the file."""
    partition = getattr(store, "partition", None)
    if partition is not None:
        path = partition(day)
        return path.stat().st_mtime_ns if path.exists() else None
    version = getattr(store, "version", None)
    return version() if version is not None else None
