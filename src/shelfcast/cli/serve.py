"""`shelfcast serve`: the FastAPI service under uvicorn."""

from __future__ import annotations

import copy
import os
import tempfile
from typing import Annotated, Any

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, settings
from shelfcast.errors import ConfigError

app = typer.Typer()


@app.command()
def serve(
    workspace: WorkspaceOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (one model copy and core each).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
) -> None:
    """Serve stockout risk, forecasts and reorder advice over HTTP (OpenAPI docs at /docs)."""
    import uvicorn

    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level not in levels:
        raise ConfigError(f"`--log-level` must be one of {', '.join(levels)}, got {log_level!r}")
    cfg = settings(workspace=workspace)
    # Workers are new processes: they read their settings from the environment, as this one did.
    os.environ["SHELFCAST_WORKSPACE"] = str(cfg.workspace.resolve())
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker writes its metrics here and /metrics adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shelfcast-metrics-")
    out.info(f"serving {cfg.workspace} on http://{host}:{port} (docs at /docs), {workers} worker(s)")
    uvicorn.run(
        "shelfcast.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=_log_config(log_level),
        access_log=log_level in ("info", "debug", "trace"),
        # A request must arrive whole within serve.read_timeout_seconds (slow clients are disconnected).
        http="shelfcast.service.server:ReadDeadlineProtocol",
    )


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the service's own lines (loading, refused slow clients, abandoned requests) at the
    same level, in every worker (each applies it)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    level = "DEBUG" if log_level == "trace" else log_level.upper()
    config["loggers"]["shelfcast"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config
