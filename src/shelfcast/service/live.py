"""Live features for `/predict` (setting `live.serve`): the lake's days, the online store's later days, and the
latest stock counts.

The live table is built by the same code as the lake's (`load_model_data` then `online.build_table`), on the
lake's tables with the online store's days after its seed put in (`models.data.with_rows`), at the live origin:
the last closed day, the day before the store's latest day with events. A day with no sale event is a day with no
sales row, as compaction writes it (0 units on the panel's grid). The table is rebuilt in a background thread
when its days change (a new day started, a late event came, the store was seeded; checked every
`live.refresh_seconds`) and swapped whole; a request reads the
table it found. A series counted after the origin (today's stock count) has that count put through the on-hand
features, as a request's own `on_hand` is.

When live features cannot be used (Redis unreachable or slower than `live.timeout_seconds`, nothing applied or
seeded for `live.stale_seconds`, the table not built yet), requests are answered from the lake's table with
`source: "lake"` and `stale: true`, never a 5xx, and `shelfcast_live_fallbacks_total` counts them by reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import redis

from shelfcast.errors import ShelfcastError
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.online_store import OnlineStore, StockNow, as_tables
from shelfcast.redact import redact
from shelfcast.schemas import TableName
from shelfcast.service.online import OnlineScorer, build_table, default_definition
from shelfcast.settings import Settings

if TYPE_CHECKING:
    from shelfcast.service.state import Snapshot

log = logging.getLogger(__name__)
STARTING_SECONDS = 0.5  # how often the background thread looks while no table is built yet
RETRY_SECONDS = 1.0  # after Redis failed, requests do not try it again for this long (they answer from the lake)


@dataclass(frozen=True)
class LiveTable:
    """The table at the live origin, what it was built from, and the snapshot it belongs to."""

    scorer: OnlineScorer
    origin: dt.date
    as_of: dt.datetime  # the online store's last update (event applied or seed) the table includes
    signature: tuple[object, ...]


@dataclass(frozen=True)
class LiveRows:
    """A request's live inputs: the table to read, each series' stock now where it moved after the origin (NaN:
    the table's own), when each series' data was last updated, and what the store says of its stock."""

    table: LiveTable
    counts: np.ndarray
    as_of: list[dt.datetime]
    stock: list[StockNow]


class LiveFeatures:
    """The service's view of the online store: the live table, kept fresh in the background, and today's counts."""

    def __init__(self, settings: Settings) -> None:
        cfg = settings.live
        self.settings = settings
        self.url = redact(settings.redis_url)
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=cfg.timeout_seconds,
            socket_connect_timeout=cfg.timeout_seconds,
            decode_responses=False,
        )
        self.store = OnlineStore.from_settings(settings, client)
        self.table: LiveTable | None = None
        self.problem: str | None = "the live table is not built yet"
        self.reason = "building"  # why the lake answers, a metric label: building, unreachable, stale, unusable
        self._down_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- background --------------------------------------------------------------------------------------------
    def start(self, snapshot_of: Callable[[], Snapshot | None]) -> None:
        """Refresh now and then every `live.refresh_seconds` in a daemon thread, until `stop`."""
        self._thread = threading.Thread(target=self._run, args=(snapshot_of,), name="shelfcast-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, snapshot_of: Callable[[], Snapshot | None]) -> None:
        while not self._stop.is_set():
            snapshot = snapshot_of()
            if snapshot is not None:
                self.refresh(snapshot)
            # Until the data is loaded and a table built, look again soon rather than a whole interval later.
            pause = self.settings.live.refresh_seconds if self.table is not None else STARTING_SECONDS
            self._stop.wait(min(pause, self.settings.live.refresh_seconds))

    def refresh(self, snapshot: Snapshot) -> LiveTable | None:
        """Rebuild the table if the store or the snapshot changed since it was built; the problem when it cannot."""
        with self._lock:
            try:
                self.table = self._build(snapshot)
                self.problem = None
            except redis.RedisError as exc:
                self._failed(f"Redis at {self.url} is unreachable: {exc}")
            except _NotUsableError as exc:
                self._unusable(exc.reason, str(exc))
            except ShelfcastError as exc:
                self._unusable("unusable", f"the live table could not be built: {exc}")
            return self.table

    def _unusable(self, reason: str, problem: str) -> None:
        if problem != self.problem:
            log.warning("live features unavailable, answering from the lake: %s", problem)
        self.table, self.reason, self.problem = None, reason, problem

    def _failed(self, problem: str) -> None:
        """Redis failed: requests answer from the lake for `RETRY_SECONDS` (the table is kept for when it is back)."""
        if problem != self.problem:
            log.warning("live features unavailable, answering from the lake: %s", problem)
        self.reason, self.problem = "unreachable", problem
        self._down_until = time.monotonic() + RETRY_SECONDS

    def _build(self, snapshot: Snapshot) -> LiveTable:
        if snapshot.scorer is None:
            raise _NotUsableError("unusable", "no stockout risk on this workspace's data")
        meta = self.store.meta()
        if not meta.compatible:
            raise _NotUsableError(
                "unusable",
                f"the online store under {self.store.prefix!r} holds no data of this version: run "
                "`shelfcast stream seed`, then `shelfcast stream consume`",
            )
        now = dt.datetime.now(dt.UTC)
        max_age = dt.timedelta(seconds=self.settings.live.stale_seconds)
        if not meta.fresh(now, max_age):
            raise _NotUsableError("stale", f"the online store is stale: nothing applied or seeded for over {max_age}")
        updated = max(t for t in (meta.seeded_at, meta.last_applied_at) if t is not None)
        # Closed days change when a new day starts or a late event comes; today's events only move stock now.
        stats = self.store.stats()
        signature = (id(snapshot), meta.seeded_at, meta.seeded_through, stats.latest_day, stats.closed_changes)
        current = self.table
        if current is not None and current.signature == signature:
            return current
        started = time.perf_counter()
        history = self.store.histories()
        if history.is_empty():
            raise _NotUsableError("unusable", "the online store holds no series yet: run `shelfcast stream seed`")
        latest = history["date"].max()
        assert isinstance(latest, dt.date)
        origin = latest - dt.timedelta(days=1)
        if origin < snapshot.first_date:
            raise _NotUsableError("unusable", f"the online store's last closed day {origin} is before the lake's data")
        extra = live_rows(history, after=meta.seeded_through, origin=origin)
        data = load_model_data(Lake(self.settings.workspace), extra=extra)
        model = snapshot.model
        definition = model.definition if model is not None else default_definition(data.panel)
        scorer = OnlineScorer(build_table(data.panel, model, definition, origin), model)
        log.info(
            "live table at %s built in %.2f s (%d series; store updated %s)",
            origin,
            time.perf_counter() - started,
            len(scorer.table.index),
            updated.isoformat(timespec="seconds"),
        )
        return LiveTable(scorer, origin, updated, signature)

    # -- requests ----------------------------------------------------------------------------------------------
    def rows(self, keys: Sequence[tuple[str, str]]) -> LiveRows | None:
        """The live table and each series' count after its origin; None when the lake's table must answer (`reason`
        and `problem` say why)."""
        table = self.table
        if table is None or time.monotonic() < self._down_until:
            return None
        try:
            stock = self.store.stock_now(keys)
        except redis.RedisError as exc:
            self._failed(f"Redis at {self.url} is unreachable: {exc}")
            return None
        counts = np.full(len(keys), np.nan)
        as_of: list[dt.datetime] = []
        for n, now in enumerate(stock):
            # The table holds the origin's end-of-day count; a count or a sale or receipt after that day moves it.
            days = [_key_day(now.count_key), _key_day(now.last_event_key) if now.after else None]
            if now.now is not None and any(d is not None and d > table.origin for d in days):
                counts[n] = now.now
            stamp = table.as_of
            if now.updated_ms is not None:
                stamp = max(stamp, dt.datetime.fromtimestamp(now.updated_ms / 1000, dt.UTC))
            as_of.append(stamp)
        return LiveRows(table, counts, as_of, stock)


class _NotUsableError(Exception):
    """The live table cannot be built now: a metric label (`reason`) and words for people."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason


def live_rows(history: pl.DataFrame, *, after: dt.date | None, origin: dt.date) -> dict[TableName, pl.DataFrame]:
    """The online store's days after `after` (its seed) up to `origin`, as the lake's sales and inventory rows.

    A day with no sale event has no sales row, as `shelfcast stream compact` writes it: the panel's grid makes it
    a day with 0 units sold.
    """
    days = history.filter(pl.col("date") <= origin)
    if after is not None:
        days = days.filter(pl.col("date") > after)
    tables = as_tables(days)
    return {"sales": tables["sales"], "inventory": tables["inventory"]}


def _key_day(order: str | None) -> dt.date | None:
    """The day of an order key (`<time as sent>|<event id>`, or `<day>T~seed` for a seeded count)."""
    if order is None:
        return None
    try:
        return dt.date.fromisoformat(order[:10])
    except ValueError:
        return None
