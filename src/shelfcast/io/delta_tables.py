"""The Delta tables shelfcast writes on request (`--format delta`), as a Databricks user expects, and reading them.

Under `<workspace>/delta/`: `raw_<table>` for every lake table (sales,
inventory, calendar, items, stores, exogenous, movements where present),
`features` (the feature rows with their stockout label: what the classifier
trained on and would score on), `demand_training` (the demand forecaster's
training rows: features and the demand at the target date) and `predictions`
(written by the Delta prediction store).
Writes go through delta-rs (the Delta Spark jars cannot be installed here);
each commit is a new table version, which the training run logs for lineage
(`io.tracking.delta_lineage`).

Raw tables are kept in step with the lake incrementally: dated tables are
partitioned by `year`, and only the years whose lake months changed (by the
manifest's content hashes) are replaced, in one commit; an undated table is
overwritten when its hash changed. A table whose lake content did not change
gets no new version. The hashes each version was written from are kept in its
commit's metadata (`shelfcast.source`).

Spark reads a table's current version without the Delta jars: the file list
of that version from delta-rs, read as Parquet (`read_spark`), so files an
overwrite removed (still on disk for time travel) are never read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from shelfcast.errors import LakeError
from shelfcast.io.lake import Lake, is_partitioned

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DELTA_DIR = "delta"
RAW_PREFIX = "raw_"
FEATURE_TABLE = "features"
DEMAND_TABLE = "demand_training"
PREDICTION_TABLE = "predictions"
YEAR = "year"
SOURCE_KEY = "shelfcast.source"  # commit metadata: the lake hashes (per year, or "all") this version holds
_WHOLE = "all"
_FAILURES = (OSError, DeltaError, pa.ArrowException)


@dataclass(frozen=True)
class TableVersion:
    """One Delta table at one version; `written`: this call committed that version (else it was already there)."""

    name: str
    path: Path
    version: int
    written: bool = False


def delta_root(workspace: Path) -> Path:
    return workspace / DELTA_DIR


def version_of(path: Path) -> TableVersion | None:
    """The table's current version, or None when there is no Delta table there."""
    if not DeltaTable.is_deltatable(str(path)):
        return None
    return TableVersion(path.name, path, DeltaTable(str(path)).version())


def current_versions(root: Path, *, names: list[str] | None = None) -> dict[str, TableVersion]:
    """Every Delta table under `root` (or the named ones) at its current version."""
    folders = [root / n for n in names] if names is not None else sorted(p for p in root.glob("*") if p.is_dir())
    found = {p.name: version_of(p) for p in folders}
    return {name: v for name, v in found.items() if v is not None}


def input_versions(workspace: Path) -> dict[str, TableVersion]:
    """The tables a model trained on the lake as it is now was trained from: every `raw_<table>`, `features` and
    `demand_training` whose current version was written from the lake's present content (a table left behind by a
    later ingest without `--format delta` does not hold what the model saw, and is left out)."""
    lake = Lake(workspace)
    found = {}
    for name, version in current_versions(delta_root(workspace)).items():
        if name in (FEATURE_TABLE, DEMAND_TABLE):
            wanted = lake_source(lake)
        elif name.startswith(RAW_PREFIX):
            wanted = _lake_hashes(lake, name.removeprefix(RAW_PREFIX))
        else:
            continue
        if wanted and _stored_hashes(version.path) == wanted:
            found[name] = version
    return found


def lake_source(lake: Lake) -> dict[str, str]:
    """What a table derived from the whole lake was written from: one digest of every table's content hash."""
    tables: Mapping[str, Mapping[str, Any]] = lake.manifest().get("tables", {})
    parts = [f"{name}:{info.get('content_hash')}" for name, info in sorted(tables.items())]
    return {"lake": hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]} if parts else {}


def write_frame(
    root: Path,
    name: str,
    frame: pl.DataFrame,
    *,
    partition_by: list[str] | None = None,
    source: Mapping[str, str] | None = None,
) -> TableVersion:
    """Overwrite the table `name` with `frame` (one commit, a new version; its schema replaces the old one);
    `source`: what it was computed from (e.g. `lake_source`), kept in the commit's metadata."""
    path = root / name
    try:
        return _commit(path, frame, source or {}, partition_by=partition_by, years=None)
    except _FAILURES as exc:
        raise LakeError(f"could not write the Delta table {path}: {_first_line(exc)}") from exc


def write_raw_tables(lake: Lake, root: Path) -> list[TableVersion]:
    """Every lake table as `raw_<table>`, brought up to date with the lake (see the module's docstring)."""
    return [write_raw_table(lake, table, root) for table in lake.tables()]


def write_raw_table(lake: Lake, table: str, root: Path) -> TableVersion:
    """`raw_<table>` brought up to date: the changed years of a dated table, an undated table when it changed."""
    path = root / f"{RAW_PREFIX}{table}"
    wanted = _lake_hashes(lake, table)
    stored = _stored_hashes(path)
    current = version_of(path)
    if current is not None and stored == wanted and wanted:
        return current  # the lake did not change since this version was written
    try:
        if not is_partitioned(table):
            return _commit(path, lake.read(table), wanted, partition_by=None, years=None)
        changed = sorted(y for y in wanted if stored is None or stored.get(y) != wanted[y])
        dropped = stored is not None and bool(set(stored) - set(wanted))
        if current is None or stored is None or dropped or not changed or _WHOLE in wanted:
            return _commit(path, _with_year(lake.scan(table)).collect(), wanted, partition_by=[YEAR], years=None)
        rows = _with_year(lake.scan(table)).filter(pl.col(YEAR).is_in([int(y) for y in changed])).collect()
        try:
            return _commit(path, rows, wanted, partition_by=[YEAR], years=changed)
        except _FAILURES:
            # The lake's columns changed (a new column, a wider type): the whole table under the new schema.
            return _commit(path, _with_year(lake.scan(table)).collect(), wanted, partition_by=[YEAR], years=None)
    except _FAILURES as exc:
        raise LakeError(f"could not write the Delta table {path}: {_first_line(exc)}") from exc


def _with_year(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.col("date").dt.year().cast(pl.Int32).alias(YEAR))


def _commit(
    path: Path,
    frame: pl.DataFrame,
    hashes: Mapping[str, str],
    *,
    partition_by: list[str] | None,
    years: list[str] | None,
) -> TableVersion:
    """One overwrite commit: of the whole table (`years` None) or of those years only, the hashes in its metadata."""
    properties = CommitProperties(custom_metadata={SOURCE_KEY: json.dumps(dict(hashes), sort_keys=True)})
    if years is None:
        write_deltalake(
            str(path),
            frame.to_arrow(),
            mode="overwrite",
            partition_by=partition_by,
            schema_mode="overwrite",
            commit_properties=properties,
        )
    else:
        write_deltalake(
            str(path),
            frame.to_arrow(),
            mode="overwrite",
            partition_by=partition_by,
            predicate=" OR ".join(f"{YEAR} = {int(y)}" for y in years),
            commit_properties=properties,
        )
    return TableVersion(path.name, path, DeltaTable(str(path)).version(), written=True)


def _lake_hashes(lake: Lake, table: str) -> dict[str, str]:
    """The table's content per year (a hash of its months' hashes), or {"all": hash} for an undated table.

    Empty when the manifest has no hashes for it: the table is then rewritten every time.
    """
    info: Mapping[str, Any] = lake.table_info(table) or {}
    partitions: Mapping[str, Mapping[str, Any]] = info.get("partitions") or {}
    months = [f.stem for f in lake.files(table)] if is_partitioned(table) else []
    if months and all(partitions.get(m, {}).get("content_hash") for m in months):
        years: dict[str, list[str]] = {}
        for month in sorted(months):
            years.setdefault(month[:4], []).append(f"{month}:{partitions[month]['content_hash']}")
        return {y: hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32] for y, parts in years.items()}
    whole = info.get("content_hash")
    return {_WHOLE: str(whole)} if whole and not is_partitioned(table) else {}


def _stored_hashes(path: Path) -> dict[str, str] | None:
    """The lake hashes the current version was written from (None: unknown, e.g. written by something else)."""
    if not DeltaTable.is_deltatable(str(path)):
        return None
    try:
        last = DeltaTable(str(path)).history(1)
    except _FAILURES:
        return None
    text = last[0].get(SOURCE_KEY) if last else None
    if not isinstance(text, str):
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


def current_files(path: Path, *, version: int | None = None) -> list[str]:
    """The data files of the table's current version (or `version`): what a reader of that version reads."""
    try:
        return list(DeltaTable(str(path), version=version).file_uris())
    except _FAILURES as exc:
        raise LakeError(f"{path} is not a readable Delta table: {_first_line(exc)}") from exc


def read_spark(session: SparkSession, path: Path, *, version: int | None = None) -> DataFrame:
    """The table's current version (or `version`) as a Spark frame, from its file list (no Delta jars needed).

    `basePath` lets Spark take the partition columns (`year=2024/`) from the
    files' folders, as a Delta reader would; files of other versions are not read.
    """
    files = current_files(path, version=version)
    if not files:
        raise LakeError(f"the Delta table {path} has no data files at this version")
    return session.read.option("basePath", str(path.resolve())).parquet(*files)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__
