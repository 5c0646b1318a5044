"""`shelfcast stack up | down | status | env`: compose's shelfcast servers as local processes, without Docker.

The MLflow tracking server, the Prefect server, the API, a stream consumer and the dashboard start on loopback
with compose's settings (`deploy/compose.yaml`): MLflow and Prefect keep their state in the databases `mlflow`
and `prefect` of the settings' PostgreSQL server (created when missing; `--backend sqlite` keeps them in files
instead), MLflow serves the artifacts from `<workspace>/stack/mlartifacts`, predictions go to PostgreSQL, and the
shelfcast servers reach MLflow and Prefect by URL. MLflow and Prefect start first; the others once both answer.

Everything the stack writes is under `<workspace>/stack`: `logs/<server>.log` and `state.json`, which records
the supervisor and every server (pid and start time), so that `stack status`, `stack env` and `stack down` work
from another shell, and a supervisor killed with SIGKILL leaves servers `stack down` (or the next `stack up`)
still finds and stops. Ctrl-C (or SIGTERM) stops every server, the last started first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from shelfcast.errors import ConfigError, StackError
from shelfcast.io.databases import database_url, ensure_database
from shelfcast.io.files import atomic_write, process_alive
from shelfcast.io.processes import (
    Launched,
    http_ok,
    launch,
    port_in_use,
    session_members,
    start_ticks,
    stop_session,
    tail,
)
from shelfcast.settings import Settings

SERVICES = ("mlflow", "prefect", "api", "consumer", "dashboard")
FIRST = ("mlflow", "prefect")  # the others are clients of these: started once both answer
DEFAULT_PORTS = {"mlflow": 5000, "prefect": 4200, "api": 8000, "consumer": 9108, "dashboard": 8501}
Backend = Literal["postgres", "sqlite"]
STATE = "state.json"
STOP_TIMEOUT = 20.0  # seconds a server has to stop after SIGTERM, before SIGKILL


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    backend: Backend = "postgres"
    mlflow_database: str = "mlflow"
    prefect_database: str = "prefect"
    services: tuple[str, ...] = SERVICES
    start_timeout: float = 300.0
    stop_timeout: float = STOP_TIMEOUT


@dataclass(frozen=True)
class Server:
    """One process of the stack: how it starts, the URL that answers 200 once it is ready, the one users open."""

    name: str
    argv: tuple[str, ...]
    health: str
    url: str
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackPlan:
    folder: Path
    servers: tuple[Server, ...]
    env: dict[str, str]  # what every server and every client of the stack needs (`stack env` prints it)
    databases: tuple[str, ...]  # to create on the PostgreSQL server when missing


@dataclass
class Running:
    """A started server as `state.json` records it."""

    name: str
    pid: int
    started: int | None
    url: str
    health: str
    log: str

    @property
    def launched(self) -> Launched:
        return Launched(self.name, self.pid, self.started)


@dataclass
class StackState:
    supervisor: int
    supervisor_started: int | None
    started_at: str
    env: dict[str, str]
    servers: list[Running]

    def supervisor_alive(self) -> bool:
        """The supervisor runs (the same process: a pid the system reused since does not count)."""
        if self.supervisor_started is None:
            return process_alive(self.supervisor)
        return start_ticks(self.supervisor) == self.supervisor_started


def stack_folder(cfg: Settings) -> Path:
    return cfg.workspace.resolve() / "stack"


def _url_host(host: str) -> str:
    """The address clients use for a server listening on `host` (every interface: loopback)."""
    connect = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{connect}]" if ":" in connect else connect


def plan_stack(cfg: Settings, options: StackOptions) -> StackPlan:
    """The servers to start and the environment they share, from the settings and the options."""
    unknown = [s for s in options.services if s not in SERVICES]
    if unknown or not options.services:
        raise ConfigError(f"`--only` takes {', '.join(SERVICES)}, comma-separated; got {', '.join(unknown) or 'none'}")
    ports = [options.ports[s] for s in options.services]
    taken = {p for p in ports if ports.count(p) > 1}
    if taken:
        raise ConfigError(f"two servers were given the same port {min(taken)}: give each its own")
    folder = stack_folder(cfg)
    host = options.host
    at = {s: f"http://{_url_host(host)}:{options.ports[s]}" for s in SERVICES}
    chosen = set(options.services)
    env = {"SHELFCAST_WORKSPACE": str(cfg.workspace.resolve())}
    if "mlflow" in chosen:
        env["SHELFCAST_MLFLOW_TRACKING_URI"] = at["mlflow"]
    if "prefect" in chosen:
        env["SHELFCAST_PREFECT_API_URL"] = env["PREFECT_API_URL"] = f"{at['prefect']}/api"
    if options.backend == "postgres" and "prediction_store" not in cfg.model_fields_set:
        env["SHELFCAST_PREDICTION_STORE"] = "postgres"  # as compose: the API reads what the pipeline scores
    me = (sys.executable, "-m", "shelfcast")
    if options.backend == "postgres":
        mlflow_store = database_url(cfg.postgres_url, options.mlflow_database, driver="psycopg")
        prefect_store = database_url(cfg.postgres_url, options.prefect_database, driver="asyncpg")
        databases = tuple(
            db
            for name, db in (("mlflow", options.mlflow_database), ("prefect", options.prefect_database))
            if name in chosen
        )
    else:
        mlflow_store = f"sqlite:///{folder / 'mlflow.db'}"
        prefect_store = f"sqlite+aiosqlite:///{folder / 'prefect.db'}"
        databases = ()
    every = {
        "mlflow": Server(
            "mlflow",
            # One worker (compose keeps MLflow's four): a laptop's stack, where each would hold ~250 MB.
            (
                *(sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(options.ports["mlflow"])),
                *("--workers", "1", "--backend-store-uri", mlflow_store),
                *("--artifacts-destination", str(folder / "mlartifacts"), "--serve-artifacts"),
            ),
            f"{at['mlflow']}/health",
            at["mlflow"],
        ),
        "prefect": Server(
            "prefect",
            (
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                host,
                "--port",
                str(options.ports["prefect"]),
            ),
            f"{at['prefect']}/api/health",
            at["prefect"],
            {
                "PREFECT_HOME": str(folder / "prefect"),
                "PREFECT_API_DATABASE_CONNECTION_URL": prefect_store,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            },
        ),
        "api": Server(
            "api",
            (*me, "serve", "--host", host, "--port", str(options.ports["api"])),
            f"{at['api']}/health",
            f"{at['api']}/docs",
        ),
        "consumer": Server(
            "consumer",
            (
                *(*me, "stream", "consume", "--compact-every", "3600"),
                *("--metrics-port", str(options.ports["consumer"]), "--metrics-host", host),
            ),
            f"{at['consumer']}/metrics",
            f"{at['consumer']}/metrics",
        ),
        "dashboard": Server(
            "dashboard",
            (*me, "dashboard", "--host", host, "--port", str(options.ports["dashboard"])),
            f"{at['dashboard']}/_stcore/health",
            at["dashboard"],
        ),
    }
    return StackPlan(folder, tuple(every[s] for s in SERVICES if s in chosen), env, databases)


# --- the state file ---------------------------------------------------------------------------------------------


def read_state(folder: Path) -> StackState | None:
    path = folder / STATE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return StackState(
            supervisor=int(raw["supervisor"]),
            supervisor_started=raw["supervisor_started"],
            started_at=str(raw["started_at"]),
            env={str(k): str(v) for k, v in raw["env"].items()},
            servers=[Running(**s) for s in raw["servers"]],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StackError(
            f"{path} cannot be read ({type(exc).__name__}: {exc}); if no stack runs, remove it and start again"
        ) from None


def _write_state(folder: Path, state: StackState) -> None:
    text = json.dumps(asdict(state), indent=2)
    atomic_write(folder / STATE, lambda tmp: tmp.write_text(text), error=StackError)


# --- stopping ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stopped:
    name: str
    killed: bool  # did not stop within the wait: SIGKILL


def _stop_all(
    servers: list[Running], timeout: float, procs: Mapping[str, subprocess.Popen[bytes]] | None = None
) -> list[Stopped]:
    """Stop the servers, the last started first."""
    done = []
    for server in reversed(servers):
        if session_members(server.pid, server.started):
            killed = stop_session(server.launched, timeout=timeout, proc=(procs or {}).get(server.name))
            done.append(Stopped(server.name, killed))
    return done


def stop_leftovers(folder: Path) -> list[Stopped]:
    """Servers a stack whose supervisor died (SIGKILL, a crash) left running: stopped, the state file removed.
    A stack whose supervisor runs is not touched: `StackError`."""
    state = read_state(folder)
    if state is None:
        return []
    if state.supervisor_alive():
        raise StackError(
            f"a stack already runs for this workspace (supervisor pid {state.supervisor}, since "
            f"{state.started_at}): `shelfcast stack down` stops it"
        )
    stopped = _stop_all(state.servers, timeout=STOP_TIMEOUT)
    (folder / STATE).unlink(missing_ok=True)
    return stopped


def stack_down(folder: Path, *, timeout: float = 120.0) -> tuple[StackState | None, list[Stopped]]:
    """Stop the stack recorded in `folder` from another process: its supervisor by SIGTERM (it stops its servers),
    then whatever is still running. (None, []) when no stack is recorded."""
    state = read_state(folder)
    if state is None:
        return None, []
    if state.supervisor_alive():
        os.kill(state.supervisor, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while state.supervisor_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
    # The supervisor stopped them, or died before it could: whatever is left is stopped here.
    stopped = _stop_all(state.servers, timeout=STOP_TIMEOUT)
    (folder / STATE).unlink(missing_ok=True)
    return state, stopped


@dataclass(frozen=True)
class ServerStatus:
    name: str
    pid: int
    running: bool
    ready: bool
    url: str
    log: str


def stack_status(folder: Path) -> tuple[StackState | None, list[ServerStatus]]:
    state = read_state(folder)
    if state is None:
        return None, []
    rows = []
    for server in state.servers:
        running = bool(session_members(server.pid, server.started))
        rows.append(
            ServerStatus(server.name, server.pid, running, running and http_ok(server.health), server.url, server.log)
        )
    return state, rows


# --- running ----------------------------------------------------------------------------------------------------


class _StopRequestedError(Exception):
    """SIGTERM or SIGHUP reached the supervisor: stop as on Ctrl-C."""


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise _StopRequestedError(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class StackEvents:
    """What the supervisor tells its user (the CLI prints these)."""

    say: Callable[[str], None]
    ready: Callable[[StackState, Path], None]
    stopped: Callable[[list[Stopped], str], None]


def _check_ports(plan: StackPlan, options: StackOptions) -> None:
    for server in plan.servers:
        port = options.ports[server.name]
        if port_in_use(options.host, port):
            raise StackError(
                f"port {port} on {options.host} ({server.name}) is in use: stop what listens there or pass "
                f"--{server.name}-port with a free one"
            )


def _wait_ready(
    started: list[tuple[Server, Running, subprocess.Popen[bytes]]], deadline: float, say: Callable[[str], None]
) -> None:
    waiting = list(started)
    begun = time.monotonic()
    while waiting:
        for item in list(waiting):
            server, running, proc = item
            code = proc.poll()
            if code is not None:
                raise StackError(_exited(running, code, "could not start"))
            if http_ok(server.health, timeout=2):
                waiting.remove(item)
                say(f"{server.name} ready at {server.url} ({time.monotonic() - begun:.0f} s)")
        if waiting and time.monotonic() > deadline:
            late = waiting[0][1]
            last = tail(Path(late.log))
            raise StackError(f"{late.name} did not answer at {late.health} in time; last lines of {late.log}:\n{last}")
        if waiting:
            time.sleep(0.5)


def _exited(server: Running, code: int, what: str) -> str:
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    return f"{server.name} {what} ({how}); last lines of {server.log}:\n{tail(Path(server.log))}"


def run_stack(cfg: Settings, options: StackOptions, events: StackEvents) -> None:
    """Start the stack, report it ready, supervise it until Ctrl-C, SIGTERM or a server stopping (`StackError`),
    then stop every server. Returns on a requested stop."""
    plan = plan_stack(cfg, options)
    plan.folder.mkdir(parents=True, exist_ok=True)
    left = stop_leftovers(plan.folder)
    if left:
        events.say(
            f"stopped {len(left)} server(s) a previous stack left running (its supervisor was killed): "
            + ", ".join(s.name for s in left)
        )
    _check_ports(plan, options)
    for database in plan.databases:
        if ensure_database(cfg.postgres_url, database):
            events.say(f"created the database {database!r} on the PostgreSQL server")
    for sub in ("logs", "mlartifacts", "prefect"):
        (plan.folder / sub).mkdir(parents=True, exist_ok=True)
    state = StackState(
        supervisor=os.getpid(),
        supervisor_started=start_ticks(os.getpid()),
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        env=plan.env,
        servers=[],
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    base = {**os.environ, **plan.env}
    reason = "stopped"
    try:
        with _stop_on_signals():
            deadline = time.monotonic() + options.start_timeout
            for phase in (FIRST, tuple(s for s in SERVICES if s not in FIRST)):
                started = []
                for server in (s for s in plan.servers if s.name in phase):
                    log = plan.folder / "logs" / f"{server.name}.log"
                    launched, proc = launch(server.name, server.argv, env={**base, **server.env}, log=log)
                    running = Running(server.name, launched.pid, launched.started, server.url, server.health, str(log))
                    state.servers.append(running)
                    procs[server.name] = proc
                    _write_state(plan.folder, state)  # each at once: a crash from here on leaves them findable
                    started.append((server, running, proc))
                _wait_ready(started, deadline, events.say)
            events.ready(state, plan.folder)
            while True:
                for running in state.servers:
                    code = procs[running.name].poll()
                    if code is not None:
                        raise StackError(_exited(running, code, "stopped"))
                time.sleep(0.5)
    except KeyboardInterrupt:
        reason = "Ctrl-C"
    except _StopRequestedError as exc:
        reason = str(exc)
    finally:
        # A second Ctrl-C would leave servers half stopped: each has `stop_timeout` seconds, then SIGKILL.
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stopped = _stop_all(state.servers, options.stop_timeout, procs)
            (plan.folder / STATE).unlink(missing_ok=True)
        finally:
            signal.signal(signal.SIGINT, interrupt)
        events.stopped(stopped, reason)
