"""The dashboard's Store and Item pages (Streamlit's AppTest, in-process) on a workspace the real pipeline built:
what they show equals the prediction store and the lake; filters change it; a half-built workspace gets a guide."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from helpers import live_settings, require_redis

from shelfcast.dashboard import APP
from shelfcast.dashboard.tables import order_list
from shelfcast.io.lake import Lake
from shelfcast.io.policy_log import Fallback, PolicyState, write_state
from shelfcast.io.stores import open_store
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration
TIMEOUT = 120  # seconds for one script run: generous for a loaded machine


def app(workspace: Path, monkeypatch: pytest.MonkeyPatch, **params: str):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SHELFCAST_WORKSPACE", str(workspace))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at


def run_page(at, page: str):  # type: ignore[no-untyped-def]
    # The page opened directly, as by its link (`/item?store=...`): one run of app.py on that page.
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def predictions(settings: Settings) -> pl.DataFrame:
    store = open_store(settings)
    day = store.latest_day()
    return store.read(scored_on=day)


def series_of(frame: pl.DataFrame, store_id: str) -> pl.DataFrame:
    return frame.filter(pl.col("store_id") == store_id).group_by("item_id").agg(pl.all().first()).sort("item_id")


def metrics(at) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {m.label: m.value for m in at.metric}


def test_store_page_shows_the_stores_scoring(serving_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = predictions(serving_workspace)
    store_id = sorted(frame["store_id"].unique())[1]
    expected = series_of(frame, store_id)
    at = run_page(app(serving_workspace.workspace, monkeypatch, store=store_id), "store")
    assert at.selectbox(key="store_pick").value == store_id
    shown = pl.from_pandas(at.dataframe[0].value)
    assert sorted(shown["item_id"]) == expected["item_id"].to_list()
    # Riskiest first, and the risk and order quantity shown are the store's.
    assert shown["stockout_risk"].to_list() == sorted(shown["stockout_risk"].to_list(), reverse=True)
    joined = shown.join(expected, on="item_id", suffix="_stored")
    for column in ("stockout_risk", "order_quantity", "reorder_point", "order_up_to"):
        assert (joined[column] - joined[f"{column}_stored"]).abs().max() < 1e-9, column
    values = metrics(at)
    assert values["Items scored"] == str(expected.height)
    assert values["Flagged at risk"] == str(int(expected["stockout_label"].sum()))
    assert values["To order now"] == str(int((expected["order_quantity"] > 0).sum()))
    orders = int((expected["order_quantity"] > 0).sum())
    assert f"({orders} items to order today" in at.get("download_button")[0].proto.label


def test_store_page_filters_by_risk_and_category(serving_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = predictions(serving_workspace)
    store_id = sorted(frame["store_id"].unique())[0]
    expected = series_of(frame, store_id)
    at = run_page(app(serving_workspace.workspace, monkeypatch, store=store_id), "store")
    middle = float(expected["stockout_risk"].median())  # type: ignore[arg-type]
    at.slider[0].set_value(round(middle, 2)).run()
    shown = pl.from_pandas(at.dataframe[0].value)
    assert shown.height == int((expected["stockout_risk"] >= round(middle, 2)).sum())
    assert shown.height < expected.height
    items = Lake(serving_workspace.workspace).read("items")
    category = items.filter(pl.col("item_id").is_in(expected["item_id"].to_list()))["category"][0]
    at.slider[0].set_value(0.0).run()
    at.multiselect[0].set_value([category]).run()
    shown = pl.from_pandas(at.dataframe[0].value)
    wanted = items.filter(pl.col("category") == category)["item_id"]
    assert shown.height > 0 and set(shown["item_id"]) == set(expected["item_id"]) & set(wanted)


def test_order_list_is_what_to_order_largest_first() -> None:
    items = pl.DataFrame(
        {
            "store_id": ["S1"] * 4,
            "item_id": ["a", "b", "c", "d"],
            "order_quantity": [0.0, 5.04, None, 9.0],
            "on_hand": [3.0, 1.0, None, 0.0],
            "stockout_risk": [0.1, 0.5, 0.2, 0.9],
        }
    )
    listed = order_list(items)
    assert listed["item_id"].to_list() == ["d", "b"]
    assert listed["order_quantity"].to_list() == [9.0, 5.0]  # rounded to a tenth of a unit
    assert listed.columns == ["store_id", "item_id", "order_quantity", "on_hand", "stockout_risk"]


def test_an_unknown_store_in_the_link_gets_a_clear_message(
    serving_workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_page(app(serving_workspace.workspace, monkeypatch, store="NOPE"), "store")
    assert any("Unknown store `NOPE`" in w.value for w in at.warning)
    at = run_page(app(serving_workspace.workspace, monkeypatch, store="NOPE", item="NADA"), "item")
    assert any("Unknown store `NOPE`" in w.value for w in at.warning)


def test_item_page_shows_the_series(serving_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = predictions(serving_workspace)
    store_id, item_id = frame.sort("stockout_risk", descending=True).select("store_id", "item_id").row(0)
    at = run_page(app(serving_workspace.workspace, monkeypatch, store=store_id, item=item_id), "item")
    assert at.selectbox(key="item_store_pick").value == store_id
    assert at.selectbox(key="item_item_pick").value == item_id
    row = frame.filter((pl.col("store_id") == store_id) & (pl.col("item_id") == item_id)).row(0, named=True)
    values = metrics(at)
    assert values["Stockout risk"] == f"{row['stockout_risk']:.0%}"
    assert values["Order now"] == f"{row['order_quantity']:,.0f} units"
    assert values["Reorder at / up to"] == f"{row['reorder_point']:,.0f} / {row['order_up_to']:,.0f}"
    # The history shown: its stockout days counted from the lake.
    lake = Lake(serving_workspace.workspace)
    one = (pl.col("store_id") == store_id) & (pl.col("item_id") == item_id)
    stock = lake.scan("inventory").filter(one).collect().sort("date").tail(91)
    outs = stock.filter(pl.col("on_hand") <= 0).height
    caption = next(c.value for c in at.caption if "with a stockout" in c.value)
    assert f"91 days shown, {outs} with a stockout" in caption
    forecast = at.expander[0].dataframe[0].value
    assert len(forecast) == frame.filter(one).height
    # Why: the model's own explanation of this series, the same as the explain job's.
    from shelfcast.jobs.explain import explain_series

    explained = explain_series(serving_workspace, store_id, item_id)
    shown = {m.value.splitlines()[0]: m.value.splitlines()[1:] for m in at.markdown if m.value.startswith("**▲")}
    shown |= {m.value.splitlines()[0]: m.value.splitlines()[1:] for m in at.markdown if m.value.startswith("**▼")}
    for title, direction in (("**▲ Raises the risk**", "up"), ("**▼ Lowers the risk**", "down")):
        expected = [f"- {r.text}" for r in explained.reasons if r.direction == direction] or ["- nothing"]
        assert shown[title] == expected
    assert explained.reasons
    assert abs(explained.risk - row["stockout_risk"]) < 1e-9


def test_a_task_in_fallback_shows_a_banner_on_every_page(
    serving_workspace: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(serving_workspace.workspace, workspace)
    settings = Settings(workspace=workspace)
    write_state(settings, PolicyState(fallback={"stockout": Fallback("stockout", "live F1 fell", "2026-11-20", "1")}))
    for page in ("store", "item"):
        at = run_page(app(workspace, monkeypatch), page)
        assert any("stockout is in fallback" in e.value and "live F1 fell" in e.value for e in at.error), page


def test_an_empty_workspace_gets_a_guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "empty"
    workspace.mkdir()
    for page in ("store", "item"):
        at = run_page(app(workspace, monkeypatch), page)
        assert any("No predictions yet" in i.value and "shelfcast score" in i.value for i in at.info), page


def test_item_page_shows_the_live_day(
    serving_workspace: Settings, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    require_redis()
    from shelfcast.jobs.stream import seed

    settings = live_settings(serving_workspace.workspace, prefix)
    seed(settings)
    frame = predictions(serving_workspace)
    store_id, item_id = frame.select("store_id", "item_id").row(0)
    monkeypatch.setenv("SHELFCAST_LIVE__PREFIX", prefix)
    at = run_page(app(serving_workspace.workspace, monkeypatch, store=store_id, item=item_id), "item")
    values = metrics(at)
    lake = Lake(serving_workspace.workspace)
    one = (pl.col("store_id") == store_id) & (pl.col("item_id") == item_id)
    last = lake.scan("inventory").filter(one).collect().sort("date").row(-1, named=True)
    assert values["Last stock count"] == f"{last['on_hand']:,.0f} units"
    sold = lake.scan("sales").filter(one).collect().sort("date").row(-1, named=True)
    assert values[f"Sold on {sold['date']}"] == f"{sold['units']:,.0f} units"


def test_a_new_scoring_is_shown_on_the_next_load(
    serving_workspace: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(serving_workspace.workspace, workspace)
    settings = Settings(workspace=workspace)
    frame = predictions(settings)
    store_id = sorted(frame["store_id"].unique())[0]
    at = run_page(app(workspace, monkeypatch, store=store_id), "store")
    before = pl.from_pandas(at.dataframe[0].value)
    # The same day scored again with other order quantities: the page must not keep the cached rows.
    store = open_store(settings)
    store.write(frame.with_columns(pl.col("order_quantity") + 1000.0), scored_on=frame["scored_on"][0])
    at = run_page(app(workspace, monkeypatch, store=store_id), "store")
    after = pl.from_pandas(at.dataframe[0].value).join(before, on="item_id", suffix="_before")
    assert ((after["order_quantity"] - after["order_quantity_before"]) - 1000.0).abs().max() < 1e-9


def test_the_registry_is_warmed_only_where_it_exists(serving_workspace: Settings, tmp_path: Path) -> None:
    from shelfcast.dashboard.models_data import warm_registry
    from shelfcast.io.tracking import mlflow_dir

    empty = Settings(workspace=tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    warm_registry(empty)  # nothing trained: no MLflow store is made by looking
    assert not mlflow_dir(empty).exists()
    server = Settings(workspace=tmp_path / "empty", mlflow_tracking_uri="http://127.0.0.1:9")
    warm_registry(server)  # a server is left alone (an unreachable one would hold the start)
    warm_registry(serving_workspace)


def test_sales_only_data_shows_forecasts_and_says_there_is_no_risk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import NOW
    from serving import SERVE_FAST, ingest_chain, make_champion

    from shelfcast.jobs.score import run_score
    from shelfcast.workflows.training import run_train

    settings = ingest_chain(tmp_path, sales_only=True)
    make_champion(settings, run_train(settings, task="demand", folds=1, horizon=14, forecast_config=SERVE_FAST))
    run_score(settings, horizon=7, now=NOW)
    frame = predictions(settings)
    store_id, item_id = frame.select("store_id", "item_id").row(0)
    at = run_page(app(settings.workspace, monkeypatch, store=store_id), "store")
    assert metrics(at)["Flagged at risk"] == "n/a" and metrics(at)["To order now"] == "n/a"
    captions = " ".join(c.value for c in at.caption)
    assert "No stockout risk on this data" in captions and "No reorder advice" in captions
    shown = pl.from_pandas(at.dataframe[0].value)
    assert sorted(shown["item_id"]) == sorted(frame.filter(pl.col("store_id") == store_id)["item_id"].unique())
    at = run_page(app(settings.workspace, monkeypatch, store=store_id, item=item_id), "item")
    assert metrics(at)["Stockout risk"] == "n/a"
    assert any("nothing to explain" in c.value for c in at.caption)
    assert (
        len(at.expander[0].dataframe[0].value)
        == frame.filter((pl.col("store_id") == store_id) & (pl.col("item_id") == item_id)).height
    )
