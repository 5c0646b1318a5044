"""The dashboard's Models, Monitoring and Data pages through Streamlit's AppTest, on a real workspace.

The workspace is a copy of `serving_workspace` (champions v1 of both models,
one scoring) with a second demand version promoted over the first, two real
monitoring runs, policy events recorded through the policy log and rows put
in the quarantine through the lake: what the pages show is compared with
what the registry, the reports and the lake hold.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from helpers import NOW
from serving import SERVE_FAST
from streamlit.testing.v1 import AppTest

from shelfcast.dashboard import APP
from shelfcast.dashboard import PAGES as PAGE_DIR
from shelfcast.io.lake import QUARANTINE, Lake
from shelfcast.io.policy_log import Fallback, PolicyEvent, PolicyState, read_events, record_event, write_state
from shelfcast.io.registry import CHALLENGER, CHAMPION, PREVIOUS, Registry
from shelfcast.jobs.monitor import run_monitor
from shelfcast.jobs.promote import promote_version
from shelfcast.jobs.stream import seed, status
from shelfcast.settings import Settings
from shelfcast.types import TASKS
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration
PAGES = ("models", "monitoring", "data")
BAD_ROWS = {"negative_units": 3, "invalid_date": 2, "unknown_store": 1}


@pytest.fixture(scope="module")
def ops_workspace(serving_workspace: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("dashboard-ops") / "ws"
    shutil.copytree(serving_workspace.workspace, root)
    settings = Settings(workspace=root)
    # A second demand version made champion: v1 becomes the previous champion.
    report = run_train(settings, task="demand", folds=1, horizon=14, forecast_config=SERVE_FAST)
    if report.promotion is None or not report.promotion.promoted:
        promote_version(settings, "demand", report.version, force=True)
    run_monitor(settings, now=NOW)
    run_monitor(settings, now=NOW + dt.timedelta(hours=1))
    record_event(settings, PolicyEvent(NOW, "demand", "retrain", ["drift: lag_1"], "1", "v2 promoted", "2"))
    record_event(settings, PolicyEvent(NOW, "stockout", "retrain", ["degraded"], "1", "champion v1 kept", None))
    rows = [
        {"source": "bad.csv", "line": 10 + k, "table": "sales", "rule": rule, "detail": f"{rule} #{k}", "raw": "{}"}
        for rule, n in BAD_ROWS.items()
        for k in range(n)
    ]
    Lake(root).replace_quarantine(["bad.csv"], pl.DataFrame(rows))
    return settings


def _page(monkeypatch: pytest.MonkeyPatch, workspace: Path, page: str, **env: str) -> AppTest:
    monkeypatch.setenv("SHELFCAST_WORKSPACE", str(workspace))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page(f"{PAGE_DIR.name}/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one dataframe on the page with these columns."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _frames(at: AppTest, *columns: str) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]


def _metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def test_models_page_shows_the_registry(ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(monkeypatch, ops_workspace.workspace, "models")
    registry = Registry(ops_workspace)
    cards = [m.value for m in at.markdown if m.value.startswith("**")]
    histories = _frames(at, "version", "aliases", "gate_passed")
    assert len(histories) == len(TASKS)
    for task, history in zip(TASKS, histories, strict=True):
        versions = registry.versions(task)
        assert history["version"].tolist() == [int(v.version) for v in reversed(versions)]
        assert history["aliases"].tolist() == [", ".join(v.aliases) for v in reversed(versions)]
        assert history["gate_passed"].tolist() == [v.tags.get("gate.passed") == "true" for v in reversed(versions)]
        for alias, title in ((CHAMPION, "Champion"), (CHALLENGER, "Challenger"), (PREVIOUS, "Previous champion")):
            info = registry.alias(task, alias)
            wanted = f"**{title}**: none" if info is None else f"**{title}**: v{info.version} "
            assert any(card.startswith(wanted) for card in cards), (task, alias, cards)
    demand = registry.alias("demand", CHAMPION)
    assert demand is not None and demand.version == "2" and registry.alias("demand", PREVIOUS) is not None
    # The gate figures shown are the version tags.
    gates = [g for g in _frames(at, "gate figure", "value") if "wape" in set(g["gate figure"])]
    assert gates[0].set_index("gate figure")["value"]["wape"] == pytest.approx(float(demand.tags["gate.wape"]))
    # The backtest table holds the champion run's WAPE of the served model and of every baseline.
    metrics = registry.run(demand.run_id).data.metrics
    backtest = _frames(at, "model", "role", "value")[0].set_index("model")["value"]
    assert {"naive", "seasonal_naive", "moving_average_28"} <= set(backtest.index)
    for model, value in backtest.items():
        assert value == pytest.approx(metrics[f"wape.{model}"])


def test_models_page_lists_the_policy_events(ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(monkeypatch, ops_workspace.workspace, "models")
    shown = _frame(at, "event", "action", "outcome")
    recorded = read_events(ops_workspace)
    assert len(shown) == recorded.height == 2
    assert dict(zip(shown["task"], shown["event"], strict=True)) == {"demand": "promotion", "stockout": "refusal"}


def test_backtest_follows_the_chosen_metric(ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(monkeypatch, ops_workspace.workspace, "models")
    at.selectbox(key="bt_metric_demand").set_value("mae").run()
    demand = Registry(ops_workspace).alias("demand", CHAMPION)
    assert demand is not None
    metrics = Registry(ops_workspace).run(demand.run_id).data.metrics
    table = _frames(at, "model", "role", "value")[0].set_index("model")["value"]  # demand's tab comes first
    assert table.to_dict() == pytest.approx({m: metrics[f"mae.{m}"] for m in table.index})
    assert len(table) >= 4  # the served model and the three baselines at least


def test_monitoring_page_shows_the_latest_report(ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(monkeypatch, ops_workspace.workspace, "monitoring")
    latest = json.loads((ops_workspace.workspace / "monitoring" / "latest.json").read_text())
    assert _metric(at, "Reports") == "2"
    assert latest["created_at"].startswith(_metric(at, "Latest report").replace(" ", "T"))
    for task, shown in zip(TASKS, _frames(at, "feature", "effect", "threshold", "drifted"), strict=True):
        features = latest["tasks"][task]["features"]
        assert set(shown["feature"]) == set(features) and len(features) > 0
        for row in shown.itertuples():
            assert row.effect == pytest.approx(features[row.feature]["effect"])
            assert row.drifted == features[row.feature]["alarm"]
            assert row.threshold == (ops_workspace.drift.psi if row.statistic == "PSI" else ops_workspace.drift.js)
    report = Path(latest_folder(ops_workspace)) / "report.html"
    assert any(str(report) in c.value for c in at.caption)
    buttons = at.get("download_button")
    assert len(buttons) == 1


def latest_folder(settings: Settings) -> str:
    names = sorted(p.name for p in (settings.workspace / "monitoring").iterdir() if p.is_dir())
    return str(settings.workspace / "monitoring" / names[-1])


def test_data_page_counts_the_quarantine_by_rule(ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(monkeypatch, ops_workspace.workspace, "data")
    quarantine = Lake(ops_workspace.workspace).read(QUARANTINE)
    counts = dict(quarantine.group_by("rule").len().iter_rows())
    shown = _frame(at, "rule", "rows", "tables")
    assert dict(zip(shown["rule"], shown["rows"], strict=True)) == counts
    assert {r: counts[r] for r in BAD_ROWS} == BAD_ROWS
    manifest = Lake(ops_workspace.workspace).manifest()["tables"]
    tables = _frame(at, "table", "rows", "series")
    assert dict(zip(tables["table"], tables["rows"], strict=True)) == {t: i["rows"] for t, i in manifest.items()}
    # Choosing a rule shows its rows.
    for rule in ("invalid_date", "negative_units"):
        at.selectbox(key="quarantine_rule").set_value(rule).run()
        sample = _frame(at, "source", "line", "detail")
        assert sample["detail"].tolist() == [f"{rule} #{k}" for k in range(BAD_ROWS[rule])]
    assert any("The live path is off" in c.value for c in at.caption)


def test_data_page_shows_the_stream_when_live(
    ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    settings = Settings(workspace=ops_workspace.workspace, live={"prefix": prefix})
    seed(settings)
    at = _page(monkeypatch, ops_workspace.workspace, "data", SHELFCAST_LIVE__PREFIX=prefix)
    now = status(settings)
    assert _metric(at, "Dead letters") == str(now.dead_letters)
    assert _metric(at, "Events applied") == f"{now.stats.applied:,}"
    assert any(f"{now.series:,} series" in c.value and prefix in c.value for c in at.caption)


def test_an_unreachable_redis_is_a_problem_on_the_data_page(
    ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page(monkeypatch, ops_workspace.workspace, "data", SHELFCAST_REDIS_URL="redis://127.0.0.1:9/0")
    assert next(e.value for e in at.error if "live stream" in e.value).startswith("Cannot read the live stream")
    assert _frame(at, "rule", "rows", "tables").shape[0] > 0  # the rest of the page is still there


def test_the_fallback_banner_is_on_every_page(ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    state = PolicyState(fallback={"stockout": Fallback("stockout", "degraded twice", NOW.isoformat(), "1")})
    write_state(ops_workspace, state)
    try:
        for page in PAGES:
            at = _page(monkeypatch, ops_workspace.workspace, page)
            assert any("stockout is in fallback" in e.value for e in at.error), page
    finally:
        write_state(ops_workspace, PolicyState())
    at = _page(monkeypatch, ops_workspace.workspace, "models")
    assert not any("in fallback" in e.value for e in at.error)


@pytest.mark.parametrize(
    ("page", "guide"),
    [
        ("models", "No models registered yet: run `shelfcast train`."),
        ("monitoring", "No monitoring report yet: run `shelfcast monitor`."),
        ("data", "No data yet: run `shelfcast ingest ... (or shelfcast demo)`."),
    ],
)
def test_an_empty_workspace_gets_a_guide(
    page: str, guide: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    at = _page(monkeypatch, empty, page)
    assert [i.value for i in at.info] == [guide]
    assert list(empty.iterdir()) == []  # looking creates nothing (no MLflow store)


def test_an_unreachable_registry_is_a_problem_not_a_traceback(
    ops_workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page(monkeypatch, ops_workspace.workspace, "models", SHELFCAST_MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    assert len(at.error) == 1 and "Cannot read the model registry" in at.error[0].value
    assert "127.0.0.1:9" in at.error[0].value
