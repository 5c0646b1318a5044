"""The ingest job: a source's files -> validated canonical tables in the lake + quarantine.

Every row read ends up kept, quarantined (with its rule, file and line) or
merged into another row with the same key; the job checks that the counts
add up for every part and fails loudly if they do not.

One ingest writes a workspace at a time (the workspace lock); each cleans
what a crashed one left (its scratch folder, temporary files) and rebuilds
the manifest from the files when an earlier ingest was interrupted.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.data.readers import LINE
from shelfcast.data.sources.base import Source, SourceData
from shelfcast.data.tables import GapReport, detect_frequency, series_gaps
from shelfcast.data.validate import PART, DateBounds
from shelfcast.errors import AccountingError, LakeError
from shelfcast.io.files import disk_full_message, is_disk_full, remove_temporaries
from shelfcast.io.lake import QUARANTINE, Lake, TableInfo
from shelfcast.io.workspace_lock import workspace_lock
from shelfcast.jobs.ingest.steps import Progress, Settler
from shelfcast.schemas import QUARANTINE_SCHEMA, SCHEMAS, TableName
from shelfcast.settings import Settings

log = logging.getLogger(__name__)
Notice = Callable[[str], None]
STAGING_PREFIX = "ingest-"


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


def _reports(settler: Settler) -> list[PartReport]:
    kept_by_part = settler.kept_by_part()
    reports = []
    for s in settler.staged:
        quarantined = s.quarantine.height + settler.late_quarantined[s.index]
        merged = settler.merged[s.index]
        kept = kept_by_part[s.index] if s.part.stored else s.read - quarantined
        report = PartReport(
            s.part.source, s.part.table, s.read, kept, quarantined, merged, s.part.derived, s.part.stored
        )
        if report.read != report.kept + report.quarantined + report.merged:
            raise AccountingError(
                f"{s.part.source} -> {s.part.table}: read {report.read} != kept {report.kept} + "
                f"quarantined {report.quarantined} + merged {report.merged}"
            )
        reports.append(report)
    return reports


_ID_COLUMNS: dict[TableName, dict[TableName, tuple[str, ...]]] = {
    "stores": {"sales": ("store_id",), "inventory": ("store_id",), "movements": ("from_store_id", "to_store_id")},
    "items": {"sales": ("item_id",), "inventory": ("item_id",), "movements": ("item_id",)},
}


def _derive_masters(lake: Lake, given: set[TableName]) -> dict[TableName, pl.DataFrame]:
    """Store and item masters built from the stored facts' ids when no source provides them."""
    out: dict[TableName, pl.DataFrame] = {}
    for master, facts in _ID_COLUMNS.items():
        column = SCHEMAS[master].keys[0]
        info = lake.table_info(master)
        if master in given or (info is not None and info.get("origin") == "source"):
            continue
        ids = [lake.scan(t).select(pl.col(c).alias(column)) for t, cols in facts.items() if lake.has(t) for c in cols]
        if ids:
            frame = pl.concat(ids).drop_nulls().unique().collect(engine="streaming").sort(column)
            out[master] = frame
    return out


def _exogenous_roles(lake: Lake, data: SourceData) -> dict[str, str]:
    """Roles of the covariate columns: the source's word, else what the lake knew, else past-only.

    Past-only is the safe default: a covariate wrongly marked known in advance
    would leak future information into forecasts.
    """
    info = lake.table_info("exogenous") or {}
    known: dict[str, str] = info.get("column_roles") or {}
    declared = SCHEMAS["exogenous"].column_names
    columns = lake.scan("exogenous").collect_schema()
    return {c: data.exogenous_roles.get(c, known.get(c, "past_only")) for c in columns if c not in declared}


def _store(settler: Settler, lake: Lake, progress: Progress | None) -> dict[TableName, dict[str, dict[str, Any]]]:
    """Upsert the settled tables into the lake; returns the partitions written per table."""
    written: dict[TableName, dict[str, dict[str, Any]]] = {}
    for table in settler.tables():
        if table in settler.masters:
            lake.upsert(table, settler.masters[table].drop(LINE, PART))
            written[table] = {}
            continue
        months = settler.settled_months(table)
        written[table] = {}
        for i, (month, frame) in enumerate(settler.iter_settled(table)):
            if progress:
                progress(f"writing {table} {month}", i, len(months))
            written[table][month] = lake.upsert_month(table, month, frame.drop(LINE, PART))
    return written


@dataclass(frozen=True)
class _Stored:
    """What staging and storing a source's parts left: the accounting, the partitions written, the rejects."""

    parts: list[PartReport]
    written: dict[TableName, dict[str, dict[str, Any]]]
    quarantine: list[pl.DataFrame]  # one frame per staged part
    notes: tuple[str, ...]
    interrupted: dict[str, Any] | None  # the marker of an earlier ingest that never finished


def _stage_and_store(
    lake: Lake,
    data: SourceData,
    *,
    settings: Settings,
    bounds: DateBounds,
    progress: Progress | None,
    about: dict[str, str],
) -> _Stored:
    """Validate the source's parts (and the tables it derives from them), check the row accounting, upsert.

    The staged files live in a scratch folder of the workspace, removed afterwards even on failure. The lake's
    in-progress marker is written before the first upsert (the job removes it after the manifest).
    """
    staging = settings.workspace / "tmp" / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        settler = Settler(lake, settings.duplicates, staging, progress)
        settler.stage(data.parts, bounds=bounds, staging=staging)
        notes = data.notes
        if data.derive is not None:
            clean = {t: settler.collect(t).drop(LINE, PART) for t in settler.tables()}
            derived = data.derive(clean)
            notes = (*notes, *derived.notes)
            settler.stage(derived.parts, bounds=bounds, staging=staging)
        parts = _reports(settler)
        interrupted = lake.begin_writing(**about)
        written = _store(settler, lake, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _Stored(parts, written, settler.quarantine, notes, interrupted)


def _clean_orphans(settings: Settings) -> None:
    """Remove what crashed ingests left: scratch folders and temporary files (only call holding the lock)."""
    scratch = settings.workspace / "tmp"
    for folder in scratch.glob(f"{STAGING_PREFIX}*") if scratch.is_dir() else ():
        log.info("removing %s, left by an ingest that did not finish", folder)
        shutil.rmtree(folder, ignore_errors=True)
    remove_temporaries(settings.workspace / "lake")


def _frequency(lake: Lake, data: SourceData) -> str | None:
    """The source's frequency, else the one the stored sales show."""
    if data.frequency is None and lake.has("sales"):
        return detect_frequency(lake.scan("sales").select(pl.col("date").unique()).collect().to_series())
    return data.frequency


def _describe_tables(
    lake: Lake,
    data: SourceData,
    written: dict[TableName, dict[str, dict[str, Any]]],
    *,
    derived: set[TableName],
    frequency: str | None,
    reconciled: frozenset[str] = frozenset(),
) -> tuple[dict[str, TableInfo], dict[str, GapReport]]:
    """The manifest entry of every table written, and the series gaps of sales and inventory."""
    infos: dict[str, TableInfo] = {}
    gaps: dict[str, GapReport] = {}
    before: dict[str, Any] = lake.manifest()["tables"]  # read once: each table's entry from the last ingest
    for table, partitions in written.items():
        previous: dict[str, Any] = before.get(table) or {}
        kept = previous.get("origin") if table in reconciled else None
        infos[table] = lake.describe(
            table,
            partitions=partitions,
            frequency=frequency if SCHEMAS[table].has_date else None,
            origin=kept or ("derived" if table in derived else "source"),
            column_roles=_exogenous_roles(lake, data) if table == "exogenous" else None,
            period_anchor=data.period_anchor or previous.get("period_anchor") or "start",
        )
        if table in ("sales", "inventory"):
            gaps[table] = series_gaps(lake.scan(table), frequency or "D")
    return infos, gaps


def _rule_counts(quarantine: pl.DataFrame) -> dict[str, int]:
    """Quarantined rows per rule, most frequent first (a row breaking several counts for each)."""
    return dict(Counter(r for rules in quarantine["rule"].to_list() for r in rules.split(";")).most_common())


def run_ingest(
    source: Source,
    path: Path,
    *,
    settings: Settings,
    today: dt.date,
    now: dt.datetime,
    progress: Progress | None = None,
    notice: Notice | None = None,
) -> IngestReport:
    """Read `path` with `source`, validate, and upsert the canonical tables into the workspace lake.

    Holds the workspace lock throughout (waiting up to `settings.lock_timeout`, with one `notice` line); a full
    disk is one LakeError line.
    """
    data: SourceData = source.load(Path(path))
    with workspace_lock(settings.workspace, timeout=settings.lock_timeout, on_wait=notice):
        try:
            return _ingest_locked(
                source, data, path, settings=settings, today=today, now=now, progress=progress, notice=notice
            )
        except Exception as exc:
            if is_disk_full(exc):
                raise LakeError(disk_full_message(settings.workspace)) from None
            raise


def _ingest_locked(
    source: Source,
    data: SourceData,
    path: Path,
    *,
    settings: Settings,
    today: dt.date,
    now: dt.datetime,
    progress: Progress | None,
    notice: Notice | None,
) -> IngestReport:
    started = time.perf_counter()
    lake = Lake(settings.workspace)
    _clean_orphans(settings)
    aside = lake.discard_damaged_manifest()
    if aside is not None and notice:
        notice(f"the lake's manifest was damaged (kept as {aside.name}); rebuilding it from the files")
    bounds = DateBounds(settings.min_date, settings.max_date, today + dt.timedelta(days=settings.future_days))
    about = {"source": type(source).name, "path": str(path), "started": now.isoformat(timespec="seconds")}
    stored = _stage_and_store(lake, data, settings=settings, bounds=bounds, progress=progress, about=about)
    if stored.interrupted is not None and notice:
        notice(
            f"an earlier ingest ({stored.interrupted.get('source', '?')} {stored.interrupted.get('path', '?')}) was "
            "interrupted; its rows may be partly stored (re-run it); the manifest is rebuilt from the files"
        )
    written = stored.written
    masters = _derive_masters(lake, set(written))
    for table, frame in masters.items():
        lake.upsert(table, frame)
        written[table] = {}
    reconciled: frozenset[str] = frozenset()
    if stored.interrupted is not None or aside is not None:
        # Describe every table again, not only those written: the manifest must match the files.
        reconciled = frozenset(t for t in lake.tables() if t not in written)
        written.update({t: {} for t in reconciled})  # type: ignore[misc]
    infos, gaps = _describe_tables(
        lake, data, written, derived=set(masters), frequency=_frequency(lake, data), reconciled=reconciled
    )
    quarantine = pl.concat([q.cast(QUARANTINE_SCHEMA) for q in stored.quarantine])  # type: ignore[arg-type]
    all_quarantine = lake.replace_quarantine([p.source for p in stored.parts], quarantine)
    report = IngestReport(
        source=type(source).name,
        path=str(path),
        parts=stored.parts,
        tables=infos,
        quarantine_by_rule=_rule_counts(quarantine),
        gaps=gaps,
        notes=stored.notes,
        seconds=time.perf_counter() - started,
        derived_tables=tuple(masters),
    )
    entry: dict[str, Any] = {
        "at": now.isoformat(timespec="seconds"),
        "source": report.source,
        "path": report.path,
        "parts": [asdict(p) for p in report.parts],
        "quarantine_by_rule": report.quarantine_by_rule,
    }
    lake.update_manifest(infos, ingest=entry, quarantine_rows=all_quarantine.height, now=now)
    lake.end_writing()
    log.info("ingest done in %.1fs", report.seconds)
    return report


__all__ = ["QUARANTINE", "IngestReport", "PartReport", "run_ingest"]
