"""Benchmark of batch scoring: ~1 million (series x horizon) prediction rows scored and written.

What is timed, honestly:

- setup (not timed): a small chain (5 stores x 40 items x 500 days) trains
  the direct GBM forecaster and calibrates its p10/p50/p90 on the 14 days
  before its cutoff, standing in for the registry's champion; a large chain
  of 70 stores x 1,000 items = 70,000 series x 120 days is simulated.
- model scoring (timed): the panel of the large chain built from its tables
  in memory, then the trained model predicts 14 days for every series
  (feature rows + GBM), quantiles are added and reorder advice computed:
  70,000 x 14 = 980,000 rows.
- writes (timed each): the rows checked against the prediction schema and
  written to Parquet (one partition), then to PostgreSQL (COPY into staging +
  replace the day in one transaction), first into an empty day and again as
  a re-run that replaces the same 980,000 rows; Delta with --delta.

Not included: training (done once per model version, not per scoring run),
the stockout classifier (its columns are null here) and reading the lake
from disk. The 20 s target of the issue covers model scoring plus the
Parquet and PostgreSQL writes.

    uv run python bench/bench_score.py [--stores 70 --items 1000 --days 120] [--delta] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from rich.console import Console
from rich.table import Table

from shelfcast.data.simulator import SimConfig, SimResult, simulate
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.io.stores.delta import DeltaStore
from shelfcast.io.stores.parquet import ParquetStore
from shelfcast.io.stores.postgres import PostgresStore
from shelfcast.jobs.score import ModelInfo, assemble_rows
from shelfcast.models.backtest import add_quantiles, conformal_scores, quantile_table
from shelfcast.models.replenish import reorder_advice
from shelfcast.models.train import ForecastConfig, TrainedForecaster, fit_forecaster
from shelfcast.settings import Settings

DEFAULT_JSON = Path(__file__).parent / "results" / "score.json"
TARGET_SECONDS = 20.0
HORIZON_DAYS = 14
BENCH_SCHEMA = "shelfcast_bench"
TABLES = ("sales", "inventory", "items", "stores", "exogenous", "calendar")


def _panel(sim: SimResult) -> Panel:
    tables = {k: v for k, v in sim.tables().items() if k in TABLES}
    return build_panel(tables, freq="D", exogenous_roles=sim.exogenous_roles)  # type: ignore[arg-type]


def _champion(sim: SimResult) -> tuple[TrainedForecaster, pl.DataFrame]:
    """The model fitted at the small chain's last date, and its quantile table from the 14 days before."""
    panel = _panel(sim)
    spec = FeatureSpec.for_freq("D", categorical=("store_id", "item_id"))
    config = ForecastConfig.for_freq("D").model_copy(update={"strategy": "direct"})
    last = panel.frame["date"].max()
    assert isinstance(last, dt.date)
    earlier = last - dt.timedelta(days=HORIZON_DAYS)
    check = fit_forecaster(panel, spec, config, cutoff=earlier, horizon=HORIZON_DAYS, calendar=sim.calendar)
    actual = panel.frame.select("store_id", "item_id", "date", "y")
    scored = check.predict(panel, calendar=sim.calendar).join(actual, on=["store_id", "item_id", "date"])
    table = quantile_table(conformal_scores(scored))
    model = fit_forecaster(panel, spec, config, cutoff=last, horizon=HORIZON_DAYS, calendar=sim.calendar)
    return model, table


def _timed(results: list[dict[str, Any]], step: str, rows: int, started: float) -> float:
    seconds = time.perf_counter() - started
    results.append({"step": step, "rows": rows, "seconds": round(seconds, 3)})
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=70)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--postgres-url", default=os.environ.get("SHELFCAST_POSTGRES_URL", Settings().postgres_url))
    parser.add_argument("--delta", action="store_true", help="Also time the Delta Lake write.")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    console = Console()
    load_before = os.getloadavg()

    with console.status("setup: simulating and training (not timed)"):
        model, table = _champion(simulate(SimConfig(n_stores=5, n_items=40, n_days=500, seed=1)))
        big = simulate(SimConfig(n_stores=args.stores, n_items=args.items, n_days=args.days, seed=2))

    results: list[dict[str, Any]] = []
    settings = Settings()
    scored_on = dt.date.today()
    with console.status("model scoring"):
        started = time.perf_counter()
        panel = _panel(big)
        cutoff = panel.frame["date"].max()
        assert isinstance(cutoff, dt.date)
        panel_seconds = time.perf_counter() - started
        predicted = model.predict(panel, calendar=big.calendar, origin=cutoff)
        predict_seconds = time.perf_counter() - started - panel_seconds
        forecast = add_quantiles(predicted, table)
        advice = reorder_advice(
            panel,
            forecast,
            cutoff=cutoff,
            lead_time_days=settings.lead_time_days,
            service_level=settings.service_level,
        )
        rows = assemble_rows(
            forecast,
            advice,
            None,
            horizon=HORIZON_DAYS,
            scored_on=scored_on,
            scored_at=dt.datetime.now(dt.UTC),
            model=ModelInfo(),
        )
        model_seconds = _timed(results, "model scoring (panel, predict, quantiles, advice)", rows.height, started)
        results.append(
            {"step": "  of which: panel from the tables", "rows": rows.height, "seconds": round(panel_seconds, 3)}
        )
        results.append(
            {
                "step": "  of which: feature rows + GBM predict",
                "rows": rows.height,
                "seconds": round(predict_seconds, 3),
            }
        )
    assert rows["horizon"].max() == HORIZON_DAYS

    with tempfile.TemporaryDirectory() as tmp:
        with console.status("Parquet"):
            started = time.perf_counter()
            ParquetStore(Path(tmp) / "predictions").write(rows, scored_on=scored_on)
            parquet_seconds = _timed(results, "write Parquet (check + write + rename)", rows.height, started)
        store = PostgresStore(args.postgres_url, table=f"{BENCH_SCHEMA}.predictions")
        try:
            with console.status("PostgreSQL"):
                started = time.perf_counter()
                store.write(rows, scored_on=scored_on)
                pg_seconds = _timed(results, "write PostgreSQL, new day (check + COPY + insert)", rows.height, started)
                started = time.perf_counter()
                store.write(rows, scored_on=scored_on)
                _timed(results, "write PostgreSQL, re-run (COPY + delete + insert)", rows.height, started)
        finally:
            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE")
        if args.delta:
            with console.status("Delta"):
                started = time.perf_counter()
                DeltaStore(Path(tmp) / "delta").write(rows, scored_on=scored_on)
                _timed(results, "write Delta (replace-where)", rows.height, started)

    total = model_seconds + parquet_seconds + pg_seconds
    table_out = Table(title=f"Batch scoring: {rows.height:,} rows ({big.sales.height:,} store-item-days of history)")
    for col in ("step", "rows", "seconds", "rows/s"):
        table_out.add_column(col, justify="left" if col == "step" else "right")
    for r in results:
        table_out.add_row(r["step"], f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{r['rows'] / r['seconds']:,.0f}")
    verdict = "[green]met[/]" if total < TARGET_SECONDS else "[red]missed[/]"
    table_out.add_row("total: scoring + Parquet + PostgreSQL (new day)", f"{rows.height:,}", f"{total:.2f}", "")
    console.print(table_out)
    console.print(f"target < {TARGET_SECONDS:.0f} s: {verdict}; load average before {load_before[0]:.2f}")

    payload = {
        "date": dt.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": load_before,
        "config": {"stores": args.stores, "items": args.items, "days": args.days, "horizon": HORIZON_DAYS},
        "rows": rows.height,
        "steps": results,
        "total_seconds": round(total, 3),
        "target_seconds": TARGET_SECONDS,
        "target_met": total < TARGET_SECONDS,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"written to {args.json}")


if __name__ == "__main__":
    main()
