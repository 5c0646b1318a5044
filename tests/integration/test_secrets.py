"""Planted secrets never leave: an MLflow server behind basic auth (credentials in the URI) and a PostgreSQL
password in key/value form, through ingest, train, score, models list, their errors and the service's answers."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import run_cli, write_chain

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "s3cretPW"
USER = "admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AuthProxy(http.server.ThreadingHTTPServer):
    """A reverse proxy in front of MLflow that answers 401 without `admin:s3cretPW` (as nginx's basic auth does)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.authorized = 0
        self.refused = 0
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://{USER}:{SECRET}@127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: AuthProxy

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _forward(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.server.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.authorized += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
        answer = requests.request(
            self.command, self.server.upstream + self.path, data=body, headers=headers, timeout=60, stream=True
        )
        content = answer.content
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("transfer-encoding", "content-length", "connection", "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815  (http.server's names)


@pytest.fixture
def mlflow_behind_auth(tmp_path: Path) -> Iterator[AuthProxy]:
    port = free_port()
    store = tmp_path / "mlflow-server"
    store.mkdir()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)),
            *("--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--workers", "1"),
            *("--artifacts-destination", str(store / "artifacts")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = AuthProxy(f"http://127.0.0.1:{port}")
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        yield proxy
    finally:
        proxy.shutdown()
        server.terminate()
        server.wait(timeout=60)


def test_planted_secrets_appear_in_no_output(
    tmp_path: Path, mlflow_behind_auth: AuthProxy, postgres_table: str
) -> None:

    raw = write_chain(tmp_path / "raw")
    ws = str(tmp_path / "ws")
    pg = f"host=127.0.0.1 port=5432 dbname=test user=postgres password={SECRET}"
    env = {
        "SHELFCAST_MLFLOW_TRACKING_URI": mlflow_behind_auth.url,
        "SHELFCAST_POSTGRES_URL": pg,
        "SHELFCAST_PREDICTION_STORE": "postgres",
        "SHELFCAST_PREDICTION_TABLE": postgres_table,
    }
    outputs: list[str] = []

    def run(*args: str, ok: bool | None = True, **more: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(
            *args, "-w", ws, cwd=tmp_path, env={**env, **more}, drop=("MLFLOW_",), columns=200, timeout=900
        )
        outputs.extend([result.stdout, result.stderr])
        assert ok is None or (result.returncode == 0) == ok, (args, result.stdout, result.stderr)
        return result

    run("ingest", "--source", "canonical", str(raw))
    run("train", "--task", "demand", "--folds", "2", "--horizon", "14")
    run("models", "promote", "--task", "demand", "--version", "1", "--force", ok=None)  # if the gates refused it
    run("score", "--horizon", "7")
    listed = run("models", "list")
    assert "shelfcast-demand" in listed.stdout and "champion" in listed.stdout, listed.stdout
    assert mlflow_behind_auth.authorized > 0
    # Errors and warnings: a PostgreSQL that refuses, a server that is down, wrong credentials.
    refused = run("score", "--horizon", "7", ok=False, SHELFCAST_POSTGRES_URL=pg.replace("5432", "9"))
    assert "password=***" in refused.stderr
    down = run("models", "list", ok=False, SHELFCAST_MLFLOW_TRACKING_URI=f"http://{USER}:{SECRET}@127.0.0.1:9")
    assert "http://127.0.0.1:9 is unreachable ([Errno 111] Connection refused)" in down.stderr
    wrong = mlflow_behind_auth.url.replace(SECRET, SECRET + "x")
    denied = run("models", "list", ok=False, SHELFCAST_MLFLOW_TRACKING_URI=wrong)
    assert "refused the credentials (HTTP 401)" in denied.stderr
    # What MLflow keeps: params and tags of every run.
    from mlflow import MlflowClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", USER)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
        tracking = MlflowClient(mlflow_behind_auth.url.replace(f"{USER}:{SECRET}@", ""))
        experiments = [e.experiment_id for e in tracking.search_experiments()]
        runs = tracking.search_runs(experiments)
        assert runs
        for found in runs:
            outputs.append(json.dumps({**found.data.params, **found.data.tags}))
    # The service's answers with the registry reachable and not.
    outputs.extend(service_answers(ws, env))
    outputs.extend(service_answers(ws, {**env, "SHELFCAST_MLFLOW_TRACKING_URI": f"http://{USER}:{SECRET}@127.0.0.1:9"}))
    # Every file the commands left in the workspace (logs, reports, the local champion, the lake).
    files = [p for p in Path(ws).rglob("*") if p.is_file()]
    assert files
    outputs.extend(str(p) for p in files if SECRET.encode() in p.read_bytes())
    leaks = [text for text in outputs if SECRET in text]
    assert not leaks, leaks[0][:2000]


def service_answers(workspace: str, env: dict[str, str]) -> list[str]:
    from fastapi.testclient import TestClient

    from shelfcast.service.app import create_app
    from shelfcast.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # restored (unset) on exit
            patch.setenv(name, "")
            patch.delenv(name)
        with TestClient(create_app(Settings(workspace=Path(workspace)))) as client:
            return [client.get(path).text for path in ("/health", "/ready", "/models", "/metrics")]
