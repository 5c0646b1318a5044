"""The latest scoring day of the prediction store, held in memory for the read routes.

`/forecast`, `/stockout/alerts` and `/reorder` answer from the batch
predictions that `shelfcast score` wrote to the configured store (Parquet,
PostgreSQL or Delta). The service reads the latest scoring day when it
starts, on reload, and whenever the store has a newer day (checked every
`serve.refresh_seconds`); a store that stops answering keeps the last day
served and is reported by /ready.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.errors import StoreError
from shelfcast.features.panel import SERIES
from shelfcast.io.stores import PredictionStore, open_store
from shelfcast.settings import Settings

log = logging.getLogger(__name__)
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


class PredictionView:
    """The store's latest scoring day, refreshed when a newer one appears (or that day is re-scored)."""

    def __init__(self, settings: Settings, store: PredictionStore | None = None) -> None:
        self.store = store or open_store(settings)
        self.day: ScoringDay | None = None
        self.problem: str | None = None
        self._stamp: tuple[dt.date, object] | None = None
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return self.store.location

    def refresh(self, *, force: bool = False) -> bool:
        """Read the latest day if it differs from the one held (or `force`); True when read. Never raises."""
        with self._lock:
            if force:
                self._stamp = None
            try:
                latest = self.store.latest_day()
                stamp = None if latest is None else (latest, self._version(latest))
                if stamp is None or stamp == self._stamp:
                    self.problem = None
                    return False
                frame = self.store.read(scored_on=latest)
            except (StoreError, OSError) as exc:  # OSError: `_version` reads the Parquet file's time itself
                self.problem = f"prediction store {self.store.location}: {exc}"
                log.warning("%s", self.problem)
                return False
            self.problem = None
            if frame.is_empty():
                return False
            self.day = ScoringDay.of(frame, frame["scored_on"][0])
            self._stamp = stamp
            log.info("serving predictions of %s (%d rows)", latest, frame.height)
            return True

    def _version(self, day: dt.date) -> object:
        """What changes when the day is re-scored, where that is cheap to ask: the Parquet file's time, the
        Delta table's version; PostgreSQL re-runs of a day are picked up on reload."""
        partition = getattr(self.store, "partition", None)
        if partition is not None:
            path = partition(day)
            return path.stat().st_mtime_ns if path.exists() else None
        version = getattr(self.store, "version", None)
        return version() if version is not None else None
