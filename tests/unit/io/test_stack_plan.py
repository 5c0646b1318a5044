"""The stack's plan (which servers, their arguments, the environment they share) and the process helpers, without
starting a server; `tests/e2e/test_stack.py` starts them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from shelfcast.errors import ConfigError
from shelfcast.io.databases import database_url
from shelfcast.io.processes import launch, session_members, start_ticks, stop_session, tail
from shelfcast.settings import Settings
from shelfcast.workflows.stack import DEFAULT_PORTS, SERVICES, StackOptions, plan_stack

COMPOSE = Path(__file__).resolve().parents[3] / "deploy" / "compose.yaml"


def test_database_urls_keep_user_password_host_and_port() -> None:
    url = "postgresql://ann:p%40ss@db.example:6543/shop"
    assert database_url(url, "mlflow", driver="psycopg") == "postgresql+psycopg://ann:p%40ss@db.example:6543/mlflow"
    assert database_url("host=/run/pg port=5433 dbname=x", "prefect", driver="asyncpg") == (
        "postgresql+asyncpg://:5433/prefect?host=%2Frun%2Fpg"
    )
    assert database_url("postgresql:///x", "mlflow", driver="psycopg") == "postgresql+psycopg://127.0.0.1/mlflow"


def test_the_plan_has_compose_settings_for_each_server(tmp_path: Path) -> None:
    cfg = Settings(workspace=tmp_path / "ws", postgres_url="postgresql://u:pw@127.0.0.1:5432/test")
    plan = plan_stack(cfg, StackOptions())
    assert [s.name for s in plan.servers] == list(SERVICES)
    ws = str((tmp_path / "ws").resolve())
    assert plan.env == {
        "SHELFCAST_WORKSPACE": ws,
        "SHELFCAST_MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "SHELFCAST_PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "SHELFCAST_PREDICTION_STORE": "postgres",
    }
    assert plan.databases == ("mlflow", "prefect")
    by = {s.name: s for s in plan.servers}
    mlflow = by["mlflow"].argv
    assert mlflow[mlflow.index("--backend-store-uri") + 1] == "postgresql+psycopg://u:pw@127.0.0.1:5432/mlflow"
    assert mlflow[mlflow.index("--artifacts-destination") + 1] == f"{ws}/stack/mlartifacts"
    assert "--serve-artifacts" in mlflow
    assert by["prefect"].env["PREFECT_API_DATABASE_CONNECTION_URL"] == (
        "postgresql+asyncpg://u:pw@127.0.0.1:5432/prefect"
    )
    assert by["api"].health == "http://127.0.0.1:8000/health"
    assert by["dashboard"].health == "http://127.0.0.1:8501/_stcore/health"

    # The consumer runs as compose runs it (its command there, with the host and port of this stack).
    compose = yaml.safe_load(COMPOSE.read_text())
    command = compose["services"]["consumer"]["command"]
    assert list(by["consumer"].argv[3:]) == [*command[1:-1], "127.0.0.1"]
    assert compose["services"]["mlflow"]["command"][-1] == "--serve-artifacts"


def test_a_chosen_prediction_store_is_kept_and_sqlite_needs_no_database(tmp_path: Path) -> None:
    cfg = Settings(workspace=tmp_path / "ws", prediction_store="delta")
    plan = plan_stack(cfg, StackOptions(backend="sqlite", services=("mlflow", "api"), host="0.0.0.0"))
    assert "SHELFCAST_PREDICTION_STORE" not in plan.env and "PREFECT_API_URL" not in plan.env
    assert plan.databases == ()
    assert plan.env["SHELFCAST_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"  # clients reach 0.0.0.0 on loopback
    store = plan.servers[0].argv[plan.servers[0].argv.index("--backend-store-uri") + 1]
    assert store == f"sqlite:///{(tmp_path / 'ws').resolve()}/stack/mlflow.db"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (StackOptions(services=("api", "grafana")), "`--only` takes mlflow, prefect, api, consumer, dashboard"),
        (StackOptions(services=()), "got none"),
        (StackOptions(ports=DEFAULT_PORTS | {"api": 5000}), "two servers were given the same port 5000"),
    ],
)
def test_bad_options_are_config_errors(tmp_path: Path, options: StackOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_stack(Settings(workspace=tmp_path), options)


def test_a_session_is_stopped_whole_even_after_its_leader_died(tmp_path: Path) -> None:
    """A leader that forks a worker and exits: the worker is still found by the session and stopped."""
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
    script += "print('fork' + 'ed', flush=True); time.sleep(300)"
    log = tmp_path / "logs" / "x.log"
    server, proc = launch("x", [sys.executable, "-c", script], env=dict(os.environ), log=log)
    deadline = time.monotonic() + 60
    while len(session_members(server.pid, server.started)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.started == start_ticks(server.pid)
    proc.kill()
    proc.wait()
    assert start_ticks(server.pid) is None  # reaped: gone
    members = session_members(server.pid, server.started)
    assert len(members) == 1 and members[0] != server.pid  # the worker, orphaned
    assert stop_session(server, timeout=10) is False  # it stopped on SIGTERM
    assert session_members(server.pid, server.started) == []
    assert tail(log).splitlines()[-1] == "forked" and "=== " in log.read_text()


def test_a_server_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('u' + 'p', flush=True); "
    script += "time.sleep(300)"
    server, proc = launch("stubborn", [sys.executable, "-c", script], env=dict(os.environ), log=tmp_path / "s.log")
    deadline = time.monotonic() + 60
    while "\nup\n" not in (tmp_path / "s.log").read_text():  # the header line quotes the script: not it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert stop_session(server, timeout=0.5, proc=proc) is True
    assert proc.returncode == -9
    assert session_members(server.pid, server.started) == []


def test_a_reused_pid_is_not_taken_for_a_server() -> None:
    """Members of a session count only if they started no earlier than the recorded leader: a process that was
    there before (as one reusing a dead server's pid would have started later, a record's process earlier)."""
    me = os.getpid()
    sid, started = os.getsid(me), start_ticks(me)
    assert started is not None
    assert me in session_members(sid, 0)
    assert me not in session_members(sid, started + 1)
