"""`shelfcast serve` against clients a real network has (issue 14): slow ones, ones that leave, and the access log.

A real uvicorn process on loopback, spoken to over raw sockets.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl
import pytest
from serving import call, serve_process

from shelfcast.settings import Settings

pytestmark = pytest.mark.e2e
READ_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(serving_workspace: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {"SHELFCAST_SERVE__READ_TIMEOUT_SECONDS": str(READ_TIMEOUT), "SHELFCAST_SERVE__MAX_ORIGINS": "1000"}
    for base in serve_process(serving_workspace.workspace, env=env, log=log):
        yield base, log


def _connect(base: str) -> socket.socket:
    url = urlsplit(base)
    return socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10)


def _post_head(path: str, length: int) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"


def _closed(sock: socket.socket) -> bool:
    """True once the server closed the connection (readable, and nothing to read)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def _trickle(sock: socket.socket, data: bytes, *, every: float = 0.25) -> float | None:
    """Send `data` a byte every `every` s; the seconds until the server closed the connection (None: it never did)."""
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        time.sleep(every)
        if _closed(sock):
            return time.monotonic() - started
    return None


def test_a_client_sending_its_headers_a_byte_at_a_time_is_disconnected(server: tuple[str, Path]) -> None:
    base, log = server
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"  # over 50 s at this pace
    with _connect(base) as sock:
        after = _trickle(sock, request)
    assert after is not None, "held open for the whole trickle"
    assert READ_TIMEOUT <= after < READ_TIMEOUT + 15, after
    assert "its request did not arrive within 2 s" in log.read_text()
    assert call(f"{base}/health") == (200, {"status": "ok"}), "the server still answers others"


def test_a_client_sending_its_body_a_byte_at_a_time_is_disconnected(server: tuple[str, Path]) -> None:
    base, _ = server
    body = json.dumps({"store_id": "S001", "item_id": "I0001", "pad": "x" * 200}).encode()
    head = _post_head("/predict", len(body))
    with _connect(base) as sock:
        sock.sendall(head.encode())
        after = _trickle(sock, body)
    assert after is not None and after < READ_TIMEOUT + 15, after


def test_a_keep_alive_connection_serves_several_requests(server: tuple[str, Path]) -> None:
    base, _ = server
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        for _ in range(3):
            connection.request("GET", "/health")
            answer = connection.getresponse()
            assert (answer.status, answer.read()) == (200, b'{"status":"ok"}')
            time.sleep(READ_TIMEOUT / 2)
    finally:
        connection.close()


def test_a_client_that_leaves_stops_the_work(server: tuple[str, Path], serving_workspace: Settings) -> None:
    base, log = server
    dates = pl.read_parquet(serving_workspace.workspace / "lake" / "sales" / "*.parquet")["date"].unique().sort()
    cutoffs = [d.isoformat() for d in reversed(dates[30:-1])]  # days before the latest: one feature table each
    rows = [{"store_id": "S001", "item_id": "I0001", "cutoff": c} for c in cutoffs]
    body = json.dumps({"rows": rows}).encode()
    head = _post_head("/predict/batch", len(body))
    with _connect(base) as sock:
        sock.sendall(head.encode() + body)
        time.sleep(1.0)  # the server has read the body and started (the whole batch takes several seconds)
    deadline = time.monotonic() + 120
    while "the client disconnected" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped = [line for line in log.read_text().splitlines() if "the client disconnected" in line]
    assert stopped, log.read_text()[-3000:]
    done = int(stopped[0].split(" after ")[1].split(" of ")[0])
    assert done < len(cutoffs), stopped[0]
    assert f" of {len(cutoffs)} cutoffs" in stopped[0]


def test_the_access_log_shows_at_the_default_level(server: tuple[str, Path]) -> None:
    base, log = server
    call(f"{base}/health?probe=access-log")
    time.sleep(0.5)
    assert '"GET /health?probe=access-log HTTP/1.1" 422' in log.read_text()


def test_health_answers_while_data_and_models_load(serving_workspace: Settings, tmp_path: Path) -> None:
    """A load that takes long (a slow MLflow store, a large lake) does not keep the server from answering: /health
    says the process is alive, /ready and the data routes say it is still loading."""
    import os
    import subprocess
    import sys

    from serving import KEY, free_port

    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_", "PROMETHEUS_"))}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "serve", "-w", str(serving_workspace.workspace), "--port", str(port)],
        env=clean | {"SHELFCAST_API_KEY": KEY, "SHELFCAST_TEST_PAUSE_AT": "serve load"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        health: tuple[int, object] = (0, None)
        while time.monotonic() < deadline and health[0] != 200:
            assert process.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")
            try:
                health = call(f"{base}/health")
            except OSError:
                time.sleep(0.5)
        assert health == (200, {"status": "ok"})
        status, ready = call(f"{base}/ready")
        assert status == 503 and "loading data and models" in ready["detail"], ready
        status, risk = call(f"{base}/predict", {"store_id": "S001", "item_id": "I0001"})
        assert status == 503 and "loading data and models" in risk["detail"], risk
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
