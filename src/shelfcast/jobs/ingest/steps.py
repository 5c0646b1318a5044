"""Steps of an ingest: stage each part, then settle each table one month at a time.

Staging parses and flags a part with Polars' streaming engine and writes its
clean rows to Parquet partitioned by month, so no step needs a whole input
in memory. Settling checks references and resolves duplicate keys per month
(every key holds a date, so duplicates never cross months) and leaves one
settled file per table and month, which the job then upserts into the lake.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from shelfcast.data.readers import LINE
from shelfcast.data.sources.base import RawPart
from shelfcast.data.tables import check_references, merge_duplicates
from shelfcast.data.validate import PART, DateBounds, clean_rows, data_columns, detect_date_formats, flag_rows
from shelfcast.data.validate import quarantine_rows as flagged_quarantine
from shelfcast.io.lake import Lake, month_of
from shelfcast.schemas import SCHEMAS, TableName
from shelfcast.settings import DuplicatePolicy

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
MASTERS: tuple[TableName, ...] = ("stores", "items")
_MONTH = "month"


@dataclass
class Staged:
    """One part after staging: its counts, its quarantine, and where its clean rows are."""

    part: RawPart
    index: int
    read: int
    quarantine: pl.DataFrame
    collapsed: int = 0
    clean: pl.DataFrame | None = None  # undated tables, small enough to hold
    months_dir: Path | None = None  # dated tables: <dir>/month=YYYY-MM/*.parquet

    def months(self) -> list[str]:
        if self.months_dir is None or not self.months_dir.exists():
            return []
        return sorted(p.name.removeprefix(f"{_MONTH}=") for p in self.months_dir.iterdir() if p.is_dir())

    def month(self, month: str) -> pl.DataFrame:
        assert self.months_dir is not None
        return pl.read_parquet(self.months_dir / f"{_MONTH}={month}" / "*.parquet", hive_partitioning=False)


def stage_part(part: RawPart, index: int, *, bounds: DateBounds, staging: Path) -> Staged:
    """Parse, flag and split one part into quarantined rows and (month-partitioned) clean rows."""
    schema = SCHEMAS[part.table]
    formats = detect_date_formats(part.frame, schema, part.date_format)
    flagged = flag_rows(part.frame, schema, date_formats=formats, bounds=bounds, dtypes=part.dtypes)
    staged_file = staging / f"part-{index}.parquet"
    flagged.frame.sink_parquet(staged_file)
    flagged = replace(flagged, frame=pl.scan_parquet(staged_file))
    read = flagged.frame.select(pl.len()).collect().item()
    quarantine = flagged_quarantine(flagged, part.table, part.source).collect()
    clean = clean_rows(flagged).with_columns(pl.lit(index, pl.Int32).alias(PART))
    result = Staged(part, index, read, quarantine)
    if schema.has_date:
        result.months_dir = staging / "clean" / f"part-{index}"
        partitioned = pl.PartitionBy(result.months_dir, key={_MONTH: month_of()}, include_key=False)
        clean.sink_parquet(partitioned, mkdir=True)
    elif not schema.additive and part.stored:
        # Masters read from a fact file repeat each row many times: collapse
        # identical rows while still lazy and count them as merged.
        cols = data_columns(clean.collect_schema())
        grouped = clean.group_by(cols).agg(pl.col(LINE).min(), pl.col(PART).first(), pl.len().alias("_n"))
        collected = grouped.collect(engine="streaming").sort(LINE)
        result.collapsed = int((collected["_n"] - 1).sum())
        result.clean = collected.drop("_n")
    else:
        result.clean = clean.collect()
    staged_file.unlink()
    return result


class Settler:
    """Settles staged parts into per-table, per-month files, counting what each part lost."""

    def __init__(self, lake: Lake, policy: DuplicatePolicy, staging: Path, progress: Progress | None = None) -> None:
        self.lake = lake
        self.policy = policy
        self.progress = progress
        self.settled_dir = staging / "settled"
        self.staged: list[Staged] = []
        self.masters: dict[TableName, pl.DataFrame] = {}
        self.quarantine: list[pl.DataFrame] = []
        self.merged: Counter[int] = Counter()
        self.late_quarantined: Counter[int] = Counter()
        self._known: dict[TableName, pl.Series | None] = {}

    @property
    def sources(self) -> dict[int, str]:
        return {s.index: s.part.source for s in self.staged}

    def _say(self, label: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(label, done, total)

    def stage(self, parts: list[RawPart], *, bounds: DateBounds, staging: Path) -> None:
        staged = []
        for i, part in enumerate(parts):
            self._say(f"reading {part.table} <- {Path(part.source).name}", i, len(parts))
            log.info("validating %s -> %s", part.source, part.table)
            s = stage_part(part, len(self.staged), bounds=bounds, staging=staging)
            self.staged.append(s)
            self.quarantine.append(s.quarantine)
            self.merged[s.index] += s.collapsed
            staged.append(s)
        for table in (*MASTERS, *(t for t in SCHEMAS if t not in MASTERS)):
            group = [s for s in staged if s.part.table == table]
            # Stored parts first, so unstored ones (employees) are checked against them.
            for subset in ([s for s in group if s.part.stored], [s for s in group if not s.part.stored]):
                if subset and SCHEMAS[table].has_date:
                    self._settle_dated(table, subset)
                elif subset:
                    self._settle_master(table, subset)

    def known_ids(self, master: TableName) -> pl.Series | None:
        """Ids of a master table given by a source (this ingest or the lake); None when only derived."""
        if master not in self._known:
            self._known[master] = self._load_ids(master)
        return self._known[master]

    def _load_ids(self, master: TableName) -> pl.Series | None:
        column = SCHEMAS[master].keys[0]
        ids: list[pl.Series] = []
        if master in self.masters:
            ids.append(self.masters[master][column])
        info = self.lake.table_info(master)
        if info is not None and info.get("origin") == "source":
            ids.append(self.lake.scan(master).select(column).collect().to_series())
        return pl.concat(ids).unique() if ids else None

    def _references(self, table: TableName, staged: Staged, rows: pl.DataFrame, *, self_check: bool) -> pl.DataFrame:
        stores = self.known_ids("stores") if table != "stores" or self_check else None
        items = self.known_ids("items") if table not in MASTERS or self_check else None
        ok, bad = check_references(rows, table=table, stores=stores, items=items, sources=self.sources)
        self.late_quarantined[staged.index] += bad.height
        self.quarantine.append(bad)
        return ok

    def _merge(self, table: TableName, rows: pl.DataFrame, aggregate: frozenset[int]) -> pl.DataFrame:
        result = merge_duplicates(
            rows, SCHEMAS[table], policy=self.policy, sources=self.sources, aggregate_parts=aggregate
        )
        self.merged.update(result.merged)
        self.late_quarantined.update(result.quarantined)
        self.quarantine.append(result.quarantine)
        return result.table

    def _settle_master(self, table: TableName, staged: list[Staged]) -> None:
        # A master is not checked against itself, but its unstored parts only reference it.
        references_only = not any(s.part.stored for s in staged)
        frames = []
        for s in staged:
            assert s.clean is not None
            ok = self._references(table, s, s.clean, self_check=references_only)
            if s.part.stored:
                frames.append(ok)
        if frames:
            if table in self.masters:
                frames.insert(0, self.masters[table])
            aggregate = frozenset(s.index for s in staged if s.part.aggregate)
            self.masters[table] = self._merge(table, pl.concat(frames, how="diagonal_relaxed"), aggregate)
            self._known.pop(table, None)

    def settled_path(self, table: str, month: str) -> Path:
        return self.settled_dir / table / f"{month}.parquet"

    def settled_months(self, table: str) -> list[str]:
        folder = self.settled_dir / table
        return sorted(p.stem for p in folder.glob("*.parquet")) if folder.exists() else []

    def _settle_dated(self, table: TableName, staged: list[Staged]) -> None:
        aggregate = frozenset(s.index for s in staged if s.part.aggregate)
        months = sorted({m for s in staged for m in s.months()})
        for i, month in enumerate(months):
            self._say(f"checking {table} {month}", i, len(months))
            frames = []
            earlier = self.settled_path(table, month)
            if earlier.exists():  # settled in a first phase (before derived parts)
                frames.append(pl.read_parquet(earlier))
            for s in staged:
                if month in s.months():
                    ok = self._references(table, s, s.month(month), self_check=False)
                    if s.part.stored:
                        frames.append(ok)
            if frames:
                merged = self._merge(table, pl.concat(frames, how="diagonal_relaxed"), aggregate)
                earlier.parent.mkdir(parents=True, exist_ok=True)
                merged.write_parquet(earlier)
        for s in staged:
            if s.months_dir is not None:
                shutil.rmtree(s.months_dir, ignore_errors=True)

    def iter_settled(self, table: TableName) -> Iterator[tuple[str, pl.DataFrame]]:
        for month in self.settled_months(table):
            yield month, pl.read_parquet(self.settled_path(table, month))

    def tables(self) -> list[TableName]:
        dated = [t for t in SCHEMAS if SCHEMAS[t].has_date and self.settled_months(t)]
        return [*self.masters, *dated]

    def collect(self, table: TableName) -> pl.DataFrame:
        """A whole settled table (only for sources whose deriver needs them)."""
        if table in self.masters:
            return self.masters[table]
        return pl.concat([f for _, f in self.iter_settled(table)], how="diagonal_relaxed")

    def kept_by_part(self) -> Counter[int]:
        kept: Counter[int] = Counter()
        frames = [pl.scan_parquet(self.settled_path(t, m)) for t in SCHEMAS for m in self.settled_months(t)]
        lazies = [*frames, *(f.lazy() for f in self.masters.values())]
        for lf in lazies:
            counts = lf.group_by(PART).len().collect()
            kept.update(dict(zip(counts[PART].to_list(), counts["len"].to_list(), strict=True)))
        return kept
