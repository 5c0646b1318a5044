"""Helpers of the service tests: a small simulated chain with stock, ingested, with champions."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW, TODAY

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.promote import promote_version
from shelfcast.jobs.train import TrainReport
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

SERVE_CHAIN = SimConfig(n_stores=3, n_items=4, n_days=300, seed=8, min_base_demand=1.0, max_base_demand=30.0)
SERVE_FAST = ForecastConfig(n_origins=30, n_estimators=60, learning_rate=0.1, num_leaves=15, strategy="direct")
SERVE_FAST_STOCKOUT = StockoutConfig(n_origins=20, n_estimators=30, learning_rate=0.2, num_leaves=7)
SERVE_HORIZON = 7


def ingest_chain(
    root: Path, config: SimConfig = SERVE_CHAIN, *, sales_only: bool = False, drop: tuple[str, ...] = ()
) -> Settings:
    """Simulate `config` and ingest it into `root/ws` (without the inventory for `sales_only`, without the
    columns `drop` in any table)."""
    sim = simulate(config)
    folder = root / "raw"
    folder.mkdir(parents=True)
    for name, frame in sim.tables().items():
        if not (sales_only and name == "inventory"):
            frame.drop(drop, strict=False).write_parquet(folder / f"{name}.parquet")
    (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    settings = Settings(workspace=root / "ws")
    run_ingest(get_source("canonical"), folder, settings=settings, today=TODAY, now=NOW)
    return settings


def make_champion(settings: Settings, report: TrainReport) -> str:
    """The trained version made champion, forced past the gates if the tiny chain fails them; its version."""
    if report.promotion is None or not report.promotion.promoted:
        promote_version(settings, report.task, report.version, force=True)
    return report.version


def train_both(settings: Settings) -> None:
    make_champion(settings, run_train(settings, task="demand", folds=1, horizon=14, forecast_config=SERVE_FAST))
    make_champion(
        settings,
        run_train(settings, task="stockout", folds=1, stockout_config=SERVE_FAST_STOCKOUT, forecast_config=SERVE_FAST),
    )


# `shelfcast serve` in a subprocess, for the e2e tests.
KEY = "e2e-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read().decode()
            status = answer.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


def serve_process(
    workspace: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[str]:
    """Start `shelfcast serve` on a free port, yield its base URL once /ready answers 200, stop it after.

    Its output goes to `log` (a file, not a pipe nobody reads: the access log would fill it and block the server).
    """
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_", "PROMETHEUS_"))}
    log = log or workspace.parent / f"serve-{port}.log"
    output = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "serve", "-w", str(workspace), "--port", str(port), *args],
        env=clean | {"SHELFCAST_API_KEY": KEY} | (env or {}),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if call(f"{base}/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("the service did not become ready in 120 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        output.close()


def check_every_endpoint(base: str, *, store: str = "S001", item: str = "I0001", version: str = "1") -> None:
    """Every route of a running `shelfcast serve` answers as it should."""
    assert call(f"{base}/health") == (200, {"status": "ok"})
    status, docs = call(f"{base}/openapi.json")
    assert status == 200 and "/predict" in docs["paths"]
    status, risk = call(f"{base}/predict", {"store_id": store, "item_id": item})
    assert status == 200 and risk["model_version"] == version, risk
    status, batch = call(f"{base}/predict/batch", {"rows": [{"store_id": store, "item_id": item}] * 3})
    assert status == 200 and len(batch["predictions"]) == 3
    assert call(f"{base}/forecast?store_id={store}&item_id={item}")[0] == 200
    assert call(f"{base}/stockout/alerts?store_id={store}&min_risk=0")[0] == 200
    assert call(f"{base}/reorder?store_id={store}")[0] == 200
    assert call(f"{base}/models")[1]["stockout"]["champion"]["version"] == version
    assert call(f"{base}/admin/reload", {})[0] == 401
    assert call(f"{base}/admin/reload", {}, {"X-API-Key": KEY})[0] == 200
    status, text = call(f"{base}/metrics")
    assert status == 200 and 'route="/predict"' in text
    status, wrong = call(f"{base}/predict", {"store_id": store, "item_id": item, "on_hand": -3})
    assert status == 422 and wrong["detail"].startswith("on_hand:")
