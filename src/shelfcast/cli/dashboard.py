"""`shelfcast dashboard`: the Streamlit dashboard on the workspace, on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, existing_workspace, settings
from shelfcast.dashboard import APP

app = typer.Typer()


def streamlit_command(*, host: str, port: int) -> list[str]:
    """The command that serves the dashboard: headless, no usage statistics, no file watcher (an installed app)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
    ]


@app.command()
def dashboard(
    workspace: WorkspaceOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8501,
) -> None:
    """The dashboard for store managers and model operators (Store, Item, Models, Monitoring, Data pages)."""
    cfg = existing_workspace(settings(workspace=workspace))
    # Streamlit runs the app in a new process that reads its settings from the environment, as this one did.
    os.environ["SHELFCAST_WORKSPACE"] = str(cfg.workspace.resolve())
    out.info(f"dashboard of {cfg.workspace} on http://{host}:{port} (Ctrl-C stops it)")
    command = streamlit_command(host=host, port=port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
