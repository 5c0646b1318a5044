"""A real standalone Spark cluster on loopback for the tests: a master and workers from pyspark's own scripts.

`standalone_cluster(root)` starts `spark-class ...deploy.master.Master` and N
`...deploy.worker.Worker` processes (each in its own process group, logs and
work folders under `root`), waits until every worker has registered with the
master (its JSON at http://127.0.0.1:W/json/), yields a `Cluster` and stops
every process by its process group afterwards: the executors a worker starts
and their Python workers are in the worker's group, so nothing is left behind.

Drivers run in their own process (`driver`): a process has one SparkContext,
and the tests' session-wide local[2] session (`spark` fixture) may already be
the one in the test process. Run as a script, this module is that driver
(`python tests/spark_cluster.py JOB ...`): its group functions are then pickled
by value, so the executors need only shelfcast, not the tests folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXECUTOR = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
# The JVMs start slowly on a loaded 2-core machine (30-60 s under load): the waits are for that, not an idle one.
START_TIMEOUT = 300.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different free ports, held open together while chosen: ports chosen one after the other can repeat
    (a released port may come back at once), and a worker's web UI then took the master's (its page answered the
    master's /json/ with HTML)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def spark_home() -> Path:
    """pyspark's package folder: it holds bin/spark-class and the jars (pip's pyspark is a whole Spark)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


# --------------------------------------------------------------------------- processes, read from /proc


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and brackets
    return fields[0], int(fields[1]), int(fields[2])


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for p in _pids():
        stat = _stat(p)
        if stat is not None and stat[0] != "Z":
            parents.setdefault(stat[1], []).append(p)
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def group_members(groups: set[int]) -> list[int]:
    """The live (not zombie) processes in any of these process groups."""
    out = []
    for p in _pids():
        stat = _stat(p)
        if stat is not None and stat[0] != "Z" and stat[2] in groups:
            out.append(p)
    return out


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (zombies are dead: only their parent's wait is missing)."""
    return [p for p in pids if (stat := _stat(p)) is not None and stat[0] != "Z"]


def stop_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to the process's group (it was started in a session of its own) and to every process below it,
    SIGKILL to what outlives the grace time.

    The processes below are taken one by one too: pyspark's Python worker daemon makes a process group of its
    own (to stop its forks together), so the group alone would miss it when its executor dies first.
    """
    group = process.pid
    below = descendants(process.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
        for pid in alive(below):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while (group_members({group}) or alive(below)) and time.monotonic() < deadline:
            process.poll()  # reaps the leader once it has exited
            time.sleep(0.2)
        if not (group_members({group}) or alive(below)):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL was sent: a leader outliving it is the kernel's
        process.wait(timeout=timeout)


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """A running standalone cluster: its master URL, processes and logs."""

    master: str
    web: str
    root: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)  # every process found below the master and workers

    def state(self) -> dict[str, Any]:
        """The master's JSON (workers, cores, applications)."""
        with urllib.request.urlopen(f"{self.web}/json/", timeout=10) as answer:
            state: dict[str, Any] = json.loads(answer.read())
        return state

    def alive_workers(self) -> int:
        return int(self.state().get("aliveworkers", 0))

    @property
    def groups(self) -> set[int]:
        """The process groups of the master and the workers (each the pid of the process started)."""
        return {p.pid for p in self.processes.values()}

    def worker_pids(self) -> list[int]:
        return [p.pid for name, p in self.processes.items() if name.startswith("worker")]

    def executors(self) -> list[int]:
        """The executor JVMs (`CoarseGrainedExecutorBackend`) the workers run now, for one application or more."""
        found = []
        for worker in self.worker_pids():
            found += [p for p in descendants(worker) if EXECUTOR in cmdline(p) and "java" in cmdline(p)]
        return sorted(found)

    def tree(self) -> list[int]:
        """The master, the workers and every process below them now (executors, Python workers); remembered."""
        found = [p.pid for p in self.processes.values()]
        for pid in list(found):
            found += descendants(pid)
        self.seen.update(found)
        return alive(found)

    def leftovers(self) -> list[int]:
        """Live processes in the cluster's process groups or ever seen below it (after `stop`: none)."""
        return sorted(set(group_members(self.groups)) | set(alive(sorted(self.seen))))

    def driver_env(self) -> dict[str, str]:
        """What a driver process on this machine needs to run on the cluster (shelfcast's settings included)."""
        return {
            "SPARK_LOCAL_IP": "127.0.0.1",  # executors reach the driver on loopback, not the machine's address
            "PYSPARK_PYTHON": sys.executable,
            "SHELFCAST_SPARK__MASTER": self.master,
            "SHELFCAST_SPARK__EXECUTOR_MEMORY": "512m",
        }

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for log in sorted(self.root.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """Workers first (they stop their executors), then the master; each by its process group."""
        self.tree()
        for name in sorted(self.processes, key=lambda n: n == "master"):
            stop_group(self.processes[name])


def _env(root: Path) -> dict[str, str]:
    conf = root / "conf"  # an empty conf folder: no spark-defaults or spark-env from the machine
    conf.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_", "SHELFCAST_"))}
    return keep | {
        "SPARK_HOME": str(spark_home()),
        "SPARK_CONF_DIR": str(conf),
        "SPARK_LOG_DIR": str(root),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": "256m",  # the master's and workers' own heaps; executors get spark.executor.memory
        # The REST submission server listens on a fixed port (6066): two clusters at once would collide.
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        "PYSPARK_PYTHON": sys.executable,
    }


def _start(name: str, args: list[str], root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (root / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the JVM, its executors and their Python workers
        )
    finally:
        log.close()


@contextmanager
def standalone_cluster(
    root: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g", timeout: float = START_TIMEOUT
) -> Iterator[Cluster]:
    """A master and `workers` workers (`cores` cores, `memory` each) on 127.0.0.1, stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    env = _env(root)
    port, web_port, *worker_ports = free_ports(2 + workers)
    cluster = Cluster(master=f"spark://127.0.0.1:{port}", web=f"http://127.0.0.1:{web_port}", root=root)
    try:
        master_args = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web_port)]
        cluster.processes["master"] = _start("master", [MASTER, *master_args], root, env)
        for i in range(1, workers + 1):
            work = root / f"worker-{i}"
            work.mkdir(exist_ok=True)
            args = [WORKER, cluster.master, "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory]
            args += ["--webui-port", str(worker_ports[i - 1]), "--work-dir", str(work)]
            cluster.processes[f"worker-{i}"] = _start(f"worker-{i}", args, root, env)
        _wait_registered(cluster, workers, timeout)
        yield cluster
    finally:
        cluster.stop()


def _wait_registered(cluster: Cluster, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [n for n, p in cluster.processes.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"Spark {', '.join(dead)} exited while starting:\n{cluster.log_tail()}")
        try:
            if cluster.alive_workers() >= workers:
                return
        except OSError:  # the master's web UI is not up yet
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{workers} Spark workers did not register in {timeout:.0f} s:\n{cluster.log_tail()}")


# --------------------------------------------------------------------------- drivers, in their own process


def driver(
    job: str, *args: str, cluster: Cluster, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """This module run as a driver of `job` on the cluster (see `main`), its output in `log`, in its own group."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_", "SHELFCAST_"))}
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), job, "--master", cluster.master, *args],
            env=clean | cluster.driver_env() | (env or {}),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def finish(process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Wait for a driver; a driver that hangs is stopped with its JVM, and either failure shows its log."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process)
        raise AssertionError(f"the driver did not finish in {timeout:.0f} s:\n{_tail(log)}") from None
    assert code == 0, f"the driver exited with {code}:\n{_tail(log)}"


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _session(master: str) -> Any:
    from shelfcast.io.spark.session import open_session
    from shelfcast.settings import SparkConfig

    conf = {"spark.sql.shuffle.partitions": "4", "spark.sql.adaptive.enabled": "false"}
    return open_session(SparkConfig(master=master, executor_memory="512m", conf=conf))


def _panel_job(args: argparse.Namespace, *, stop: bool = True) -> None:
    """The lake's panel built per group of series on the cluster, collected and written to `--out`."""
    import polars as pl

    from shelfcast.io.lake import Lake
    from shelfcast.io.model_data import load_shape
    from shelfcast.io.spark.groups import first_series, map_groups, read_table, spark_schema, to_polars
    from shelfcast.models.data import group_data

    lake = Lake(Path(args.workspace))
    shape = load_shape(lake)

    def panel(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return group_data(shape, {t: f for t, f in tables.items() if t in ("sales", "inventory")}).panel.frame

    session = _session(args.master)
    per_series = {t: read_table(session, lake, t) for t in ("sales", "inventory") if lake.has(t)}
    schemas = {t: lake.scan(t).collect_schema() for t in per_series}
    schema = spark_schema(panel(first_series(lake)).schema)
    frame = map_groups(session, per_series, panel, schema, groups=args.groups, schemas=schemas)
    written = Path(args.out)
    to_polars(frame).write_parquet(written.with_suffix(".tmp"))
    written.with_suffix(".tmp").rename(written)  # whole or absent: a test polls for it
    if stop:
        session.stop()


def _slow_job(args: argparse.Namespace) -> None:
    """With `--panel`, the panel job first (written to that file); then, per group: mark the start in `--marks`,
    sleep `--sleep` s, count each series' rows and units; the result written by Spark to the Parquet folder
    `--out` (its commit protocol keeps only the successful task attempts)."""
    import uuid

    import polars as pl

    from shelfcast.io.lake import Lake
    from shelfcast.io.spark.groups import map_groups, read_table, spark_schema

    if args.panel:
        _panel_job(argparse.Namespace(**{**vars(args), "out": args.panel}), stop=False)
    lake, marks, pause = Lake(Path(args.workspace)), Path(args.marks), args.sleep

    def counted(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        sales = tables["sales"]
        first = sales.select("store_id", "item_id").sort("store_id", "item_id").row(0)
        # One mark per attempt at this group: its first series, and the Python worker running it.
        (marks / f"{first[0]}-{first[1]}@{os.getpid()}@{uuid.uuid4().hex}").touch()
        time.sleep(pause)
        return sales.group_by("store_id", "item_id").agg(pl.len().alias("rows"), pl.col("units").sum())

    session = _session(args.master)
    sales = read_table(session, lake, "sales")
    schema = spark_schema(
        pl.Schema({"store_id": pl.String, "item_id": pl.String, "rows": pl.UInt32, "units": pl.Float64})
    )
    schemas = {"sales": lake.scan("sales").collect_schema()}
    frame = map_groups(session, {"sales": sales}, counted, schema, groups=args.groups, schemas=schemas)
    frame.write.mode("overwrite").parquet(args.out)
    session.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A shelfcast driver job on a Spark cluster, for the tests.")
    parser.add_argument("job", choices=("panel", "slow"))
    parser.add_argument("--master", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--marks", default="")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--panel", default="", help="slow: write the panel job's output here first")
    args = parser.parse_args()
    {"panel": _panel_job, "slow": _slow_job}[args.job](args)


if __name__ == "__main__":
    main()
