"""Benchmark of `explain_series` (the dashboard's "why is this item at risk"): seconds per series by chain size.

Setup (not timed): a simulated chain with stock, ingested, and a stockout
champion trained with a small configuration (its size does not change what is
timed: one series' rows read from the lake, its panel and features, one row's
contributions). Timed: `explain_series` on `--series` random series (the first
call apart: it imports and opens the registry), then its parts: the champion
lookup and model load, and the one-series feature row. For scale, the whole
table the service builds at start-up (`load_snapshot`), which explaining one
series this way avoids.

    uv run python bench/bench_explain.py [--chain 10x50x400] [--chain 200x50x400] [--series 20] [--json PATH]
    uv run python bench/bench_explain.py --chain 250x200x400:200x50x400 --no-whole   # 50,000 series
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.io.champion import load_champion
from shelfcast.io.lake import Lake
from shelfcast.io.model_files import load_stockout
from shelfcast.jobs.explain import explain_series, series_row
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.promote import promote_version
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.service.state import load_snapshot
from shelfcast.settings import Settings
from shelfcast.types import Task
from shelfcast.workflows.training import run_train

DEFAULT_JSON = Path(__file__).parent / "results" / "explain.json"
FAST_STOCKOUT = StockoutConfig(n_origins=12, holdout_origins=4, n_estimators=60, learning_rate=0.2, num_leaves=15)
FAST_FORECAST = ForecastConfig(n_origins=10, n_estimators=30, learning_rate=0.2, num_leaves=15, strategy="direct")


def _ingest(settings: Settings, root: Path, config: SimConfig) -> None:
    sim = simulate(config)
    raw = root / f"raw-{config.n_stores}x{config.n_items}x{config.n_days}"
    raw.mkdir(parents=True)
    for name, frame in sim.tables().items():
        frame.write_parquet(raw / f"{name}.parquet")
    (raw / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    del sim
    now = dt.datetime.now(dt.UTC)
    run_ingest(get_source("canonical"), raw, settings=settings, today=now.date(), now=now)


def _config(chain: str) -> SimConfig:
    stores, items, days = (int(v) for v in chain.split("x"))
    return SimConfig(n_stores=stores, n_items=items, n_days=days, seed=3, safety_factor=0.3)


def _workspace(root: Path, chain: str, trained_on: str) -> tuple[Settings, dict[str, float]]:
    """The chain ingested, with a champion trained on `trained_on` (the chain itself, or a smaller one ingested
    first: training on tens of millions of rows does not fit this machine's memory; the model's size does not
    change what is timed)."""
    took: dict[str, float] = {}
    settings = Settings(workspace=root / "ws")
    started = time.perf_counter()
    _ingest(settings, root, _config(trained_on))
    took["simulate_ingest_s"] = time.perf_counter() - started
    started = time.perf_counter()
    report = run_train(
        settings, task=Task.STOCKOUT, folds=1, stockout_config=FAST_STOCKOUT, forecast_config=FAST_FORECAST
    )
    if report.promotion is None or not report.promotion.promoted:
        promote_version(settings, report.task, report.version, force=True)
    took["train_s"] = time.perf_counter() - started
    if trained_on != chain:
        started = time.perf_counter()
        _ingest(settings, root, _config(chain))
        took["simulate_ingest_s"] += time.perf_counter() - started
    return settings, took


def _bench(spec: str, series: int, root: Path, *, whole: bool) -> dict[str, Any]:
    chain, _, trained_on = spec.partition(":")
    stores, items, days = (int(v) for v in chain.split("x"))
    settings, setup = _workspace(root / chain, chain, trained_on or chain)
    keys = [(f"S{s + 1:03d}", f"I{i + 1:04d}") for s in range(stores) for i in range(items)]
    picked = random.Random(0).sample(keys, min(series, len(keys)))
    started = time.perf_counter()
    explain_series(settings, *picked[0])
    first = time.perf_counter() - started
    each = []
    for store, item in picked:
        started = time.perf_counter()
        explain_series(settings, store, item)
        each.append(time.perf_counter() - started)
    started = time.perf_counter()
    model = load_stockout(load_champion(settings, Task.STOCKOUT).folder)
    champion = time.perf_counter() - started
    rows = []
    for store, item in picked:
        started = time.perf_counter()
        series_row(Lake(settings.workspace), model, store, item)
        rows.append(time.perf_counter() - started)
    started = time.perf_counter()
    if whole:
        load_snapshot(settings)
    whole_s = time.perf_counter() - started if whole else None
    return {
        "chain": chain,
        "trained_on": trained_on or chain,
        "series": stores * items,
        "rows": stores * items * days,
        "first_call_s": first,
        "median_s": statistics.median(each),
        "max_s": max(each),
        "champion_load_s": champion,
        "series_row_median_s": statistics.median(rows),
        "whole_table_s": whole_s,
        **setup,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chain",
        action="append",
        help="stores x items x days (repeatable); `A:B` trains the champion on chain B, then ingests A",
    )
    parser.add_argument("--no-whole", action="store_true", help="skip the whole table (memory on big chains)")
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    chains = args.chain or ["10x50x400", "200x50x400"]
    with tempfile.TemporaryDirectory() as tmp:
        results = [_bench(chain, args.series, Path(tmp), whole=not args.no_whole) for chain in chains]
    table = Table(title="explain_series: seconds per series")
    for column in ("chain", "series", "first call", "median", "max", "champion load", "series row", "whole table"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r["chain"],
            f"{r['series']:,}",
            *(
                "-" if r[k] is None else f"{r[k]:.3f}"
                for k in (
                    "first_call_s",
                    "median_s",
                    "max_s",
                    "champion_load_s",
                    "series_row_median_s",
                    "whole_table_s",
                )
            ),
        )
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
