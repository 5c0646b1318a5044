"""The demo: simulate a chain, ingest it, validate the lake. Later issues extend it to the full loop."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from shelfcast.data.simulator import SimConfig
from shelfcast.data.sources.canonical import CanonicalSource
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport, run_ingest
from shelfcast.jobs.ingest_steps import Progress
from shelfcast.jobs.simulate import SimulateReport, run_simulate
from shelfcast.jobs.validate import ValidationReport, run_validate
from shelfcast.settings import Settings


@dataclass(frozen=True)
class DemoReport:
    simulation: SimulateReport
    ingest: IngestReport
    validation: ValidationReport
    workspace: Path
    seconds: float


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
    step("ingest", 1)
    ingest = run_ingest(CanonicalSource(), sim_dir / "canonical", settings=settings, today=today, now=now)
    step("validate", 2)
    validation = run_validate(Lake(settings.workspace))
    step("done", 3)
    return DemoReport(simulation, ingest, validation, settings.workspace, time.perf_counter() - started)
