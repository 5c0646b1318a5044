"""The live path's jobs: produce events into the stream, consume them into the online store, report, seed.

- `produce`: events from a file (Parquet or CSV with the wire fields as columns, see `shelfcast.events.FIELDS`)
  or replayed from the lake (`lake_events`), published in chunks with back-pressure and, with `speed`, paced.
- `consume`: one consumer-group worker. It first re-reads its own pending entries (a previous run's, killed
  mid-batch), then claims entries a dead worker left pending longer than `live.claim_idle_ms`, then reads new
  ones; each batch is validated (`parse_entry`) and applied by the store's atomic step, which acknowledges the
  batch's entries in the same step. Invalid entries and entries delivered more than `live.max_deliveries` times go
  to the dead-letter stream (acknowledged). SIGTERM (or SIGINT) lets the current batch finish, then stops.
- `status`: lag and pending per group, dead letters, the store's counters and throughput, its seed stamp.
- `seed`: the online store from the lake, for days up to a date.
- compaction's stream half: `plan_compaction` stages the store's closed days that changed since they were last
  compacted as canonical Parquet (one folder per day), `finish_compaction` records their digests and the
  watermark once the lake holds them; `shelfcast.workflows.live.compact` ingests in between (a job never imports
  another job). Keys beside the store's layout: `P:compacted` (hash: day -> digest of the rows written) and, in
  `P:meta`, `compacted_through`, `compacted_at`, `compacted_into` (the workspace), `seeded_into` (set by `seed`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import redis

from shelfcast.errors import InputFileError, LakeError, StreamError, WorkspaceError
from shelfcast.events import ALL_FIELDS, EVENT_VERSION, EventModel, EventRules, Rejection, parse_entry
from shelfcast.io.lake import Lake
from shelfcast.io.online_store import DeadLetter, OnlineStore, Stats, StoreMeta, as_tables
from shelfcast.io.stream import Backoff, EventStream, GroupInfo, check_reachable, connect, raw_json, retrying
from shelfcast.redact import redact
from shelfcast.settings import Settings

log = logging.getLogger(__name__)

SALE_HOUR, COUNT_TIME, RECEIPT_HOUR = dt.time(12), dt.time(23, 59, 59), dt.time(8)
"""Times of day given to replayed lake rows: sales at noon, receipts at 8:00, the count at the end of the day."""


@dataclass
class Live:
    """The live path's Redis objects for one settings: client, events stream (with its group) and store."""

    url: str
    client: redis.Redis
    stream: EventStream
    store: OnlineStore
    max_deliveries: int


def open_live(settings: Settings, *, check: bool = True) -> Live:
    """Connect to `settings.redis_url` (a `StreamError` naming it when unreachable, with `check`)."""
    cfg = settings.live
    client = connect(settings.redis_url)
    if check:
        check_reachable(client, settings.redis_url)
    stream = EventStream(client, cfg.prefix, cfg.group, max_len=cfg.max_len)
    store = OnlineStore.from_settings(settings, client)
    return Live(settings.redis_url, client, stream, store, cfg.max_deliveries)


# -- produce ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProduceReport:
    """Entries published, seconds taken, and seconds spent waiting for the consumers (back-pressure)."""

    published: int
    seconds: float
    waited: float

    @property
    def events_per_second(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


def lake_events(
    lake: Lake, start: dt.date | None = None, end: dt.date | None = None, *, shift_days: int = 0
) -> pl.DataFrame:
    """The lake's sales, inventory counts and receipts for `start..end` as events (one column per wire field,
    text, null where absent), ordered by time. Ids are deterministic (`sale:STORE:ITEM:DAY`, `stock:...`,
    `receipt:MOVEMENT_ID` or `receipt:STORE:ITEM:DAY:N`), so replaying twice applies once. `shift_days` moves
    every event that many days (re-timing a replay to now)."""
    parts: list[pl.DataFrame] = []

    def dated(table: str) -> pl.LazyFrame | None:
        if not lake.has(table):
            return None
        lf = lake.scan(table)
        if start is not None:
            lf = lf.filter(pl.col("date") >= start)
        if end is not None:
            lf = lf.filter(pl.col("date") <= end)
        return lf.with_columns((pl.col("date") + pl.duration(days=shift_days)).alias("_day"))

    def ids(kind: str) -> pl.Expr:
        day = pl.col("date").cast(pl.String)
        return pl.concat_str([pl.lit(f"{kind}:"), pl.col("store_id"), pl.lit(":"), pl.col("item_id"), pl.lit(":"), day])

    def at(clock: dt.time) -> pl.Expr:
        return pl.col("_day").cast(pl.Datetime("us")) + pl.duration(
            hours=clock.hour, minutes=clock.minute, seconds=clock.second
        )

    def num(name: str, present: Iterable[str]) -> pl.Expr:
        if name not in present:
            return pl.lit(None, pl.String).alias(name)
        return pl.col(name).cast(pl.Float64).map_elements(repr, return_dtype=pl.String).alias(name)

    if (sales := dated("sales")) is not None:
        cols = sales.collect_schema().names()
        promo = pl.col("promo").cast(pl.String) if "promo" in cols else pl.lit(None, pl.String)
        parts.append(
            sales.select(
                pl.lit("sale").alias("type"),
                ids("sale").alias("event_id"),
                at(SALE_HOUR).alias("_time"),
                "store_id",
                "item_id",
                num("units", cols),
                num("price", cols),
                promo.alias("promo"),
            ).collect()
        )
    if (inv := dated("inventory")) is not None and "on_hand" in (cols := inv.collect_schema().names()):
        parts.append(
            inv.filter(pl.col("on_hand").is_not_null())
            .select(
                pl.lit("stock").alias("type"),
                ids("stock").alias("event_id"),
                at(COUNT_TIME).alias("_time"),
                "store_id",
                "item_id",
                num("on_hand", cols),
                num("safety_stock", cols),
            )
            .collect()
        )
    if (mov := dated("movements")) is not None:
        receipts = mov.filter((pl.col("kind") == "receipt") & pl.col("to_store_id").is_not_null()).with_columns(
            pl.col("to_store_id").alias("store_id")
        )
        n = pl.int_range(pl.len()).over("store_id", "item_id", "date").cast(pl.String)
        fallback = pl.concat_str([ids("receipt"), pl.lit(":"), n])
        rid = pl.coalesce(pl.concat_str([pl.lit("receipt:"), pl.col("movement_id")]), fallback)
        parts.append(
            receipts.select(
                pl.lit("receipt").alias("type"),
                rid.alias("event_id"),
                at(RECEIPT_HOUR).alias("_time"),
                "store_id",
                "item_id",
                num("quantity", ["quantity"]),
            ).collect()
        )
    columns = [f for f in ALL_FIELDS if f != "v"]
    if not parts:
        return pl.DataFrame(schema={"v": pl.String, **dict.fromkeys(columns, pl.String)})
    frame = pl.concat(parts, how="diagonal_relaxed").sort("_time", "type", "event_id")
    frame = frame.with_columns(
        pl.lit(str(EVENT_VERSION)).alias("v"), pl.col("_time").dt.strftime("%Y-%m-%dT%H:%M:%S").alias("time")
    )
    return frame.select("v", *[c if c in frame.columns else pl.lit(None, pl.String).alias(c) for c in columns])


def file_events(path: Path) -> pl.DataFrame:
    """Events of a Parquet or CSV file whose columns are wire fields (`v` defaults to the current version);
    values become text as sent. Unknown columns stay, so the consumer dead-letters them as `unexpected_field`."""
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        frame = pl.read_parquet(path) if path.suffix.lower() == ".parquet" else pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputFileError(path, f"cannot read it as Parquet or CSV: {exc}") from None
    texts = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype.is_float():
            texts.append(col.map_elements(repr, return_dtype=pl.String).alias(name))
        elif isinstance(dtype, pl.Datetime | pl.Date):
            texts.append(col.dt.to_string("iso").alias(name))
        else:
            texts.append(col.cast(pl.String).alias(name))
    frame = frame.select(texts)
    if "v" not in frame.columns:
        frame = frame.with_columns(pl.lit(str(EVENT_VERSION)).alias("v"))
    return frame


def entries(frame: pl.DataFrame) -> Iterator[dict[str, str]]:
    """Rows of an events frame as stream entries (null fields left out)."""
    for row in frame.iter_rows(named=True):
        yield {k: v for k, v in row.items() if v is not None and not k.startswith("_")}


def produce(
    settings: Settings,
    events: Iterable[Mapping[str, str]],
    *,
    speed: float | None = None,
    chunk: int = 1000,
    stop: Callable[[], bool] | None = None,
    backoff: Backoff | None = None,
) -> ProduceReport:
    """Publish entries in chunks (one round trip each), waiting while the group lags more than `live.max_lag`.
    With `speed`, entries are paced by their `time` field: `speed` seconds of event time per second (86400: a
    day per second). Redis going away is retried with backoff; a chunk whose reply was lost is sent again, its
    duplicates counted (not applied) by the consumers."""
    live = open_live(settings)
    retrying(live.stream.ensure_group, what="creating the consumer group", url=live.url, backoff=backoff)
    started = time.monotonic()
    waited = 0.0
    published = 0
    first_time: dt.datetime | None = None
    batch: list[Mapping[str, str]] = []

    def flush() -> None:
        nonlocal published, waited
        if not batch:
            return
        waited += retrying(
            lambda: live.stream.wait_for_room(settings.live.max_lag, stop=stop),
            what="waiting for the consumers",
            url=live.url,
            backoff=backoff,
        )
        retrying(lambda: live.stream.add(batch), what="adding events", url=live.url, backoff=backoff)
        published += len(batch)
        batch.clear()

    for entry in events:
        if stop and stop():
            break
        if speed is not None:
            when = _time_of(entry)
            if when is not None:
                first_time = first_time or when
                due = started + (when - first_time).total_seconds() / speed
                ahead = due - time.monotonic()
                if ahead > 0:
                    flush()
                    time.sleep(ahead)
        batch.append(entry)
        if len(batch) >= chunk:
            flush()
    flush()
    return ProduceReport(published, time.monotonic() - started, waited)


def _time_of(entry: Mapping[str, str]) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(entry["time"]).replace(tzinfo=None)
    except (KeyError, ValueError):
        return None


# -- consume ---------------------------------------------------------------------------------------------------


@dataclass
class ConsumeReport:
    """What one worker did: entries read (own pending re-read, claimed and new), applied, duplicates,
    dead-lettered, poison deliveries (left pending), batches, seconds, and why it stopped (`idle`,
    `max_events`, `signal`)."""

    consumer: str
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    poison: int = 0
    reread: int = 0
    claimed: int = 0
    batches: int = 0
    seconds: float = 0.0
    stopped: str = ""
    dead_rules: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


def default_consumer_name() -> str:
    """`HOST-PID`: unique per running worker; a restarted worker that should re-read its pending entries first
    must be given the same name (`--name`)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def consume(
    settings: Settings,
    *,
    consumer: str | None = None,
    until_idle: bool = False,
    max_events: int | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    backoff: Backoff | None = None,
    today: dt.date | None = None,
    on_batch: Callable[[ConsumeReport], None] | None = None,
) -> ConsumeReport:
    """Run one consumer-group worker until `stop` is set, SIGTERM/SIGINT arrives (with `handle_signals`, in the
    main thread), `max_events` entries were handled, or, with `until_idle`, nothing is left to read and nothing
    is pending in the group. Redis going away is retried with backoff (up to `backoff.give_up_after`)."""
    cfg = settings.live
    name = consumer or default_consumer_name()
    live = open_live(settings)
    stop_event = stop or threading.Event()
    report = ConsumeReport(consumer=name)
    previous: dict[signal.Signals, Any] = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop_event.set())

    def call(fn: Callable[[], Any], what: str) -> Any:
        return retrying(fn, what=what, url=live.url, backoff=backoff, stop=stop_event.is_set)

    rules_at = 0.0
    rules = EventRules()

    def current_rules() -> EventRules:
        nonlocal rules_at, rules
        if time.monotonic() - rules_at > 30 or rules_at == 0.0:
            stores = items = None
            if cfg.new_series == "reject":
                stores, items = call(live.store.known_ids, "reading the known series")
            rules = EventRules(
                min_date=settings.min_date,
                max_date=settings.max_date,
                future_days=settings.future_days,
                today=today or dt.date.today(),
                stores=stores,
                items=items,
                new_series=cfg.new_series,
            )
            rules_at = time.monotonic()
        return rules

    started = time.monotonic()
    applier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shelfcast-apply")
    inflight: Future[None] | None = None
    taken = 0

    def settle() -> None:
        nonlocal inflight
        if inflight is not None:
            done, inflight = inflight, None
            done.result()
            if on_batch is not None:
                on_batch(report)

    try:
        call(live.stream.ensure_group, "creating the consumer group")
        if call(live.store.meta, "reading the store's version").layout is None:
            call(live.store.mark_layout, "marking the store's version")
        own_pending = True
        last_claim = 0.0
        claim_every = max(0.05, min(cfg.claim_idle_ms / 2000, 5.0))
        while not stop_event.is_set():
            if max_events is not None and taken >= max_events:
                report.stopped = "max_events"
                break
            count = cfg.batch_size if max_events is None else max(1, min(cfg.batch_size, max_events - taken))
            fresh = False
            if own_pending:
                settle()  # the pending list must not hold a batch being applied
                batch = call(partial(live.stream.read, name, count, pending=True), "re-reading pending entries")
                report.reread += len(batch)
                own_pending = bool(batch)
            else:
                batch = []
                if time.monotonic() - last_claim >= claim_every:
                    last_claim = time.monotonic()
                    batch, gone = call(
                        partial(live.stream.claim_stale, name, cfg.claim_idle_ms, count), "claiming stale entries"
                    )
                    report.claimed += len(batch)
                    if gone:
                        settle()
                        _dead_trimmed(live, gone, name, report, call)
                if not batch:
                    batch = call(partial(live.stream.read, name, count, block_ms=cfg.block_ms), "reading entries")
                    fresh = True
            if not batch:
                settle()
                if own_pending:
                    continue
                if until_idle:
                    info: GroupInfo | None = call(live.stream.group_info, "reading the group")
                    if info is None or (info.pending == 0 and not info.lag):
                        report.stopped = "idle"
                        break
                continue
            taken += len(batch)
            commit = _prepare(live, batch, name, fresh=fresh, rules=current_rules(), report=report, call=call)
            settle()
            inflight = applier.submit(commit)
        settle()
        if not report.stopped:
            report.stopped = "signal"
    except StreamError:
        if not stop_event.is_set():
            raise
        report.stopped = "signal"
    finally:
        applier.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        report.seconds = time.monotonic() - started
    return report


def _prepare(
    live: Live,
    batch: list[tuple[bytes, dict[bytes, bytes] | None]],
    consumer: str,
    *,
    fresh: bool,
    rules: EventRules,
    report: ConsumeReport,
    call: Callable[[Callable[[], Any], str], Any],
) -> Callable[[], None]:
    """Validate a batch (in the caller's thread) and return the step that applies it atomically and counts it
    (run in the applying thread, so the next batch is read and validated while Redis applies this one)."""
    limit = live.max_deliveries
    counts: dict[bytes, int] = (
        {} if fresh else call(lambda: live.stream.deliveries([i for i, _ in batch], consumer), "counting deliveries")
    )
    events: list[tuple[bytes, EventModel]] = []
    dead: list[DeadLetter] = []
    for entry_id, fields in batch:
        eid = entry_id.decode()
        if fields is None:
            dead.append(DeadLetter(eid, "entry_trimmed", "", "the entry left the stream before it was applied", "null"))
            continue
        delivered = counts.get(entry_id, 1)
        if delivered > limit:
            detail = f"delivered {delivered} times without being applied (limit {limit})"
            dead.append(DeadLetter(eid, "delivery_limit", "", detail, raw_json(fields)))
            continue
        parsed = parse_entry(fields, rules)
        if isinstance(parsed, Rejection):
            dead.append(DeadLetter(eid, parsed.rule, parsed.field, parsed.detail, raw_json(fields)))
        else:
            events.append((entry_id, parsed))
    group = live.stream.group

    def commit() -> None:
        result = call(lambda: live.store.apply(events, dead, group=group, consumer=consumer), "applying a batch")
        report.batches += 1
        report.read += result.applied + result.duplicates + result.dead
        report.applied += result.applied
        report.duplicates += result.duplicates
        report.dead += result.dead
        report.poison += len(result.poison)
        for letter in dead:
            report.dead_rules[letter.rule] = report.dead_rules.get(letter.rule, 0) + 1
        if result.poison:
            log.warning("%d entries could not be applied (left pending): %s", len(result.poison), result.poison[:5])

    return commit


def _dead_trimmed(
    live: Live, gone: list[bytes], consumer: str, report: ConsumeReport, call: Callable[[Callable[[], Any], str], Any]
) -> None:
    # XAUTOCLAIM already dropped them from the pending list: recorded as dead letters, nothing to acknowledge.
    letters = [
        DeadLetter(i.decode(), "entry_trimmed", "", "the entry left the stream before it was applied", "null")
        for i in gone
    ]
    result = call(lambda: live.store.apply([], letters, consumer=consumer), "recording trimmed entries")
    report.read += result.dead
    report.dead += result.dead
    report.dead_rules["entry_trimmed"] = report.dead_rules.get("entry_trimmed", 0) + result.dead


# -- status ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompactState:
    """The store's compaction watermark: the last closed day compacted, when, and into which workspace."""

    compacted_through: dt.date | None = None
    compacted_at: dt.datetime | None = None
    workspace: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """The stream (length), its groups (lag, pending per consumer), the dead letters (count and the latest few),
    the store's counters and its meta (layout, seed stamp, last update)."""

    url: str
    prefix: str
    length: int
    groups: list[GroupInfo]
    dead_letters: int
    latest_dead: list[dict[str, Any]]
    stats: Stats
    meta: StoreMeta
    series: int
    compaction: CompactState = field(default_factory=CompactState)


def status(settings: Settings, *, dead_shown: int = 5) -> StatusReport:
    live = open_live(settings)
    dead = live.stream.dead_count()
    latest: Any = live.client.xrevrange(live.stream.dead, count=dead_shown)
    shown = []
    for entry_id, fields in latest:
        row = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        row["id"] = entry_id.decode()
        shown.append(row)
    return StatusReport(
        url=redact(settings.redis_url),
        prefix=settings.live.prefix,
        length=live.stream.length(),
        groups=live.stream.groups(),
        dead_letters=dead,
        latest_dead=shown,
        stats=live.store.stats(),
        meta=live.store.meta(),
        series=int(live.client.scard(f"{settings.live.prefix}:series")),
        compaction=compact_state(settings, live),
    )


# -- seed ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedReport:
    series: int
    through: dt.date
    first: dt.date
    seconds: float


def seed(settings: Settings, *, through: dt.date | None = None, shift_days: int = 0) -> SeedReport:
    """Fill the online store from the workspace's lake (sales, inventory, receipts) for the `live.history_days`
    days up to `through` (default: the lake's last sales day); every series of the sales table is known after.
    `shift_days` moves every day as `lake_events(..., shift_days=)` does, so a re-timed replay continues a seeded
    store (`through` is a lake day; the report's days are shifted)."""
    lake = Lake(settings.workspace)
    if not lake.has("sales"):
        raise WorkspaceError(f"no sales table in {settings.workspace}; ingest data first (`shelfcast ingest`)")
    started = time.monotonic()
    moved = pl.col("date") + pl.duration(days=shift_days)

    def read(table: str) -> pl.DataFrame | None:
        return lake.read(table).with_columns(moved) if lake.has(table) else None

    sales = read("sales")
    assert sales is not None
    last = (through + dt.timedelta(days=shift_days)) if through is not None else sales["date"].max()
    assert isinstance(last, dt.date)
    first = last - dt.timedelta(days=settings.live.history_days - 1)
    series = sales.filter(pl.col("date") <= last).select("store_id", "item_id").unique().iter_rows()
    live = open_live(settings)
    count = live.store.seed(sales, read("inventory"), read("movements"), through=last, series=list(series))
    # The workspace the store came from: the pipeline's compaction step writes only into it.
    live.client.hset(f"{settings.live.prefix}:meta", "seeded_into", _workspace_id(settings))
    return SeedReport(series=count, through=last, first=first, seconds=time.monotonic() - started)


# -- compaction (the stream's half; `shelfcast.workflows.live` ingests what this stages) -------------------------

COMPACT_DIR = "live-compact"
"""Under the workspace's `tmp`: one folder per day staged (`<day>/<table>.parquet`), and the compaction lock."""
COMPACTED_KEY = "compacted"
"""`P:compacted` (hash): per day compacted, the digest of the rows written (a changed day is written again)."""
COMPACT_TABLES = ("sales", "inventory", "movements")


@dataclass(frozen=True)
class CompactPlan:
    """What a compaction stages: the closed days considered (`first..through`), the days whose rows changed since
    they were last compacted (staged, one folder each under `staging`), the rows staged per table, the digests to
    record once the lake holds them, and why nothing is staged (`skipped`)."""

    staging: Path
    first: dt.date | None = None
    through: dt.date | None = None
    days: tuple[dt.date, ...] = ()
    rows: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None


def compact_staging(settings: Settings) -> Path:
    """The folder a compaction stages its days in (absolute: its files' paths name the quarantine's rows)."""
    return (settings.workspace / "tmp" / COMPACT_DIR).resolve()


def _workspace_id(settings: Settings) -> str:
    return str(settings.workspace.resolve())


@contextmanager
def compaction_lock(settings: Settings) -> Iterator[None]:
    """One compaction per workspace at a time (the ingest's own lock is taken inside it, for the lake's write)."""
    path = settings.workspace / "tmp" / f"{COMPACT_DIR}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + settings.lock_timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LakeError(
                        f"another compaction holds {path}; gave up after {settings.lock_timeout:g} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compact_state(settings: Settings, live: Live | None = None) -> CompactState:
    """The watermark recorded in the store's meta (`compacted_through`, `compacted_at`, `compacted_into`)."""
    live = live or open_live(settings)
    raw = {_text(k): _text(v) for k, v in live.client.hgetall(f"{settings.live.prefix}:meta").items()}
    through, at = raw.get("compacted_through"), raw.get("compacted_at")
    return CompactState(
        compacted_through=dt.date.fromisoformat(through) if through else None,
        compacted_at=dt.datetime.fromisoformat(at) if at else None,
        workspace=raw.get("compacted_into") or raw.get("seeded_into"),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _day_digest(frames: Mapping[str, pl.DataFrame]) -> str:
    digest = hashlib.sha256()
    for table in COMPACT_TABLES:
        frame = frames[table]
        digest.update(f"{table}:{frame.height}\n".encode())
        if frame.height:
            digest.update(frame.sort(frame.columns, nulls_last=True).write_csv().encode())
    return digest.hexdigest()


def plan_compaction(settings: Settings, *, through: dt.date | None = None, every_day: bool = False) -> CompactPlan:
    """Stage the store's closed days whose rows changed since they were last compacted, as canonical Parquet.

    Closed days: those before the store's latest day with events (or up to `through`), after the day the store
    was seeded through (those came from the lake). A day's rows are what `as_tables` makes of the store's
    history: a sales row per series with at least one sale event that day (a day with none has no row, as in a
    lake of positive sales: the panel counts it 0), an inventory row per day with a stock count (the day's
    latest), a receipt row (movement_id null) per day with receipts. `every_day` stages every closed day, changed
    or not (after the lake was restored, or to retry rows quarantined under other settings). Call under
    `compaction_lock`."""
    staging = compact_staging(settings)
    shutil.rmtree(staging, ignore_errors=True)  # what a crashed compaction staged is staged again from the store
    live = open_live(settings)
    history = live.store.histories()
    if history.is_empty():
        return CompactPlan(staging, skipped="the online store holds no days")
    latest = history["date"].max()
    assert isinstance(latest, dt.date)
    last = through if through is not None else latest - dt.timedelta(days=1)
    seeded = live.store.meta().seeded_through
    first = seeded + dt.timedelta(days=1) if seeded is not None else history["date"].min()
    assert isinstance(first, dt.date)
    if last < first:
        why = f"no closed day after {seeded} (seeded through)" if seeded else f"no closed day before {latest}"
        return CompactPlan(staging, first=first, through=last, skipped=why)
    window = history.filter(pl.col("date").is_between(first, last))
    tables = as_tables(window)
    recorded = {_text(k): _text(v) for k, v in live.client.hgetall(f"{settings.live.prefix}:{COMPACTED_KEY}").items()}
    days: list[dt.date] = []
    rows: dict[str, int] = dict.fromkeys(COMPACT_TABLES, 0)
    digests: dict[str, str] = {}
    by_day = {t: tables[t].partition_by("date", as_dict=True) for t in COMPACT_TABLES}
    for day in sorted(set(window["date"].to_list())):
        frames = {t: by_day[t].get((day,), tables[t].clear()) for t in COMPACT_TABLES}
        digest = _day_digest(frames)
        if not every_day and recorded.get(day.isoformat()) == digest:
            continue
        folder = staging / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for table, frame in frames.items():
            if frame.height:
                frame.write_parquet(folder / f"{table}.parquet")
                rows[table] += frame.height
        days.append(day)
        digests[day.isoformat()] = digest
    skipped = None if days else f"every closed day {first}..{last} is in the lake already"
    return CompactPlan(staging, first, last, tuple(days), rows, digests, skipped)


def finish_compaction(settings: Settings, plan: CompactPlan, *, now: dt.datetime | None = None) -> CompactState:
    """After the lake holds the staged days: record their digests and the watermark, remove the staging folder.
    Until this runs (a crash before), the same days are staged and written again: the lake ends the same."""
    live = open_live(settings)
    prefix = settings.live.prefix
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    pipe = live.client.pipeline(transaction=True)
    if plan.digests:
        pipe.hset(f"{prefix}:{COMPACTED_KEY}", mapping=dict[Any, Any](plan.digests))
    if plan.through is not None:
        state = compact_state(settings, live)
        mark = plan.through if state.compacted_through is None else max(plan.through, state.compacted_through)
        pipe.hset(
            f"{prefix}:meta",
            mapping={
                "compacted_through": mark.isoformat(),
                "compacted_at": stamp,
                "compacted_into": _workspace_id(settings),
            },
        )
    pipe.execute()
    shutil.rmtree(plan.staging, ignore_errors=True)
    return compact_state(settings, live)


def bound_workspace(settings: Settings) -> str | None:
    """The workspace the live store was seeded from or compacted into (None: neither yet)."""
    return compact_state(settings).workspace
