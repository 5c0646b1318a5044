"""`shelfcast serve`: the FastAPI service under uvicorn."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, settings
from shelfcast.errors import ConfigError
from shelfcast.io.files import process_alive

app = typer.Typer()
METRICS_PREFIX = "shelfcast-metrics-"


def _remove_stale_metrics_dirs(root: Path) -> None:
    """Metrics folders of servers that died without removing theirs (`shelfcast-metrics-<pid>-*`, pid gone)."""
    for folder in root.glob(f"{METRICS_PREFIX}*-*"):
        pid = folder.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


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
    metrics_dir: str | None = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker writes its metrics here and /metrics adds them up; the folder is this server's (its pid in
        # the name), removed when it stops, or by the next server if this one was killed.
        _remove_stale_metrics_dirs(Path(tempfile.gettempdir()))
        metrics_dir = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    out.info(f"serving {cfg.workspace} on http://{host}:{port} (docs at /docs), {workers} worker(s)")
    try:
        uvicorn.run(
            "shelfcast.service.app:served_app",
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
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the service's own lines (loading, refused slow clients, abandoned requests) at the
    same level, in every worker (each applies it)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    level = "DEBUG" if log_level == "trace" else log_level.upper()
    config["loggers"]["shelfcast"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config
