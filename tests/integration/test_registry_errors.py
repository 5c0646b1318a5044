"""Registry failures a user can hit are one line and exit 1, soon: a locked SQLite store, a server answering HTML,
a database-backed store that is down (the local champion copy then serves)."""

from __future__ import annotations

import http.server
import json
import os
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import NOW, TODAY, write_chain

from shelfcast.data.sources import get_source
from shelfcast.errors import TrackingError
from shelfcast.io.champion import champion_dir, load_champion
from shelfcast.io.registry import CHAMPION, MODEL_NAMES, Registry
from shelfcast.io.tracking import connect
from shelfcast.jobs.ingest import run_ingest
from shelfcast.settings import Settings
from shelfcast.types import Task

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def shelfcast(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "shelfcast", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, **(env or {})},
    )


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize("lock", ["IMMEDIATE", "EXCLUSIVE"])
def test_a_registry_locked_by_another_process_is_one_line(tmp_path: Path, lock: str) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    registry = Registry(settings)
    name = MODEL_NAMES[Task.DEMAND]
    registry.client.create_registered_model(name)
    run = registry.client.create_run(registry.client.create_experiment("x"))
    registry.client.log_param(run.info.run_id, "model.candidate", "gbm")
    registry.client.create_model_version(name, source=run.info.artifact_uri, run_id=run.info.run_id)
    holder = sqlite3.connect(settings.workspace / "mlflow" / "mlflow.db", isolation_level=None)
    holder.execute(f"BEGIN {lock}")  # held for the whole command (over SQLite's 5 s wait)
    try:
        ws = str(settings.workspace)
        promote = ("models", "promote", "--task", "demand", "--version", "1", "--force", "-w", ws)
        promoted = shelfcast(*promote, cwd=tmp_path)
        one_line_error(promoted, "locked by another process", "try again")
        if lock == "EXCLUSIVE":
            one_line_error(shelfcast("models", "list", "-w", ws, cwd=tmp_path), "locked by another process")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


class _Html(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _page(self) -> None:
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page  # noqa: N815  (http.server's names)


@pytest.fixture
def html_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_server_answering_html_is_one_line(tmp_path: Path, html_server: str) -> None:
    listed = shelfcast("models", "list", cwd=tmp_path, env={"SHELFCAST_MLFLOW_TRACKING_URI": html_server})
    one_line_error(listed, f"MLflow tracking server {html_server}", "text/html", "is the URI an MLflow server?")


def test_a_database_store_that_is_down_fails_fast_and_the_local_champion_serves(tmp_path: Path) -> None:
    down = "postgresql://mlflow:s3cretPW@127.0.0.1:9/mlflow"
    started = time.monotonic()
    listed = shelfcast("models", "list", cwd=tmp_path, env={"SHELFCAST_MLFLOW_TRACKING_URI": down})
    # MLflow alone retries a dead database for minutes; the CLI's own start-up takes some seconds here.
    assert time.monotonic() - started < 60
    one_line_error(listed, "MLflow store postgresql://mlflow:***@127.0.0.1:9/mlflow is unreachable")
    assert "s3cretPW" not in listed.stderr
    settings = Settings(workspace=tmp_path / "ws", mlflow_tracking_uri=down)
    with pytest.raises(TrackingError, match="unreachable"):
        connect(settings)
    local = champion_dir(settings, Task.DEMAND)
    local.mkdir(parents=True)
    name = MODEL_NAMES[Task.DEMAND]
    (local / "version.json").write_text(json.dumps({"name": name, "version": "3", "run_id": "r", "alias": CHAMPION}))
    started = time.monotonic()
    champion = load_champion(settings, Task.DEMAND)
    assert time.monotonic() - started < 15
    assert (champion.version, champion.from_registry) == ("3", False)


def test_train_on_a_full_disk_is_one_line_that_says_so(tmp_path: Path) -> None:
    """The MLflow store cannot grow (a file size limit, as a full disk or a quota refuses writes): one line that
    names the store and the likely cause, not MLflow's tracebacks."""
    raw = write_chain(tmp_path / "raw")
    settings = Settings(workspace=tmp_path / "ws")
    run_ingest(get_source("canonical"), raw, settings=settings, today=TODAY, now=NOW)
    limit = 300_000  # bytes per file: the lake fits, MLflow's SQLite store does not

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    trained = subprocess.run(
        [sys.executable, "-m", "shelfcast", "train", "--task", "demand", "--folds", "2", "--horizon", "7"],
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHELFCAST_"))}}
        | {"SHELFCAST_WORKSPACE": str(settings.workspace)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        preexec_fn=small_disk,  # the limit holds in the child only
    )
    one_line_error(trained, "mlflow.db", "is the disk full")


class _Failing(http.server.BaseHTTPRequestHandler):
    """Answers the start-up check as MLflow does, then fails every call with 503 (a server going down)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        ok = self.path.startswith("/api/2.0/mlflow/experiments/search")
        body = b'{"experiments": []}' if ok else b'{"error_code": "TEMPORARILY_UNAVAILABLE"}'
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815  (http.server's names)


def test_a_server_failing_after_the_check_is_one_line_soon(tmp_path: Path) -> None:
    """MLflow alone retries a failing server seven times with growing waits (minutes); shelfcast caps the
    retries (the user's own MLFLOW_HTTP_REQUEST_MAX_RETRIES wins) and says what failed."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        listed = shelfcast("models", "list", cwd=tmp_path, env={"SHELFCAST_MLFLOW_TRACKING_URI": uri})
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    one_line_error(listed, f"MLflow at {uri}")
    assert elapsed < 60, elapsed
