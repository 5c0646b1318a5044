"""Why one series is at risk: the stockout champion's explanation at the latest date, read from that series alone.

A dashboard asks for one series at a time, so only that series' rows are read
from the lake (a filtered scan) and its panel and features are built by the
same functions as training, scoring and serving (`build_panel`,
`stockout_features_at`). Every feature of a series is computed over that
series' own rows; the one thing the panel takes from other series is the sales
table's last date (a series still stocked runs on to it), passed in from the
manifest. Item and store attributes and exogenous covariates are read at the
scopes that reach the series (its own, its store's, its item's, chain-wide).
`tests/integration/test_explain.py` checks the row equals the service's.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.errors import DataValidationError, LakeError, ModelNotFoundError, UnknownSeriesError, WorkspaceError
from shelfcast.features.labels import HOURS_SIGNALS
from shelfcast.features.panel import Panel, build_panel
from shelfcast.io.champion import load_champion
from shelfcast.io.lake import Lake
from shelfcast.io.lake_check import verify
from shelfcast.io.model_files import load_stockout
from shelfcast.io.policy_log import in_fallback
from shelfcast.models.explain import Reason, explain
from shelfcast.models.stockout import StockoutModel, stockout_features_at, window_steps
from shelfcast.schemas import TableName
from shelfcast.settings import Settings
from shelfcast.types import Task

log = logging.getLogger(__name__)
_SERIES_TABLES: tuple[TableName, ...] = ("sales", "inventory")
_IDS = ("store_id", "item_id")


@dataclass(frozen=True)
class SeriesExplanation:
    """The stockout risk of one series at the latest date of the data, and the features that pushed it."""

    store_id: str
    item_id: str
    origin: dt.date
    risk: float
    threshold: float
    label: bool
    risk_days: int
    base_value: float  # log-odds before any feature pushes
    model_name: str
    model_version: str
    reasons: list[Reason]  # strongest first, up and down together
    up: list[Reason]
    down: list[Reason]
    seconds: float


@dataclass(frozen=True)
class SeriesRow:
    """One series' encoded stockout features at `origin` (the booster's encoder's columns)."""

    origin: dt.date
    values: np.ndarray  # float32, one row


def explain_series(settings: Settings, store_id: str, item_id: str, *, top: int = 5) -> SeriesExplanation:
    """The stockout champion's risk of (store_id, item_id) at the latest date and why.

    Raises UnknownSeriesError for ids not in the data on its latest date, DataValidationError on sales-only
    data (no stockout risk at all), ModelNotFoundError when no model is served (no champion, or the monitoring
    policy put stockout in fallback: then the rule baseline answers, with nothing to explain).
    """
    started = time.perf_counter()
    lake = Lake(settings.workspace)
    _check_stock(lake)
    held = in_fallback(settings, Task.STOCKOUT)
    if held is not None:
        raise ModelNotFoundError(
            f"no stockout model to explain: the monitoring policy put stockout in fallback on {held.since} "
            f"({held.reason}); the rule baseline answers"
        )
    champion = load_champion(settings, Task.STOCKOUT)
    model = load_stockout(champion.folder)
    row = series_row(lake, model, store_id, item_id)
    why = explain(model, row.values, top=top)
    seconds = time.perf_counter() - started
    log.info("explained %s/%s at %s in %.2f s", store_id, item_id, row.origin, seconds)
    return SeriesExplanation(
        store_id=store_id,
        item_id=item_id,
        origin=row.origin,
        risk=why.risk,
        threshold=why.threshold,
        label=why.label,
        risk_days=model.definition.window,
        base_value=why.base_value,
        model_name=champion.name,
        model_version=champion.version,
        reasons=why.reasons,
        up=why.up,
        down=why.down,
        seconds=seconds,
    )


def _check_stock(lake: Lake) -> None:
    """A lake models can read (LakeError), with stock: DataValidationError on sales-only data, before any model is
    looked for (as the service does)."""
    if not lake.has("sales"):
        raise WorkspaceError(f"no sales in {lake.root}; run `shelfcast ingest` (or `shelfcast demo`) first")
    # As every model's read of the lake (`io.model_data`): a half-written or changed lake is refused.
    problems = verify(lake)
    if problems:
        more = f" (and {len(problems) - 1} more: `shelfcast validate` lists them)" if len(problems) > 1 else ""
        raise LakeError(
            f"no model uses the lake in {lake.root}, its files do not match its manifest: {problems[0]}{more}"
        )
    columns = lake.scan("inventory").collect_schema().names() if lake.has("inventory") else []
    if "on_hand" not in columns and not any(c in columns for c in HOURS_SIGNALS):
        raise DataValidationError(
            "no stockout risk on sales-only data: the lake has no stock (inventory with on_hand or stockout_hours), "
            "so there is no risk to explain"
        )


def series_row(lake: Lake, model: StockoutModel, store_id: str, item_id: str) -> SeriesRow:
    """The series' stockout features at the latest date of the data, from its own rows of the lake."""
    info = lake.table_info("sales") or {}
    if not info.get("date_max"):
        raise WorkspaceError(f"the lake in {lake.root} has no manifest entry for sales; re-run `shelfcast ingest`")
    last = dt.date.fromisoformat(str(info["date_max"]))
    panel = series_panel(lake, store_id, item_id, end=last)
    if panel is None or panel.frame.filter(pl.col("date") == last).is_empty():
        raise UnknownSeriesError(
            f"unknown series store_id={store_id!r} item_id={item_id!r} on {last}: not in the workspace's data "
            "on its latest date"
        )
    window = window_steps(panel, model.definition.window)
    features = stockout_features_at(panel, model.spec, last, window=window)
    return SeriesRow(last, model.model.encoder_.transform(features))


def series_panel(lake: Lake, store_id: str, item_id: str, *, end: dt.date) -> Panel | None:
    """The panel of one series (None when it has no sales), as the whole lake's panel holds it."""
    ids = {"store_id": store_id, "item_id": item_id}
    tables: dict[TableName, pl.DataFrame] = {}
    for table in _SERIES_TABLES:
        if lake.has(table):
            tables[table] = lake.scan(table).filter(_own(ids)).collect()
    if tables["sales"].is_empty():
        return None
    stock = tables.get("inventory")
    if stock is not None and stock.is_empty():
        # The whole panel has the stock columns (null for this series): one empty row on its first day keeps them
        # without moving its span (the panel drops an empty inventory table, columns and all).
        tables["inventory"] = _null_row(stock, ids, tables["sales"]["date"].min())
    if lake.has("exogenous"):
        scan = lake.scan("exogenous")
        exogenous = scan.filter(_in_scope(ids, scan)).collect()
        # Covariates that do not reach the series are still columns of the panel (null), as in the whole panel.
        tables["exogenous"] = exogenous if not exogenous.is_empty() else _null_row(exogenous, {}, None)
    for table, key in (("items", "item_id"), ("stores", "store_id")):
        if lake.has(table):
            attrs = lake.scan(table).filter(pl.col(key) == ids[key]).collect()
            # An id missing from its master table has null attributes in the whole panel: so here too.
            tables[table] = attrs if not attrs.is_empty() else _null_row(attrs, ids, None)
    info = lake.table_info("sales") or {}
    roles = (lake.table_info("exogenous") or {}).get("column_roles") or {}
    return build_panel(tables, freq=info.get("frequency") or "D", exogenous_roles=roles, end=end)


def _own(ids: dict[str, str]) -> pl.Expr:
    return (pl.col("store_id") == ids["store_id"]) & (pl.col("item_id") == ids["item_id"])


def _in_scope(ids: dict[str, str], scan: pl.LazyFrame) -> pl.Expr:
    """Rows of a scoped table that reach the series: its ids or null (all stores, all items) in each id column."""
    names = scan.collect_schema().names()
    keep = pl.lit(True)
    for column in _IDS:
        if column in names:
            keep &= (pl.col(column) == ids[column]) | pl.col(column).is_null()
    return keep


def _null_row(frame: pl.DataFrame, ids: dict[str, str], date: object) -> pl.DataFrame:
    """One row of `frame`'s schema: the ids and date given, every other value null."""
    values = {c: [ids.get(c, date if c == "date" else None)] for c in frame.columns}
    return pl.DataFrame(values, schema=frame.schema)
