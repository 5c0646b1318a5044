"""Live days into the lake (`shelfcast stream compact`) against the real Redis: the compacted lake equals the lake
ingested with every day directly, twice changes nothing, a kill -9 mid-write then a re-run gives the same lake, a
late event updates its day, the lake's rules quarantine what they reject, the consumer's compaction mode."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
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
from shelfcast.events import SaleEvent, encode
from shelfcast.features.panel import build_panel
from shelfcast.io.lake import IN_PROGRESS, QUARANTINE, Lake
from shelfcast.jobs import stream as js
from shelfcast.jobs.ingest import run_ingest
from shelfcast.settings import Settings
from shelfcast.workflows import live as wl

pytestmark = pytest.mark.integration

KEYS = ["date", "store_id", "item_id"]


def sale(
    event_id: str, day: dt.date, units: float, *, store: str = "S1", item: str = "I1", **more: Any
) -> dict[str, str]:
    at = dt.datetime.combine(day, dt.time(10))
    return encode(SaleEvent(event_id=event_id, time=at, store_id=store, item_id=item, units=units, **more))


STREAMED = 12  # days streamed after the cut


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A simulated chain (3 stores x 6 items, 60 days) ingested whole (`full`), and ingested up to a cut day
    (`partial`, a template copied per test)."""
    root = tmp_path_factory.mktemp("compact")
    raw = write_chain(root / "raw", stores=3, items=6, days=60, seed=7)
    run_ingest(get_source("canonical"), raw, settings=Settings(workspace=root / "full"), today=TODAY, now=NOW)
    last = Lake(root / "full").read("sales")["date"].max()
    assert isinstance(last, dt.date)
    cut = last - dt.timedelta(days=STREAMED)
    early = root / "early"
    early.mkdir()
    for file in raw.iterdir():
        if file.suffix == ".parquet" and "date" in pl.read_parquet_schema(file) and file.stem != "calendar":
            pl.read_parquet(file).filter(pl.col("date") <= cut).write_parquet(early / file.name)
        else:
            shutil.copy2(file, early / file.name)
    run_ingest(get_source("canonical"), early, settings=Settings(workspace=root / "partial"), today=TODAY, now=NOW)
    return {"full": root / "full", "partial": root / "partial", "cut": cut, "last": last}


def _workspace(chains: dict[str, Any], tmp_path: Path, name: str = "ws") -> Path:
    target = tmp_path / name
    shutil.copytree(chains["partial"], target)
    return target


def _streamed(chains: dict[str, Any], cfg: Settings) -> None:
    """The store seeded from the partial lake through the cut, then the full lake's later days streamed in."""
    js.seed(cfg, through=chains["cut"])
    events = js.lake_events(Lake(chains["full"]), start=chains["cut"] + dt.timedelta(days=1))
    js.produce(cfg, js.entries(events))
    report = js.consume(cfg, consumer="w", until_idle=True, handle_signals=False)
    assert report.applied == events.height and report.dead == 0


def _tables(lake: Lake, first: dt.date, last: dt.date) -> dict[str, pl.DataFrame]:
    """The columns live events carry, for days first..last; receipts summed per day and series."""
    days = pl.col("date").is_between(first, last)
    sales = lake.read("sales").filter(days).select(*KEYS, "units", "price", "promo").sort(KEYS)
    inventory = lake.read("inventory").filter(days, pl.col("on_hand").is_not_null())
    receipts = (
        lake.read("movements")
        .filter(days, pl.col("kind") == "receipt")
        .group_by("date", "item_id", "to_store_id")
        .agg(pl.col("quantity").sum())
        .sort("date", "item_id", "to_store_id")
    )
    return {
        "sales": sales,
        "inventory": inventory.select(*KEYS, "on_hand", "safety_stock").sort(KEYS),
        "receipts": receipts,
    }


def _hashes(lake: Lake) -> dict[str, str]:
    tables = lake.manifest()["tables"]
    return {name: info["content_hash"] for name, info in tables.items()} | {
        "quarantine": str(lake.read(QUARANTINE).sort(pl.all()).hash_rows().sum()) if lake.has(QUARANTINE) else ""
    }


def _assert_lake_is_whole(lake: Lake, chains: dict[str, Any], through: dt.date) -> None:
    first = chains["cut"] + dt.timedelta(days=1)
    ours, theirs = _tables(lake, first, through), _tables(Lake(chains["full"]), first, through)
    for name in ours:
        assert ours[name].height > 0
        assert ours[name].equals(theirs[name]), name
    # The days before the cut are untouched.
    before = _tables(lake, dt.date(2000, 1, 1), chains["cut"])
    assert all(
        before[n].equals(t) for n, t in _tables(Lake(chains["partial"]), dt.date(2000, 1, 1), chains["cut"]).items()
    )
    assert lake.interrupted_marker() is None


def test_compaction_writes_the_closed_days_as_a_direct_ingest_would_and_twice_changes_nothing(
    tmp_path: Path, prefix: str, chains: dict[str, Any]
) -> None:
    ws = _workspace(chains, tmp_path)
    cfg = live_settings(ws, prefix, history_days=400)
    _streamed(chains, cfg)
    last = chains["last"]

    report = wl.compact(cfg)  # closed days: every day before the store's latest
    assert report.days[0] == chains["cut"] + dt.timedelta(days=1) and report.days[-1] == last - dt.timedelta(days=1)
    assert len(report.days) == STREAMED - 1 and report.compacted_through == last - dt.timedelta(days=1)
    assert report.rows["sales"] == 18 * (STREAMED - 1) and report.table_days["sales"] == STREAMED - 1
    assert report.rows["inventory"] == 18 * (STREAMED - 1)
    assert report.quarantined == 0 and report.quarantine_by_rule == {}
    lake = Lake(ws)
    _assert_lake_is_whole(lake, chains, last - dt.timedelta(days=1))
    assert lake.read("sales")["date"].max() == last - dt.timedelta(days=1)  # the open day is not written

    report = wl.compact(cfg, through=last)
    assert report.days == (last,) and report.rows["sales"] == 18
    _assert_lake_is_whole(lake, chains, last)
    assert js.status(cfg).compaction.compacted_through == last
    hashes = _hashes(lake)

    again = wl.compact(cfg, through=last)
    assert again.days == () and again.skipped and "in the lake already" in again.skipped
    assert _hashes(lake) == hashes
    # Every day written again (as after a lost watermark): the rows replace themselves, the lake is the same.
    forced = wl.compact(cfg, through=last, every_day=True)
    assert len(forced.days) == STREAMED and forced.rows["sales"] == 18 * STREAMED
    assert _hashes(lake) == hashes
    manifest = lake.manifest()
    assert manifest["ingests"][-1]["source"] == "live"
    assert manifest["tables"]["sales"]["date_max"] == str(last)


def test_kill_9_mid_compaction_then_a_rerun_gives_the_same_lake(
    tmp_path: Path, prefix: str, chains: dict[str, Any]
) -> None:
    clean = _workspace(chains, tmp_path, "clean")
    cfg = live_settings(clean, prefix, history_days=400)
    _streamed(chains, cfg)
    last = chains["last"]
    wl.compact(cfg, through=last)
    expected = _hashes(Lake(clean))

    ws = _workspace(chains, tmp_path, "crashed")
    cfg = live_settings(ws, prefix, history_days=400)
    client = redis.Redis.from_url(REDIS_URL)
    env = {**os.environ, "SHELFCAST_REDIS_URL": REDIS_URL, "SHELFCAST_LIVE__PREFIX": prefix}
    marker = ws / "lake" / IN_PROGRESS
    for _attempt in range(6):
        client.delete(f"{prefix}:{js.COMPACTED_KEY}")  # every day to write again, into this workspace
        proc = subprocess.Popen(
            [sys.executable, "-m", "shelfcast", "stream", "compact", "--through", str(last), "-w", str(ws)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        while proc.poll() is None and not marker.exists():
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.returncode == -signal.SIGKILL and marker.exists():
            break
    assert marker.exists(), "the compaction was never caught mid-write"
    assert Lake(ws).interrupted_marker() is not None
    assert not client.hlen(f"{prefix}:{js.COMPACTED_KEY}")  # nothing recorded: the days are written again

    report = wl.compact(cfg, through=last)
    assert len(report.days) == STREAMED
    assert _hashes(Lake(ws)) == expected
    _assert_lake_is_whole(Lake(ws), chains, last)


def test_a_late_event_updates_its_compacted_day_once(tmp_path: Path, prefix: str, chains: dict[str, Any]) -> None:
    ws = _workspace(chains, tmp_path)
    cfg = live_settings(ws, prefix, history_days=400)
    _streamed(chains, cfg)
    last = chains["last"]
    wl.compact(cfg, through=last)
    lake = Lake(ws)
    before = lake.read("sales")
    day = last - dt.timedelta(days=3)
    series = pl.col("store_id") == "S001", pl.col("item_id") == "I0001"
    was = before.filter(pl.col("date") == day, *series)["units"].item()

    js.produce(cfg, [sale("late-1", day, 5, store="S001", item="I0001", price=2.0)])
    js.consume(cfg, consumer="w", until_idle=True, handle_signals=False)
    report = wl.compact(cfg, through=last)
    assert report.days == (day,) and (report.rows["sales"], report.rows["inventory"]) == (18, 18)
    after = lake.read("sales")
    assert after.height == before.height
    assert after.filter(pl.col("date") == day, *series)["units"].item() == was + 5
    others = ~((pl.col("date") == day) & series[0] & series[1])
    assert after.filter(others).equals(before.filter(others))
    # The same late event re-delivered is a duplicate: nothing to write.
    js.produce(cfg, [sale("late-1", day, 5, store="S001", item="I0001", price=2.0)])
    js.consume(cfg, consumer="w", until_idle=True, handle_signals=False)
    assert wl.compact(cfg, through=last).days == ()
    assert lake.read("sales").equals(after)


def test_rows_the_lake_rejects_are_quarantined_with_their_rule(
    tmp_path: Path, prefix: str, chains: dict[str, Any]
) -> None:
    ws = _workspace(chains, tmp_path)
    cfg = live_settings(ws, prefix, history_days=400)
    _streamed(chains, cfg)
    last = chains["last"]
    bound = last - dt.timedelta(days=2)  # the lake takes no fact dated after `today + future_days`: this day
    report = wl.compact(cfg, through=last, today=bound - dt.timedelta(days=cfg.future_days))
    assert len(report.days) == STREAMED
    receipts = Lake(chains["full"]).read("movements").filter(pl.col("date") > bound, pl.col("kind") == "receipt")
    rejected = 2 * (18 + 18) + receipts.select("date", "item_id", "to_store_id").unique().height
    assert report.quarantine_by_rule == {"date_out_of_range": rejected}
    assert report.quarantined == rejected
    quarantine = Lake(ws).read(QUARANTINE)
    assert quarantine.filter(pl.col("rule") == "date_out_of_range").height == rejected
    assert all(str(last) in s or str(last - dt.timedelta(days=1)) in s for s in quarantine["source"].to_list())
    assert Lake(ws).read("sales")["date"].max() == bound
    # Once the dates are allowed (a clock set right), every day again: the rows land, the quarantine empties.
    again = wl.compact(cfg, through=last, every_day=True)
    assert again.quarantined == 0
    assert Lake(ws).read(QUARANTINE).filter(pl.col("rule") == "date_out_of_range").height == 0
    _assert_lake_is_whole(Lake(ws), chains, last)


def test_a_day_without_sales_stays_missing_and_the_panel_counts_it_zero(tmp_path: Path, prefix: str) -> None:
    cfg = live_settings(tmp_path / "ws", prefix)
    d1 = dt.date(2025, 3, 3)
    d2, d3, d4 = (d1 + dt.timedelta(days=n) for n in (1, 2, 3))
    js.produce(
        cfg,
        [
            sale("a", d1, 2, item="I1"),
            sale("b", d1, 1, item="I2"),
            sale("c", d2, 4, item="I2"),  # I1 sells nothing on d2
            sale("d", d3, 3, item="I1"),
            sale("e", d3, 1, item="I2"),
            sale("f", d4, 1, item="I1"),  # d4 is still open
        ],
    )
    js.consume(cfg, consumer="w", until_idle=True, handle_signals=False)
    report = wl.compact(cfg)
    assert report.days == (d1, d2, d3) and report.rows["sales"] == 5
    sales = Lake(cfg.workspace).read("sales")
    assert sales.filter(pl.col("item_id") == "I1")["date"].to_list() == [d1, d3]
    panel = build_panel({"sales": sales}).frame.filter(pl.col("item_id") == "I1").sort("date")
    assert panel["y"].to_list() == [2.0, 0.0, 3.0] and panel["observed"].to_list() == [True, False, True]


def test_the_consumer_compacts_between_batches_and_the_pipeline_step_only_into_its_workspace(
    tmp_path: Path, prefix: str, chains: dict[str, Any]
) -> None:
    ws = _workspace(chains, tmp_path)
    cfg = live_settings(ws, prefix, history_days=400, batch_size=500)
    js.seed(cfg, through=chains["cut"])
    events = js.lake_events(Lake(chains["full"]), start=chains["cut"] + dt.timedelta(days=1))
    js.produce(cfg, js.entries(events))
    consumed, compactions = wl.consume_and_compact(cfg, every=0.0, consumer="w", until_idle=True, handle_signals=False)
    assert consumed.applied == events.height
    assert len(compactions) >= 2  # during the run, and once at the end
    assert sum(len(c.days) for c in compactions) >= STREAMED - 1
    _assert_lake_is_whole(Lake(ws), chains, chains["last"] - dt.timedelta(days=1))
    assert wl.compact_if_bound(cfg).startswith("skipped: every closed day")

    other = live_settings(tmp_path / "elsewhere", prefix)
    assert "belongs to the workspace" in wl.compact_if_bound(other)
    assert "never seeded" in wl.compact_if_bound(live_settings(tmp_path / "elsewhere", f"{prefix}-none"))
    gone = live_settings(ws, prefix, url="redis://127.0.0.1:1/0")
    assert wl.compact_if_bound(gone).startswith("skipped: the live store is unreachable")


def test_a_compaction_failing_between_batches_does_not_stop_the_worker(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = live_settings(tmp_path / "ws", prefix, batch_size=2).model_copy(update={"lock_timeout": 0})
    d1 = dt.date(2025, 3, 3)
    js.produce(cfg, [sale(f"e{n}", d1 + dt.timedelta(days=n // 2), 1) for n in range(6)])
    caplog.set_level("WARNING", logger="shelfcast.workflows.live")
    stop = threading.Event()
    out: dict[str, Any] = {}

    def work() -> None:
        out["result"] = wl.consume_and_compact(cfg, every=0.0, consumer="w", stop=stop, handle_signals=False)

    with js.compaction_lock(cfg):  # another compaction holds the workspace: every one of the worker's fails
        worker = threading.Thread(target=work)
        worker.start()
        store = js.open_live(cfg).store
        deadline = time.monotonic() + 60
        while store.stats().read < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    stop.set()
    worker.join(60)
    consumed, compactions = out["result"]
    assert consumed.applied == 6 and consumed.batches == 3
    failed = sum("compaction failed" in r.getMessage() for r in caplog.records)
    assert (
        failed >= 2 and failed + len(compactions) == 4
    )  # after each batch (the last may see the lock free), at the end
    assert sorted(d for c in compactions for d in c.days) == [d1, d1 + dt.timedelta(days=1)]
    assert Lake(cfg.workspace).read("sales")["units"].to_list() == [2.0, 2.0]
