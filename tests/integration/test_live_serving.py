"""Live features in the service, against the real Redis: parity with batch features, fallbacks to the lake.

Two lakes of one simulated chain: `early` holds the days up to T, `full` every day up to L. The online store is
seeded from `early` through T, then days T+1..L stream in as events from `full` and a consumer applies them. The
service on `early` with `live.serve` must then compute, for every series, the feature vector batch code computes
on `full` at the same origin (L-1, the last closed day), and `/predict` must return the risk the batch scorer
gives on `full` with the stock count of day L.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from helpers import NOW, TODAY
from serving import SERVE_FAST, SERVE_FAST_STOCKOUT, make_champion

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.events import ReceiptEvent, SaleEvent, StockCountEvent
from shelfcast.io.champion import load_champion
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import load_stockout
from shelfcast.jobs import stream as js
from shelfcast.jobs.ingest import run_ingest
from shelfcast.service.app import create_app
from shelfcast.service.online import OnlineScorer, build_table
from shelfcast.settings import Settings
from shelfcast.types import Task
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration
CHAIN = SimConfig(n_stores=3, n_items=4, n_days=300, seed=8, min_base_demand=1.0, max_base_demand=30.0)
STREAMED = 10  # days T+1..L streamed as events
FACTS = ("sales", "inventory", "movements")


def _ingest(tables: dict[str, pl.DataFrame], roles: dict[str, str], root: Path) -> Settings:
    raw = root / "raw"
    raw.mkdir(parents=True)
    for name, frame in tables.items():
        frame.write_parquet(raw / f"{name}.parquet")
    (raw / "exogenous_roles.json").write_text(json.dumps(roles))
    settings = Settings(workspace=root / "ws")
    run_ingest(get_source("canonical"), raw, settings=settings, today=TODAY, now=NOW)
    return settings


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Settings, dt.date]:
    """(early, full, T): the chain's stock counts keep what a count event carries (on hand, safety stock)."""
    sim = simulate(CHAIN)
    tables = sim.tables()
    tables["inventory"] = tables["inventory"].select("date", "store_id", "item_id", "on_hand", "safety_stock")
    last = tables["sales"]["date"].max()
    assert isinstance(last, dt.date)
    cut = last - dt.timedelta(days=STREAMED)
    early_tables = {n: f.filter(pl.col("date") <= cut) if n in FACTS else f for n, f in tables.items()}
    root = tmp_path_factory.mktemp("live")
    early = _ingest(early_tables, sim.exogenous_roles, root / "early")
    full = _ingest(tables, sim.exogenous_roles, root / "full")
    make_champion(
        early,
        run_train(early, task="stockout", folds=1, stockout_config=SERVE_FAST_STOCKOUT, forecast_config=SERVE_FAST),
    )
    return early, full, cut


def _live(base: Settings, prefix: str, tmp_path: Path, **live: Any) -> Settings:
    """A copy of `base`'s workspace with live features on under `prefix`."""
    shutil.copytree(base.workspace, tmp_path / "ws")
    options = {"prefix": prefix, "block_ms": 50, "batch_size": 100, "serve": True, "refresh_seconds": 0.2} | live
    return Settings(workspace=tmp_path / "ws", redis_url=base.redis_url, live=options)


def _stream(settings: Settings, full: Settings, cut: dt.date) -> None:
    js.seed(settings, through=cut)
    js.produce(settings, js.entries(js.lake_events(Lake(full.workspace), start=cut + dt.timedelta(days=1))))
    report = js.consume(settings, consumer="w", until_idle=True, handle_signals=False)
    assert report.dead == 0 and report.duplicates == 0


def _wait_for_table(client: TestClient, key: tuple[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        answer = client.get(f"/live/{key[0]}/{key[1]}")
        if answer.status_code == 200:
            body: dict[str, Any] = answer.json()
            return body
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)


def _batch(settings: Settings, full: Settings, origin: dt.date) -> OnlineScorer:
    """The batch scorer on the full lake at `origin`, with the champion the live service serves."""
    model = load_stockout(load_champion(settings, Task.STOCKOUT).folder)
    data = load_model_data(Lake(full.workspace))
    return OnlineScorer(build_table(data.panel, model, model.definition, origin), model)


def test_live_features_and_risk_equal_batch_on_the_lake_holding_the_same_days(
    lakes: tuple[Settings, Settings, dt.date], prefix: str, tmp_path: Path
) -> None:
    early, full, cut = lakes
    settings = _live(early, prefix, tmp_path)
    _stream(settings, full, cut)
    last = cut + dt.timedelta(days=STREAMED)
    origin = last - dt.timedelta(days=1)
    counts = Lake(full.workspace).read("inventory").filter(pl.col("date") == last)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        state = client.app.state.shelfcast  # type: ignore[attr-defined]
        keys = sorted(state.snapshot.scorer.table.index)
        first = _wait_for_table(client, keys[0])
        assert first["cutoff"] == origin.isoformat()
        live = state.live.table
        assert live is not None and live.origin == origin
        batch = _batch(settings, full, origin)

        # Every series' feature vector at the origin equals the batch one (the lake never saw these days).
        assert set(live.scorer.table.index) == set(batch.table.index)
        assert live.scorer.columns == batch.columns
        rows_live = live.scorer.rows(keys)
        rows_batch = batch.rows(keys)
        np.testing.assert_allclose(
            live.scorer.table.matrix[rows_live], batch.table.matrix[rows_batch], rtol=1e-6, equal_nan=True
        )
        # Without live features the early lake's table stops 10 days before: the comparison above means something.
        assert state.snapshot.scorer.table.origin == cut

        # /predict answers from live features with day L's stock count: the batch scorer's risk with that count.
        on_hand = dict(zip(zip(counts["store_id"], counts["item_id"], strict=True), counts["on_hand"], strict=True))
        body = {"rows": [{"store_id": s, "item_id": i} for s, i in keys]}
        answer = client.post("/predict/batch", json=body)
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"]
        sent = np.array([on_hand[k] for k in keys], dtype=np.float64)
        expected = batch.score(batch.matrix(rows_batch, count=len(keys), on_hand=sent))
        np.testing.assert_allclose([p["risk"] for p in got], expected.risk, rtol=1e-6)
        assert all(p["source"] == "live" and not p["stale"] and p["cutoff"] == origin.isoformat() for p in got)
        assert all(p["features_as_of"] is not None for p in got)
        # With a cutoff the request is about the lake's data, as before.
        dated = client.post("/predict", json={"store_id": keys[0][0], "item_id": keys[0][1], "cutoff": str(cut)})
        assert dated.status_code == 200 and dated.json()["source"] == "lake" and not dated.json()["stale"]

        # /live shows the series' buckets and the last count.
        assert first["last_on_hand"] == on_hand[keys[0]]
        assert first["last_count"].startswith(last.isoformat())
        sold = (
            Lake(full.workspace)
            .read("sales")
            .filter((pl.col("date") == last) & (pl.col("store_id") == keys[0][0]) & (pl.col("item_id") == keys[0][1]))
        )
        assert first["today"]["units"] == pytest.approx(sold["units"].sum())
        assert set(first["features"]) == set(live.scorer.columns)
        assert client.get("/live/NOPE/NOPE").status_code == 404


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_or_stale_store_answers_from_the_lake_never_a_5xx(
    lakes: tuple[Settings, Settings, dt.date], prefix: str, tmp_path: Path
) -> None:
    early, full, cut = lakes
    down = _live(early, prefix, tmp_path / "down")
    down = Settings(workspace=down.workspace, redis_url=f"redis://127.0.0.1:{_closed_port()}/0", live=down.live)
    with TestClient(create_app(down), raise_server_exceptions=False) as client:
        keys = sorted(client.app.state.shelfcast.snapshot.scorer.table.index)  # type: ignore[attr-defined]
        answer = client.post("/predict", json={"store_id": keys[0][0], "item_id": keys[0][1]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["source"] == "lake" and answer.json()["stale"] is True
        assert answer.json()["cutoff"] == cut.isoformat()
        assert client.get(f"/live/{keys[0][0]}/{keys[0][1]}").status_code == 503
        metrics = client.get("/metrics").text
        assert 'shelfcast_live_fallbacks_total{reason="' in metrics

    # A store nothing was applied to or seeded into for longer than `stale_seconds`.
    stale = _live(early, prefix, tmp_path / "stale", stale_seconds=1)
    _stream(stale, full, cut)
    time.sleep(1.5)
    with TestClient(create_app(stale), raise_server_exceptions=False) as client:
        state = client.app.state.shelfcast  # type: ignore[attr-defined]
        state.live.refresh(state.snapshot)
        answer = client.post("/predict", json={"store_id": keys[0][0], "item_id": keys[0][1]})
        assert answer.status_code == 200 and answer.json()["stale"] is True
        assert "stale" in (state.live.problem or "")
        assert 'shelfcast_live_fallbacks_total{reason="stale"}' in client.get("/metrics").text

    # Live features off: the lake answers, and it is not stale.
    with TestClient(create_app(early), raise_server_exceptions=False) as client:
        answer = client.post("/predict", json={"store_id": keys[0][0], "item_id": keys[0][1]})
        assert answer.json()["source"] == "lake" and answer.json()["stale"] is False
        assert client.get(f"/live/{keys[0][0]}/{keys[0][1]}").status_code == 409


def test_stock_now_is_the_latest_count_less_later_sales_plus_later_receipts_in_any_order(
    lakes: tuple[Settings, Settings, dt.date], prefix: str, tmp_path: Path
) -> None:
    early, full, cut = lakes
    settings = _live(early, prefix, tmp_path)
    _stream(settings, full, cut)
    last = cut + dt.timedelta(days=STREAMED)
    today = last + dt.timedelta(days=1)
    store = js.open_live(settings).store
    key = ("S001", "I0001")

    def at(hour: int) -> dt.datetime:
        return dt.datetime.combine(today, dt.time(hour))

    # Two batches, out of order: a sale after the count arrives before it, a sale before it arrives after it.
    store.apply(
        [
            SaleEvent(event_id="s10", time=at(10), store_id=key[0], item_id=key[1], units=5),
            StockCountEvent(event_id="c08", time=at(8), store_id=key[0], item_id=key[1], on_hand=20),
        ]
    )
    store.apply(
        [
            SaleEvent(event_id="s07", time=at(7), store_id=key[0], item_id=key[1], units=3),
            ReceiptEvent(event_id="r11", time=at(11), store_id=key[0], item_id=key[1], quantity=4),
            SaleEvent(event_id="s10", time=at(10), store_id=key[0], item_id=key[1], units=5),  # a duplicate
        ]
    )
    (now,) = store.stock_now([key])
    assert now.on_hand == 20 and now.now == 20 - 5 + 4 and now.after == 2
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = _wait_for_table(client, key)
        assert body["cutoff"] == last.isoformat()  # today's events made day L the last closed day
        assert body["on_hand_now"] == 19 and body["events_after_count"] == 2
        assert body["today"]["units"] == 8  # both of today's sales, once
        got = client.post("/predict", json={"store_id": key[0], "item_id": key[1]}).json()
        state = client.app.state.shelfcast  # type: ignore[attr-defined]
        batch = _batch(settings, full, last)
        rows = batch.rows([key])
        expected = batch.score(batch.matrix(rows, count=1, on_hand=np.array([19.0])))
        assert got["source"] == "live" and got["risk"] == pytest.approx(float(expected.risk[0]), rel=1e-6)
        # A request's own count wins over the store's.
        sent = client.post("/predict", json={"store_id": key[0], "item_id": key[1], "on_hand": 0}).json()
        zero = batch.score(batch.matrix(rows, count=1, on_hand=np.array([0.0])))
        assert sent["risk"] == pytest.approx(float(zero.risk[0]), rel=1e-6)
        assert state.live.table.origin == last


def test_the_table_is_rebuilt_when_a_closed_day_changes_not_for_todays_events(
    lakes: tuple[Settings, Settings, dt.date], prefix: str, tmp_path: Path
) -> None:
    early, full, cut = lakes
    settings = _live(early, prefix, tmp_path, refresh_seconds=3600)  # refreshed by hand below
    _stream(settings, full, cut)
    last = cut + dt.timedelta(days=STREAMED)
    store = js.open_live(settings).store
    key = ("S001", "I0001")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        state = client.app.state.shelfcast  # type: ignore[attr-defined]
        built = state.live.refresh(state.snapshot)
        assert built is not None and built.origin == last - dt.timedelta(days=1)
        # A sale today (day L, still open): the same table.
        store.apply(
            [
                SaleEvent(
                    event_id="t1", time=dt.datetime.combine(last, dt.time(9)), store_id=key[0], item_id=key[1], units=50
                )
            ]
        )
        assert state.live.refresh(state.snapshot) is built
        # A late sale for a closed day: rebuilt, and the series' recent sales moved.
        late = last - dt.timedelta(days=2)
        store.apply(
            [
                SaleEvent(
                    event_id="l1", time=dt.datetime.combine(late, dt.time(9)), store_id=key[0], item_id=key[1], units=50
                )
            ]
        )
        rebuilt = state.live.refresh(state.snapshot)
        assert rebuilt is not None and rebuilt is not built and rebuilt.origin == built.origin
        column = rebuilt.scorer.position["mean_7"]
        before = built.scorer.table.matrix[built.scorer.rows([key])[0], column]
        after = rebuilt.scorer.table.matrix[rebuilt.scorer.rows([key])[0], column]
        assert after == pytest.approx(before + 50 / 7, rel=1e-5)
        # A new day starts: rebuilt at the new origin.
        store.apply(
            [
                SaleEvent(
                    event_id="n1",
                    time=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(9)),
                    store_id=key[0],
                    item_id=key[1],
                    units=1,
                )
            ]
        )
        newer = state.live.refresh(state.snapshot)
        assert newer is not None and newer.origin == last
