"""The reads every page shares, cached: a read is repeated only when what it reads has changed.

Each cached function takes the settings as `_settings` (Streamlit leaves an
argument named with a leading underscore out of the key) and a key and stamp
(in the key) that change with the data: the prediction store's latest scoring day
and its version (the Parquet file's time, the Delta table's version), the
lake manifest's content hashes. A new scoring or ingest is therefore seen on
the next page load, and an unchanged workspace is read once. Frames are held
by `cache_resource` (shared, not copied: Polars frames are immutable).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from shelfcast.errors import LakeError, StoreError, WorkspaceError
from shelfcast.features.panel import SERIES
from shelfcast.io.lake import Lake
from shelfcast.io.online_store import Buckets, OnlineStore, StockNow
from shelfcast.io.stores import open_store
from shelfcast.io.stores.day import ScoringDay, day_stamp
from shelfcast.redact import redact
from shelfcast.settings import Settings

SPINNER = False  # the pages say what they wait for themselves


def store_key(settings: Settings) -> tuple[str, ...]:
    """What names the prediction store (its kind and where it is), for cache keys."""
    kind = settings.prediction_store
    where = settings.prediction_table if kind == "postgres" else str(settings.workspace.resolve())
    return (kind, where)


def scoring(settings: Settings) -> ScoringDay | None:
    """The latest scoring day of the configured store (None when it holds none); StoreError when unreachable."""
    store = open_store(settings)
    day = store.latest_day()
    if day is None:
        return None
    try:
        stamp = day_stamp(store, day)
    except OSError as exc:
        raise StoreError(f"{store.location}: {exc}") from exc
    return _scoring(settings, store_key(settings), day, stamp)


@st.cache_resource(max_entries=4, show_spinner=SPINNER)
def _scoring(_settings: Settings, key: tuple[str, ...], day: dt.date, stamp: Any) -> ScoringDay | None:
    frame = open_store(_settings).read(scored_on=day)
    return None if frame.is_empty() else ScoringDay.of(frame, day)


def instant(text: str | None) -> dt.datetime | None:
    """An ISO time written by shelfcast (UTC when it has no offset), or None when missing or unreadable."""
    if not text:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def lake_stamp(settings: Settings, *tables: str) -> str:
    """The workspace and the content hashes of `tables` in its manifest (a new ingest of them changes it)."""
    info = Lake(settings.workspace).manifest()["tables"]
    hashes = "|".join(f"{t}:{(info.get(t) or {}).get('content_hash')}" for t in tables)
    return f"{settings.workspace.resolve()}|{hashes}"


def stock_on_hand(settings: Settings) -> pl.DataFrame | None:
    """Each series' latest stock count (store_id, item_id, on_hand, counted_on); None when the lake has none."""
    lake = Lake(settings.workspace)
    if not lake.has("inventory") or "on_hand" not in lake.scan("inventory").collect_schema():
        return None
    return _stock_on_hand(settings, lake_stamp(settings, "inventory"))


@st.cache_resource(max_entries=4, show_spinner=SPINNER)
def _stock_on_hand(_settings: Settings, stamp: str) -> pl.DataFrame:
    counted = Lake(_settings.workspace).scan("inventory").filter(pl.col("on_hand").is_not_null())
    return (
        counted.group_by(SERIES)
        .agg(pl.col("on_hand").sort_by("date").last(), pl.col("date").max().alias("counted_on"))
        .collect()
    )


def item_attributes(settings: Settings) -> pl.DataFrame | None:
    """The lake's items table (item_id and its attributes, such as category); None when there is none."""
    lake = Lake(settings.workspace)
    if not lake.has("items"):
        return None
    return _items(settings, lake_stamp(settings, "items"))


@st.cache_resource(max_entries=4, show_spinner=SPINNER)
def _items(_settings: Settings, stamp: str) -> pl.DataFrame:
    return Lake(_settings.workspace).read("items")


def series_history(settings: Settings, store_id: str, item_id: str) -> pl.DataFrame:
    """One series' days: date, units, promo, price, on_hand, stockout_hours (null where the lake has none)."""
    return _series_history(settings, lake_stamp(settings, "sales", "inventory"), store_id, item_id)


@st.cache_data(max_entries=64, show_spinner=SPINNER)
def _series_history(_settings: Settings, stamp: str, store_id: str, item_id: str) -> pl.DataFrame:
    lake = Lake(_settings.workspace)
    one = (pl.col("store_id") == store_id) & (pl.col("item_id") == item_id)
    sales = lake.scan("sales").filter(one).collect()
    wanted = ["date", "units", "promo", "price"]
    sales = sales.select([pl.col(c) if c in sales.columns else pl.lit(None).alias(c) for c in wanted])
    stock_columns = ["on_hand", "stockout_hours"]
    if lake.has("inventory"):
        inventory = lake.scan("inventory").filter(one).collect()
        stock = inventory.select(["date", *[c for c in stock_columns if c in inventory.columns]])
        sales = sales.join(stock, on="date", how="full", coalesce=True)
    for column in stock_columns:
        if column not in sales.columns:
            sales = sales.with_columns(pl.lit(None, pl.Float64).alias(column))
    return sales.sort("date")


def calendar_events(settings: Settings, store_id: str, first: dt.date, last: dt.date) -> pl.DataFrame:
    """Events (date, event) between `first` and `last` for the whole chain or this store."""
    lake = Lake(settings.workspace)
    if not lake.has("calendar"):
        return pl.DataFrame(schema={"date": pl.Date, "event": pl.String})
    calendar = lake.scan("calendar").filter(pl.col("date").is_between(first, last))
    if "store_id" in calendar.collect_schema():
        calendar = calendar.filter(pl.col("store_id").is_null() | (pl.col("store_id") == store_id))
    return calendar.select("date", "event").unique().sort("date").collect()


READ_ERRORS = (StoreError, LakeError, WorkspaceError, OSError)


def data_frequency(settings: Settings) -> str:
    """'D' or 'W': the sales table's period as ingest recorded it."""
    info = Lake(settings.workspace).table_info("sales") or {}
    return str(info.get("frequency") or "D")


@dataclass(frozen=True)
class LiveView:
    """What the online store knows of one series now: the running totals, the latest count, the stock now."""

    day: dt.date
    buckets: Buckets
    stock: StockNow


def live_view(settings: Settings, store_id: str, item_id: str) -> LiveView | str:
    """The series in the online store, or why there is nothing to show (not seeded, Redis unreachable).

    Never cached: it is the part of the page that moves. Redis gets `live.timeout_seconds` to answer, so a slow
    or absent server costs the page that long at most.
    """
    import redis

    timeout = settings.live.timeout_seconds
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        store = OnlineStore.from_settings(settings, client)
        meta = store.meta()
        if meta.layout is None:
            return (
                f"The live store (`{settings.live.prefix}` on {redact(settings.redis_url)}) is empty: "
                "`shelfcast stream seed`, then `shelfcast stream consume`"
            )
        day = store.stats().latest_day or meta.seeded_through or dt.date.today()
        return LiveView(day, store.buckets(store_id, item_id, day), store.stock_now([(store_id, item_id)])[0])
    except redis.RedisError as exc:
        return f"The live store on {redact(settings.redis_url)} does not answer: {redact(str(exc))}"
    finally:
        client.close()
