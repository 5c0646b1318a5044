"""The service against a real registry (MLflow in a temporary folder) and the Parquet prediction store.

The workspace (`serving_workspace`, see conftest) holds champions v1 of both
models and one scoring; tests that change it work on a copy.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from helpers import NOW
from serving import SERVE_FAST_STOCKOUT, SERVE_HORIZON, ingest_chain, make_champion

from shelfcast.io.stores.parquet import ParquetStore
from shelfcast.service.app import create_app
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration
KEY = "s3cret-key"


def _client(settings: Settings, **overrides: object) -> TestClient:
    merged = {"workspace": settings.workspace, "api_key": KEY} | overrides
    return TestClient(create_app(Settings(**merged)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(serving_workspace: Settings) -> Iterator[TestClient]:
    with _client(serving_workspace) as c:
        yield c


@pytest.fixture
def copy(serving_workspace: Settings, tmp_path: Path) -> Settings:
    shutil.copytree(serving_workspace.workspace, tmp_path / "ws")
    return Settings(workspace=tmp_path / "ws")


@pytest.fixture(scope="module")
def predictions(serving_workspace: Settings) -> pl.DataFrame:
    return ParquetStore(serving_workspace.workspace / "predictions").read()


def _series(predictions: pl.DataFrame) -> list[tuple[str, str]]:
    return [tuple(r) for r in predictions.select("store_id", "item_id").unique().sort("store_id", "item_id").rows()]


def test_health_ready_and_models(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["stockout_model"] == "shelfcast-stockout v1"
    models = client.get("/models").json()
    assert models["registry_error"] is None and models["fallback"] is None
    for task in ("demand", "stockout"):
        assert models[task]["served"]["version"] == "1" and models[task]["served"]["from_registry"]
        assert models[task]["champion"]["version"] == "1"
        assert models[task]["champion"]["gate"]["passed"] in ("true", "false")
    assert "on_hand_now" in models["features"] and "store_id" not in models["features"]


def test_predict_by_ids_gives_the_batch_scoring_risk(client: TestClient, predictions: pl.DataFrame) -> None:
    """Same champion, same origin, same feature function: the online risk is the batch one."""
    series = predictions.group_by("store_id", "item_id").agg(pl.col("stockout_risk", "threshold").first())
    for store, item, risk, threshold in series.iter_rows():
        got = client.post("/predict", json={"store_id": store, "item_id": item})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["risk"] == pytest.approx(risk, abs=1e-6), (store, item)
        assert (body["threshold"], body["label"]) == (pytest.approx(threshold), risk >= threshold)
        assert (body["model_name"], body["model_version"], body["fallback"]) == ("shelfcast-stockout", "1", False)


def test_a_stock_count_moves_the_on_hand_features(client: TestClient, predictions: pl.DataFrame) -> None:
    snapshot = client.app.state.shelfcast.snapshot  # type: ignore[attr-defined]
    scorer = snapshot.scorer
    store, item = _series(predictions)[0]
    rows = scorer.rows([(store, item)])
    col = scorer.position["on_hand_now"]
    before = scorer.matrix(rows, count=1)
    after = scorer.matrix(rows, count=1, on_hand=np.array([123.0]))
    assert after[0, col] == 123.0 and before[0, col] != 123.0
    changed = np.flatnonzero(before[0] != after[0])
    assert {scorer.columns[c] for c in changed} <= {"on_hand_now", "days_of_cover", "on_hand_minus_safety"}
    answer = client.post("/predict", json={"store_id": store, "item_id": item, "on_hand": 123})
    assert answer.status_code == 200


def test_explicit_features_with_and_without_ids(client: TestClient, predictions: pl.DataFrame) -> None:
    store, item = _series(predictions)[0]
    alone = client.post("/predict", json={"features": {"price": 2.5, "daily_sales": 4, "inventory": 0}})
    assert alone.status_code == 200, alone.text
    assert alone.json()["store_id"] is None
    patched = client.post("/predict", json={"store_id": store, "item_id": item, "features": {"mean_7": 0.0}})
    assert patched.status_code == 200
    unknown = client.post("/predict", json={"features": {"colour": 1.0}})
    assert unknown.status_code == 422 and "unknown feature 'colour'" in unknown.json()["detail"]


def test_batch_equals_single_rows_and_names_a_bad_row(client: TestClient, predictions: pl.DataFrame) -> None:
    series = _series(predictions)
    rows = [{"store_id": s, "item_id": i} for s, i in series]
    batch = client.post("/predict/batch", json={"rows": rows})
    assert batch.status_code == 200, batch.text
    singles = [client.post("/predict", json=r).json() for r in rows]
    assert batch.json()["predictions"] == singles
    wrong = client.post("/predict/batch", json={"rows": [*rows[:2], {"store_id": "S999", "item_id": "I0001"}]})
    assert wrong.status_code == 404 and "row 2" in wrong.json()["detail"]
    too_many = client.post("/predict/batch", json={"rows": rows * 100})  # 1200 > serve_max_batch 1000
    assert too_many.status_code == 413 and "serve_max_batch" in too_many.json()["detail"]


def test_an_earlier_origin_reads_nothing_after_it(client: TestClient, predictions: pl.DataFrame) -> None:
    snapshot = client.app.state.shelfcast.snapshot  # type: ignore[attr-defined]
    store, item = _series(predictions)[0]
    earlier = snapshot.last_date - dt.timedelta(days=30)
    answer = client.post("/predict", json={"store_id": store, "item_id": item, "date": earlier.isoformat()})
    assert answer.status_code == 200, answer.text
    assert answer.json()["date"] == earlier.isoformat()
    table = snapshot.scorer_at(earlier).table
    assert table.origin == earlier and table.matrix.shape[0] == len(table.index)


def test_cutoff_and_its_deprecated_name_date(client: TestClient, predictions: pl.DataFrame) -> None:
    snapshot = client.app.state.shelfcast.snapshot  # type: ignore[attr-defined]
    store, item = _series(predictions)[0]
    earlier = (snapshot.last_date - dt.timedelta(days=30)).isoformat()
    ids = {"store_id": store, "item_id": item}
    new = client.post("/predict", json=ids | {"cutoff": earlier})
    old = client.post("/predict", json=ids | {"date": earlier})
    assert new.status_code == old.status_code == 200, (new.text, old.text)
    assert new.json() == old.json()
    assert (new.json()["cutoff"], new.json()["risk_days"]) == (earlier, snapshot.model.definition.window)
    assert "deprecation" not in new.headers and "warning" not in new.headers
    assert old.headers["deprecation"].startswith("@")
    assert "request field `date` is deprecated, send `cutoff`" in old.headers["warning"]
    batch = client.post("/predict/batch", json={"rows": [ids | {"cutoff": earlier}, ids | {"date": earlier}]})
    assert batch.status_code == 200 and "`date`" in batch.headers["warning"]
    both = client.post("/predict", json=ids | {"cutoff": earlier, "date": earlier})
    assert both.status_code == 422
    assert "give `cutoff` or its deprecated name `date`, not both" in both.json()["detail"]
    in_batch = client.post("/predict/batch", json={"rows": [ids, ids | {"cutoff": earlier, "date": earlier}]})
    assert in_batch.status_code == 422 and in_batch.json()["detail"].startswith("rows.1: give `cutoff` or")
    bad = client.post("/predict", json=ids | {"cutoff": "29/10/2022"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("cutoff: ")


def test_the_openapi_schema_uses_cutoff_and_risk_days(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    request = schemas["PredictRequest"]["properties"]
    assert "cutoff" in request and "date" not in request and "deprecated name" in request["cutoff"]["description"]
    answer = schemas["Prediction"]["properties"]
    assert {"cutoff", "risk_days"} <= set(answer) and "window_days" not in answer
    assert answer["date"]["deprecated"] is True


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"store_id": "S001", "item_id": "I0001", "on_hand": -1}, 422, "on_hand: Input should be greater than"),
        ({"store_id": "S001", "item_id": "I0001", "on_hand": "5"}, 422, "on_hand"),
        ({"store_id": 1, "item_id": "I0001"}, 422, "store_id: Input should be a valid string"),
        ({"store_id": "S001"}, 422, "give both `store_id` and `item_id`"),
        ({}, 422, "give `store_id` and `item_id`, or an explicit `features` payload"),
        ({"store_id": "S001", "item_id": "I0001", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
        ({"store_id": "S001", "item_id": "I0001", "date": "29/10/2022"}, 422, "date:"),
        ({"store_id": "S001", "item_id": "I0001", "date": "2031-01-01"}, 422, "outside the workspace's data"),
        ({"store_id": "S001", "item_id": "I0001", "date": "1999-01-01"}, 422, "outside the workspace's data"),
        ({"store_id": "S001", "item_id": "NOPE"}, 404, "unknown series store_id='S001' item_id='NOPE'"),
        ({"features": {"price": 1.0}, "on_hand": 3}, 422, "`on_hand` and `date` need `store_id` and `item_id`"),
    ],
)
def test_bad_predict_requests_get_a_helpful_4xx(
    client: TestClient, body: dict[str, object], status: int, needle: str
) -> None:
    answer = client.post("/predict", json=body)
    assert answer.status_code == status, answer.text
    assert needle in answer.json()["detail"]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"store_id": "S001", "item_id": "I0001", "on_hand": NaN}', "on_hand: Input should be a finite number"),
        (b'{"store_id": "S001", "item_id": "I0001", "on_hand": Infinity}', "on_hand: Input should be a finite number"),
        (b'{"features": {"price": -Infinity}}', "features.price: Input should be a finite number"),
        (b'{"store_id": "S001", ', "the body is not valid JSON"),
        (b"", "Field required"),
        (b"[1, 2]", "Input should be a valid dictionary"),
    ],
)
def test_malformed_json_is_a_422(client: TestClient, raw: bytes, needle: str) -> None:
    answer = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert needle in answer.json()["detail"]


def test_oversized_bodies_are_refused_with_413(client: TestClient) -> None:
    big = b'{"features": {"price": 1.0}, "pad": "' + b"x" * 1_100_000 + b'"}'
    declared = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "serve_max_body_bytes" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_forecast_from_the_store(client: TestClient, predictions: pl.DataFrame) -> None:
    store, item = _series(predictions)[1]
    mine = predictions.filter(pl.col("store_id") == store, pl.col("item_id") == item).sort("date")
    answer = client.get("/forecast", params={"store_id": store, "item_id": item})
    assert answer.status_code == 200, answer.text
    points = answer.json()["points"]
    assert [p["horizon"] for p in points] == list(range(1, SERVE_HORIZON + 1))
    assert [p["forecast"] for p in points] == pytest.approx(mine["forecast"].to_list())
    day = mine["date"][2]
    one = client.get("/forecast", params={"store_id": store, "item_id": item, "date": day.isoformat()}).json()
    assert [p["date"] for p in one["points"]] == [day.isoformat()]
    outside = client.get("/forecast", params={"store_id": store, "item_id": item, "date": "2020-01-01"})
    assert outside.status_code == 404 and "outside what was scored" in outside.json()["detail"]
    unknown = client.get("/forecast", params={"store_id": "S404", "item_id": item})
    assert unknown.status_code == 404 and "S404" in unknown.json()["detail"]
    assert client.get("/forecast", params={"store_id": store}).status_code == 422
    assert client.get("/forecast", params={"store_id": store, "item_id": item, "date": "soon"}).status_code == 422


def test_alerts_and_reorder_advice(client: TestClient, predictions: pl.DataFrame) -> None:
    store = _series(predictions)[0][0]
    every = client.get("/stockout/alerts", params={"store_id": store, "min_risk": 0}).json()
    risks = [a["stockout_risk"] for a in every["alerts"]]
    assert every["count"] == len(risks) == predictions.filter(pl.col("store_id") == store)["item_id"].n_unique()
    assert risks == sorted(risks, reverse=True)
    flagged = client.get("/stockout/alerts", params={"store_id": store}).json()
    assert all(a["stockout_label"] for a in flagged["alerts"])
    assert client.get("/stockout/alerts", params={"store_id": "S404"}).status_code == 404
    assert client.get("/stockout/alerts", params={"min_risk": 2}).status_code == 422
    reorder = client.get("/reorder", params={"store_id": store}).json()
    quantities = [line["order_quantity"] for line in reorder["lines"]]
    assert all(q > 0 for q in quantities) and quantities == sorted(quantities, reverse=True)
    assert client.get("/reorder", params={"store_id": store, "all": "true"}).json()["count"] == every["count"]


def test_admin_reload_needs_the_key(client: TestClient, serving_workspace: Settings) -> None:
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/admin/reload", headers={"X-API-Key": KEY}).status_code == 200
    with _client(serving_workspace, api_key=None) as keyless:
        refused = keyless.post("/admin/reload", headers={"X-API-Key": KEY})
        assert refused.status_code == 403 and "SHELFCAST_API_KEY" in refused.json()["detail"]
    with _client(serving_workspace, api_key="  ") as empty:  # `SHELFCAST_API_KEY=` as compose passes an unset one
        assert empty.post("/admin/reload", headers={"X-API-Key": "  "}).status_code == 403


def test_reload_swaps_the_model_and_requests_in_flight_keep_theirs(copy: Settings) -> None:
    body = {"store_id": "S001", "item_id": "I0001"}
    with _client(copy) as client:
        old = client.app.state.shelfcast.snapshot  # type: ignore[attr-defined]
        assert client.post("/predict", json=body).json()["model_version"] == "1"
        make_champion(
            copy, run_train(copy, task="stockout", folds=1, stockout_config=SERVE_FAST_STOCKOUT, promote=False)
        )
        assert client.post("/predict", json=body).json()["model_version"] == "1", "no swap before a reload"

        versions: list[str] = []
        errors: list[int] = []

        def hammer() -> None:
            for _ in range(30):
                answer = client.post("/predict", json=body)
                (versions if answer.status_code == 200 else errors).append(
                    answer.json()["model_version"] if answer.status_code == 200 else answer.status_code
                )

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        reload = client.post("/admin/reload", headers={"X-API-Key": KEY})
        for t in threads:
            t.join()
        assert reload.status_code == 200, reload.text
        assert reload.json()["stockout_version"] == "2"
        assert not errors and set(versions) <= {"1", "2"}
        assert client.post("/predict", json=body).json()["model_version"] == "2"
        # A request that took the old snapshot before the swap still scores with the old model to the end.
        assert old.stockout_version == "1" and old.scorer.score(
            old.scorer.matrix(old.scorer.rows([("S001", "I0001")]), count=1)
        )
        assert client.app.state.shelfcast.snapshot is not old  # type: ignore[attr-defined]


def test_unreachable_registry_serves_the_local_copy(copy: Settings) -> None:
    with _client(copy, mlflow_tracking_uri="http://127.0.0.1:9") as client:
        answer = client.post("/predict", json={"store_id": "S001", "item_id": "I0001"})
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        models = client.get("/models").json()
        assert models["stockout"]["served"]["from_registry"] is False
        assert "127.0.0.1:9" in models["registry_error"]


def test_no_model_falls_back_to_the_rule_baseline(tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path)
    with _client(settings) as client:
        assert client.get("/ready").json()["stockout_model"].startswith("rule-baseline")
        answer = client.post("/predict", json={"store_id": "S001", "item_id": "I0001"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model_version"], body["fallback"], body["risk"] in (0.0, 1.0)) == ("rule-baseline", True, True)
        empty = client.post("/predict", json={"store_id": "S001", "item_id": "I0001", "on_hand": 0}).json()
        assert empty["label"] is True, "no stock on hand is below any safety stock"
        explicit = client.post("/predict", json={"features": {"price": 1.0}})
        assert explicit.status_code == 503 and "no model to score explicit features" in explicit.json()["detail"]
        assert client.get("/forecast", params={"store_id": "S001", "item_id": "I0001"}).status_code == 404
        metrics = client.get("/metrics").text
        assert 'shelfcast_fallbacks_total{reason="no stockout model"} 2.0' in metrics
        assert "shelfcast_serving_fallback 1.0" in metrics


def test_an_empty_workspace_is_alive_but_not_ready(tmp_path: Path) -> None:
    with _client(Settings(workspace=tmp_path / "nothing")) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and "shelfcast ingest" in ready.json()["detail"]
        assert client.post("/predict", json={"store_id": "S001", "item_id": "I0001"}).status_code == 503


def test_a_crash_is_a_500_without_a_traceback(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = client.app.state.shelfcast.snapshot.scorer  # type: ignore[attr-defined]

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(scorer, "score", broken)
    answer = client.post("/predict", json={"store_id": "S001", "item_id": "I0001"})
    assert answer.status_code == 500
    assert "internal error" in answer.json()["detail"]
    assert "secret" not in answer.text and "Traceback" not in answer.text


def test_a_failing_backend_in_a_route_is_a_500_not_a_4xx(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only LookupError and ValueError domain errors are the request's fault (404, 422)."""
    from shelfcast.errors import StoreError

    scorer = client.app.state.shelfcast.snapshot.scorer  # type: ignore[attr-defined]

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("postgresql://db is unreachable")

    monkeypatch.setattr(scorer, "score", broken)
    answer = client.post("/predict", json={"store_id": "S001", "item_id": "I0001"})
    assert answer.status_code == 500 and "internal error" in answer.json()["detail"]


def test_metrics_count_routes_labels_and_the_served_version(client: TestClient) -> None:
    client.post("/predict", json={"store_id": "S001", "item_id": "I0001"})
    client.post("/predict", json={"store_id": "S001", "item_id": "NOPE"})
    text = client.get("/metrics").text
    assert 'shelfcast_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'shelfcast_requests_total{method="POST",route="/predict",status="404"}' in text
    assert 'shelfcast_request_errors_total{kind="client",route="/predict"}' in text
    assert 'shelfcast_request_seconds_bucket{le="0.005",route="/predict"}' in text
    assert 'shelfcast_predictions_total{label="ok",model_version="1"}' in text
    assert 'shelfcast_model_info{name="shelfcast-stockout",task="stockout",version="1"} 1.0' in text
    assert "shelfcast_serving_fallback 0.0" in text
    # the scoring day the read routes answer from, 00:00 UTC as Unix time (the stale-predictions alert)
    day = dt.date.fromisoformat(client.get("/ready").json()["predictions"].removeprefix("scored on "))
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()
    gauge = re.search(r"^shelfcast_last_scoring_day_timestamp_seconds (\S+)$", text, re.MULTILINE)
    assert gauge is not None and float(gauge.group(1)) == midnight, text


def test_postgres_prediction_store(serving_workspace: Settings, copy: Settings, postgres_table: str) -> None:
    from shelfcast.jobs.score import run_score

    settings = Settings(workspace=copy.workspace, prediction_store="postgres", prediction_table=postgres_table)
    run_score(settings, horizon=SERVE_HORIZON, now=NOW)
    with _client(copy, prediction_store="postgres", prediction_table=postgres_table) as client:
        assert client.get("/ready").json()["predictions"] == f"scored on {NOW.date()}"
        answer = client.get("/forecast", params={"store_id": "S001", "item_id": "I0001"})
        assert answer.status_code == 200 and len(answer.json()["points"]) == SERVE_HORIZON
    with _client(copy, prediction_store="postgres", postgres_url="postgresql://127.0.0.1:1/test") as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "unreachable" in ready.json()["detail"]


def test_a_task_the_policy_put_in_fallback_is_answered_by_the_rule(copy: Settings) -> None:
    from shelfcast.io.policy_log import Fallback, PolicyState, write_state

    held = {"stockout": Fallback("stockout", "live accuracy collapsed", "2026-11-24")}
    write_state(copy, PolicyState(fallback=held, last_retrain_at="2026-11-24T03:00:00+00:00", retrains=2))
    with _client(copy) as client:
        body = client.post("/predict", json={"store_id": "S001", "item_id": "I0001"}).json()
        assert (body["model_version"], body["fallback"]) == ("rule-baseline", True)
        assert "live accuracy collapsed" in client.get("/models").json()["fallback"]
        metrics = client.get("/metrics").text
        assert "shelfcast_retrains 2.0" in metrics
        assert 'shelfcast_task_fallback{task="stockout"} 1.0' in metrics
        assert 'shelfcast_task_fallback{task="demand"} 0.0' in metrics
        assert "shelfcast_last_retrain_timestamp_seconds 1.7954892e+09" in metrics
    write_state(copy, PolicyState())  # a healthy model promoted again: a reload serves it
    with _client(copy) as client:
        assert client.post("/predict", json={"store_id": "S001", "item_id": "I0001"}).json()["model_version"] == "1"
