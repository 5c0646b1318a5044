"""Helpers of the service tests: a small simulated chain with stock, ingested, with champions."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import NOW, TODAY

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.promote import promote_version
from shelfcast.jobs.train import TrainReport, run_train
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings

SERVE_CHAIN = SimConfig(n_stores=3, n_items=4, n_days=300, seed=8, min_base_demand=1.0, max_base_demand=30.0)
SERVE_FAST = ForecastConfig(n_origins=30, n_estimators=60, learning_rate=0.1, num_leaves=15, strategy="direct")
SERVE_FAST_STOCKOUT = StockoutConfig(n_origins=20, n_estimators=30, learning_rate=0.2, num_leaves=7)
SERVE_HORIZON = 7


def ingest_chain(root: Path, config: SimConfig = SERVE_CHAIN, *, sales_only: bool = False) -> Settings:
    """Simulate `config` and ingest it into `root/ws`."""
    sim = simulate(config)
    folder = root / "raw"
    folder.mkdir(parents=True)
    for name, frame in sim.tables().items():
        if not (sales_only and name == "inventory"):
            frame.write_parquet(folder / f"{name}.parquet")
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
    make_champion(settings, run_train(settings, task="demand", windows=1, horizon=14, forecast_config=SERVE_FAST))
    make_champion(
        settings,
        run_train(
            settings, task="stockout", windows=1, stockout_config=SERVE_FAST_STOCKOUT, forecast_config=SERVE_FAST
        ),
    )
