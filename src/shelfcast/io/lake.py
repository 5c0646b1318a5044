"""The workspace lake: canonical tables as Parquet, plus a manifest.

Dated tables are stored one file per month (`lake/sales/2024-01.parquet`), so
an ingest rewrites only the months it touches and never needs a whole table
in memory; master tables are single files (`lake/items.parquet`). Every file
is sorted by the table's key.

The manifest records, per table, its rows, columns, date range, series and a
content hash (sha256 of the sorted rows, combined over the months), so later
stages can log data lineage and a re-ingest of the same input can be seen to
change nothing.

Writers hold the workspace lock (`io.workspace_lock`) and write every file to
a temporary name unique to the writer, renamed into place. An ingest writes an
in-progress marker before its first write to the lake and removes it after the
manifest: a marker without a live writer means an interrupted ingest, and
`io.lake_check` compares the files with the manifest, so a half-written lake is seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.errors import LakeError, WorkspaceError
from shelfcast.io.files import atomic_write
from shelfcast.schemas import QUARANTINE_SCHEMA, SCHEMAS, TableName, canonical_order, replace_rows

MANIFEST = "manifest.json"
IN_PROGRESS = ".ingest-in-progress.json"
QUARANTINE = "quarantine"
MONTH_FORMAT = "%Y-%m"
_HASH_SLICE = 500_000
_HISTORY = 50


def month_of(column: str = "date") -> pl.Expr:
    """The partition label (YYYY-MM) of a date column."""
    return pl.col(column).dt.strftime(MONTH_FORMAT)


def is_partitioned(table: str) -> bool:
    schema = SCHEMAS.get(table)  # type: ignore[call-overload]
    return bool(schema is not None and schema.has_date)


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
    partitions: dict[str, dict[str, Any]] | None = None
    period_anchor: str | None = None  # weekly tables: their date is the period's "start" or "end"
    file: str | None = None  # size:mtime of an undated table's file when hashed


def content_hash(frame: pl.DataFrame, *, sorted_by_unique_key: bool = False) -> str:
    """sha256 of the rows in a canonical order, independent of how the file was written or read.

    A table already sorted by a unique key is in canonical order, so the lake
    (which stores tables that way) skips the full sort.
    """
    ordered = frame.select(sorted(frame.columns))
    if ordered.height and not sorted_by_unique_key:
        ordered = ordered.sort(ordered.columns, nulls_last=True)
    digest = hashlib.sha256(json.dumps({c: str(t) for c, t in ordered.schema.items()}).encode())
    for offset in range(0, max(ordered.height, 1), _HASH_SLICE):
        buf = io.BytesIO()
        # One chunk, and strings as plain offsets+bytes (not views into shared buffers): the bytes then depend
        # on the values only, not on how the frame was built or read back (one chunk in memory, row groups on disk).
        _without_bitmaps(ordered.slice(offset, _HASH_SLICE)).rechunk().write_ipc(
            buf, compression="uncompressed", compat_level=pl.CompatLevel.oldest()
        )
        digest.update(buf.getvalue())
    return digest.hexdigest()


def _without_bitmaps(frame: pl.DataFrame) -> pl.DataFrame:
    """Booleans as bytes and nulls as a mask column beside a filled column.

    Bitmaps (booleans, validity) may carry arbitrary bits past their last row, which Arrow IPC writes as they are:
    a column with nulls read back from Parquet hashed differently from the same column in memory.
    """
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Boolean:
            col = col.cast(pl.UInt8)
        if not frame[name].has_nulls():
            exprs.append(col)
        elif dtype in (pl.String, pl.Binary):
            exprs += [col.fill_null(""), pl.col(name).is_null().cast(pl.UInt8).alias(f"{name}\0null")]
        elif dtype.is_nested() or dtype == pl.Null:
            exprs.append(col)
        else:
            exprs += [col.to_physical().fill_null(0), pl.col(name).is_null().cast(pl.UInt8).alias(f"{name}\0null")]
    return frame.select(exprs)


def file_stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _partition_entry(frame: pl.DataFrame, path: Path) -> dict[str, Any]:
    return {
        "rows": frame.height,
        "content_hash": content_hash(frame, sorted_by_unique_key=True),
        "date_min": str(frame["date"].min()),
        "date_max": str(frame["date"].max()),
        # Size and mtime of the file hashed: a file changed behind the
        # manifest's back (a crash mid-ingest, a manual copy) is re-hashed.
        "file": file_stamp(path),
    }


def _atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.write_parquet(tmp, compression="zstd", statistics=True))


def _merge_schemas(files: Sequence[Path]) -> dict[str, pl.DataType]:
    """The union of the files' columns (a later ingest may add optional columns)."""
    union: dict[str, pl.DataType] = {}
    for file in files:
        for name, dtype in pl.read_parquet_schema(file).items():
            union.setdefault(name, dtype)
    return union


class Lake:
    """Canonical tables of one workspace, stored as Parquet."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = Path(workspace)
        self.root = self.workspace / "lake"

    def path(self, table: str) -> Path:
        """The table's file, or its folder of monthly files for a dated table."""
        return self.root / table if is_partitioned(table) else self.root / f"{table}.parquet"

    def files(self, table: str) -> list[Path]:
        path = self.path(table)
        if is_partitioned(table):
            return sorted(path.glob("*.parquet")) if path.is_dir() else []
        return [path] if path.exists() else []

    def months(self, table: str) -> list[str]:
        return [f.stem for f in self.files(table)] if is_partitioned(table) else []

    def has(self, table: str) -> bool:
        return bool(self.files(table))

    def scan(self, table: str) -> pl.LazyFrame:
        files = self.files(table)
        if not files:
            raise WorkspaceError(
                f"table {table!r} not found in {self.root}; run `shelfcast ingest` (or `shelfcast demo`) first"
            )
        if len(files) == 1:
            return pl.scan_parquet(files[0])
        union = _merge_schemas(files)
        return pl.scan_parquet(files, schema=union, missing_columns="insert").select(
            canonical_order(SCHEMAS[table], list(union)) if table in SCHEMAS else list(union)  # type: ignore[index]
        )

    def read(self, table: str) -> pl.DataFrame:
        return self.scan(table).collect()

    def read_month(self, table: str, month: str) -> pl.DataFrame | None:
        file = self.path(table) / f"{month}.parquet"
        if not file.exists():
            return None
        try:
            return pl.read_parquet(file)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise LakeError(
                f"{file} is damaged ({first_line(exc)}); delete it and re-ingest the data of {month}"
            ) from None

    def tables(self) -> list[str]:
        return [t for t in SCHEMAS if self.has(t)]

    def iter_partitions(self, table: str) -> Iterator[tuple[str, pl.DataFrame]]:
        """(label, rows) per stored file: months for dated tables, the whole table otherwise."""
        for file in self.files(table):
            yield (file.stem, pl.read_parquet(file))

    def _merge_into(self, table: TableName, existing: pl.DataFrame | None, rows: pl.DataFrame) -> pl.DataFrame:
        return replace_rows(SCHEMAS[table], existing, rows)

    def upsert_month(self, table: TableName, month: str, rows: pl.DataFrame) -> dict[str, Any]:
        """Replace rows of one month whose key is in `rows`, keep the others; returns the partition's entry."""
        merged = self._merge_into(table, self.read_month(table, month), rows)
        path = self.path(table) / f"{month}.parquet"
        _atomic_write_parquet(merged, path)
        return _partition_entry(merged, path)

    def upsert(self, table: TableName, rows: pl.DataFrame) -> dict[str, dict[str, Any]]:
        """Replace rows whose key is in `rows`, keep the others; returns the entries of the months written."""
        if not is_partitioned(table):
            existing = self.read(table) if self.has(table) else None
            merged = self._merge_into(table, existing, rows)
            _atomic_write_parquet(merged, self.path(table))
            return {}
        labelled = rows.with_columns(month_of().alias("__month"))
        return {
            str(month): self.upsert_month(table, str(month), part.drop("__month"))
            for (month,), part in labelled.partition_by("__month", as_dict=True).items()
        }

    def describe(
        self,
        table: str,
        *,
        partitions: Mapping[str, Mapping[str, Any]] | None = None,
        frequency: str | None = None,
        origin: str = "source",
        column_roles: Mapping[str, str] | None = None,
        period_anchor: str | None = None,
    ) -> TableInfo:
        """The manifest entry of a stored table; `partitions` updates the months just written."""
        if not is_partitioned(table):
            frame = self.read(table)
            return TableInfo(
                rows=frame.height,
                columns={c: str(t) for c, t in frame.schema.items()},
                content_hash=content_hash(frame, sorted_by_unique_key=True),
                origin=origin,
                file=file_stamp(self.path(table)),
            )
        known = dict((self.table_info(table) or {}).get("partitions") or {})
        known.update({m: dict(e) for m, e in (partitions or {}).items()})
        stored = set(self.months(table))
        for month in stored:
            path = self.path(table) / f"{month}.parquet"
            if known.get(month, {}).get("file") != file_stamp(path):
                known[month] = _partition_entry(pl.read_parquet(path), path)
        known = {m: known[m] for m in sorted(stored)}
        digest = hashlib.sha256("\n".join(f"{m}:{e['content_hash']}" for m, e in known.items()).encode())
        scan = self.scan(table)
        columns = scan.collect_schema()
        series = None
        if {"store_id", "item_id"} <= set(columns) and not {"units", "on_hand", "stockout_hours"}.isdisjoint(columns):
            series = scan.select(pl.struct("store_id", "item_id").n_unique()).collect(engine="streaming").item()
        return TableInfo(
            rows=sum(e["rows"] for e in known.values()),
            columns={c: str(t) for c, t in columns.items()},
            content_hash=digest.hexdigest(),
            date_min=min((e["date_min"] for e in known.values()), default=None),
            date_max=max((e["date_max"] for e in known.values()), default=None),
            series=series,
            frequency=frequency,
            origin=origin,
            column_roles=dict(column_roles) if column_roles else None,
            partitions=known,
            period_anchor=period_anchor if frequency == "W" else None,
        )

    def replace_quarantine(self, sources: Sequence[str], rows: pl.DataFrame) -> pl.DataFrame:
        """Drop earlier quarantine rows of these sources and add the new ones (a re-ingest replaces)."""
        rows = rows.select(list(QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
        if self.has(QUARANTINE):
            old = self.read(QUARANTINE).filter(~pl.col("source").is_in(list(sources)))
            rows = pl.concat([old, rows])
        rows = rows.sort("source", "line", "table", nulls_last=True)
        _atomic_write_parquet(rows, self.path(QUARANTINE))
        return rows

    def manifest(self) -> dict[str, Any]:
        """The manifest (empty when none was written); LakeError when it is damaged."""
        path = self.root / MANIFEST
        if not path.exists():
            return {"version": 1, "tables": {}, "ingests": []}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise LakeError(
                f"the lake's manifest {path} is damaged (truncated or not JSON: {first_line(exc)}); "
                "re-run `shelfcast ingest` to rebuild it from the files"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
            raise LakeError(f"the lake's manifest {path} has no `tables`; re-run `shelfcast ingest` to rebuild it")
        return data

    def discard_damaged_manifest(self) -> Path | None:
        """Move a damaged manifest aside (an ingest then rebuilds it from the files); returns where it went."""
        path = self.root / MANIFEST
        try:
            self.manifest()
        except LakeError:
            aside = path.with_name(f"{MANIFEST}.damaged-{dt.datetime.now():%Y%m%dT%H%M%S}")
            os.replace(path, aside)
            return aside
        return None

    # The in-progress marker: written before an ingest's first write to the lake, removed after its manifest.

    def begin_writing(self, **about: str) -> dict[str, Any] | None:
        """Write the marker; returns the marker of an earlier ingest that never finished, if any."""
        earlier = self.interrupted_marker()
        marker = {"pid": os.getpid(), "host": socket.gethostname(), **about}
        payload = json.dumps(marker, indent=2)
        atomic_write(self.root / IN_PROGRESS, lambda tmp: tmp.write_text(payload))
        return earlier

    def end_writing(self) -> None:
        (self.root / IN_PROGRESS).unlink(missing_ok=True)

    def interrupted_marker(self) -> dict[str, Any] | None:
        """The marker of an ingest that started writing and did not finish (None when there is none)."""
        path = self.root / IN_PROGRESS
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        return data if isinstance(data, dict) else {}

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
        payload = json.dumps(manifest, indent=2, default=str)
        atomic_write(self.root / MANIFEST, lambda tmp: tmp.write_text(payload))
        return manifest


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
