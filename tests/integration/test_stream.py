"""The live path against the real Redis: duplicates, late events, dead letters, poison, accounting, crashes, a
Redis restart, two workers, and the store seeded from a lake then fed by the stream."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis
from helpers import NOW, REDIS_URL, TODAY, live_settings, write_chain

from shelfcast.data.sources import get_source
from shelfcast.events import SaleEvent, StockCountEvent, encode
from shelfcast.io.lake import Lake
from shelfcast.io.online_store import OnlineStore, as_tables
from shelfcast.io.stream import Backoff
from shelfcast.jobs import stream as js
from shelfcast.jobs.ingest import run_ingest
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def chain_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated chain (3 stores x 6 items, 90 days) ingested into a workspace."""
    root = tmp_path_factory.mktemp("chain")
    raw = write_chain(root / "raw", stores=3, items=6, days=90, seed=5)
    run_ingest(get_source("canonical"), raw, settings=Settings(workspace=root / "ws"), today=TODAY, now=NOW)
    return root / "ws"


def sale(
    event_id: str, day: dt.date, units: float, *, store: str = "S1", item: str = "I1", **more: Any
) -> dict[str, str]:
    time_ = dt.datetime.combine(day, dt.time(10))
    return encode(SaleEvent(event_id=event_id, time=time_, store_id=store, item_id=item, units=units, **more))


def count(event_id: str, at: dt.datetime, on_hand: float, *, store: str = "S1", item: str = "I1") -> dict[str, str]:
    return encode(StockCountEvent(event_id=event_id, time=at, store_id=store, item_id=item, on_hand=on_hand))


def by_day(frame: pl.DataFrame, column: str) -> dict[dt.date, float | None]:
    return dict(zip(frame["date"].to_list(), frame[column].to_list(), strict=True))


def assert_equals_lake(store: OnlineStore, lake: Lake) -> None:
    """The store's histories, in the lake's shapes, equal the lake's sales, counts and receipts."""
    online = as_tables(store.histories())
    keys = ["date", "store_id", "item_id"]
    sales = lake.read("sales").select(*keys, "units", "price", "promo").sort(keys)
    assert online["sales"].select(sales.columns).sort(keys).equals(sales)
    inventory = lake.read("inventory").filter(pl.col("on_hand").is_not_null())
    inventory = inventory.select(*keys, "on_hand", "safety_stock").sort(keys)
    assert online["inventory"].sort(keys).equals(inventory)
    receipts = lake.read("movements").filter(pl.col("kind") == "receipt")
    receipts = receipts.group_by("date", "item_id", "to_store_id").agg(pl.col("quantity").sum())
    ours = online["movements"].select("date", "item_id", "to_store_id", "quantity")
    assert ours.sort("date", "item_id", "to_store_id").equals(receipts.sort("date", "item_id", "to_store_id"))


def test_duplicates_and_late_events_land_once_in_their_day(tmp_path: Path, prefix: str) -> None:
    cfg = live_settings(tmp_path, prefix)
    earlier = DAY - dt.timedelta(days=2)
    events = [
        sale("a", DAY, 2, price=1.5, promo=0),
        sale("b", DAY, 3, price=2.5, promo=1),
        sale("a", DAY, 2, price=1.5, promo=0),  # the same event sent twice
        count("c1", dt.datetime.combine(DAY, dt.time(18)), 9),
        count("c0", dt.datetime.combine(DAY, dt.time(9)), 20),  # an earlier count arriving later
        sale("late", earlier, 4),  # a sale two days back, arriving now
    ]
    js.produce(cfg, events)
    report = js.consume(cfg, consumer="w", until_idle=True)
    assert (report.read, report.applied, report.duplicates, report.dead) == (6, 5, 1, 0)
    history = js.open_live(cfg).store.series_history("S1", "I1")
    assert by_day(history, "units") == {earlier: 4.0, DAY: 5.0}
    assert by_day(history, "on_hand") == {earlier: None, DAY: 9.0}  # the count with the latest time that day
    assert by_day(history, "promo") == {earlier: None, DAY: 1}
    assert by_day(history, "price")[DAY] == pytest.approx((2 * 1.5 + 3 * 2.5) / 5)
    buckets = js.open_live(cfg).store.buckets("S1", "I1", DAY)
    assert (buckets.today.units, buckets.today.revenue, buckets.last_on_hand) == (5.0, 10.5, 9.0)
    assert buckets.week.units == 9.0  # Friday's week holds Wednesday's late sale

    # The same entries again (a producer retrying a lost reply): nothing changes but the duplicate count.
    js.produce(cfg, events)
    again = js.consume(cfg, consumer="w", until_idle=True)
    assert (again.applied, again.duplicates) == (0, 6)
    assert js.open_live(cfg).store.series_history("S1", "I1").equals(history)


def test_redelivery_after_a_claim_is_applied_once(tmp_path: Path, prefix: str) -> None:
    cfg = live_settings(tmp_path, prefix, claim_idle_ms=100)
    js.produce(cfg, [sale(f"e{i}", DAY, 1) for i in range(10)])
    live = js.open_live(cfg)
    live.stream.ensure_group()
    # Worker A reads everything and applies half of it without acknowledging, then dies.
    taken = live.stream.read("A", 100, block_ms=10)
    from shelfcast.events import EventRules, parse_entry

    half = [(i, parse_entry(f, EventRules())) for i, f in taken[:5] if f is not None]
    live.store.apply(half)  # type: ignore[arg-type]
    time.sleep(0.2)
    report = js.consume(cfg, consumer="B", until_idle=True)
    assert report.claimed == 10
    stats = live.store.stats()
    assert (stats.applied, stats.duplicates) == (10, 5)
    assert by_day(live.store.series_history("S1", "I1"), "units") == {DAY: 10.0}
    assert live.stream.group_info().pending == 0  # type: ignore[union-attr]


def test_malformed_events_go_to_the_dead_stream_with_their_rule(tmp_path: Path, prefix: str) -> None:
    cfg = live_settings(tmp_path, prefix, new_series="reject")
    live = js.open_live(cfg)
    live.store.seed(pl.DataFrame({"date": [DAY], "store_id": ["S1"], "item_id": ["I1"], "units": [1.0]}), through=DAY)
    good = sale("ok", DAY + dt.timedelta(days=1), 1)
    bad = {
        "invalid_v": {**good, "v": "9"},
        "invalid_type": {**good, "type": "refund"},
        "unexpected_field": {**good, "colour": "red"},
        "missing_event_id": {k: v for k, v in good.items() if k != "event_id"},
        "invalid_time": {**good, "time": "noon"},
        "date_out_of_range": {**good, "time": "2150-01-01T00:00:00"},
        "negative_units": {**good, "units": "-2"},
        "non_finite_units": {**good, "units": "inf"},
        "invalid_promo": {**good, "promo": "yes"},
        "negative_price": {**good, "price": "-1"},
        "unknown_store": {**good, "store_id": "S404"},
        "unknown_item": {**good, "item_id": "I404"},
        "not_positive_quantity": {**good, "type": "receipt", "units": "", "quantity": "0"},
    }
    bad["not_positive_quantity"].pop("units")
    js.produce(cfg, [good, *bad.values()])
    report = js.consume(cfg, consumer="w", until_idle=True)
    assert (report.read, report.applied, report.dead) == (1 + len(bad), 1, len(bad))
    letters = live.stream.dead_letters()
    assert sorted(row["rule"] for row in letters) == sorted(bad)
    for row in letters:
        assert row["raw"] == bad[row["rule"]], row  # the payload as sent
        assert row["entry_id"] and row["detail"]
    assert live.stream.group_info().pending == 0  # type: ignore[union-attr]


def test_a_poison_entry_stops_at_the_delivery_limit(tmp_path: Path, prefix: str) -> None:
    cfg = live_settings(tmp_path, prefix, claim_idle_ms=50, max_deliveries=3)
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{prefix}:s:2:S9:I9", "not a hash")  # the series' key holds another type: it cannot be applied
    js.produce(cfg, [sale("p", DAY, 1, store="S9", item="I9"), *[sale(f"g{i}", DAY, 1) for i in range(5)]])
    report = js.consume(cfg, consumer="w", until_idle=True)
    assert report.applied == 5 and report.poison == 3 and report.dead == 1
    (letter,) = js.open_live(cfg).stream.dead_letters()
    assert letter["rule"] == "delivery_limit" and "delivered 4 times" in letter["detail"]
    stats = js.open_live(cfg).store.stats()
    assert stats.read == stats.applied + stats.duplicates + stats.dead == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _consumer_process(cfg: Settings, name: str, *, until_idle: bool, cwd: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SHELFCAST_REDIS_URL": cfg.redis_url,
        "SHELFCAST_LIVE__PREFIX": cfg.live.prefix,
        "SHELFCAST_LIVE__BATCH_SIZE": "200",
        "SHELFCAST_LIVE__BLOCK_MS": "50",
        "SHELFCAST_LIVE__CLAIM_IDLE_MS": "500",
    }
    args = [sys.executable, "-m", "shelfcast", "stream", "consume", "--name", name]
    return subprocess.Popen(
        [*args, *(["--until-idle"] if until_idle else [])],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_mid_batch_then_restart_and_claim_apply_each_event_once(
    tmp_path: Path, prefix: str, chain_lake: Path
) -> None:
    events = js.lake_events(Lake(chain_lake))
    reference = live_settings(chain_lake, f"{prefix}-ref")
    js.produce(reference, js.entries(events))
    js.consume(reference, consumer="ref", until_idle=True)

    cfg = live_settings(chain_lake, prefix)
    js.produce(cfg, js.entries(events))
    store = js.open_live(cfg).store
    stream = js.open_live(cfg).stream
    victim = _consumer_process(cfg, "victim", until_idle=False, cwd=tmp_path)

    def holding() -> int:
        """Entries the victim has read and not yet acknowledged (a batch in hand)."""
        info = stream.group_info()
        return info.consumers.get("victim", 0) if info is not None else 0

    # Killed once a quarter is read and while it holds a batch: not in the instant between two batches (a kill
    # there, on a loaded machine, left nothing pending and proved nothing).
    deadline = time.monotonic() + 120
    while (store.stats().read < len(events) // 4 or not holding()) and time.monotonic() < deadline:
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    killed_at = store.stats().read
    assert 0 < killed_at < len(events)
    left = js.open_live(cfg).stream.group_info()
    assert left is not None
    assert left.consumers["victim"] > 0  # killed holding a batch read but not applied
    # Another worker claims what the victim left pending, and the victim, restarted, re-reads its own.
    helper = _consumer_process(cfg, "helper", until_idle=True, cwd=tmp_path)
    restarted = _consumer_process(cfg, "victim", until_idle=True, cwd=tmp_path)
    for proc in (helper, restarted):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    stats = store.stats()
    assert (stats.applied, stats.dead) == (len(events), 0)
    assert stats.read == stats.applied + stats.duplicates
    ref_store = js.open_live(reference).store
    assert ref_store.stats().applied == len(events)
    assert store.histories().equals(ref_store.histories())
    js.open_live(reference).store.drop()


def test_redis_stopped_and_restarted_mid_stream_loses_nothing(
    tmp_path: Path, prefix: str, chain_lake: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A private server keeping its data in an append-only file, so a restart brings the stream back (the shared
    # Redis is never stopped). SIGTERM makes it write the file out before it exits.
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    data = tmp_path / "redis"
    data.mkdir()
    command = [server, "--port", str(port), "--save", "", "--appendonly", "yes", "--dir", str(data)]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                return proc
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    proc = start()
    caplog.set_level("WARNING", logger="shelfcast.io.stream")
    try:
        url = f"redis://127.0.0.1:{port}/0"
        cfg = live_settings(chain_lake, prefix, url=url, batch_size=50)
        events = js.lake_events(Lake(chain_lake))
        backoff = Backoff(first=0.05, longest=0.5, give_up_after=60)
        reports: dict[str, Any] = {}
        stop = threading.Event()

        # Paced over about 4 s, so the producer is mid-stream when Redis stops.
        span = dt.datetime.fromisoformat(events["time"].max()) - dt.datetime.fromisoformat(events["time"].min())
        speed = span.total_seconds() / 4

        def producer() -> None:
            reports["produce"] = js.produce(cfg, js.entries(events), chunk=100, backoff=backoff, speed=speed)

        def consumer() -> None:
            reports["consume"] = js.consume(cfg, consumer="w", stop=stop, backoff=backoff, handle_signals=False)

        threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
        for thread in threads:
            thread.start()
        client = redis.Redis(port=port)
        while int(client.hget(f"{prefix}:stats", "read") or 0) < len(events) // 5:
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        time.sleep(1.0)  # both sides see a Redis that is gone, and retry
        proc = start()
        threads[0].join(120)
        assert not threads[0].is_alive()
        store = js.open_live(cfg).store
        while store.stats().read < len(events) or js.open_live(cfg).stream.group_info().pending:  # type: ignore[union-attr]
            time.sleep(0.05)
        stop.set()
        threads[1].join(30)
        stats = store.stats()
        assert stats.applied == len(events)  # nothing lost, nothing applied twice
        assert stats.read == stats.applied + stats.duplicates + stats.dead and stats.dead == 0
        assert_equals_lake(store, Lake(chain_lake))
        retried = {r.getMessage().split(" (")[0].removeprefix("Redis unavailable while ") for r in caplog.records}
        assert retried & {"adding events", "waiting for the consumers"}, retried  # the producer retried
        assert retried & {"reading entries", "applying a batch", "claiming stale entries"}, retried  # the consumer
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_two_consumers_share_the_work_and_apply_each_event_once(tmp_path: Path, prefix: str, chain_lake: Path) -> None:
    cfg = live_settings(chain_lake, prefix, batch_size=50)
    events = js.lake_events(Lake(chain_lake), end=dt.date(2022, 2, 15))
    js.produce(cfg, js.entries(events))
    reports: dict[str, js.ConsumeReport] = {}

    def work(name: str) -> None:
        reports[name] = js.consume(cfg, consumer=name, until_idle=True, handle_signals=False)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r.read > 0 for r in reports.values()), reports
    assert sum(r.applied for r in reports.values()) == len(events)
    stats = js.open_live(cfg).store.stats()
    assert (stats.applied, stats.duplicates, stats.dead) == (len(events), 0, 0)


def test_seeded_from_the_lake_then_streamed_equals_the_lake(tmp_path: Path, prefix: str, chain_lake: Path) -> None:
    lake = Lake(chain_lake)
    last = lake.read("sales")["date"].max()
    assert isinstance(last, dt.date)
    cut = last - dt.timedelta(days=20)
    cfg = live_settings(chain_lake, prefix, history_days=400)
    seeded = js.seed(cfg, through=cut)
    assert seeded.series == 18 and seeded.through == cut
    js.produce(cfg, js.entries(js.lake_events(lake, start=cut + dt.timedelta(days=1))))
    report = js.consume(cfg, consumer="w", until_idle=True)
    assert report.dead == 0 and report.duplicates == 0
    store = js.open_live(cfg).store
    meta = store.meta()
    assert meta.compatible and meta.seeded_through == cut
    assert meta.fresh(dt.datetime.now(dt.UTC), dt.timedelta(minutes=5))
    assert_equals_lake(store, lake)
    # A history bound to fewer days keeps only the latest ones.
    short = js.open_live(live_settings(chain_lake, prefix, history_days=10)).store
    short.apply(
        [
            SaleEvent(
                event_id="x", time=dt.datetime.combine(last, dt.time(20)), store_id="S001", item_id="I0001", units=1
            )
        ]
    )
    days = short.series_history("S001", "I0001")["date"]
    assert days.min() == last - dt.timedelta(days=9) and days.len() == 10


def test_a_retimed_replay_continues_a_store_seeded_with_the_same_shift(
    tmp_path: Path, prefix: str, chain_lake: Path
) -> None:
    lake = Lake(chain_lake)
    last = lake.read("sales")["date"].max()
    assert isinstance(last, dt.date)
    cut, shift = last - dt.timedelta(days=10), 1000
    cfg = live_settings(chain_lake, prefix)
    assert js.seed(cfg, through=cut, shift_days=shift).through == cut + dt.timedelta(days=shift)
    js.produce(cfg, js.entries(js.lake_events(lake, start=cut + dt.timedelta(days=1), shift_days=shift)))
    js.consume(cfg, consumer="w", until_idle=True)
    days = js.open_live(cfg).store.series_history("S001", "I0001")["date"]
    lake_days = lake.read("sales").filter(pl.col("store_id") == "S001", pl.col("item_id") == "I0001")["date"]
    assert days.to_list() == (lake_days.sort() + dt.timedelta(days=shift)).to_list()
