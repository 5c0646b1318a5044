"""`shelfcast retrain` on a sales-only workspace, per-task cooldowns, and a dry run that changes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW, run_cli
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig
from shelfcast.io.policy_log import PolicyState, read_events, read_state, write_state
from shelfcast.settings import Settings
from shelfcast.types import Task
from shelfcast.workflows.retrain import act_on_monitoring, task_state

pytestmark = pytest.mark.integration
SMALL = SimConfig(n_stores=2, n_items=2, n_days=120, seed=3, min_base_demand=1.0, max_base_demand=20.0)


def _no_training(settings: Settings, task: Task, tags: Mapping[str, str]) -> Any:
    raise AssertionError(f"{task} must not be trained")


def _scrape(folder: Path) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from shelfcast.service.metrics import MonitoringCollector

    registry = CollectorRegistry()
    registry.register(MonitoringCollector(folder))
    return generate_latest(registry).decode()


def test_stockout_on_sales_only_data_is_not_applicable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = ingest_chain(tmp_path, SMALL, sales_only=True)
    with caplog.at_level(logging.WARNING):
        report = act_on_monitoring(settings, now=NOW, tasks=(Task.STOCKOUT,), force=True, trainer=_no_training)
    (outcome,) = report.outcomes
    assert outcome.decision.action == "not_applicable", outcome.decision.reason
    assert "sales-only data" in outcome.decision.reason and outcome.outcome == "nothing to do"
    state = read_state(settings)
    assert state.fallback == {} and state.retrains == 0 and state.last_retrain_at is None
    assert read_events(settings).is_empty()  # no alert, nothing to list
    assert not [r for r in caplog.records if "registry" in r.getMessage() or "tag" in r.getMessage()]
    # Demand is not held by a cooldown the stockout task never started.
    assert task_state(settings, Task.DEMAND, None, now=NOW).hours_since_retrain is None
    assert 'shelfcast_task_fallback{task="stockout"} 0.0' in _scrape(settings.workspace / "monitoring")


def test_a_fallback_an_older_version_left_on_sales_only_data_is_lifted(tmp_path: Path) -> None:
    from shelfcast.io.policy_log import Fallback

    settings = ingest_chain(tmp_path, SMALL, sales_only=True)
    write_state(settings, PolicyState(fallback={"stockout": Fallback("stockout", "no champion", "2026-11-01")}))
    act_on_monitoring(settings, now=NOW, tasks=(Task.STOCKOUT,), trainer=_no_training)
    assert read_state(settings).fallback == {}
    assert 'shelfcast_task_fallback{task="stockout"} 0.0' in _scrape(settings.workspace / "monitoring")


def test_cooldowns_are_per_task(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    at = (NOW - dt.timedelta(hours=2)).isoformat()
    state = {"fallback": {}, "retrains": 1, "last_retrain_at": at, "retrained_at": {"demand": at}}
    (tmp_path / "ws" / "monitoring").mkdir(parents=True)
    (tmp_path / "ws" / "monitoring" / "state.json").write_text(json.dumps(state))
    assert task_state(settings, Task.DEMAND, None, now=NOW).hours_since_retrain == pytest.approx(2.0)
    assert task_state(settings, Task.STOCKOUT, None, now=NOW).hours_since_retrain is None
    assert read_state(settings).retrains == 1 and read_state(settings).last_retrain_at is not None


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _runs(settings: Settings) -> list[str]:
    from mlflow.tracking import MlflowClient

    from shelfcast.io.tracking import connect

    client = MlflowClient(connect(settings))
    ids = [e.experiment_id for e in client.search_experiments()]
    return sorted(r.info.run_id for r in client.search_runs(ids))


def test_a_dry_run_changes_nothing(serving_workspace: Settings, tmp_path: Path) -> None:
    shutil.copytree(serving_workspace.workspace, tmp_path / "ws")
    settings = Settings(workspace=tmp_path / "ws")
    runs, tree = _runs(settings), _tree(settings.workspace)
    report = act_on_monitoring(settings, now=NOW, force=True, dry_run=True, trainer=_no_training)
    assert _runs(settings) == runs
    assert _tree(settings.workspace) == tree
    assert {o.outcome for o in report.outcomes} == {"dry run: nothing done"}
    assert "dry run: no monitoring report written" in report.notes
    # The same as a user runs it.
    shown = run_cli("retrain", "--dry-run", "--force", "--workspace", str(settings.workspace), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert _runs(settings) == runs
    assert _tree(settings.workspace) == tree
