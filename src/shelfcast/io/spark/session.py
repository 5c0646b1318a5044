"""The Spark session shelfcast's jobs run on: local mode in this process, or a cluster by its master URL."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shelfcast.errors import SparkError
from shelfcast.settings import SparkConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
MISSING = (
    "Apache Spark is not installed: `--engine spark` needs the `spark` extra "
    "(`uv sync --extra spark`, or `pip install 'shelfcast[spark]'`), and Java 17 or later"
)


def require_pyspark() -> None:
    """Raise SparkError naming the extra when pyspark (or XGBoost's Spark support) cannot be imported."""
    try:
        import pyspark  # noqa: F401
        import xgboost.spark  # noqa: F401
    except ImportError as exc:
        raise SparkError(f"{MISSING} ({exc})") from None


def open_session(config: SparkConfig) -> SparkSession:
    """A session on `config.master` (the one already running in this process when there is one).

    Python workers run this interpreter (`PYSPARK_PYTHON`), so executors import the same shelfcast and libraries
    as the driver; on a cluster of other machines, the same environment must exist at the same path there.
    """
    require_pyspark()
    check_master(config.master)
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(config.master)
        .appName("shelfcast")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
        # Python workers must not each start as many OpenMP threads as the machine has cores.
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")
    )
    if "spark.driver.extraJavaOptions" not in config.conf:
        # Spark's own log on the command's stderr: errors only (see log4j2.properties), not its start-up notices.
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}")
    if config.executor_memory:
        key = "spark.driver.memory" if config.master.startswith("local") else "spark.executor.memory"
        builder = builder.config(key, config.executor_memory)
    for key, value in config.conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start or the master is unreachable: one line, not Java's trace
        raise SparkError(f"Spark could not start on {config.master}: {_first_line(exc)}") from exc
    session.sparkContext.setLogLevel("ERROR")
    if "spark.sql.shuffle.partitions" not in config.conf:
        # A shuffle here moves groups of series: one partition per group, not Spark's default of 200 mostly empty.
        session.conf.set("spark.sql.shuffle.partitions", str(group_count(session, config)))
    log.info("Spark %s on %s (%d cores)", session.version, config.master, cores(session))
    return session


def check_master(master: str, timeout: float = 5.0) -> None:
    """A standalone master (`spark://HOST:PORT`, or several for standby masters) must take a connection first.

    Why: Spark starts its driver against an unreachable standalone master without an error, retries for a
    minute and then fails the first job with a trace; this says which address did not answer, before any JVM.
    """
    if not master.startswith("spark://"):
        return
    addresses = master.removeprefix("spark://").split(",")
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise SparkError(f"spark.master {master!r}: expected spark://HOST:PORT")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except OSError:
            continue
    raise SparkError(
        f"the Spark master at {master} is unreachable (nothing answers at {', '.join(addresses)}): "
        "start it, or set spark.master (e.g. `local[*]`)"
    )


def cores(session: SparkSession) -> int:
    """The cores Spark runs tasks on (its default parallelism)."""
    return max(1, int(session.sparkContext.defaultParallelism))


def group_count(session: SparkSession, config: SparkConfig) -> int:
    """Groups of series to cut the data into: the setting, else four per core (so a slow group does not hold all)."""
    return config.groups or 4 * cores(session)


def worker_count(session: SparkSession, config: SparkConfig) -> int:
    """XGBoost workers: the setting, else one per core (each is one Spark task that must run at the same time)."""
    return config.workers or cores(session)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
