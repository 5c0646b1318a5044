"""What the service accepts and how it accounts for it (issue 14): explicit features, bad values, the bound on
cutoffs per request, unknown query parameters, offline docs and the metrics' route labels."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from shelfcast.service.app import create_app
from shelfcast.settings import ServeConfig, Settings

pytestmark = pytest.mark.integration
IDS = {"store_id": "S001", "item_id": "I0001"}


@pytest.fixture(scope="module")
def client(serving_workspace: Settings) -> Iterator[TestClient]:
    settings = Settings(workspace=serving_workspace.workspace, serve=ServeConfig(max_origins=2))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("count", [0, 7.5, 1000])
def test_inventory_is_the_stock_count_on_hand_is(client: TestClient, count: float) -> None:
    by_feature = client.post("/predict", json=IDS | {"features": {"inventory": count}})
    by_count = client.post("/predict", json=IDS | {"on_hand": count})
    assert by_feature.status_code == by_count.status_code == 200, by_feature.text
    assert by_feature.json() == by_count.json()
    scorer = client.app.state.shelfcast.snapshot.scorer  # type: ignore[attr-defined]
    rows = scorer.rows([("S001", "I0001")])
    assert (
        scorer.matrix(rows, count=1, features=[{"inventory": count}])
        == scorer.matrix(rows, count=1, on_hand=[float(count)])
    ).all()
    both = client.post("/predict", json=IDS | {"on_hand": count, "features": {"inventory": count}})
    assert both.status_code == 422 and "give the stock count once" in both.json()["detail"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (IDS | {"features": {"inventory": -100}}, "features.inventory: must not be negative"),
        ({"features": {"daily_sales": -1.0}}, "features.daily_sales: must not be negative"),
        ({"features": {"daily_sales": -1e308}}, "features.daily_sales: -1e+308 is beyond the model's float32 range"),
        ({"features": {"price": 1e308}}, "features.price: 1e+308 is beyond the model's float32 range"),
        ({"features": {"lag_7": -2.0}}, "features.lag_7: must not be negative"),
        ({"features": {"inventory": 1e13}}, "features.inventory: over 1e+12 units on hand"),
    ],
)
def test_negative_stock_or_sales_and_values_beyond_float32_are_refused(
    client: TestClient, body: dict[str, object], needle: str
) -> None:
    answer = client.post("/predict", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(needle), answer.json()
    batch = client.post("/predict/batch", json={"rows": [IDS, body]})
    assert batch.status_code == 422 and batch.json()["detail"].startswith(f"rows.1.{needle}")


def test_a_batch_holds_a_bounded_number_of_cutoffs(client: TestClient) -> None:
    last = client.app.state.shelfcast.snapshot.last_date  # type: ignore[attr-defined]
    days = [(last - dt.timedelta(days=d)).isoformat() for d in (0, 10, 20, 30)]
    within = client.post("/predict/batch", json={"rows": [IDS | {"cutoff": d} for d in days[:3]]})
    assert within.status_code == 200, within.text
    over = client.post("/predict/batch", json={"rows": [IDS | {"cutoff": d} for d in days]})
    assert over.status_code == 422
    assert over.json()["detail"].startswith("3 distinct cutoffs before the latest in one request, over the limit of 2")
    assert "serve.max_origins" in over.json()["detail"]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("/stockout/alerts?min_risk=nan", "min_risk: Input should be a finite number"),
        ("/stockout/alerts?min_risk=0&colour=red", "colour: Extra inputs are not permitted"),
        ("/reorder?store_id=S001&al=true", "al: Extra inputs are not permitted"),
        ("/health?verbose=1", "verbose: Extra inputs are not permitted"),
    ],
)
def test_bad_query_parameters_are_named(client: TestClient, url: str, needle: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == needle
    assert answer.json()["errors"][0]["loc"][0] == "query"


def test_docs_load_without_internet(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html.text)
        assert urls, html.text
        for url in urls:
            assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
            assert client.get(url).status_code == 200, url


def test_metrics_count_every_request_under_its_route(client: TestClient) -> None:
    client.get("/docs")
    client.get("/openapi.json")
    client.post("/predict", content=b"{" + b" " * 1_100_000 + b"}", headers={"content-type": "application/json"})
    client.post("/predict", json={"colour": 1})
    client.get("/no/such/page")
    text = client.get("/metrics").text
    for route, status in [("/docs", 200), ("/openapi.json", 200), ("/predict", 413), ("/predict", 422)]:
        assert f'route="{route}",status="{status}"' in text, (route, status)
    unmatched = [line for line in text.splitlines() if 'route="unmatched"' in line and "requests_total" in line]
    assert unmatched == ['shelfcast_requests_total{method="GET",route="unmatched",status="404"} 1.0']
