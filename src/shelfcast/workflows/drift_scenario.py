"""A drift scenario on the simulator, end to end: simulate, train a champion, replay with a drift, measure.

A chain is simulated (with a `DriftSpec` or none), its facts are ingested up
to `lead_days` before the drift, a demand champion is trained there, and
the chain is replayed week by week (`workflows.replay`) with the real monitoring
and policy: detection, retrains through the gates, fallback, rollback. The
result says when each thing happened (days from the drift) and how
accurate the forecasts that were served are against what the first
champion would have forecast on the same rows, had nothing been done.

`tests/integration/test_drift_scenario.py` asserts on it;
`bench/bench_drift_loop.py` prints it for several drifts.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.data.sim_config import DriftSpec
from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.panel import SERIES
from shelfcast.io.champion import NATIVE, champion_dir
from shelfcast.io.lake import Lake
from shelfcast.io.stores import open_store
from shelfcast.jobs.monitor import run_monitor
from shelfcast.jobs.promote import promote_version
from shelfcast.models.metrics import wape
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.types import Task
from shelfcast.workflows.replay import Comparison, ReplayStep, ingest_until, replay, served_against
from shelfcast.workflows.training import run_train

# Small models (60 trees; one backtest window by default) so a scenario replays in about a minute.
FAST = ForecastConfig(n_origins=30, n_estimators=60, learning_rate=0.1, num_leaves=15, strategy="direct")


@dataclass(frozen=True)
class ScenarioResult:
    drift_day: dt.date
    steps: list[ReplayStep]
    first_version: str
    wape_before: tuple[float | None, int]  # the first champion's live WAPE on days before the drift, and rows
    after_drift: Comparison  # served vs the first champion, scored from the drift day on
    after_promotion: Comparison | None  # the same, from the first promotion on
    scoring_days_by_version: dict[str, int]  # from the drift day on: which model (or the rule baseline) scored
    seconds: float

    def days_to(self, test: Callable[[ReplayStep], bool]) -> int | None:
        """Days from the drift to the first step (on or after it) that passes `test`."""
        hit = next((s for s in self.steps if s.day >= self.drift_day and test(s)), None)
        return None if hit is None else (hit.day - self.drift_day).days

    def decided(self, action: str) -> Callable[[ReplayStep], bool]:
        return lambda s: s.actions.get("demand") == action

    @staticmethod
    def alarmed(step: ReplayStep) -> bool:
        health = step.health.get("demand")
        return bool(health and health.drift_alarm)

    @staticmethod
    def promoted(step: ReplayStep) -> bool:
        return "promoted" in step.outcomes.get("demand", "")

    def to_json(self) -> dict[str, Any]:
        health = [s.health.get("demand") for s in self.steps]
        return {
            "days_to_feature_alarm": self.days_to(self.alarmed),
            "days_to_retrain_decision": self.days_to(self.decided("retrain")),
            "days_to_fallback": self.days_to(self.decided("fallback")),
            "days_to_promotion": self.days_to(self.promoted),
            "alarms_before_drift": sum(self.alarmed(s) for s in self.steps if s.day < self.drift_day),
            "feature_alarms": sum(self.alarmed(s) for s in self.steps),
            "days": [s.day.isoformat() for s in self.steps],
            "decisions": [s.actions.get("demand") for s in self.steps],
            "outcomes": [s.outcomes.get("demand") for s in self.steps],
            "scoring_days_by_version": self.scoring_days_by_version,
            "wape_before": list(self.wape_before),
            "after_drift": asdict(self.after_drift),
            "after_promotion": None if self.after_promotion is None else asdict(self.after_promotion),
            "relative": [None if h is None else h.live_relative for h in health],
            "backtest_relative": [getattr(h, "backtest_relative", None) for h in health],
            "seconds": round(self.seconds, 1),
        }


def run_scenario(
    root: Path,
    chain: SimConfig,
    *,
    drift_day: dt.date,
    drift: tuple[str, float] | None = None,
    lead_days: int = 14,
    weeks: int = 7,
    config: ForecastConfig = FAST,
    folds: int = 1,
) -> ScenarioResult:
    """Simulate `chain` with `drift` (kind, magnitude) from `drift_day`, and replay it in a workspace under `root`.

    Exogenous covariates are left out: the simulator's CPI trend and fuel
    random walk drift by construction.
    """
    if drift is not None:
        kind, magnitude = drift
        spec = DriftSpec(kind=kind, start=drift_day, magnitude=magnitude)
        chain = chain.model_copy(update={"drift": spec})
    tables: dict[str, pl.DataFrame] = {k: v for k, v in simulate(chain).tables().items() if k != "exogenous"}
    settings = Settings(workspace=root / "ws")

    def trainer(settings: Settings, task: Task, tags: Mapping[str, str]) -> Any:
        return run_train(settings, task=task, folds=folds, horizon=14, forecast_config=config, tags=tags)

    start = drift_day - dt.timedelta(days=lead_days + 1)
    ingest_until(settings, tables, {}, after=None, until=start)
    first = trainer(settings, Task.DEMAND, {})
    if not first.promotion.promoted:
        promote_version(settings, Task.DEMAND, first.version, force=True)
    kept = shutil.copytree(champion_dir(settings, Task.DEMAND) / NATIVE, root / "first-champion", dirs_exist_ok=True)
    started = time.perf_counter()
    steps = replay(
        settings,
        tables,
        {},
        start=start,
        end=drift_day + dt.timedelta(days=7 * weeks),
        monitor=lambda s, now: run_monitor(s, now=now).tasks,
        tasks=(Task.DEMAND,),
        trainer=trainer,
    )
    seconds = time.perf_counter() - started
    stored = open_store(settings).read()
    sales = Lake(settings.workspace).read("sales").select(*SERIES, "date", "units")
    before = stored.filter(pl.col("date") < drift_day).join(sales, on=[*SERIES, "date"], how="inner")
    promoted = next((s for s in steps if ScenarioResult.promoted(s)), None)
    rows = served_against(settings, kept, scored_from=drift_day)
    served = (
        stored.filter(pl.col("scored_on") >= drift_day)
        .group_by("model_version")
        .agg(pl.col("scored_on").n_unique().alias("days"))
    )
    return ScenarioResult(
        drift_day=drift_day,
        steps=steps,
        first_version=first.version,
        wape_before=_wape(before),
        after_drift=Comparison.of(rows),
        after_promotion=None if promoted is None else Comparison.of(rows.filter(pl.col("scored_on") >= promoted.day)),
        scoring_days_by_version={str(v): int(d) for v, d in served.iter_rows()},
        seconds=seconds,
    )


def _wape(rows: pl.DataFrame) -> tuple[float | None, int]:
    if rows.is_empty():
        return None, 0
    value = wape(rows["units"].to_numpy(), rows["forecast"].to_numpy())
    return (None if math.isnan(value) else round(value, 4)), rows.height
