"""Spark for the tests: one local[2] session per test process, and the skip (or, on CI, failure) without pyspark."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from shelfcast.settings import SparkConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Small data in the tests: a few groups and shuffle partitions, not Spark's 200. Adaptive execution would merge
# small data's shuffle partitions into one, hiding what many partitions do (XGBoost's barrier stage refused a
# coalesce of them, first seen on 1M rows): kept as they are.
LOCAL = SparkConfig(
    master="local[2]",
    groups=4,
    workers=2,
    conf={"spark.sql.shuffle.partitions": "4", "spark.sql.adaptive.coalescePartitions.enabled": "false"},
)


def require_spark() -> None:
    """Skip with the reason when pyspark or Java is missing; on CI (CI=true) fail instead: there they must run."""
    problem = None
    try:
        import pyspark  # noqa: F401
        import xgboost.spark  # noqa: F401
    except ImportError as exc:
        problem = f"pyspark is not installed ({exc}); `uv sync --extra spark` installs it"
    if problem is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        problem = "no Java (Spark needs Java 17): install a JDK"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Spark tests cannot run on CI: {problem}")
    pytest.skip(problem)


def local_session() -> Iterator[SparkSession]:
    """The process's local[2] session, stopped at the end of the test session."""
    require_spark()
    from shelfcast.io.spark.session import open_session

    session = open_session(LOCAL)
    yield session
    session.stop()
