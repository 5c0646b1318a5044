"""Replay a chain's history through operations: ingest day by day, score, monitor, let the policy act.

A simulated chain (or any canonical tables) is fed to the workspace as if
time passed: every `every` days, the facts up to that day are ingested (only
the new ones), the champions score the next days, monitoring compares the
recent data with the models' reference windows and the stored predictions
with what happened, and the policy's decision is carried out. This is how
the drift scenarios of the monitoring tests and `bench/bench_drift_loop.py`
run; with real data it answers "what would the policy have done".
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from shelfcast.data.sources import get_source
from shelfcast.features.panel import SERIES
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import load_forecaster
from shelfcast.io.stores import open_store
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.score import run_score
from shelfcast.models.metrics import wape
from shelfcast.monitoring.policy import Monitored
from shelfcast.settings import Settings
from shelfcast.types import TASKS, Task
from shelfcast.workflows.retrain import Trainer, _train, run_policy

log = logging.getLogger(__name__)
# Dated facts, fed day by day; the rest (masters, the calendar of known events) is known from the start.
DATED = ("sales", "inventory", "movements", "exogenous")
Monitor = Callable[[Settings, dt.datetime], Mapping[Task, Monitored | None]]


@dataclass(frozen=True)
class ReplayStep:
    day: dt.date
    actions: dict[str, str]
    outcomes: dict[str, str]
    health: dict[str, Monitored | None] = field(default_factory=dict)


def _at(day: dt.date) -> dt.datetime:
    """The end of a trading day: when its facts are in and the nightly jobs run."""
    return dt.datetime.combine(day, dt.time(23, 0), tzinfo=dt.UTC)


def ingest_until(
    settings: Settings,
    tables: Mapping[str, pl.DataFrame],
    roles: Mapping[str, str],
    *,
    after: dt.date | None,
    until: dt.date,
) -> None:
    """Ingest the facts dated in (`after`, `until`] (all of them up to `until` when `after` is None)."""
    with tempfile.TemporaryDirectory(prefix="shelfcast-replay-") as tmp:
        folder = Path(tmp)
        for name, frame in tables.items():
            if name in DATED:
                rows = frame.filter(pl.col("date") <= until)
                if after is not None:
                    rows = rows.filter(pl.col("date") > after)
            elif after is None:
                rows = frame
            else:
                continue
            rows.write_parquet(folder / f"{name}.parquet")
        (folder / "exogenous_roles.json").write_text(json.dumps(dict(roles)))
        run_ingest(get_source("canonical"), folder, settings=settings, today=until, now=_at(until))


def replay(
    settings: Settings,
    tables: Mapping[str, pl.DataFrame],
    roles: Mapping[str, str],
    *,
    start: dt.date,
    end: dt.date,
    monitor: Monitor,
    every: int = 7,
    horizon: int | None = None,
    tasks: tuple[Task, ...] = TASKS,
    trainer: Trainer = _train,
    progress: Callable[[ReplayStep], None] | None = None,
) -> list[ReplayStep]:
    """From `start` (already ingested, champions trained) to `end`: every `every` days ingest, score, monitor, act.

    Scoring runs at each step before the new days arrive, so the next step's
    monitoring can judge the predictions against what then happened.
    """
    if every < 1:
        raise ValueError(f"`every` must be a positive number of days, got {every}")
    steps: list[ReplayStep] = []
    run_score(settings, horizon=horizon, now=_at(start), scored_on=start)
    day = start
    while day + dt.timedelta(days=every) <= end:
        nxt = day + dt.timedelta(days=every)
        ingest_until(settings, tables, roles, after=day, until=nxt)
        now = _at(nxt)
        health = monitor(settings, now)
        report = run_policy(settings, health, now=now, tasks=tasks, trainer=trainer, trigger="replay")
        run_score(settings, horizon=horizon, now=now, scored_on=nxt)
        step = ReplayStep(
            day=nxt,
            actions={o.decision.task: o.decision.action for o in report.outcomes},
            outcomes={o.decision.task: o.outcome for o in report.outcomes},
            health={t: health.get(t) for t in tasks},
        )
        log.info("replay %s: %s", nxt, step.outcomes)
        if progress:
            progress(step)
        steps.append(step)
        day = nxt
    return steps


@dataclass(frozen=True)
class Comparison:
    """What was served against what one fixed model would have forecast, on the same rows."""

    rows: int
    served_wape: float | None
    model_wape: float | None

    @classmethod
    def of(cls, rows: pl.DataFrame) -> Comparison:
        """From `served_against` rows (all of them, or a filtered part)."""
        if rows.is_empty():
            return cls(0, None, None)

        def score(column: str) -> float:
            return round(wape(rows["y"].to_numpy(), rows[column].to_numpy()), 4)

        return cls(rows.height, score("forecast"), score("model_forecast"))


def served_against(settings: Settings, model_folder: Path, *, scored_from: dt.date) -> pl.DataFrame:
    """The stored demand forecasts scored on or after `scored_from`, beside the saved model's, with the actuals.

    The saved model (a native folder, e.g. a copy of the first champion)
    forecasts again from every stored scoring day, on the data as it was
    known then, so both are judged on the same series, days and origins:
    "with the policy" against "had nothing been done". Columns: the series,
    `date`, `scored_on`, `forecast` (served), `model_forecast`, `y`; only
    days whose actuals are known. `Comparison.of` scores them.
    """
    data = load_model_data(Lake(settings.workspace))
    stored = open_store(settings).read().filter(pl.col("scored_on") >= scored_from)
    if stored.is_empty():
        keys = {**{c: pl.String() for c in SERIES}, "date": pl.Date(), "scored_on": pl.Date()}
        return pl.DataFrame(schema=keys | {c: pl.Float64() for c in ("forecast", "model_forecast", "y")})
    model = load_forecaster(model_folder)
    horizon = int(stored["horizon"].max())  # type: ignore[arg-type]
    other = pl.concat(
        [
            model.predict(data.panel, calendar=data.calendar, origin=origin, horizon=horizon).select(
                *SERIES, "date", pl.lit(origin).alias("scored_on"), pl.col("forecast").alias("model_forecast")
            )
            for origin in stored["scored_on"].unique().sort()
        ]
    )
    actual = data.panel.frame.select(*SERIES, "date", "y")
    return (
        stored.select(*SERIES, "date", "scored_on", "forecast")
        .join(other, on=[*SERIES, "date", "scored_on"], how="inner")
        .join(actual, on=[*SERIES, "date"], how="inner")
    )
