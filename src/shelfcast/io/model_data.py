"""Model data from the workspace's lake: every table read once, with the frequency and roles ingest recorded."""

from __future__ import annotations

import polars as pl

from shelfcast.errors import LakeError, WorkspaceError
from shelfcast.io.lake import Lake
from shelfcast.io.lake_check import verify
from shelfcast.io.workspace_lock import holder
from shelfcast.models.data import FREQUENCIES, DataShape, ModelData, data_shape, model_data, with_rows
from shelfcast.schemas import TableName

TABLES: tuple[TableName, ...] = ("sales", "inventory", "exogenous", "items", "stores", "calendar")
# The tables every series reads whole; the others (sales, inventory) hold rows of one series each.
SHARED: tuple[TableName, ...] = ("exogenous", "items", "stores", "calendar")


def load_model_data(lake: Lake, *, extra: dict[TableName, pl.DataFrame] | None = None) -> ModelData:
    """The panel built from every table in the lake, with defaults for its frequency.

    `extra` rows (the online store's live days) replace the lake's rows with the same key (`with_rows`).

    A lake whose files disagree with its manifest (an interrupted ingest, a file changed or lost) is refused.
    """
    _check(lake)
    tables: dict[TableName, pl.DataFrame] = {t: lake.read(t) for t in TABLES if lake.has(t)}
    if extra:
        tables = with_rows(tables, extra)
    freq, roles, anchor = _roles(lake)
    return model_data(tables, freq=freq, exogenous_roles=roles, period_anchor=anchor)


def load_shape(lake: Lake) -> DataShape:
    """What each group of series needs to build its model data (`models.data.group_data`), without the sales.

    Reads the tables every series shares and the distinct store and item ids
    (a scan of two columns); the per-series tables stay where they are (Spark reads them).
    """
    _check(lake)
    shared: dict[TableName, pl.DataFrame] = {t: lake.read(t) for t in SHARED if lake.has(t)}
    freq, roles, anchor = _roles(lake)
    ids = lake.scan("sales").select("store_id", "item_id", "date")
    # One pass over the files (collect_all shares the scan), not one per question.
    stores, items, dates = pl.collect_all(
        [
            ids.select(pl.col("store_id").unique()),
            ids.select(pl.col("item_id").unique()),
            ids.select(pl.col("date").min().alias("first"), pl.col("date").max().alias("end")),
        ]
    )
    first, end = dates.row(0)
    return data_shape(
        shared,
        store_ids=stores["store_id"],
        item_ids=items["item_id"],
        freq=freq,
        first=first,
        end=end,
        exogenous_roles=roles,
        period_anchor=anchor,
        inventory=lake.scan("inventory").collect_schema() if lake.has("inventory") else None,
    )


def _roles(lake: Lake) -> tuple[str, dict[str, str], str | None]:
    """The sales' frequency, the exogenous columns' roles and the weekly period anchor the ingest recorded."""
    info = lake.table_info("sales") or {}
    freq = info.get("frequency") or "D"
    if freq not in FREQUENCIES:
        raise WorkspaceError(f"the sales table's frequency is {freq!r}; models support daily (D) or weekly (W) data")
    roles = (lake.table_info("exogenous") or {}).get("column_roles") or {}
    return freq, roles, info.get("period_anchor")


def _check(lake: Lake) -> None:
    """Refuse a lake without sales, busy with an ingest, or whose files disagree with its manifest."""
    if not lake.has("sales"):
        raise WorkspaceError(f"no sales in {lake.root}; run `shelfcast ingest` (or `shelfcast demo`) first")
    busy = holder(lake.workspace)
    if busy is not None:
        raise LakeError(f"{busy.line('an ingest')} (writing {lake.root}); run this again when it has finished")
    problems = verify(lake)
    if problems:
        more = f" (and {len(problems) - 1} more: `shelfcast validate` lists them)" if len(problems) > 1 else ""
        raise LakeError(
            f"no model uses the lake in {lake.root}, its files do not match its manifest: {problems[0]}{more}; "
            "re-run `shelfcast ingest`"
        )
