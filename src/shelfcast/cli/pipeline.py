"""`shelfcast pipeline run | schedule`: the whole pipeline as a Prefect flow, once or on a cron schedule."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import EngineOpt, RenamedFlags, WorkspaceOpt, engine_of, quiet_mlflow, settings
from shelfcast.errors import ConfigError
from shelfcast.io.table_formats import FORMATS, parse_format
from shelfcast.settings import Settings
from shelfcast.types import TASKS

app = typer.Typer(
    help="The pipeline (compact live, ingest, validate, features, train, promote, score) as a Prefect flow.",
    no_args_is_help=True,
)

PathArg = Annotated[
    Path | None,
    typer.Argument(help="File or folder to ingest first.", show_default="train and score on the lake as it is"),
]
SourceOpt = Annotated[str, typer.Option(help="Adapter for PATH (see `shelfcast ingest --help`).")]
TasksOpt = Annotated[str, typer.Option(help="Models to train, comma-separated: demand, stockout.")]
FoldsOpt = Annotated[int, typer.Option(min=1, help="Backtest folds per training run.")]
HorizonOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Steps scored (days; weeks on weekly data).", show_default="14 days / 2 weeks"),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help=f"Tables written: {' or '.join(FORMATS)}. delta also writes the Delta tables raw_<table> (every lake "
        "table), features (with labels) and predictions under <workspace>/delta, their versions logged to each "
        "training run.",
        show_default="delta with the Delta prediction store, else parquet",
    ),
]


def _tasks(value: str) -> list[str]:
    chosen = [t.strip() for t in value.split(",") if t.strip()]
    wrong = [t for t in chosen if t not in TASKS]
    if wrong or not chosen:
        raise ConfigError(f"`--tasks` takes demand and/or stockout, comma-separated; got {value!r}")
    return chosen


EPHEMERAL_STARTUP_SECONDS = 180


def _prefect_env(cfg: Settings, *, server: bool) -> str | None:
    """Point Prefect at the settings' server, or keep its temporary server's files in the workspace.

    Must run before Prefect is imported: it reads these variables once.
    Returns the API URL in use (None: a temporary server for this run).
    """
    if cfg.prefect_api_url:
        os.environ["PREFECT_API_URL"] = cfg.prefect_api_url
    api = os.environ.get("PREFECT_API_URL")
    if api is None and not server and "PREFECT_HOME" not in os.environ:
        home = (cfg.workspace / "prefect").resolve()
        home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the last level
        os.environ["PREFECT_HOME"] = str(home)
    if api is None:
        # Prefect gives its temporary server 20 s to answer; on a machine busy with other jobs it needs longer.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_SECONDS))
    return api


@app.command("run", cls=RenamedFlags)
def run(
    path: PathArg = None,
    source: SourceOpt = "canonical",
    tasks: TasksOpt = "demand,stockout",
    folds: FoldsOpt = 3,
    horizon: HorizonOpt = None,
    table_format: FormatOpt = None,
    engine: EngineOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Run the flow once through Prefect (a temporary local server unless PREFECT_API_URL is set)."""
    cfg = settings(workspace=workspace)
    chosen = _tasks(tasks)
    chosen_format = parse_format(table_format) if table_format is not None else None
    chosen_engine = engine_of(cfg, engine)
    if path is not None and not path.exists():
        raise ConfigError(f"{path} does not exist")
    api = _prefect_env(cfg, server=False)
    out.console.print(
        f"running the pipeline through Prefect ({api or 'temporary local server, ~20 s to start'}); "
        "`shelfcast demo` runs the same steps without Prefect"
    )
    quiet_mlflow()
    from shelfcast.workflows.flows import pipeline_flow

    summary = pipeline_flow(
        workspace=str(cfg.workspace.resolve()),
        path=str(path.resolve()) if path else None,
        source=source,
        tasks=chosen,
        folds=folds,
        horizon=horizon,
        table_format=chosen_format,
        engine=chosen_engine,
    )
    out.pipeline_summary(summary)


@app.command("schedule", cls=RenamedFlags)
def schedule(
    cron: Annotated[str, typer.Option(help='Cron schedule, e.g. "0 3 * * *" (every day at 03:00).')],
    path: PathArg = None,
    source: SourceOpt = "canonical",
    tasks: TasksOpt = "demand,stockout",
    folds: FoldsOpt = 3,
    horizon: HorizonOpt = None,
    table_format: FormatOpt = None,
    engine: EngineOpt = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "shelfcast-daily",
    monitor: Annotated[
        bool,
        typer.Option(
            "--monitor",
            help="Schedule the monitoring flow instead (monitor, then retrain / roll back / fall back as the "
            "policy decides); PATH, --tasks, --folds and --horizon do not apply.",
        ),
    ] = False,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact",
            help="Schedule the live compaction alone instead (the online store's closed days into the lake, as "
            "`shelfcast stream compact`; the pipeline runs it first anyway); PATH, --tasks, --folds and --horizon "
            "do not apply.",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve the pipeline (or, with --monitor, the monitoring flow; with --compact, the live compaction) on a cron
    schedule against a Prefect server."""
    cfg = settings(workspace=workspace)
    chosen = _tasks(tasks)
    chosen_format = parse_format(table_format) if table_format is not None else None
    chosen_engine = engine_of(cfg, engine)
    if monitor and compact:
        raise ConfigError("`--monitor` and `--compact` each schedule a flow of their own: give one of them")
    api = _prefect_env(cfg, server=True)  # before anything imports Prefect: it reads its settings once
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise ConfigError(f'`--cron` {cron!r} is not a valid cron schedule (e.g. "0 3 * * *")') from None
    if api is None:
        raise ConfigError(
            "a schedule needs a Prefect server: start one with `uv run prefect server start`, then set "
            "SHELFCAST_PREFECT_API_URL=http://127.0.0.1:4200/api (or PREFECT_API_URL) and run this again"
        )
    from shelfcast.workflows.flows import compact_flow, monitor_flow, pipeline_flow

    out.console.print(f"serving {name} on {cron!r} against {api}; Ctrl-C stops it")
    if compact:
        compact_flow.serve(name=name, cron=cron, parameters={"workspace": str(cfg.workspace.resolve())})
        return
    if monitor:
        monitor_flow.serve(name=name, cron=cron, parameters={"workspace": str(cfg.workspace.resolve()), "act": True})
        return
    pipeline_flow.serve(
        name=name,
        cron=cron,
        parameters={
            "workspace": str(cfg.workspace.resolve()),
            "path": str(path.resolve()) if path else None,
            "source": source,
            "tasks": chosen,
            "folds": folds,
            "horizon": horizon,
            "table_format": chosen_format,
            "engine": chosen_engine,
        },
    )
