"""The demo: simulate a chain, plant a few bad rows, then run the whole pipeline on it without any server.

The pipeline's steps (ingest, validate, features, train with backtests
against the baselines, register, promote by the gates, score) run directly,
not through Prefect: the same functions `shelfcast pipeline run` runs as
Prefect tasks, without the temporary server's start-up time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl

from shelfcast.data.simulator import SimConfig
from shelfcast.data.sources.canonical import CanonicalSource
from shelfcast.io.lake import Lake
from shelfcast.io.stores import open_store
from shelfcast.io.tracking import tracking_uri
from shelfcast.jobs.ingest import IngestReport, run_ingest
from shelfcast.jobs.ingest.steps import Progress
from shelfcast.jobs.simulate import SimulateReport, run_simulate
from shelfcast.jobs.validate import ValidationReport, run_validate
from shelfcast.redact import redact
from shelfcast.settings import Settings
from shelfcast.workflows.pipeline import PipelineReport, PipelineRequest, run_directly, run_pipeline

T = TypeVar("T")
# The demo's training: two backtest windows for the gates (the CLI default is three).
DEMO_WINDOWS = 2
DEMO_HORIZON = 14

# Bad rows the demo plants in the simulated sales (as CSV) to show the quarantine:
# (row index, column, bad value). The rule each one breaks is in the comment.
PLANTED: tuple[tuple[int, str, str], ...] = (
    (10, "units", "n/a"),  # invalid_units
    (20, "units", "-4"),  # negative_units
    (30, "date", "2023-02-30"),  # invalid_date
    (40, "store_id", "S999"),  # unknown_store
)


@dataclass(frozen=True)
class DemoReport:
    simulation: SimulateReport
    ingest: IngestReport
    validation: ValidationReport
    workspace: Path
    seconds: float
    pipeline: PipelineReport | None = None  # None with `models=False`
    top_alerts: pl.DataFrame | None = None  # the riskiest series of the scoring day, riskiest first
    tracking_uri: str | None = None
    planted: int = len(PLANTED)
    last_date: dt.date | None = None  # the lake's last sales day


def plant_bad_rows(canonical: Path) -> None:
    """Rewrite the simulated sales as CSV with a few malformed rows (the rest untouched)."""
    sales = pl.read_parquet(canonical / "sales.parquet").cast(pl.String)
    for row, column, value in PLANTED:
        sales[row, column] = value
    sales.write_csv(canonical / "sales.csv")
    (canonical / "sales.parquet").unlink()


def run_demo(
    settings: Settings,
    config: SimConfig,
    *,
    today: dt.date,
    now: dt.datetime,
    models: bool = True,
    progress: Progress | None = None,
) -> DemoReport:
    """Simulate a chain in the workspace and run the pipeline on it (only ingest and validate without `models`).

    Safe to re-run: the ingest replaces the same rows, and a retrained model
    becomes a new version that the gates compare with the champion.
    """
    started = time.perf_counter()
    sim_dir = settings.workspace / "simulation"
    names = ["simulate", "ingest", "validate", "features", "train demand", "promote demand"]
    names += ["train stockout", "promote stockout", "score"]
    total = len(names) if models else 3

    def step(label: str, done: int) -> None:
        if progress:
            progress(label, done, total)

    step("simulate", 0)
    simulation = run_simulate(config, sim_dir, layouts=("canonical",))
    plant_bad_rows(sim_dir / "canonical")
    if not models:
        step("ingest", 1)
        ingest = run_ingest(CanonicalSource(), sim_dir / "canonical", settings=settings, today=today, now=now)
        step("validate", 2)
        validation = run_validate(Lake(settings.workspace))
        step("done", 3)
        return DemoReport(simulation, ingest, validation, settings.workspace, time.perf_counter() - started)

    def runner(name: str, fn: Callable[[], T], *, io: bool) -> T:
        step(name, names.index(name) if name in names else 0)
        return run_directly(name, fn, io=io)

    request = PipelineRequest(path=sim_dir / "canonical", source="canonical", folds=DEMO_WINDOWS, horizon=DEMO_HORIZON)
    pipeline = run_pipeline(settings, request, today=today, now=now, runner=runner)
    step("done", total)
    assert pipeline.ingest is not None and pipeline.validation is not None
    top = None
    if pipeline.score is not None and pipeline.score.alerts is not None:
        top = top_alerts(open_store(settings).read(scored_on=pipeline.score.scored_on))
    return DemoReport(
        simulation,
        pipeline.ingest,
        pipeline.validation,
        settings.workspace,
        time.perf_counter() - started,
        pipeline,
        top,
        redact(tracking_uri(settings)),
        last_date=_last_sales_day(settings),
    )


def _last_sales_day(settings: Settings) -> dt.date | None:
    value = (Lake(settings.workspace).table_info("sales") or {}).get("date_max")
    return dt.date.fromisoformat(str(value)[:10]) if value else None


def top_alerts(predictions: pl.DataFrame, n: int = 5) -> pl.DataFrame:
    """The `n` series most at risk of a stockout among those alerted, with their reorder advice."""
    return (
        predictions.filter((pl.col("horizon") == 1) & pl.col("stockout_label"))
        .sort("stockout_risk", descending=True)
        .head(n)
        .select("store_id", "item_id", "stockout_risk", "order_quantity", "reorder_point")
    )
