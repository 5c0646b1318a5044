"""`shelfcast stack up | status | env | down`: the compose stack's servers as local processes (no Docker)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, settings
from shelfcast.errors import ConfigError, StackError
from shelfcast.workflows.stack import (
    DEFAULT_PORTS,
    SERVICES,
    StackEvents,
    StackOptions,
    StackState,
    Stopped,
    read_state,
    run_stack,
    stack_down,
    stack_folder,
    stack_status,
)

app = typer.Typer(
    help="The stack without Docker: the MLflow and Prefect servers, the API, a stream consumer and the dashboard "
    "as local processes, with compose's settings.",
    no_args_is_help=True,
)


def _port(name: str, what: str) -> object:
    return typer.Option(f"--{name}-port", min=1, max=65535, help=f"Port of {what}.")


@app.command("up")
def up(
    workspace: WorkspaceOpt = None,
    host: Annotated[str, typer.Option(help="Interface every server listens on (0.0.0.0 for every one).")] = "127.0.0.1",
    mlflow_port: Annotated[int, _port("mlflow", "the MLflow tracking server")] = DEFAULT_PORTS["mlflow"],
    prefect_port: Annotated[int, _port("prefect", "the Prefect server (its UI at /)")] = DEFAULT_PORTS["prefect"],
    api_port: Annotated[int, _port("api", "the API")] = DEFAULT_PORTS["api"],
    consumer_port: Annotated[int, _port("consumer", "the consumer's /metrics")] = DEFAULT_PORTS["consumer"],
    dashboard_port: Annotated[int, _port("dashboard", "the dashboard")] = DEFAULT_PORTS["dashboard"],
    backend: Annotated[
        str,
        typer.Option(
            help="Where MLflow and Prefect keep their state: postgres (databases on the `postgres_url` server, "
            "created when missing; predictions go there too, as in compose) or sqlite (files under "
            "<workspace>/stack)."
        ),
    ] = "postgres",
    mlflow_database: Annotated[str, typer.Option(help="MLflow's database (--backend postgres).")] = "mlflow",
    prefect_database: Annotated[str, typer.Option(help="Prefect's database (--backend postgres).")] = "prefect",
    only: Annotated[
        str | None,
        typer.Option(help=f"Servers to start, comma-separated, of {', '.join(SERVICES)}.", show_default="all"),
    ] = None,
    start_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds every server has to answer its health check.")
    ] = 300.0,
    stop_timeout: Annotated[float, typer.Option(min=0, help="Seconds a server has to stop before SIGKILL.")] = 20.0,
) -> None:
    """Start the stack and supervise it until Ctrl-C, which stops every server; logs in <workspace>/stack/logs."""
    if backend not in ("postgres", "sqlite"):
        raise ConfigError(f"`--backend` takes postgres or sqlite, got {backend!r}")
    cfg = settings(workspace=workspace)
    services = tuple(s.strip() for s in only.split(",") if s.strip()) if only is not None else SERVICES
    ports = {
        "mlflow": mlflow_port,
        "prefect": prefect_port,
        "api": api_port,
        "consumer": consumer_port,
        "dashboard": dashboard_port,
    }
    options = StackOptions(
        host=host,
        ports=ports,
        backend="postgres" if backend == "postgres" else "sqlite",
        mlflow_database=mlflow_database,
        prefect_database=prefect_database,
        services=services,
        start_timeout=start_timeout,
        stop_timeout=stop_timeout,
    )
    out.info(f"starting the stack of {cfg.workspace} ({', '.join(services)}); MLflow and Prefect first")
    run_stack(cfg, options, StackEvents(say=out.info, ready=_ready, stopped=_stopped))


def _ready(state: StackState, folder: Path) -> None:
    table = Table(title="shelfcast stack: ready", title_justify="left")
    for column in ("server", "pid", "url", "log"):
        table.add_column(column, overflow="fold")
    for server in state.servers:
        table.add_row(server.name, str(server.pid), server.url, server.log)
    out.console.print(table)
    out.console.print(
        f'Commands against the stack: `eval "$(shelfcast stack env -w {shlex.quote(str(folder.parent))})"`, then '
        "e.g. `shelfcast pipeline run DATA`. Ctrl-C stops every server.",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _stopped(stopped: list[Stopped], reason: str) -> None:
    killed = [s.name for s in stopped if s.killed]
    line = f"{reason}: stopped {len(stopped)} server(s)"
    if killed:
        line += f" ({', '.join(killed)} did not stop in time: killed)"
    out.info(line)


@app.command("status")
def status(workspace: WorkspaceOpt = None) -> None:
    """The stack's servers: running, answering their health check, URL and log. Exit 1 if one is not ready."""
    cfg = settings(workspace=workspace)
    state, rows = stack_status(stack_folder(cfg))
    if state is None:
        out.console.print(f"no stack runs for {cfg.workspace}", highlight=False)
        raise typer.Exit(1)
    table = Table(title=f"shelfcast stack (supervisor pid {state.supervisor}, since {state.started_at})")
    for column in ("server", "pid", "running", "ready", "url", "log"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.name, str(row.pid), _yes(row.running), _yes(row.ready), row.url, row.log)
    out.console.print(table)
    if not state.supervisor_alive():
        out.note("its supervisor is gone (killed?): `shelfcast stack down` stops what is left")
    if not all(r.ready for r in rows) or not state.supervisor_alive():
        raise typer.Exit(1)


def _yes(value: bool) -> str:
    return "yes" if value else "[red]no[/]"


@app.command("env")
def env(workspace: WorkspaceOpt = None) -> None:
    """Shell lines that point shelfcast commands at the running stack: `eval "$(shelfcast stack env)"`."""
    cfg = settings(workspace=workspace)
    state = read_state(stack_folder(cfg))
    if state is None:
        raise StackError(f"no stack runs for {cfg.workspace}: start one with `shelfcast stack up`")
    for key, value in state.env.items():
        print(f"export {key}={shlex.quote(value)}")


@app.command("down")
def down(workspace: WorkspaceOpt = None) -> None:
    """Stop the stack running for the workspace (from another shell), or what a killed one left."""
    cfg = settings(workspace=workspace)
    state, stopped = stack_down(stack_folder(cfg))
    if state is None:
        out.console.print(f"no stack runs for {cfg.workspace}", highlight=False)
        return
    left = f"; {len(stopped)} server(s) left by its supervisor stopped here" if stopped else ""
    out.console.print(
        f"stopped the stack of {cfg.workspace} (supervisor pid {state.supervisor}){left}", highlight=False
    )
