"""The workspace lake: one Parquet file per canonical table, plus a manifest.

The manifest records, per table, its rows, columns, date range, series and a
content hash (sha256 of the sorted rows), so that later stages can log data
lineage and a re-ingest of the same input can be seen to change nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.errors import WorkspaceError
from shelfcast.schemas import QUARANTINE_SCHEMA, SCHEMAS, TableName, canonical_order

MANIFEST = "manifest.json"
QUARANTINE = "quarantine"
_HASH_SLICE = 500_000
_HISTORY = 50


@dataclass(frozen=True)
class TableInfo:
    """What the manifest says about one table."""

    rows: int
    columns: dict[str, str]
    content_hash: str
    date_min: str | None = None
    date_max: str | None = None
    series: int | None = None
    frequency: str | None = None
    origin: str = "source"
    column_roles: dict[str, str] | None = None


def content_hash(frame: pl.DataFrame, *, sorted_by_unique_key: bool = False) -> str:
    """sha256 of the rows in a canonical order, independent of how the file was written.

    A table already sorted by a unique key is in canonical order, so the lake
    (which stores tables that way) skips the full sort.
    """
    ordered = frame.select(sorted(frame.columns))
    if ordered.height and not sorted_by_unique_key:
        ordered = ordered.sort(ordered.columns, nulls_last=True)
    digest = hashlib.sha256(json.dumps({c: str(t) for c, t in ordered.schema.items()}).encode())
    for offset in range(0, max(ordered.height, 1), _HASH_SLICE):
        buf = io.BytesIO()
        ordered.slice(offset, _HASH_SLICE).write_ipc(buf, compression="uncompressed")
        digest.update(buf.getvalue())
    return digest.hexdigest()


def describe(
    frame: pl.DataFrame,
    *,
    sorted_by_unique_key: bool = False,
    frequency: str | None = None,
    origin: str = "source",
    column_roles: Mapping[str, str] | None = None,
) -> TableInfo:
    """The manifest entry for a table."""
    dates = frame["date"] if "date" in frame.columns else None
    series = None
    if {"store_id", "item_id", "date"} <= set(frame.columns) and not {"units", "on_hand", "stockout_hours"}.isdisjoint(
        frame.columns
    ):
        series = frame.select("store_id", "item_id").n_unique()
    return TableInfo(
        rows=frame.height,
        columns={c: str(t) for c, t in frame.schema.items()},
        content_hash=content_hash(frame, sorted_by_unique_key=sorted_by_unique_key),
        date_min=str(dates.min()) if dates is not None and frame.height else None,
        date_max=str(dates.max()) if dates is not None and frame.height else None,
        series=series,
        frequency=frequency,
        origin=origin,
        column_roles=dict(column_roles) if column_roles else None,
    )


def _atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    frame.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, path)


class Lake:
    """Canonical tables of one workspace, stored as Parquet."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = Path(workspace)
        self.root = self.workspace / "lake"

    def path(self, table: str) -> Path:
        return self.root / f"{table}.parquet"

    def has(self, table: str) -> bool:
        return self.path(table).exists()

    def scan(self, table: str) -> pl.LazyFrame:
        if not self.has(table):
            raise WorkspaceError(
                f"table {table!r} not found in {self.root}; run `shelfcast ingest` (or `shelfcast demo`) first"
            )
        return pl.scan_parquet(self.path(table))

    def read(self, table: str) -> pl.DataFrame:
        return self.scan(table).collect()

    def tables(self) -> list[str]:
        return [t for t in SCHEMAS if self.has(t)]

    def upsert(self, table: TableName, rows: pl.DataFrame) -> pl.DataFrame:
        """Replace rows whose key is in `rows`, keep the others, write sorted by key; returns the table."""
        keys = list(SCHEMAS[table].keys)
        if self.has(table):
            existing = self.read(table)
            kept = existing.join(rows.select(keys), on=keys, how="anti", nulls_equal=True)
            rows = pl.concat([kept, rows], how="diagonal_relaxed")
        rows = rows.select(canonical_order(SCHEMAS[table], rows.columns)).sort(keys, nulls_last=False)
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write_parquet(rows, self.path(table))
        return rows

    def replace_quarantine(self, sources: Sequence[str], rows: pl.DataFrame) -> pl.DataFrame:
        """Drop earlier quarantine rows of these sources and add the new ones (a re-ingest replaces)."""
        rows = rows.select(list(QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
        if self.has(QUARANTINE):
            old = self.read(QUARANTINE).filter(~pl.col("source").is_in(list(sources)))
            rows = pl.concat([old, rows])
        rows = rows.sort("source", "line", "table", nulls_last=True)
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write_parquet(rows, self.path(QUARANTINE))
        return rows

    def manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.exists():
            return {"version": 1, "tables": {}, "ingests": []}
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def table_info(self, table: str) -> dict[str, Any] | None:
        info: dict[str, Any] | None = self.manifest()["tables"].get(table)
        return info

    def update_manifest(
        self,
        tables: Mapping[str, TableInfo],
        *,
        ingest: Mapping[str, Any] | None,
        quarantine_rows: int,
        now: dt.datetime,
    ) -> dict[str, Any]:
        manifest = self.manifest()
        manifest["tables"].update({name: asdict(info) for name, info in tables.items()})
        manifest["tables"] = dict(sorted(manifest["tables"].items()))
        manifest["quarantine_rows"] = quarantine_rows
        manifest["updated_at"] = now.isoformat(timespec="seconds")
        if ingest is not None:
            manifest["ingests"] = [*manifest.get("ingests", []), dict(ingest)][-_HISTORY:]
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(tmp, self.root / MANIFEST)
        return manifest
