"""The pipeline: ingest -> validate -> features -> train -> register/promote -> score, as plain steps.

`run_pipeline` runs the steps in order through a *runner*, a function that
calls one step. The demo and the tests use `run_directly` (no server, no
start-up cost); `shelfcast.workflows.flows` runs the same steps as Prefect tasks in
one flow (retries on the steps that do I/O, a log line per step, the flow
run id as a tag on each MLflow run). Training backtests the model against
its baselines on rolling origins (the evaluation) before the final fit, and
logs both to MLflow; the gates then decide on promotion as a step of their
own, and scoring uses whatever is champion afterwards.

With `table_format="delta"` (`--format delta`) the features step also
writes the Delta tables `raw_<table>` and `features` (`io.delta_tables`);
each training run then gets their versions (`io.tracking.delta_lineage`),
and the scored day is written to the Delta table `predictions` too (when
the prediction store is not Delta already), its version tagged on the runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shelfcast.data.sources import get_source
from shelfcast.errors import DataValidationError
from shelfcast.io.delta_tables import DELTA_DIR, PREDICTION_TABLE, TableVersion
from shelfcast.io.lake import Lake
from shelfcast.io.table_formats import TableFormat
from shelfcast.io.tracking import delta_lineage
from shelfcast.jobs.features import FeaturesReport, run_features
from shelfcast.jobs.ingest import IngestReport, run_ingest
from shelfcast.jobs.monitor import run_monitor
from shelfcast.jobs.promote import gate_and_promote
from shelfcast.jobs.score import ScoreReport, run_score
from shelfcast.jobs.train import TrainReport, train_challenger
from shelfcast.jobs.validate import ValidationReport, run_validate
from shelfcast.models.backtest import RECURSIVE
from shelfcast.models.gates import PromotionReport
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.monitoring.summary import MonitorReport
from shelfcast.settings import Engine, Settings
from shelfcast.types import TASKS, Task

log = logging.getLogger(__name__)
T = TypeVar("T")


class Runner(Protocol):
    """Runs one step: `fn` is the step's work, `io` says it reads or writes outside the process (retry it)."""

    def __call__(self, name: str, fn: Callable[[], T], *, io: bool) -> T: ...


def run_directly(name: str, fn: Callable[[], T], *, io: bool) -> T:
    """The runner without an orchestrator: call the step, log how long it took."""
    started = time.perf_counter()
    result = fn()
    log.info("step %s done in %.1fs", name, time.perf_counter() - started)
    return result


@dataclass(frozen=True)
class PipelineRequest:
    """What one pipeline run does. Without `path` the lake is used as it is (no ingest)."""

    path: Path | None = None
    source: str = "canonical"
    tasks: tuple[Task, ...] = TASKS
    folds: int = 3  # backtest folds per training run
    horizon: int | None = None  # steps scored (days, or weeks); None: the frequency's default
    forecast_config: ForecastConfig | None = None
    stockout_config: StockoutConfig | None = None
    tags: Mapping[str, str] = field(default_factory=dict)  # put on every MLflow run
    monitor: bool = True  # end with a monitoring run (drift and live accuracy of the champions)
    # Delta tables too (raw, features, predictions) with "delta"; None: Delta when the prediction store is Delta.
    table_format: TableFormat | None = None
    engine: Engine = "local"  # where the steps that can run on Spark run: features, training, scoring


@dataclass
class PipelineReport:
    ingest: IngestReport | None = None
    validation: ValidationReport | None = None
    features: FeaturesReport | None = None
    trained: dict[Task, TrainReport] = field(default_factory=dict)
    promotions: dict[Task, PromotionReport] = field(default_factory=dict)
    score: ScoreReport | None = None
    monitor: MonitorReport | None = None
    delta_tables: dict[str, int] = field(default_factory=dict)  # Delta table -> version written or read
    skipped: dict[str, str] = field(default_factory=dict)  # step -> why it did not run
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest (what the Prefect flow returns)."""
        return {
            "ingested_rows": self.ingest.total("kept") if self.ingest else None,
            "validation_ok": self.validation.ok if self.validation else None,
            "feature_rows": self.features.rows if self.features else None,
            "runs": {t: r.run.run_id for t, r in self.trained.items()},
            "versions": {t: r.version for t, r in self.trained.items()},
            "promoted": {t: p.promoted for t, p in self.promotions.items()},
            "gates": {t: p.gate.reason for t, p in self.promotions.items()},
            "scored_rows": self.score.rows if self.score else None,
            "alerts": self.score.alerts if self.score else None,
            "monitoring_alert": self.monitor.alert if self.monitor else None,
            "monitoring_report": str(self.monitor.report_path) if self.monitor else None,
            "delta_tables": self.delta_tables,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 1),
        }


def _has_stock(settings: Settings) -> bool:
    """An inventory table holds on_hand or stockout_hours (the schema requires one): the stock signal
    `definition_for` looks for, without building the panel to find it."""
    return Lake(settings.workspace).has("inventory")


def _chosen_strategy(settings: Settings, config: ForecastConfig | None, candidate: str) -> ForecastConfig:
    """The forecast config with the strategy the demand backtest chose: the stockout step's demand forecasts
    (its quantile-risk baseline, refitted at each of its cutoffs) then fit that one candidate, not both."""
    if config is None:
        frequency = (Lake(settings.workspace).table_info("sales") or {}).get("frequency") or "D"
        config = ForecastConfig.for_freq(frequency)
    return config.model_copy(update={"strategy": "recursive" if candidate == RECURSIVE else "direct"})


def _delta_predictions(settings: Settings, scored_on: dt.date) -> TableVersion:
    """The scored day in the Delta table `predictions`: written by the store when it is Delta, else copied there."""
    from shelfcast.io.stores import open_store
    from shelfcast.io.stores.delta import DeltaStore

    delta = DeltaStore(settings.workspace / DELTA_DIR)
    if settings.prediction_store != "delta":
        delta.write(open_store(settings).read(scored_on=scored_on), scored_on=scored_on)
    version = delta.version()
    assert version is not None  # the score step wrote the day, or it was just copied
    return TableVersion(PREDICTION_TABLE, delta.path, version, written=True)


def run_pipeline(
    settings: Settings,
    request: PipelineRequest,
    *,
    today: dt.date,
    now: dt.datetime,
    runner: Runner = run_directly,
) -> PipelineReport:
    """Every step in order; a failed step stops the run with its error (the report says what ran)."""
    started = time.perf_counter()
    report = PipelineReport()

    def at() -> dt.datetime:
        """When a step runs, in the run's own time (`now` is its start, minutes before scoring), so a run given
        a past `now` stays in it."""
        return now + dt.timedelta(seconds=time.perf_counter() - started)

    if request.path is not None:
        path = request.path
        report.ingest = runner(
            "ingest",
            lambda: run_ingest(get_source(request.source), path, settings=settings, today=today, now=now),
            io=True,
        )
    report.validation = runner("validate", lambda: run_validate(Lake(settings.workspace)), io=False)
    if not report.validation.ok:
        problems = [
            *report.validation.lake_problems,
            *(f"{c.table}: {', '.join(c.problems)}" for c in report.validation.checks if not c.ok),
        ]
        raise DataValidationError(f"the lake failed validation ({'; '.join(problems)}); see `shelfcast validate`")
    report.features = runner(
        "features",
        lambda: run_features(settings, engine=request.engine, table_format=request.table_format),
        io=True,
    )
    inputs = {v.name: v for v in report.features.delta_tables}
    report.delta_tables = {name: v.version for name, v in inputs.items()}
    forecast_config = request.forecast_config
    for task in request.tasks:
        if task == Task.STOCKOUT and not _has_stock(settings):
            report.skipped["train stockout"] = "sales-only data: no stock signal to learn stockouts from"
            continue
        report.trained[task] = runner(
            f"train {task}",
            lambda task=task, config=forecast_config: train_challenger(  # type: ignore[misc]
                settings,
                task=task,
                folds=request.folds,
                forecast_config=config,
                stockout_config=request.stockout_config,
                tags=request.tags,
                engine=request.engine,
            ),
            io=True,
        )
        if inputs:
            run_id = report.trained[task].run.run_id
            runner(
                f"delta lineage {task}",
                lambda run_id=run_id: delta_lineage(settings, run_id, inputs),  # type: ignore[misc]
                io=True,
            )
        if task == Task.DEMAND:
            forecast_config = _chosen_strategy(settings, forecast_config, report.trained[task].candidate)
        version = report.trained[task].version
        report.promotions[task] = runner(
            f"promote {task}",
            lambda task=task, version=version: gate_and_promote(settings, task, version),  # type: ignore[misc]
            io=True,
        )
    # Without a champion (a first model refused by the gates), scoring falls back on the rule baselines
    # and its note says why.
    report.score = runner(
        "score",
        lambda: run_score(settings, horizon=request.horizon, now=at(), scored_on=today, engine=request.engine),
        io=True,
    )
    if inputs:
        written = runner("delta predictions", lambda: _delta_predictions(settings, today), io=True)
        report.delta_tables[written.name] = written.version
        for trained in report.trained.values():
            run_id = trained.run.run_id
            runner(
                "delta lineage predictions",
                lambda run_id=run_id: delta_lineage(  # type: ignore[misc]
                    settings, run_id, {written.name: written}, params=False
                ),
                io=True,
            )
    if request.monitor:
        report.monitor = runner("monitor", lambda: run_monitor(settings, now=at()), io=True)
    report.seconds = time.perf_counter() - started
    return report
