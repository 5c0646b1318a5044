"""The demo: simulate a chain, plant a few bad rows, ingest and validate. Later issues extend it to the full loop."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shelfcast.data.simulator import SimConfig
from shelfcast.data.sources.canonical import CanonicalSource
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport, run_ingest
from shelfcast.jobs.ingest_steps import Progress
from shelfcast.jobs.simulate import SimulateReport, run_simulate
from shelfcast.jobs.validate import ValidationReport, run_validate
from shelfcast.settings import Settings

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
    planted: int = len(PLANTED)


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
    progress: Progress | None = None,
) -> DemoReport:
    """Run every stage that exists on a simulated chain inside the workspace; safe to re-run."""
    started = time.perf_counter()
    sim_dir = settings.workspace / "simulation"
    steps = 3

    def step(label: str, done: int) -> None:
        if progress:
            progress(label, done, steps)

    step("simulate", 0)
    simulation = run_simulate(config, sim_dir, layouts=("canonical",))
    plant_bad_rows(sim_dir / "canonical")
    step("ingest", 1)
    ingest = run_ingest(CanonicalSource(), sim_dir / "canonical", settings=settings, today=today, now=now)
    step("validate", 2)
    validation = run_validate(Lake(settings.workspace))
    step("done", 3)
    return DemoReport(simulation, ingest, validation, settings.workspace, time.perf_counter() - started)
