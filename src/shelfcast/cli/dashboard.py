"""`shelfcast dashboard`: the Streamlit dashboard on the workspace, on 127.0.0.1."""

from __future__ import annotations

import importlib
import os
import time
from typing import Annotated, Any

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, existing_workspace, settings
from shelfcast.dashboard import APP
from shelfcast.errors import ShelfcastError

app = typer.Typer()
# What the pages import on first use, imported before the server starts instead: a page opened first after a
# start would otherwise wait for them (MLflow alone takes about 2 s to import; the Item page's explanation needs
# LightGBM or XGBoost and scikit-learn's isotonic map). Streamlit runs the pages in this process, so they find
# these modules imported.
PRELOAD = (
    "mlflow",
    "lightgbm",
    "xgboost",
    "sklearn.isotonic",
    "altair",
    "shelfcast.io.registry",
    "shelfcast.jobs.explain",
    "shelfcast.jobs.stream",
    "shelfcast.dashboard.reads",
    "shelfcast.dashboard.models_data",
    "shelfcast.dashboard.monitor_data",
    "shelfcast.dashboard.lake_data",
    "shelfcast.dashboard.charts",
    "shelfcast.dashboard.item_chart",
)


def streamlit_options(*, host: str, port: int) -> dict[str, Any]:
    """Streamlit's options: headless, no usage statistics, no file watcher (an installed app), a light theme."""
    return {
        "server.address": host,
        "server.port": port,
        "server.headless": True,
        "server.fileWatcherType": "none",
        "browser.gatherUsageStats": False,
        "global.developmentMode": False,
        "client.toolbarMode": "minimal",
        "theme.base": "light",
    }


@app.command()
def dashboard(
    workspace: WorkspaceOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8501,
) -> None:
    """The dashboard for store managers and model operators (Store, Item, Models, Monitoring, Data pages)."""
    from streamlit.web import bootstrap

    cfg = existing_workspace(settings(workspace=workspace))
    # The pages read their settings from the environment, as this process did.
    os.environ["SHELFCAST_WORKSPACE"] = str(cfg.workspace.resolve())
    started = time.perf_counter()
    for name in PRELOAD:
        importlib.import_module(name)
    from shelfcast.dashboard.models_data import warm_registry

    try:
        warm_registry(cfg)
    except ShelfcastError as exc:  # the Models page says so; the other pages work without it
        out.note(f"the registry could not be read: {exc}")
    out.info(
        f"dashboard of {cfg.workspace} on http://{host}:{port} (ready in {time.perf_counter() - started:.1f} s; "
        "Ctrl-C stops it)"
    )
    options = streamlit_options(host=host, port=port)
    bootstrap.load_config_options(flag_options=options)
    bootstrap.run(str(APP), False, [], options)
