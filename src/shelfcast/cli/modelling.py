"""`shelfcast backtest | stockout | forecast | score | train`: models fitted, scored and registered on the lake."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import (
    CutoffOpt,
    EngineOpt,
    RenamedFlags,
    WorkspaceOpt,
    engine_of,
    now,
    parse_task,
    quiet_mlflow,
    settings,
    writable_workspace,
)
from shelfcast.errors import ConfigError
from shelfcast.settings import PredictionStoreKind, Settings
from shelfcast.types import Freq

app = typer.Typer()


@app.command(cls=RenamedFlags)
def backtest(
    task: Annotated[str, typer.Option(help="demand or stockout.")] = "demand",
    folds: Annotated[int, typer.Option(min=1, help="Rolling-origin folds (cutoffs).")] = 3,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="demand: steps per fold.", show_default="28 days / 13 weeks")
    ] = None,
    gap: Annotated[int, typer.Option(min=0, help="demand: steps between the cutoff and the first scored period.")] = 0,
    risk_days: Annotated[int, typer.Option(min=1, help="stockout: days ahead the risk covers.")] = 7,
    min_hours: Annotated[
        float | None, typer.Option(help="stockout: hours out of stock in a day that count.", show_default="a full day")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the scores as JSON.")] = None,
    engine: EngineOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score the models and every baseline on rolling-origin folds of the lake's data."""
    from shelfcast.io.backtest_report import backtest_json
    from shelfcast.jobs.backtest import run_backtest
    from shelfcast.jobs.stockout import backtest_stockout
    from shelfcast.models.backtest import DemandBacktest
    from shelfcast.models.risk import StockoutBacktest

    chosen = parse_task(task)
    cfg = settings(workspace=workspace)
    on = engine_of(cfg, engine)
    result: DemandBacktest | StockoutBacktest
    with out.progress_bar(f"backtest {chosen}") as progress:
        if chosen == "demand":
            result = run_backtest(
                cfg, folds=folds, horizon=horizon or _default_horizon(cfg), gap=gap, progress=progress, engine=on
            )
        else:
            result = backtest_stockout(
                cfg, folds=folds, risk_days=risk_days, min_hours=min_hours, progress=progress, engine=on
            )
    out.backtest_summary(result, task=chosen)
    if json_path is not None:
        backtest_json(result, json_path, task=chosen)
        out.console.print(f"scores written to {json_path}")


@app.command(cls=RenamedFlags)
def stockout(
    out_path: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    cutoff: CutoffOpt = None,
    risk_days: Annotated[int, typer.Option(min=1, help="Days ahead the risk covers.")] = 7,
    min_hours: Annotated[
        float | None, typer.Option(help="Hours out of stock in a day that count.", show_default="a full day")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Risk of a stockout in the next days per store and item, the alert label, and reorder advice."""
    from shelfcast.jobs.stockout import run_stockout

    if min_hours is not None and not 0 < min_hours <= 24:
        raise ConfigError(f"`--min-hours` must be in (0, 24], got {min_hours}")
    cfg = settings(workspace=workspace)
    with out.status("stockout risk"):
        report = run_stockout(cfg, cutoff=cutoff, risk_days=risk_days, min_hours=min_hours, out=out_path)
    out.console.print(
        f"{report.rows:,} series scored at {report.cutoff}: {report.alerts:,} alerts at risk >= {report.threshold:.3f} "
        f"(threshold chosen on earlier weeks); written to {report.path} in {report.seconds:.1f}s"
    )


@app.command()
def forecast(
    out_path: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    cutoff: CutoffOpt = None,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Steps to forecast.", show_default="28 days / 13 weeks")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Train on data up to the cutoff and write forecast, p10, p50, p90 per date, store and item."""
    from shelfcast.jobs.forecast import run_forecast

    cfg = settings(workspace=workspace)
    with out.progress_bar("forecast") as progress:
        report = run_forecast(
            cfg, cutoff=cutoff, horizon=horizon or _default_horizon(cfg), out=out_path, progress=progress
        )
    out.selection_summary(report.selection)
    out.console.print(
        f"{report.rows:,} forecasts for {report.series:,} series, {report.horizon} steps ({_freq(cfg).unit}s) "
        f"from {report.cutoff} "
        f"(model: {report.model}) written to {report.path} in {report.seconds:.1f}s"
    )


@app.command()
def score(
    horizon: Annotated[
        int | None,
        typer.Option(min=1, help="Steps to score (days; weeks on weekly data).", show_default="14 days / 2 weeks"),
    ] = None,
    cutoff: CutoffOpt = None,
    store: Annotated[
        PredictionStoreKind | None,
        typer.Option(help="parquet, postgres or delta.", show_default="setting prediction_store"),
    ] = None,
    fit: Annotated[
        bool, typer.Option("--fit", help="Train at the cutoff instead of loading the registry's champions.")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON (rows, series, models).")
    ] = None,
    engine: EngineOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score every series (forecast, quantiles, stockout risk, reorder advice) into the prediction store.

    Uses the registry's champions (`shelfcast train` makes them); their local copy serves when the registry is down.
    `--engine spark` scores the series in groups on Apache Spark (champions only, not `--fit`).
    """
    cfg = writable_workspace(settings(workspace=workspace, prediction_store=store))
    chosen = engine_of(cfg, engine)
    quiet_mlflow()
    from shelfcast.jobs.score import run_score

    with out.progress_bar("score") as progress:
        report = run_score(cfg, horizon=horizon, cutoff=cutoff, now=now(), fit=fit, progress=progress, engine=chosen)
    out.score_summary(report)
    _write_json(report.to_dict(), json_path)


@app.command(cls=RenamedFlags)
def train(
    task: Annotated[str, typer.Option(help="demand or stockout.")] = "demand",
    folds: Annotated[int, typer.Option(min=1, help="Backtest folds the gates compare on.")] = 3,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="demand: steps ahead.", show_default="28 days / 13 weeks")
    ] = None,
    risk_days: Annotated[int, typer.Option(min=1, help="stockout: days ahead the risk covers.")] = 7,
    min_hours: Annotated[
        float | None,
        typer.Option(
            help="stockout, hourly stock data (e.g. FreshRetailNet): hours out of stock (over 0, at most 24) "
            "that make a day a stockout; default: the whole day."
        ),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the figures as JSON (version, gates, backtest of every model)."),
    ] = None,
    engine: EngineOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Backtest, train on all data, log to MLflow, register a challenger and promote it if it passes the gates."""
    chosen = parse_task(task)
    if min_hours is not None and not 0 < min_hours <= 24:
        raise ConfigError(f"`--min-hours` must be in (0, 24], got {min_hours}")
    if min_hours is not None and chosen != "stockout":
        raise ConfigError("`--min-hours` only applies to --task stockout")
    # Imported after the checks: MLflow's import prints warnings that would come before a one-line error.
    quiet_mlflow()
    from shelfcast.workflows.training import run_train

    cfg = writable_workspace(settings(workspace=workspace))
    on = engine_of(cfg, engine)
    with out.progress_bar(f"train {chosen}") as progress:
        report = run_train(
            cfg,
            task=chosen,
            folds=folds,
            horizon=horizon,
            risk_days=risk_days,
            min_hours=min_hours,
            progress=progress,
            engine=on,
        )
    out.train_summary(report)
    _write_json(report.to_dict(), json_path)


def _write_json(figures: dict[str, object], path: Path | None) -> None:
    if path is not None:
        from shelfcast.io.files import write_json

        out.console.print(f"figures written to {write_json(figures, path)}")


def _freq(cfg: Settings) -> Freq:
    from shelfcast.io.lake import Lake

    info = Lake(cfg.workspace).table_info("sales") or {}
    return Freq(info.get("frequency") or Freq.DAILY)


def _default_horizon(cfg: Settings) -> int:
    return _freq(cfg).default_horizon
