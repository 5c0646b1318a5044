"""Model data from the workspace's lake: every table read once, with the frequency and roles ingest recorded."""

from __future__ import annotations

import polars as pl

from shelfcast.errors import LakeError, WorkspaceError
from shelfcast.io.lake import Lake
from shelfcast.io.lake_check import verify
from shelfcast.io.workspace_lock import holder
from shelfcast.models.data import FREQUENCIES, ModelData, model_data, with_rows
from shelfcast.schemas import TableName

TABLES: tuple[TableName, ...] = ("sales", "inventory", "exogenous", "items", "stores", "calendar")


def load_model_data(lake: Lake, *, extra: dict[TableName, pl.DataFrame] | None = None) -> ModelData:
    """The panel built from every table in the lake, with defaults for its frequency.

    `extra` rows (the online store's live days) replace the lake's rows with the same key (`with_rows`).

    A lake whose files disagree with its manifest (an interrupted ingest, a file changed or lost) is refused.
    """
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
    tables: dict[TableName, pl.DataFrame] = {t: lake.read(t) for t in TABLES if lake.has(t)}
    if extra:
        tables = with_rows(tables, extra)
    info = lake.table_info("sales") or {}
    freq = info.get("frequency") or "D"
    if freq not in FREQUENCIES:
        raise WorkspaceError(f"the sales table's frequency is {freq!r}; models support daily (D) or weekly (W) data")
    roles = (lake.table_info("exogenous") or {}).get("column_roles") or {}
    return model_data(tables, freq=freq, exogenous_roles=roles, period_anchor=info.get("period_anchor"))
