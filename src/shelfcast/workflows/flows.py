"""The pipeline as a Prefect 3 flow: the same steps as `shelfcast.workflows.pipeline`, each a Prefect task.

Steps that do I/O (ingest, writes to the lake, MLflow and the prediction
store) are retried; every step logs one line to the flow run's log. The
flow run id is put on each MLflow run as the tag `prefect.flow_run_id`, and
each training step logs its MLflow run id, so either side leads to the
other.

Without `PREFECT_API_URL`, Prefect starts a temporary local server for the
run (about 20 s); `shelfcast pipeline run` sets `PREFECT_HOME` to the
workspace so that its database stays there. Schedules need a real server:
`prefect server start`, then `shelfcast pipeline schedule --cron ...`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from shelfcast.io.table_formats import parse_format
from shelfcast.jobs.train import TrainReport
from shelfcast.settings import Engine, Settings
from shelfcast.types import TASKS, Task
from shelfcast.workflows.live import compact_if_bound
from shelfcast.workflows.pipeline import PipelineRequest, run_pipeline
from shelfcast.workflows.retrain import RetrainReport, act_on_monitoring

T = TypeVar("T")
FLOW_NAME = "shelfcast-pipeline"
MONITOR_FLOW_NAME = "shelfcast-monitor"
COMPACT_FLOW_NAME = "shelfcast-compact-live"
IO_RETRIES = 2
RETRY_DELAY_SECONDS = 5


def _describe(name: str, result: Any) -> str:
    if isinstance(result, TrainReport):
        return f"{name}: MLflow run {result.run.run_id}, registered version {result.version} ({result.candidate})"
    promoted = getattr(result, "promoted", None)
    if promoted is not None:
        verdict = "promoted to champion" if promoted else "refused, champion unchanged"
        return f"{name}: version {result.version} {verdict} ({result.gate.reason})"
    if isinstance(result, RetrainReport):
        return f"{name}: " + "; ".join(f"{o.decision.task} {o.decision.action}: {o.outcome}" for o in result.outcomes)
    if isinstance(result, str):
        return f"{name}: {result}"
    rows = getattr(result, "rows", None)
    return f"{name}: done" + (f", {rows:,} rows" if isinstance(rows, int) else "")


def prefect_runner(name: str, fn: Callable[[], T], *, io: bool) -> T:
    """One pipeline step as a Prefect task (retried when it does I/O; results are not cached or persisted)."""

    def step() -> T:
        result = fn()
        get_run_logger().info(_describe(name, result))
        return result

    step.__name__ = name.replace(" ", "_")
    wrapped = task(
        name=name,
        retries=IO_RETRIES if io else 0,
        retry_delay_seconds=RETRY_DELAY_SECONDS,
        cache_policy=NO_CACHE,
        persist_result=False,
    )(step)
    return wrapped()


@flow(name=FLOW_NAME, log_prints=True, persist_result=False)
def pipeline_flow(  # noqa: PLR0917 (a flow run passes its parameters by name; Prefect reads them off the signature)
    workspace: str,
    path: str | None = None,
    source: str = "canonical",
    tasks: list[str] | None = None,
    folds: int = 3,
    horizon: int | None = None,
    table_format: str | None = None,
    engine: str = "local",
) -> dict[str, Any]:
    """compact live -> ingest -> validate -> features -> train -> register/promote -> score; returns a summary."""
    settings = Settings(workspace=Path(workspace))
    run_id = str(flow_run.id) if flow_run.id else ""
    chosen = tuple(tasks or TASKS)
    wrong = [t for t in chosen if t not in TASKS]
    if wrong:
        raise ValueError(f"`tasks` takes demand and/or stockout, got {', '.join(wrong)}")
    if engine not in get_args(Engine):
        raise ValueError(f"`engine` takes {' or '.join(get_args(Engine))}, got {engine!r}")
    request = PipelineRequest(
        path=Path(path) if path else None,
        source=source,
        tasks=cast(tuple[Task, ...], chosen),
        folds=folds,
        horizon=horizon,
        table_format=parse_format(table_format) if table_format is not None else None,
        engine=cast(Engine, engine),
        tags={"prefect.flow_run_id": run_id, "prefect.flow_name": FLOW_NAME},
    )
    now = dt.datetime.now(dt.UTC)
    # First the live store's closed days into the lake, so training and monitoring see them (skipped, with the
    # reason in the log, without a reachable store bound to this workspace).
    compaction = prefect_runner("compact live", lambda: compact_if_bound(settings, today=now.date(), now=now), io=True)
    report = run_pipeline(settings, request, today=now.date(), now=now, runner=prefect_runner)
    summary = report.summary() | {"prefect_flow_run_id": run_id, "live_compaction": compaction}
    get_run_logger().info("pipeline done: %s", summary)
    return summary


@flow(name=MONITOR_FLOW_NAME, log_prints=True, persist_result=False)
def monitor_flow(workspace: str, act: bool = True) -> dict[str, Any]:
    """monitor -> the policy's decision per model (retrain, roll back, fall back), carried out when `act`."""
    settings = Settings(workspace=Path(workspace))
    now = dt.datetime.now(dt.UTC)
    report = prefect_runner(
        "monitor and decide",
        lambda: act_on_monitoring(settings, now=now, act=act, trigger=MONITOR_FLOW_NAME),
        io=True,
    )
    summary: dict[str, Any] = {
        o.decision.task: {"decision": o.decision.action, "outcome": o.outcome} for o in report.outcomes
    }
    get_run_logger().info("monitoring done: %s", summary)
    return summary


@flow(name=COMPACT_FLOW_NAME, log_prints=True, persist_result=False)
def compact_flow(workspace: str) -> str:
    """The live store's closed days into the lake (the pipeline's first step alone, to run more often)."""
    settings = Settings(workspace=Path(workspace))
    now = dt.datetime.now(dt.UTC)
    return prefect_runner("compact live", lambda: compact_if_bound(settings, today=now.date(), now=now), io=True)
