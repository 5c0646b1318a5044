"""`shelfcast stack up` as a user runs it: the MLflow and Prefect servers (their state in PostgreSQL), the API, a
consumer and the dashboard as local processes; the pipeline runs against the MLflow *server* and the Prefect
server, scores into PostgreSQL, live events reach /predict through the consumer, the dashboard answers, and Ctrl-C
leaves no process behind. Then what a crash leaves: a supervisor killed with SIGKILL, found and stopped later; and
the mistakes, each one line."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from helpers import NOW, PG_URL, REDIS_URL, TODAY, redis_prefix, require_postgres, run_cli
from serving import call, free_port

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.io.databases import drop_database
from shelfcast.io.lake import Lake
from shelfcast.io.processes import session_members
from shelfcast.jobs import stream as js
from shelfcast.jobs.ingest import run_ingest
from shelfcast.settings import Settings

pytestmark = pytest.mark.e2e

KEY = "stack-key"
CHAIN = SimConfig(n_stores=2, n_items=3, n_days=240, seed=8, min_base_demand=1.0, max_base_demand=30.0)
STREAMED = 3  # the chain's last days, sent as live events after the pipeline ran on the days before
FACTS = ("sales", "inventory", "movements")
START_WAIT = 420  # seconds for every server to answer, on a loaded 2-core machine (idle: ~40 s)


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    """Databases and a predictions schema unique to the test on the real PostgreSQL, dropped afterwards."""
    require_postgres()
    tag = uuid.uuid4().hex[:10]
    found = {"mlflow": f"stack_mlflow_{tag}", "prefect": f"stack_prefect_{tag}", "schema": f"stack_{tag}"}
    yield found
    for database in (found["mlflow"], found["prefect"]):
        drop_database(PG_URL, database)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {found['schema']} CASCADE")


@pytest.fixture
def stack_prefix() -> Iterator[str]:
    yield from redis_prefix("stack")


def _ports() -> dict[str, int]:
    return {name: free_port() for name in ("mlflow", "prefect", "api", "consumer", "dashboard")}


def _port_args(ports: dict[str, int]) -> list[str]:
    return [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]


class Stack:
    """`shelfcast stack up` in a subprocess (its own process group, as a terminal would run it), output in files."""

    def __init__(self, tmp: Path, workspace: Path, args: list[str], env: dict[str, str]) -> None:
        self.workspace = workspace
        self.out = tmp / f"stack-{len(list(tmp.glob('stack-*.out')))}.out"
        self.err = self.out.with_suffix(".err")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_", "PREFECT_"))}
        self.env = clean | env
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shelfcast", "stack", "up", "-w", str(workspace), *args],
                cwd=tmp,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_ready(self) -> dict[str, Any]:
        state_file = self.workspace / "stack" / "state.json"
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            if "Ctrl-C stops every server" in self.out.read_text(errors="replace"):
                state: dict[str, Any] = json.loads(state_file.read_text())
                return state
            time.sleep(0.5)
        pytest.fail(f"the stack was not ready in {START_WAIT} s:\n{self.output()}")

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=180)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _left(state: dict[str, Any]) -> dict[str, list[int]]:
    """Processes still running of each recorded server's session (none, once stopped)."""
    found = {s["name"]: session_members(s["pid"], s["started"]) for s in state["servers"]}
    return {name: pids for name, pids in found.items() if pids}


def _stack_env(workspace: Path, cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """What `eval "$(shelfcast stack env)"` would export."""
    done = run_cli("stack", "env", "-w", str(workspace), cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    pairs = {}
    for line in done.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        pairs[key] = shlex.split(value)[0]
    return pairs


def _chain(tmp: Path) -> tuple[Path, Path, dt.date]:
    """The chain's days up to T as files to ingest, and the days after T as a file of live events."""
    sim = simulate(CHAIN)
    tables = sim.tables()
    tables["inventory"] = tables["inventory"].select("date", "store_id", "item_id", "on_hand", "safety_stock")
    last = tables["sales"]["date"].max()
    assert isinstance(last, dt.date)
    cut = last - dt.timedelta(days=STREAMED)
    raw, full = tmp / "raw", tmp / "full"
    for folder, keep in ((raw, pl.col("date") <= cut), (full, pl.lit(True))):
        folder.mkdir()
        for name, frame in tables.items():
            (frame.filter(keep) if name in FACTS else frame).write_parquet(folder / f"{name}.parquet")
        (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    scratch = Settings(workspace=tmp / "full-ws")
    run_ingest(get_source("canonical"), full, settings=scratch, today=TODAY, now=NOW)
    events = tmp / "events.parquet"
    js.lake_events(Lake(scratch.workspace), start=cut + dt.timedelta(days=1)).write_parquet(events)
    return raw, events, cut


def _metric(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name + labels)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_the_stack_runs_the_pipeline_against_its_servers_and_stops_leaving_nothing(
    tmp_path: Path, names: dict[str, str], stack_prefix: str
) -> None:
    raw, events, cut = _chain(tmp_path)
    workspace = tmp_path / "ws"
    ports = _ports()
    env = {
        "SHELFCAST_POSTGRES_URL": PG_URL,
        "SHELFCAST_PREDICTION_TABLE": f"{names['schema']}.predictions",
        "SHELFCAST_REDIS_URL": REDIS_URL,
        "SHELFCAST_LIVE__PREFIX": stack_prefix,
        "SHELFCAST_LIVE__SERVE": "true",
        "SHELFCAST_LIVE__REFRESH_SECONDS": "0.5",
        "SHELFCAST_LIVE__BLOCK_MS": "100",
        "SHELFCAST_API_KEY": KEY,
    }
    databases = ["--mlflow-database", names["mlflow"], "--prefect-database", names["prefect"]]
    stack = Stack(tmp_path, workspace, [*_port_args(ports), *databases], env)
    try:
        state = stack.wait_ready()
        assert [s["name"] for s in state["servers"]] == ["mlflow", "prefect", "api", "consumer", "dashboard"]
        logs = workspace / "stack" / "logs"
        assert {p.name for p in logs.iterdir()} == {
            f"{s}.log" for s in ("mlflow", "prefect", "api", "consumer", "dashboard")
        }

        # The pipeline, pointed at the stack as a user would (`eval "$(shelfcast stack env)"`).
        client_env = env | _stack_env(workspace, tmp_path, env)
        mlflow_url = f"http://127.0.0.1:{ports['mlflow']}"
        assert client_env["SHELFCAST_MLFLOW_TRACKING_URI"] == mlflow_url
        assert client_env["PREFECT_API_URL"] == f"http://127.0.0.1:{ports['prefect']}/api"
        assert client_env["SHELFCAST_PREDICTION_STORE"] == "postgres"
        piped = run_cli("pipeline", "run", str(raw), "--folds", "1", cwd=tmp_path, env=client_env, columns=200)
        assert piped.returncode == 0, piped.stdout + piped.stderr

        # MLflow: the runs and versions are on the server, their artifacts in the stack's artifact store.
        from mlflow import MlflowClient

        tracking = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
        models = {m.name for m in tracking.search_registered_models()}
        assert len(models) == 2, models
        for model in models:
            version = tracking.get_model_version(model, "1")
            run = tracking.get_run(version.run_id)
            assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
        assert any((workspace / "stack" / "mlartifacts").rglob("*.json"))
        assert not (workspace / "mlflow").exists()  # no SQLite store in the workspace: the server holds it all

        # Prefect: the flow run is the server's, completed.
        run_id = re.search(r"Prefect flow run\s*│\s*([0-9a-f-]{36})", piped.stdout)
        assert run_id, piped.stdout
        status, flow_run = call(f"http://127.0.0.1:{ports['prefect']}/api/flow_runs/{run_id.group(1)}")
        assert status == 200 and flow_run["state_type"] == "COMPLETED", flow_run

        # PostgreSQL: the scored rows, as many as the pipeline reports.
        scored = int(re.search(r"score\s*│\s*([0-9,]+) rows", piped.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
        with psycopg.connect(PG_URL) as conn:
            rows = conn.execute(f"SELECT count(*) FROM {names['schema']}.predictions").fetchone()
        assert rows is not None and rows[0] == scored > 0

        # Live events through the consumer: the online store is seeded through T, days T+1.. stream in.
        seeded = run_cli("stream", "seed", "--through", cut.isoformat(), cwd=tmp_path, env=client_env)
        assert seeded.returncode == 0, seeded.stderr
        produced = run_cli("stream", "produce", str(events), cwd=tmp_path, env=client_env)
        assert produced.returncode == 0, produced.stderr
        sent = pl.read_parquet(events).height
        consumer = f"http://127.0.0.1:{ports['consumer']}/metrics"
        deadline = time.monotonic() + 120
        while _metric(call(consumer)[1], "shelfcast_stream_events_total", '{outcome="applied"}') < sent:
            assert time.monotonic() < deadline, call(consumer)[1]
            time.sleep(0.5)

        # The API: reloaded (the pipeline promoted models), it answers from live features with the champion.
        api = f"http://127.0.0.1:{ports['api']}"
        status, reloaded = call(f"{api}/admin/reload", {}, headers={"X-API-Key": KEY})
        assert status == 200, reloaded
        deadline = time.monotonic() + 120
        while True:
            status, answer = call(f"{api}/predict", {"store_id": "S001", "item_id": "I0001"})
            assert status == 200, answer
            if answer.get("source") == "live":
                break
            assert time.monotonic() < deadline, answer
            time.sleep(0.5)
        last = cut + dt.timedelta(days=STREAMED)
        assert answer["cutoff"] == (last - dt.timedelta(days=1)).isoformat()
        status, live = call(f"{api}/live/S001/I0001")
        assert status == 200, live

        # The dashboard answers.
        status, health = call(f"http://127.0.0.1:{ports['dashboard']}/_stcore/health")
        assert (status, health) == (200, "ok")

        # Ctrl-C: every server stopped, the last started first; nothing left, ports free, the state file gone.
        assert set(_left(state)) == {s["name"] for s in state["servers"]}  # all running before
        code = stack.stop(signal.SIGINT)
        assert code == 0, stack.output()
        assert "Ctrl-C: stopped 5 server(s)" in stack.output()
        assert _left(state) == {}
        assert not (workspace / "stack" / "state.json").exists()
        assert "no stack runs" in run_cli("stack", "status", "-w", str(workspace), cwd=tmp_path, env=env).stdout
    finally:
        stack.kill()


def test_a_killed_supervisor_leaves_servers_stack_down_and_the_next_up_find_and_stop(tmp_path: Path) -> None:
    from helpers import require_redis

    require_redis()
    workspace = tmp_path / "ws"
    env = {"SHELFCAST_REDIS_URL": REDIS_URL, "SHELFCAST_LIVE__PREFIX": f"shelfcast-stack-{uuid.uuid4().hex[:8]}"}
    ports = {"api": free_port(), "consumer": free_port()}
    args = ["--only", "api,consumer", "--backend", "sqlite", "--api-port", str(ports["api"])]
    args += ["--consumer-port", str(ports["consumer"])]
    first = Stack(tmp_path, workspace, args, env)
    try:
        state = first.wait_ready()
        # A second stack on the same workspace is refused while the first runs.
        again = run_cli("stack", "up", "-w", str(workspace), *args, cwd=tmp_path, env=env)
        assert again.returncode == 1
        assert f"a stack already runs for this workspace (supervisor pid {state['supervisor']}" in again.stderr

        # SIGKILL: the supervisor cannot stop anything; its servers run on, recorded.
        first.kill()
        assert set(_left(state)) == {"api", "consumer"}
        status = run_cli("stack", "status", "-w", str(workspace), cwd=tmp_path, env=env, columns=200)
        assert status.returncode == 1
        assert "its supervisor is gone (killed?): `shelfcast stack down` stops what is left" in status.stderr

        # The next `stack up` stops them first, then starts its own.
        second = Stack(tmp_path, workspace, args, env)
        try:
            state_2 = second.wait_ready()
            assert "stopped 2 server(s) a previous stack left running (its supervisor was killed): consumer, api" in (
                second.output()
            )
            assert _left(state) == {}
            assert run_cli("stack", "status", "-w", str(workspace), cwd=tmp_path, env=env).returncode == 0

            # SIGKILL again, then `stack down` from another shell stops what is left.
            second.kill()
            down = run_cli("stack", "down", "-w", str(workspace), cwd=tmp_path, env=env)
            assert down.returncode == 0, down.stderr
            assert "2 server(s) left by its supervisor stopped here" in down.stdout
            assert _left(state_2) == {}
        finally:
            second.kill()
    finally:
        first.kill()
        for record in (workspace / "stack").glob("state.json"):
            for server in json.loads(record.read_text())["servers"]:
                for pid in session_members(server["pid"], server["started"]):
                    os.kill(pid, signal.SIGKILL)


def test_stack_down_from_another_shell_stops_a_running_stack(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    port = free_port()
    stack = Stack(tmp_path, workspace, ["--only", "api", "--backend", "sqlite", "--api-port", str(port)], {})
    try:
        state = stack.wait_ready()
        down = run_cli("stack", "down", "-w", str(workspace), cwd=tmp_path)
        assert down.returncode == 0, down.stderr
        assert f"stopped the stack of {workspace} (supervisor pid {state['supervisor']})" in " ".join(
            down.stdout.split()
        )
        assert stack.process.wait(timeout=60) == 0
        assert "SIGTERM: stopped 1 server(s)" in stack.output()
        assert _left(state) == {}
    finally:
        stack.kill()


def test_a_server_that_cannot_start_stops_the_others_and_says_why(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    env = {"SHELFCAST_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens: the consumer fails
    args = ["--only", "api,consumer", "--backend", "sqlite"]
    args += ["--api-port", str(free_port()), "--consumer-port", str(free_port())]
    done = run_cli("stack", "up", "-w", str(workspace), *args, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 1
    assert "error: consumer could not start (exit code 1); last lines of" in done.stderr
    assert "consumer.log" in done.stderr and "Redis" in done.stderr  # the consumer's own one-line error, quoted
    assert "stopped 1 server(s)" in done.stderr  # the API, started beside it
    assert not (workspace / "stack" / "state.json").exists()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--backend", "mysql"], {}, "`--backend` takes postgres or sqlite, got 'mysql'"),
        (["--only", "api,grafana"], {}, "`--only` takes mlflow, prefect, api, consumer, dashboard, comma-separated"),
        (["--api-port", "9999", "--dashboard-port", "9999"], {}, "two servers were given the same port 9999"),
        (["--api-port", "0"], {}, "Invalid value for '--api-port'"),
        (
            ["--only", "mlflow"],
            {"SHELFCAST_POSTGRES_URL": "postgresql://u:hunter2@127.0.0.1:1/x"},
            "PostgreSQL at postgresql://u:***@127.0.0.1:1/x is unreachable",
        ),
    ],
)
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], env: dict[str, str], message: str) -> None:
    done = run_cli("stack", "up", "-w", str(tmp_path / "ws"), *args, cwd=tmp_path, env=env, columns=200)
    assert done.returncode != 0
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr


def test_a_port_in_use_is_named_with_its_option(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli(
            "stack",
            "up",
            "-w",
            str(tmp_path / "ws"),
            "--only",
            "api",
            "--backend",
            "sqlite",
            "--api-port",
            str(port),
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 (api) is in use: stop what listens there or pass --api-port" in done.stderr


def test_env_status_and_down_without_a_stack_and_a_broken_state_file(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    env_cmd = run_cli("stack", "env", "-w", str(workspace), cwd=tmp_path)
    assert env_cmd.returncode == 1 and "no stack runs for" in env_cmd.stderr
    assert "no stack runs for" in run_cli("stack", "down", "-w", str(workspace), cwd=tmp_path).stdout
    assert run_cli("stack", "status", "-w", str(workspace), cwd=tmp_path).returncode == 1
    (workspace / "stack").mkdir(parents=True)
    (workspace / "stack" / "state.json").write_text('{"supervisor": 1')
    broken = run_cli("stack", "status", "-w", str(workspace), cwd=tmp_path, columns=300)
    assert broken.returncode == 1
    assert "state.json cannot be read (JSONDecodeError" in broken.stderr
    assert "if no stack runs, remove it and start again" in broken.stderr
