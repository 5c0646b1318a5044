"""The `shelfcast` command line: thin commands over the jobs."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from shelfcast import console as out
from shelfcast.errors import ConfigError, ShelfcastError, first_problem
from shelfcast.settings import DuplicatePolicy, PredictionStoreKind, Settings

app = typer.Typer(
    name="shelfcast",
    help="Demand forecasts, stockout risk and reorder advice for retail chains.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state: dict[str, bool] = {"verbose": False}
M = TypeVar("M", bound=BaseModel)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder [env SHELFCAST_WORKSPACE; default ./.shelfcast]"),
]


def settings(**overrides: Any) -> Settings:
    """Settings from env/TOML with command-line overrides; a bad value is a one-line error."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ConfigError(f"setting `{where or 'settings'}`: {message}") from None


def model(cls: type[M], data: dict[str, Any]) -> M:
    """A pydantic model from option values; the first problem becomes a one-line error."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ConfigError(f"`{where}`: {message}") from None


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step; show tracebacks.")] = False,
) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="File or folder to read.")],
    source: Annotated[
        str,
        typer.Option("--source", "-s", help="canonical, store-item, walmart, freshretailnet, branch-csv or generic."),
    ],
    workspace: WorkspaceOpt = None,
    date_format: Annotated[str | None, typer.Option(help="strptime format of the dates, e.g. %d/%m/%Y.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: detected).")] = None,
    duplicates: Annotated[
        DuplicatePolicy | None, typer.Option(help="Rows of sales/movements sharing a key: sum (default) or reject.")
    ] = None,
    mapping: Annotated[Path | None, typer.Option(help="generic: TOML file with the column mapping.")] = None,
    table: Annotated[
        str | None, typer.Option(help="generic: canonical table the file maps onto (default sales).")
    ] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="generic: CANONICAL=COLUMN, repeatable.")] = None,
    const: Annotated[list[str] | None, typer.Option(help="generic: CANONICAL=VALUE for every row, repeatable.")] = None,
    exog: Annotated[
        list[str] | None, typer.Option(help="generic: COLUMN=past_only|known_in_advance, repeatable.")
    ] = None,
    event: Annotated[list[str] | None, typer.Option(help="generic: FLAG_COLUMN=EVENT_NAME, repeatable.")] = None,
) -> None:
    """Read a dataset, validate it, and store the canonical tables in the workspace lake."""
    from shelfcast.data.sources import get_source
    from shelfcast.data.sources.generic import load_mapping, parse_pairs
    from shelfcast.jobs.ingest import run_ingest

    cfg = settings(workspace=workspace, duplicates=duplicates)
    options: dict[str, Any] = {"date_format": date_format, "delimiter": delimiter}
    if source == "generic":
        options["mapping"] = load_mapping(
            mapping,
            table=table,
            columns=parse_pairs(map_ or [], option="--map"),
            constants=parse_pairs(const or [], option="--const"),
            exogenous=parse_pairs(exog or [], option="--exog"),
            calendar=parse_pairs(event or [], option="--event"),
        )
    elif any((mapping, table, map_, const, exog, event)):
        raise ConfigError("--mapping/--table/--map/--const/--exog/--event only apply to --source generic")
    adapter = get_source(source, **options)
    with out.progress_bar("ingest") as progress:
        report = run_ingest(adapter, path, settings=cfg, today=dt.date.today(), now=_now(), progress=progress)
    out.ingest_summary(report)


@app.command()
def validate(workspace: WorkspaceOpt = None) -> None:
    """Re-check every table in the lake; exit 1 if any rule is broken."""
    from shelfcast.io.lake import Lake
    from shelfcast.jobs.validate import run_validate

    with out.status("validating the lake"):
        report = run_validate(Lake(settings(workspace=workspace).workspace))
    out.validation_summary(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def info(workspace: WorkspaceOpt = None) -> None:
    """Show the lake's tables (rows, series, date range) and the last ingests."""
    from shelfcast.errors import WorkspaceError
    from shelfcast.io.lake import Lake

    lake = Lake(settings(workspace=workspace).workspace)
    manifest = lake.manifest()
    if not manifest["tables"]:
        raise WorkspaceError(f"no tables in {lake.root}; run `shelfcast ingest` (or `shelfcast demo`) first")
    out.tables_summary(manifest["tables"], title=f"Lake tables in {lake.root}")
    recent = [
        {
            "at": i["at"],
            "source": i["source"],
            "path": i["path"],
            "read": sum(p["read"] for p in i["parts"]),
            "quarantined": sum(p["quarantined"] for p in i["parts"]),
        }
        for i in manifest.get("ingests", [])[-5:]
    ]
    out.frame_table("Recent ingests", recent)
    out.console.print(f"quarantined rows: {manifest.get('quarantine_rows', 0):,}")


@app.command()
def quarantine(
    workspace: WorkspaceOpt = None,
    rule: Annotated[str | None, typer.Option(help="Only rows that broke this rule.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 20,
) -> None:
    """Show quarantined rows with their rule, file, line and original values."""
    import polars as pl

    from shelfcast.io.lake import QUARANTINE, Lake

    lake = Lake(settings(workspace=workspace).workspace)
    if not lake.has(QUARANTINE):
        out.console.print("no quarantined rows")
        return
    rows = lake.scan(QUARANTINE)
    if rule:
        rows = rows.filter(pl.col("rule").str.split(";").list.contains(rule))
    total = rows.select(pl.len()).collect().item()
    out.frame_table(f"Quarantine ({total:,} rows)", rows.head(limit).collect().to_dicts())


@app.command()
def simulate(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder [default: <workspace>/simulation].")
    ] = None,
    workspace: WorkspaceOpt = None,
    stores: Annotated[int | None, typer.Option(help="Number of stores [default 10].")] = None,
    items: Annotated[int | None, typer.Option(help="Number of items [default 50].")] = None,
    days: Annotated[int | None, typer.Option(help="Number of days [default 730].")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD [default 2022-01-03].")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives the same chain [default 0].")
    ] = None,
    freq: Annotated[str | None, typer.Option(help="D (daily, default) or W (weekly, summed from daily).")] = None,
    safety_factor: Annotated[
        float | None, typer.Option(help="z of the safety stock; lower means more stockouts [default 0.75, ~3%].")
    ] = None,
    layout: Annotated[
        list[str] | None, typer.Option(help="canonical (default), branch-csv or wide; repeatable.")
    ] = None,
    drift: Annotated[str | None, typer.Option(help="Inject drift: level, promo or seasonality.")] = None,
    drift_start: Annotated[str | None, typer.Option(help="First day of the drift, YYYY-MM-DD.")] = None,
    drift_magnitude: Annotated[float, typer.Option(help="Size of the drift (level: demand factor).")] = 1.3,
) -> None:
    """Simulate a retail chain (demand, promotions, prices, stock, transfers) and write its tables."""
    from shelfcast.data.simulator import SimConfig
    from shelfcast.jobs.simulate import run_simulate

    given = {
        "n_stores": stores,
        "n_items": items,
        "n_days": days,
        "start_date": start,
        "seed": seed,
        "freq": freq,
        "safety_factor": safety_factor,
    }
    spec: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if drift is not None:
        first_day = drift_start or str(model(SimConfig, spec).start_date)
        spec["drift"] = {"kind": drift, "start": first_day, "magnitude": drift_magnitude}
    elif drift_start is not None:
        raise ConfigError("--drift-start needs --drift level|promo|seasonality")
    config = model(SimConfig, spec)
    target = out_dir or settings(workspace=workspace).workspace / "simulation"
    with out.status("simulate") as say:
        report = run_simulate(config, target, layouts=layout or ["canonical"], progress=say)
    out.simulation_summary(report)


@app.command()
def demo(
    workspace: WorkspaceOpt = None,
    stores: Annotated[int, typer.Option(help="Number of simulated stores.")] = 10,
    items: Annotated[int, typer.Option(help="Number of simulated items.")] = 50,
    days: Annotated[int, typer.Option(help="Number of simulated days.")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    models: Annotated[
        bool, typer.Option("--models/--no-models", help="Train, promote and score, or only simulate and ingest.")
    ] = True,
) -> None:
    """The whole loop on a simulated chain, with no server: simulate, ingest, validate, backtest, train, register,
    promote, score the next 14 days, summarise."""
    from shelfcast.data.simulator import SimConfig
    from shelfcast.workflows.demo import run_demo

    cfg = settings(workspace=workspace)
    config = model(SimConfig, {"n_stores": stores, "n_items": items, "n_days": days, "seed": seed})
    with out.progress_bar("demo") as progress:
        report = run_demo(cfg, config, today=dt.date.today(), now=_now(), models=models, progress=progress)
    out.demo_summary(report)
    if not report.validation.ok:
        raise typer.Exit(1)


@app.command()
def backtest(
    task: Annotated[str, typer.Option(help="demand or stockout.")] = "demand",
    windows: Annotated[int, typer.Option(min=1, help="Rolling-origin windows.")] = 3,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="demand: steps per window [default 28 days / 13 weeks].")
    ] = None,
    gap: Annotated[int, typer.Option(min=0, help="demand: steps between the cutoff and the first scored period.")] = 0,
    window: Annotated[int, typer.Option(min=1, help="stockout: days ahead the risk covers.")] = 7,
    min_hours: Annotated[
        float | None, typer.Option(help="stockout: hours out of stock in a day that count [default: a full day].")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the scores as JSON.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score the models and every baseline on rolling-origin windows of the lake's data."""
    from shelfcast.io.backtest_report import backtest_json
    from shelfcast.jobs.backtest import run_backtest
    from shelfcast.jobs.stockout import backtest_stockout
    from shelfcast.models.backtest import DemandBacktest
    from shelfcast.models.risk import StockoutBacktest

    if task not in ("demand", "stockout"):
        raise ConfigError(f"`--task` must be demand or stockout, got {task!r}")
    cfg = settings(workspace=workspace)
    result: DemandBacktest | StockoutBacktest
    with out.progress_bar(f"backtest {task}") as progress:
        if task == "demand":
            result = run_backtest(
                cfg, windows=windows, horizon=horizon or _default_horizon(cfg), gap=gap, progress=progress
            )
        else:
            result = backtest_stockout(cfg, windows=windows, window=window, min_hours=min_hours, progress=progress)
    out.backtest_summary(result, task=task)
    if json_path is not None:
        backtest_json(result, json_path, task=task)
        out.console.print(f"scores written to {json_path}")


@app.command()
def stockout(
    out_path: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    cutoff: Annotated[str | None, typer.Option(help="Last date known, YYYY-MM-DD [default: the last date].")] = None,
    window: Annotated[int, typer.Option(min=1, help="Days ahead the risk covers.")] = 7,
    min_hours: Annotated[
        float | None, typer.Option(help="Hours out of stock in a day that count [default: a full day].")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Risk of a stockout in the next days per store and item, the alert label, and reorder advice."""
    from shelfcast.io.lake import Lake
    from shelfcast.io.model_data import load_model_data
    from shelfcast.jobs.stockout import run_stockout
    from shelfcast.models.data import parse_cutoff

    if min_hours is not None and not 0 < min_hours <= 24:
        raise ConfigError(f"`--min-hours` must be in (0, 24], got {min_hours}")
    cfg = settings(workspace=workspace)
    when = parse_cutoff(cutoff, load_model_data(Lake(cfg.workspace)))
    with out.status("stockout risk"):
        report = run_stockout(cfg, cutoff=when, window=window, min_hours=min_hours, out=out_path)
    out.console.print(
        f"{report.rows:,} series scored at {report.cutoff}: {report.alerts:,} alerts at risk >= {report.threshold:.3f} "
        f"(threshold chosen on earlier weeks); written to {report.path} in {report.seconds:.1f}s"
    )


@app.command()
def forecast(
    out_path: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    cutoff: Annotated[str | None, typer.Option(help="Last date known, YYYY-MM-DD [default: the last date].")] = None,
    horizon: Annotated[int | None, typer.Option(min=1, help="Steps to forecast [default 28 days / 13 weeks].")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Train on data up to the cutoff and write forecast, p10, p50, p90 per date, store and item."""
    from shelfcast.io.lake import Lake
    from shelfcast.io.model_data import load_model_data
    from shelfcast.jobs.forecast import run_forecast
    from shelfcast.models.data import parse_cutoff

    cfg = settings(workspace=workspace)
    when = parse_cutoff(cutoff, load_model_data(Lake(cfg.workspace)))
    with out.progress_bar("forecast") as progress:
        report = run_forecast(
            cfg, cutoff=when, horizon=horizon or _default_horizon(cfg), out=out_path, progress=progress
        )
    out.console.print(
        f"{report.rows:,} forecasts for {report.series:,} series, {report.horizon} steps from {report.cutoff} "
        f"(model: {report.model}) written to {report.path} in {report.seconds:.1f}s"
    )


@app.command()
def score(
    horizon: Annotated[int, typer.Option(min=1, help="Steps to forecast (days; weeks on weekly data).")] = 14,
    cutoff: Annotated[str | None, typer.Option(help="Last date known, YYYY-MM-DD [default: the last date].")] = None,
    store: Annotated[
        PredictionStoreKind | None, typer.Option(help="parquet, postgres or delta [default: setting prediction_store].")
    ] = None,
    fit: Annotated[
        bool, typer.Option("--fit", help="Train at the cutoff instead of loading the registry's champions.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score every series (forecast, quantiles, stockout risk, reorder advice) into the prediction store.

    Uses the registry's champions (`shelfcast train` makes them); their local copy serves when the registry is down.
    """
    from shelfcast.io.lake import Lake
    from shelfcast.io.model_data import load_model_data
    from shelfcast.jobs.score import run_score
    from shelfcast.models.data import parse_cutoff

    cfg = settings(workspace=workspace, prediction_store=store)
    when = parse_cutoff(cutoff, load_model_data(Lake(cfg.workspace)))
    with out.progress_bar("score") as progress:
        report = run_score(cfg, horizon=horizon, cutoff=when, now=_now(), fit=fit, progress=progress)
    out.score_summary(report)


def _default_horizon(cfg: Settings) -> int:
    from shelfcast.io.lake import Lake

    info = Lake(cfg.workspace).table_info("sales") or {}
    return 13 if info.get("frequency") == "W" else 28


# The training and registry commands live in their own module; importing it registers them on `app`.
from shelfcast import cli_models, cli_monitor, cli_pipeline, cli_retrain, cli_serve  # noqa: E402, F401


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 1."""
    try:
        app()
    except ShelfcastError as exc:
        if _state["verbose"]:
            raise
        out.error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        out.error("interrupted")
        sys.exit(130)
