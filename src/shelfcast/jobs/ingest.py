"""The ingest job: a source's files -> validated canonical tables in the lake + quarantine.

Every row read ends up kept, quarantined (with its rule, file and line) or
merged into another row with the same key; the job checks that the counts
add up for every part and fails loudly if they do not.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.data.readers import LINE
from shelfcast.data.sources.base import RawPart, Source, SourceData
from shelfcast.data.tables import (
    GapReport,
    check_references,
    detect_frequency,
    merge_duplicates,
    series_gaps,
)
from shelfcast.data.validate import (
    PART,
    DateBounds,
    clean_rows,
    detect_date_formats,
    flag_rows,
    quarantine_rows,
)
from shelfcast.errors import AccountingError
from shelfcast.io.lake import QUARANTINE, Lake, TableInfo, describe
from shelfcast.schemas import QUARANTINE_SCHEMA, SCHEMAS, TableName
from shelfcast.settings import Settings

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
_MASTERS: tuple[TableName, ...] = ("stores", "items")


@dataclass(frozen=True)
class PartReport:
    """Row accounting for one input part: read == kept + quarantined + merged."""

    source: str
    table: str
    read: int
    kept: int
    quarantined: int
    merged: int
    derived: bool = False
    stored: bool = True


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did, for the CLI summary and the manifest."""

    source: str
    path: str
    parts: list[PartReport]
    tables: dict[str, TableInfo]
    quarantine_by_rule: dict[str, int]
    gaps: dict[str, GapReport]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    derived_tables: tuple[str, ...] = field(default=())

    def total(self, what: str, *, derived: bool = False) -> int:
        return sum(getattr(p, what) for p in self.parts if p.derived == derived)


@dataclass
class _Flagged:
    part: RawPart
    index: int
    clean: pl.DataFrame
    quarantine: pl.DataFrame
    read: int


def _flag_part(part: RawPart, index: int, *, bounds: DateBounds, staging: Path) -> _Flagged:
    schema = SCHEMAS[part.table]
    formats = detect_date_formats(part.frame, schema, part.date_format)
    flagged = flag_rows(part.frame, schema, date_formats=formats, bounds=bounds)
    # Stage to Parquet with the streaming engine so a CSV larger than memory
    # is parsed in batches; only typed, checked rows are collected after.
    staged = staging / f"part-{index}.parquet"
    flagged.frame.sink_parquet(staged)
    flagged = replace(flagged, frame=pl.scan_parquet(staged))
    read = flagged.frame.select(pl.len()).collect().item()
    clean = clean_rows(flagged).with_columns(pl.lit(index).alias(PART)).collect()
    quarantine = quarantine_rows(flagged, part.table, part.source).collect()
    return _Flagged(part, index, clean, quarantine, read)


def _bounds(settings: Settings, today: dt.date) -> DateBounds:
    return DateBounds(settings.min_date, settings.max_date, today + dt.timedelta(days=settings.future_days))


class _Ingest:
    """State of one ingest run (kept in one place so the steps stay small)."""

    def __init__(self, lake: Lake, settings: Settings, today: dt.date, staging: Path, progress: Progress | None):
        self.lake = lake
        self.settings = settings
        self.bounds = _bounds(settings, today)
        self.staging = staging
        self.progress = progress
        self.flagged: list[_Flagged] = []
        self.tables: dict[TableName, pl.DataFrame] = {}
        self.quarantine: list[pl.DataFrame] = []
        self.merged: Counter[int] = Counter()
        self.late_quarantined: Counter[int] = Counter()

    def flag(self, parts: list[RawPart], total: int) -> list[_Flagged]:
        out = []
        for part in parts:
            index = len(self.flagged)
            if self.progress:
                self.progress(f"{part.table} <- {Path(part.source).name}", index, total)
            log.info("validating %s -> %s", part.source, part.table)
            flagged = _flag_part(part, index, bounds=self.bounds, staging=self.staging)
            self.flagged.append(flagged)
            self.quarantine.append(flagged.quarantine)
            out.append(flagged)
        return out

    @property
    def sources(self) -> dict[int, str]:
        return {f.index: f.part.source for f in self.flagged}

    def known_ids(self, master: TableName) -> pl.Series | None:
        """Ids of a master table given by a source (this ingest or the lake); None when only derived."""
        column = "store_id" if master == "stores" else "item_id"
        ids: list[pl.Series] = []
        if master in self.tables:
            ids.append(self.tables[master][column])
        info = self.lake.table_info(master)
        if info is not None and info.get("origin") == "source":
            ids.append(self.lake.scan(master).select(column).collect().to_series())
        return pl.concat(ids).unique() if ids else None

    def settle(self, table: TableName, flagged: list[_Flagged]) -> None:
        """References, then duplicate keys, for all parts of one table."""
        # A master is not checked against itself, but its unstored parts (employees)
        # only reference it; settle_all hands them over after the stored ones.
        references_only = not any(f.part.stored for f in flagged)
        stores = None if table == "stores" and not references_only else self.known_ids("stores")
        items = None if table in ("items", "stores") and not references_only else self.known_ids("items")
        frames = []
        for f in flagged:
            ok, bad = check_references(f.clean, table=table, stores=stores, items=items, sources=self.sources)
            self.late_quarantined[f.index] += bad.height
            self.quarantine.append(bad)
            if f.part.stored:
                frames.append(ok)
        if not frames:
            return
        if table in self.tables:
            frames.insert(0, self.tables[table])
        rows = pl.concat(frames, how="diagonal_relaxed")
        aggregate = frozenset(f.index for f in flagged if f.part.aggregate)
        result = merge_duplicates(
            rows, SCHEMAS[table], policy=self.settings.duplicates, sources=self.sources, aggregate_parts=aggregate
        )
        self.merged.update(result.merged)
        self.late_quarantined.update(result.quarantined)
        self.quarantine.append(result.quarantine)
        self.tables[table] = result.table

    def settle_all(self, flagged: list[_Flagged]) -> None:
        order = [*_MASTERS, *(t for t in SCHEMAS if t not in _MASTERS)]
        for table in order:
            group = [f for f in flagged if f.part.table == table]
            for subset in ([f for f in group if f.part.stored], [f for f in group if not f.part.stored]):
                if subset:
                    self.settle(table, subset)

    def reports(self) -> list[PartReport]:
        reports = []
        kept_by_part = Counter[int]()
        for frame in self.tables.values():
            if frame.height:
                counts = frame.group_by(PART).len()
                kept_by_part.update(dict(zip(counts[PART].to_list(), counts["len"].to_list(), strict=True)))
        for f in self.flagged:
            quarantined = f.quarantine.height + self.late_quarantined[f.index]
            merged = self.merged[f.index]
            kept = kept_by_part[f.index] if f.part.stored else f.read - quarantined
            report = PartReport(
                f.part.source, f.part.table, f.read, kept, quarantined, merged, f.part.derived, f.part.stored
            )
            if report.read != report.kept + report.quarantined + report.merged:
                raise AccountingError(
                    f"{f.part.source} -> {f.part.table}: read {report.read} != kept {report.kept} + "
                    f"quarantined {report.quarantined} + merged {report.merged}"
                )
            reports.append(report)
        return reports


_ID_COLUMNS: dict[TableName, dict[TableName, tuple[str, ...]]] = {
    "stores": {"sales": ("store_id",), "inventory": ("store_id",), "movements": ("from_store_id", "to_store_id")},
    "items": {"sales": ("item_id",), "inventory": ("item_id",), "movements": ("item_id",)},
}


def _derive_masters(tables: Mapping[TableName, pl.DataFrame], lake: Lake) -> dict[TableName, pl.DataFrame]:
    """Store and item masters built from the facts' ids when no source provides them."""
    out: dict[TableName, pl.DataFrame] = {}
    for master, facts in _ID_COLUMNS.items():
        column = SCHEMAS[master].keys[0]
        info = lake.table_info(master)
        if master in tables or (info is not None and info.get("origin") == "source"):
            continue
        ids = [tables[t][c] for t, cols in facts.items() if t in tables for c in cols]
        if lake.has(master):
            ids.append(lake.read(master)[column])
        if ids:
            out[master] = pl.concat([s.alias(column) for s in ids]).drop_nulls().unique().sort().to_frame()
    return out


def _exogenous_roles(lake: Lake, table: pl.DataFrame, data: SourceData) -> dict[str, str]:
    """Roles of the covariate columns: the source's word, else what the lake knew, else past-only.

    Past-only is the safe default: a covariate wrongly marked known in advance
    would leak future information into forecasts.
    """
    info = lake.table_info("exogenous") or {}
    known: dict[str, str] = info.get("column_roles") or {}
    declared = SCHEMAS["exogenous"].column_names
    return {c: data.exogenous_roles.get(c, known.get(c, "past_only")) for c in table.columns if c not in declared}


def run_ingest(
    source: Source,
    path: Path,
    *,
    settings: Settings,
    today: dt.date,
    now: dt.datetime,
    progress: Progress | None = None,
) -> IngestReport:
    """Read `path` with `source`, validate, and upsert the canonical tables into the workspace lake."""
    started = time.perf_counter()
    lake = Lake(settings.workspace)
    data: SourceData = source.load(Path(path))
    staging = settings.workspace / "tmp" / f"ingest-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        run = _Ingest(lake, settings, today, staging, progress)
        run.settle_all(run.flag(data.parts, len(data.parts)))
        if data.derive is not None:
            clean = {t: f.drop(LINE, PART) for t, f in run.tables.items()}
            derived = data.derive(clean)
            run.settle_all(run.flag(derived, len(derived)))
        parts = run.reports()
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    final = {t: f.drop(LINE, PART) for t, f in run.tables.items()}
    masters = _derive_masters(final, lake)
    frequency = data.frequency or (detect_frequency(final["sales"]["date"]) if "sales" in final else None)
    infos: dict[str, TableInfo] = {}
    gaps: dict[str, GapReport] = {}
    for table, frame in [*final.items(), *masters.items()]:
        stored = lake.upsert(table, frame)
        roles = _exogenous_roles(lake, stored, data) if table == "exogenous" else None
        infos[table] = describe(
            stored,
            sorted_by_unique_key=True,
            frequency=frequency if SCHEMAS[table].has_date else None,
            origin="derived" if table in masters else "source",
            column_roles=roles,
        )
        if table in ("sales", "inventory"):
            gaps[table] = series_gaps(stored, frequency or "D")
    quarantine = pl.concat([q.cast(QUARANTINE_SCHEMA) for q in run.quarantine])  # type: ignore[arg-type]
    all_quarantine = lake.replace_quarantine([p.source for p in parts], quarantine)
    by_rule = dict(Counter(r for rules in quarantine["rule"].to_list() for r in rules.split(";")).most_common())
    report = IngestReport(
        source=type(source).name,
        path=str(path),
        parts=parts,
        tables=infos,
        quarantine_by_rule=by_rule,
        gaps=gaps,
        notes=data.notes,
        seconds=time.perf_counter() - started,
        derived_tables=tuple(masters),
    )
    entry: dict[str, Any] = {
        "at": now.isoformat(timespec="seconds"),
        "source": report.source,
        "path": report.path,
        "parts": [asdict(p) for p in parts],
        "quarantine_by_rule": by_rule,
    }
    lake.update_manifest(infos, ingest=entry, quarantine_rows=all_quarantine.height, now=now)
    log.info("ingest done in %.1fs", report.seconds)
    return report


__all__ = ["QUARANTINE", "IngestReport", "PartReport", "run_ingest"]
