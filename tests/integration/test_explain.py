"""Explanations of the stockout risk: the one-series job and GET /explain give the service's row and risk.

The workspace (`serving_workspace`, see conftest) holds champions v1 of both
models and one scoring; tests that change it work on a copy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from helpers import NOW, TODAY
from serving import SERVE_CHAIN, ingest_chain

from shelfcast.data.simulator import simulate
from shelfcast.data.sources import get_source
from shelfcast.errors import DataValidationError, LakeError, ModelNotFoundError, UnknownSeriesError
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.policy_log import Fallback, PolicyState, write_state
from shelfcast.io.stores.parquet import ParquetStore
from shelfcast.jobs.explain import explain_series, series_panel, series_row
from shelfcast.jobs.ingest import run_ingest
from shelfcast.models.stockout import stockout_features_at
from shelfcast.service.app import create_app
from shelfcast.service.state import Snapshot, load_snapshot
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration
SERIES_CHAIN = SERVE_CHAIN.model_copy(update={"n_days": 120})


@pytest.fixture(scope="module")
def snapshot(serving_workspace: Settings) -> Snapshot:
    return load_snapshot(serving_workspace)


@pytest.fixture(scope="module")
def client(serving_workspace: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=serving_workspace.workspace)), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def copy(serving_workspace: Settings, tmp_path: Path) -> Settings:
    shutil.copytree(serving_workspace.workspace, tmp_path / "ws")
    return Settings(workspace=tmp_path / "ws")


def test_one_series_row_and_risk_are_the_services(serving_workspace: Settings, snapshot: Snapshot) -> None:
    """Read from the series' rows alone, the features are the whole table's bit for bit, so the risk is too."""
    assert snapshot.model is not None and snapshot.scorer is not None
    table = snapshot.scorer.table
    batch = snapshot.model.predict_proba_matrix(table.matrix, threads=1)
    stored = ParquetStore(serving_workspace.workspace / "predictions").read()
    risks = {
        (s, i): r for s, i, r in stored.group_by("store_id", "item_id").agg(pl.col("stockout_risk").first()).iter_rows()
    }
    assert len(table.index) == 12
    for (store, item), n in table.index.items():
        row = series_row(Lake(serving_workspace.workspace), snapshot.model, store, item)
        assert row.origin == table.origin == snapshot.last_date
        np.testing.assert_array_equal(row.values[0], table.matrix[n], err_msg=f"{store}/{item}")
        got = explain_series(serving_workspace, store, item)
        assert got.risk == batch[n], (store, item)
        assert got.risk == pytest.approx(risks[(store, item)], abs=1e-6)  # the batch scoring's
        assert (got.origin, got.model_name, got.model_version) == (table.origin, "shelfcast-stockout", "1")
        assert (got.threshold, got.label, got.risk_days) == (snapshot.model.threshold, batch[n] >= got.threshold, 7)
        assert got.reasons and all(r.text for r in got.reasons)
        assert {r.feature for r in got.reasons} == {r.feature for r in [*got.up, *got.down]}
        assert got.seconds < 5


def test_unknown_series_is_named(serving_workspace: Settings) -> None:
    with pytest.raises(UnknownSeriesError, match="unknown series store_id='S001' item_id='NOPE'"):
        explain_series(serving_workspace, "S001", "NOPE")


def test_no_model_to_explain_in_fallback_or_without_a_champion(copy: Settings, tmp_path: Path) -> None:
    write_state(copy, PolicyState(fallback={"stockout": Fallback("stockout", "live accuracy collapsed", "2026-11-24")}))
    with pytest.raises(ModelNotFoundError, match="fallback on 2026-11-24 \\(live accuracy collapsed\\)"):
        explain_series(copy, "S001", "I0001")
    with TestClient(create_app(copy), raise_server_exceptions=False) as c:
        answer = c.get("/explain", params={"store_id": "S001", "item_id": "I0001"})
        assert answer.status_code == 409 and "rule baseline answers; no model to explain" in answer.json()["detail"]
    untrained = ingest_chain(tmp_path / "untrained")
    with pytest.raises(ModelNotFoundError, match="no stockout champion"):
        explain_series(untrained, "S001", "I0001")


def test_a_lake_that_does_not_match_its_manifest_is_refused(copy: Settings) -> None:
    months = sorted((copy.workspace / "lake" / "sales").glob("*.parquet"))
    months[0].unlink()
    with pytest.raises(LakeError, match=r"files do not match its manifest: .*in the manifest but missing"):
        explain_series(copy, "S001", "I0001")


def test_sales_only_data_has_no_risk_to_explain(tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, sales_only=True)
    with pytest.raises(DataValidationError, match="no stockout risk on sales-only data"):
        explain_series(settings, "S001", "I0001")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        answer = c.get("/explain", params={"store_id": "S001", "item_id": "I0001"})
        assert answer.status_code == 409 and "sales only" in answer.json()["detail"]


def test_explain_route_gives_predicts_risk(client: TestClient, snapshot: Snapshot, serving_workspace: Settings) -> None:
    assert snapshot.scorer is not None
    for store, item in list(snapshot.scorer.table.index)[:6]:
        risk = client.post("/predict", json={"store_id": store, "item_id": item}).json()
        answer = client.get("/explain", params={"store_id": store, "item_id": item, "top": 3})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["risk"] == risk["risk"] and body["label"] == risk["label"]
        assert (body["threshold"], body["model_version"], body["cutoff"]) == (
            risk["threshold"],
            "1",
            risk["cutoff"],
        )
        assert 1 <= len(body["reasons"]) <= 6
        pushes = [abs(r["contribution"]) for r in body["reasons"]]
        assert pushes == sorted(pushes, reverse=True)
        assert all(r["direction"] == ("up" if r["contribution"] > 0 else "down") for r in body["reasons"])
        # The same explanation as the job's (same row, same model).
        job = explain_series(serving_workspace, store, item, top=3)
        assert [r.text for r in job.reasons] == [r["text"] for r in body["reasons"]]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"store_id": "", "item_id": "I0001"}, 422, "store_id"),
        ({"store_id": "S001", "item_id": "x" * 129}, 422, "item_id"),
        ({"store_id": "S001"}, 422, "item_id"),
        ({"store_id": "S001", "item_id": "NOPE"}, 404, "unknown series store_id='S001' item_id='NOPE'"),
        ({"store_id": "S001", "item_id": "I0001", "top": 0}, 422, "top"),
        ({"store_id": "S001", "item_id": "I0001", "why": "1"}, 422, "why"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client: TestClient, params: dict[str, object], status: int, says: str) -> None:
    answer = client.get("/explain", params=params)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]


def test_series_panel_is_the_whole_panels_rows(tmp_path: Path) -> None:
    """Series whose sales stop early while stock is still counted, without stock rows, or missing from the items
    table: their own rows give what the whole lake gives them (panel and stockout features)."""
    sim = simulate(SERIES_CHAIN)
    tables = sim.tables()
    sales, inventory = tables["sales"], tables["inventory"]
    last = sales["date"].max()
    early = (pl.col("store_id") == "S001") & (pl.col("item_id") == "I0001")
    tables["sales"] = sales.filter(~(early & (pl.col("date") > last - pl.duration(days=20))))
    tables["inventory"] = inventory.filter(~((pl.col("store_id") == "S002") & (pl.col("item_id") == "I0002")))
    tables["items"] = tables["items"].filter(pl.col("item_id") != "I0003")
    folder = tmp_path / "raw"
    folder.mkdir()
    for name, frame in tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    settings = Settings(workspace=tmp_path / "ws")
    run_ingest(get_source("canonical"), folder, settings=settings, today=TODAY, now=NOW)
    lake = Lake(settings.workspace)
    data = load_model_data(lake)
    whole = data.panel.frame
    assert whole.filter(early)["date"].max() == last  # still stocked: runs on to the end of the sales
    features = stockout_features_at(data.panel, data.spec, last, window=7)
    for store, item in whole.select("store_id", "item_id").unique().sort("store_id", "item_id").iter_rows():
        mine = (pl.col("store_id") == store) & (pl.col("item_id") == item)
        panel = series_panel(lake, store, item, end=last)
        assert panel is not None
        assert panel.frame.equals(whole.filter(mine)), (store, item)
        own = stockout_features_at(panel, data.spec, last, window=7)
        assert own.equals(features.filter(mine)), (store, item)
