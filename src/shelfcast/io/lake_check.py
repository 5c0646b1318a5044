"""The lake's files against its manifest, and its in-progress marker against the workspace lock.

Validation lists every disagreement; models refuse a lake with any (`io.model_data`), so a half-written or
changed lake is never modelled as if it were whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.io.lake import QUARANTINE, Lake, content_hash, file_stamp, first_line, is_partitioned
from shelfcast.io.workspace_lock import holder


def writing_problem(lake: Lake) -> str | None:
    """A line when an ingest is writing the lake now or was interrupted while writing it."""
    marker = lake.interrupted_marker()
    busy = holder(lake.workspace)
    if busy is not None:
        return f"{busy.line()}; wait for it to finish"
    if marker is None:
        return None
    what = f"{marker.get('source', '?')} {marker.get('path', '?')}".strip()
    return (
        f"an ingest ({what}, started {marker.get('started', 'at an unknown time')}, pid {marker.get('pid', '?')}) "
        "was interrupted while writing the lake, which may hold part of its rows: re-run that ingest"
    )


def verify(lake: Lake, *, deep: bool = False) -> list[str]:
    """Where the lake's files and its manifest disagree, one line each (empty when they agree).

    Rows are compared from the files' metadata; contents are re-hashed where a file's size or time changed
    since its manifest entry, or everywhere with `deep`. A damaged manifest raises LakeError.
    """
    problems = [p for p in [writing_problem(lake)] if p]
    manifest = lake.manifest()
    known: dict[str, Any] = manifest["tables"]
    stored = set(lake.tables())
    for table in sorted(stored - set(known)):
        problems.append(f"{lake.path(table)}: stored, but the manifest does not know table {table!r}")
    for table in sorted(set(known) - stored):
        problems.append(f"{lake.path(table)}: table {table!r} is in the manifest but its files are missing")
    for table in sorted(stored & set(known)):
        info = known[table]
        if not is_partitioned(table):
            problems += _check_file(lake.path(table), info, deep=deep)
            continue
        parts: dict[str, Any] = info.get("partitions") or {}
        months = set(lake.months(table))
        for month in sorted(months - set(parts)):
            problems.append(f"{lake.path(table) / month}.parquet: a file the manifest does not know")
        for month in sorted(set(parts) - months):
            problems.append(f"{lake.path(table) / month}.parquet: in the manifest but missing")
        for month in sorted(months & set(parts)):
            problems += _check_file(lake.path(table) / f"{month}.parquet", parts[month], deep=deep)
    if lake.has(QUARANTINE):
        rows = _file_rows(lake.path(QUARANTINE))
        expected = manifest.get("quarantine_rows")
        if isinstance(rows, str):
            problems.append(rows)
        elif expected is not None and rows != expected:
            problems.append(f"{lake.path(QUARANTINE)}: {rows:,} rows, the manifest says {expected:,}")
    return problems


def _file_rows(path: Path) -> int | str:
    """Rows of a Parquet file from its metadata, or a line saying it cannot be read."""
    try:
        rows: int = pl.scan_parquet(path).select(pl.len()).collect().item()
    except (OSError, pl.exceptions.PolarsError) as exc:
        return f"{path}: cannot be read ({first_line(exc)}); delete it and re-ingest its data"
    return rows


def _check_file(path: Path, entry: Mapping[str, Any], *, deep: bool) -> list[str]:
    rows = _file_rows(path)
    if isinstance(rows, str):
        return [rows]
    if rows != entry.get("rows"):
        return [f"{path}: {rows:,} rows, the manifest says {entry.get('rows')}"]
    if deep or entry.get("file") != file_stamp(path):
        try:
            digest = content_hash(pl.read_parquet(path), sorted_by_unique_key=True)
        except (OSError, pl.exceptions.PolarsError) as exc:
            return [f"{path}: cannot be read ({first_line(exc)}); delete it and re-ingest its data"]
        if digest != entry.get("content_hash"):
            return [f"{path}: its rows differ from the manifest's (content hash)"]
    return []
