"""Live sales into the lake: the stream job stages the online store's closed days, the ingest job writes them.

`compact` composes the two jobs (a job never imports another): `jobs.stream.plan_compaction` stages, as canonical
Parquet files (one folder per day under `<workspace>/tmp/live-compact`), the closed days whose rows changed since
they were last compacted; `jobs.ingest.run_ingest` reads them with the canonical adapter, through the same
validation, quarantine, lock, in-progress marker and manifest as `shelfcast ingest`; then
`jobs.stream.finish_compaction` records each day's digest and the watermark (`compacted_through`) in the store.

Idempotent: rows are upserted by key (a day written again replaces its rows, never adds to them), each day's
quarantine rows are named by its staged files (a day written again replaces them), and the digests are recorded
only after the lake's manifest: a run killed at any point leaves the days unrecorded, and the next run writes the
same rows again. A day unchanged since it was compacted is not written; a late event changes its day's digest, so
the next compaction writes that day again.

`consume_and_compact` is the consumer with compaction every so many seconds between batches (and once at the
end); `compact_if_bound` is the pipeline's step: it compacts only into the workspace the store was seeded from or
compacted into, and says why it did nothing otherwise (Redis unreachable, no store, nothing closed).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from shelfcast.data.sources.base import SourceData
from shelfcast.data.sources.canonical import CanonicalSource
from shelfcast.errors import ShelfcastError, StreamError
from shelfcast.jobs import stream as js
from shelfcast.jobs.ingest import IngestReport, run_ingest
from shelfcast.settings import Settings

log = logging.getLogger(__name__)


class StagedDays:
    """The canonical adapter over every day folder of a compaction's staging folder (each file its own part, so
    the quarantine names a rejected row's day)."""

    name: ClassVar[str] = "live"

    def load(self, path: Path) -> SourceData:
        parts = []
        for folder in sorted(p for p in Path(path).iterdir() if p.is_dir()):
            parts += CanonicalSource().load(folder).parts
        return SourceData(parts=parts, frequency="D")


@dataclass(frozen=True)
class CompactReport:
    """What a compaction did: the closed days considered (`first..through`), the days written (changed since
    their last compaction), per table the rows written (kept) and the days with rows, the rows quarantined by
    rule, the watermark after, and why nothing was written (`skipped`)."""

    first: dt.date | None
    through: dt.date | None
    days: tuple[dt.date, ...]
    rows: dict[str, int]
    table_days: dict[str, int]
    quarantined: int
    quarantine_by_rule: dict[str, int]
    compacted_through: dt.date | None
    seconds: float
    skipped: str | None = None
    ingest: IngestReport | None = field(default=None, repr=False)


def compact(
    settings: Settings,
    *,
    through: dt.date | None = None,
    every_day: bool = False,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
    notice: Callable[[str], None] | None = None,
) -> CompactReport:
    """Write the online store's closed days (up to `through`, default the day before its latest) that changed
    since they were last compacted (every one with `every_day`) into the lake."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    with js.compaction_lock(settings):
        plan = js.plan_compaction(settings, through=through, every_day=every_day)
        report = None
        if plan.days:
            report = run_ingest(
                StagedDays(),
                plan.staging,
                settings=settings,
                today=today or dt.date.today(),
                now=now,
                notice=notice,
            )
        state = (
            js.finish_compaction(settings, plan, now=now) if plan.through is not None else js.compact_state(settings)
        )
    rows: dict[str, int] = dict.fromkeys(js.COMPACT_TABLES, 0)
    days: dict[str, set[str]] = {t: set() for t in js.COMPACT_TABLES}
    quarantined = 0
    for part in report.parts if report else ():
        rows[part.table] = rows.get(part.table, 0) + part.kept
        quarantined += part.quarantined
        if part.kept:
            days.setdefault(part.table, set()).add(Path(part.source).parent.name)
    result = CompactReport(
        first=plan.first,
        through=plan.through,
        days=plan.days,
        rows=rows,
        table_days={t: len(d) for t, d in days.items()},
        quarantined=quarantined,
        quarantine_by_rule=dict(report.quarantine_by_rule) if report else {},
        compacted_through=state.compacted_through,
        seconds=time.perf_counter() - started,
        skipped=plan.skipped,
        ingest=report,
    )
    log.info("compaction: %s", describe(result))
    return result


def describe(report: CompactReport) -> str:
    """One line for logs and the CLI."""
    if report.skipped:
        return f"nothing written: {report.skipped}"
    tables = ", ".join(f"{t} {report.rows[t]:,} rows / {report.table_days[t]} days" for t in js.COMPACT_TABLES)
    rules = ", ".join(f"{r} {n}" for r, n in report.quarantine_by_rule.items())
    quarantine = f"; quarantined {report.quarantined:,}" + (f" ({rules})" if rules else "")
    n = len(report.days)
    return (
        f"{n} day{'' if n == 1 else 's'} written ({report.days[0]}..{report.days[-1]}): {tables}{quarantine}; "
        f"compacted through {report.compacted_through}"
    )


def compact_if_bound(settings: Settings, *, today: dt.date | None = None, now: dt.datetime | None = None) -> str:
    """The pipeline's step: compact when the live store is reachable and bound to this workspace (seeded from it
    or compacted into it before); otherwise do nothing. Returns what happened, in one line."""
    try:
        bound = js.bound_workspace(settings)
    except StreamError as exc:
        return f"skipped: the live store is unreachable ({exc})"
    here = str(settings.workspace.resolve())
    if bound is None:
        return (
            f"skipped: the live store (prefix {settings.live.prefix}) was never seeded from or compacted into this "
            "workspace (run `shelfcast stream seed` or `shelfcast stream compact` once)"
        )
    if bound != here:
        return f"skipped: the live store (prefix {settings.live.prefix}) belongs to the workspace {bound}"
    report = compact(settings, today=today, now=now)
    return f"skipped: {report.skipped}" if report.skipped else describe(report)


def consume_and_compact(
    settings: Settings,
    *,
    every: float,
    consumer: str | None = None,
    until_idle: bool = False,
    max_events: int | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    today: dt.date | None = None,
) -> tuple[js.ConsumeReport, list[CompactReport]]:
    """The consumer, compacting the closed days when `every` seconds passed since the last compaction (checked
    after each batch applied, so between batches), and once more when it stops. A compaction failing between
    batches (the lake locked too long, a full disk) is logged and tried again `every` seconds later, the worker
    going on; the last one raises."""
    compactions: list[CompactReport] = []
    last = time.monotonic()

    def after_batch(_: js.ConsumeReport) -> None:
        nonlocal last
        if time.monotonic() - last >= every:
            try:
                compactions.append(compact(settings, today=today))
            except ShelfcastError as exc:  # the lake busy or failing: keep applying events, try again next time
                log.warning("compaction failed, retried in %g s: %s", every, exc)
            last = time.monotonic()

    consumed = js.consume(
        settings,
        consumer=consumer,
        until_idle=until_idle,
        max_events=max_events,
        stop=stop,
        handle_signals=handle_signals,
        today=today,
        on_batch=after_batch,
    )
    compactions.append(compact(settings, today=today))
    return consumed, compactions
