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

from shelfcast.errors import StoreError
from shelfcast.io.stores import PredictionStore, open_store
from shelfcast.io.stores.day import ScoringDay, day_stamp
from shelfcast.settings import Settings

log = logging.getLogger(__name__)
__all__ = ["PredictionView", "ScoringDay"]


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
                stamp = None if latest is None else (latest, day_stamp(self.store, latest))
                if stamp is None or stamp == self._stamp:
                    self.problem = None
                    return False
                frame = self.store.read(scored_on=latest)
            except (StoreError, OSError) as exc:  # OSError: `day_stamp` reads the Parquet file's time itself
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
