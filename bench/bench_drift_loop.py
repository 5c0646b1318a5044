"""The monitoring loop on the simulator: a drift injected at a date, then weekly ingest, score, monitor, policy.

For each scenario (no drift, and drifts of the simulator's kinds) the same
chain is simulated (3 stores x 8 items x 400 days, no exogenous covariates:
the simulator's CPI trend and fuel random walk drift by construction), a
demand champion is trained on the days before the drift, and the chain is
replayed every 7 days for 7 weeks (`shelfcast.jobs.replay`): the new days
are ingested, `run_monitor` compares the champion's recent feature window
with its reference window and its stored predictions with the actuals, the
policy decides and its decision is carried out (a retrain goes through the
gates). Printed per scenario: days from the drift to the first feature
alarm, to the first retrain decision and to the first promotion, the
decisions, and the live WAPE (and WAPE relative to the seasonal naive on the
same rows) of the predictions before the drift, after it under the old
champion, and after the first promotion.

Models use a small configuration (60 trees, 1 backtest window) so the whole
run takes minutes; the policy and the statistics are the defaults.

    uv run python bench/bench_drift_loop.py [--kinds none level:0.5 level:1.6 promo:3] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from shelfcast.data.sim_config import DriftSpec
from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.panel import SERIES
from shelfcast.io.lake import Lake
from shelfcast.io.stores import open_store
from shelfcast.jobs.monitor import run_monitor
from shelfcast.jobs.promote import promote_version
from shelfcast.jobs.replay import ReplayStep, ingest_until, replay
from shelfcast.jobs.train import run_train
from shelfcast.models.gates import Task
from shelfcast.models.metrics import wape
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings

DEFAULT_JSON = Path(__file__).parent / "results" / "drift_loop.json"
CHAIN = SimConfig(n_stores=3, n_items=8, n_days=400, seed=3, min_base_demand=2.0, max_base_demand=30.0)
DRIFT_DAY = 330
WEEKS = 7
CONFIG = ForecastConfig(n_origins=30, n_estimators=60, learning_rate=0.1, num_leaves=15, strategy="direct")


def _trainer(settings: Settings, task: Task, tags: Mapping[str, str]) -> Any:
    return run_train(settings, task=task, windows=1, horizon=14, forecast_config=CONFIG, tags=tags)


def _monitor(settings: Settings, now: dt.datetime) -> Any:
    return run_monitor(settings, now=now).tasks


def _wape(rows: pl.DataFrame) -> tuple[float | None, int]:
    if rows.is_empty():
        return None, 0
    value = wape(rows["units"].to_numpy(), rows["forecast"].to_numpy())
    return (None if math.isnan(value) else round(value, 4)), rows.height


def scenario(kind: str | None, magnitude: float, root: Path) -> dict[str, Any]:
    drift_day = CHAIN.start_date + dt.timedelta(days=DRIFT_DAY)
    config = (
        CHAIN
        if kind is None
        else CHAIN.model_copy(
            update={"drift": DriftSpec(kind=kind, start=drift_day, magnitude=magnitude)}  # type: ignore[arg-type]
        )
    )
    sim = simulate(config)
    tables = {k: v for k, v in sim.tables().items() if k != "exogenous"}
    settings = Settings(workspace=root / "ws")
    start = drift_day - dt.timedelta(days=1)
    ingest_until(settings, tables, {}, after=None, until=start)
    first = _trainer(settings, "demand", {})
    if not first.promotion.promoted:
        promote_version(settings, "demand", first.version, force=True)
    started = time.perf_counter()
    steps: list[ReplayStep] = replay(
        settings,
        tables,
        {},
        start=start,
        end=start + dt.timedelta(days=7 * WEEKS),
        monitor=_monitor,
        tasks=("demand",),
        trainer=_trainer,
    )
    seconds = time.perf_counter() - started

    def days_to(test: Any) -> int | None:
        hit = next((s for s in steps if test(s)), None)
        return None if hit is None else (hit.day - drift_day).days

    promoted = next((s for s in steps if "promoted" in s.outcomes.get("demand", "")), None)
    sales = Lake(settings.workspace).read("sales").select(*SERIES, "date", "units")
    rows = open_store(settings).read().join(sales, on=[*SERIES, "date"], how="inner")
    before = rows.filter(pl.col("date") < drift_day)
    switch = promoted.day if promoted else dt.date.max
    during = rows.filter((pl.col("date") >= drift_day) & (pl.col("scored_on") < switch))
    after = rows.filter(pl.col("scored_on") >= switch)
    health = [s.health.get("demand") for s in steps]
    return {
        "kind": kind or "none",
        "magnitude": magnitude if kind else None,
        "days_to_feature_alarm": days_to(lambda s: bool(s.health.get("demand") and s.health["demand"].drift_alarm)),
        "days_to_retrain_decision": days_to(lambda s: s.actions.get("demand") == "retrain"),
        "days_to_promotion": None if promoted is None else (promoted.day - drift_day).days,
        "feature_alarms": sum(bool(h and h.drift_alarm) for h in health),
        "decisions": [s.actions.get("demand") for s in steps],
        "outcomes": [s.outcomes.get("demand") for s in steps],
        "wape_before": _wape(before),
        "wape_after_drift_old_model": _wape(during),
        "wape_after_promotion": _wape(after),
        "relative": [None if h is None else h.live_relative for h in health],
        "backtest_relative": [None if h is None else h.backtest_relative for h in health],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=["none", "level:0.5", "level:1.6", "promo:3"])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    console = Console(width=160)
    results = []
    for spec in args.kinds:
        kind, _, value = spec.partition(":")
        with tempfile.TemporaryDirectory(prefix="shelfcast-drift-loop-") as tmp:
            console.print(f"scenario {spec} ...")
            results.append(scenario(None if kind == "none" else kind, float(value or 1), Path(tmp)))
    table = Table(title=f"Drift at day {DRIFT_DAY}, replayed weekly for {WEEKS} weeks (days counted from the drift)")
    for column in (
        "scenario",
        "feature alarm",
        "retrain decided",
        "promoted",
        "alarms",
        "decisions",
        "WAPE before",
        "WAPE after drift (old)",
        "WAPE after promotion",
    ):
        table.add_column(column)
    for r in results:

        def show(pair: list[Any] | tuple[Any, ...]) -> str:
            return "-" if pair[0] is None else f"{pair[0]:.3f} ({pair[1]:,} rows)"

        table.add_row(
            r["kind"] + (f" x{r['magnitude']:g}" if r["magnitude"] else ""),
            "-" if r["days_to_feature_alarm"] is None else f"day {r['days_to_feature_alarm']}",
            "-" if r["days_to_retrain_decision"] is None else f"day {r['days_to_retrain_decision']}",
            "-" if r["days_to_promotion"] is None else f"day {r['days_to_promotion']}",
            str(r["feature_alarms"]),
            " ".join((d or "-")[:2] for d in r["decisions"]),
            show(r["wape_before"]),
            show(r["wape_after_drift_old_model"]),
            show(r["wape_after_promotion"]),
        )
    console.print(table)
    console.print("decisions: ok / re(train) / ro(llback) / fa(llback), one per weekly step")
    report = {
        "benchmark": "drift_loop",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "chain": CHAIN.model_dump(mode="json"),
        "drift_day": DRIFT_DAY,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
