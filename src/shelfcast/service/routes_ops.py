"""Operations: /health, /ready, /models, /admin/reload and /metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from shelfcast.errors import ShelfcastError, StoreError, TrackingError
from shelfcast.io.registry import CHALLENGER, CHAMPION, PREVIOUS, VersionInfo
from shelfcast.service.deps import AdminDep, SnapshotDep, StateDep
from shelfcast.service.schemas import (
    Health,
    ModelsResponse,
    Readiness,
    ReloadResponse,
    ServedOut,
    TaskModels,
    VersionOut,
    problem,
)
from shelfcast.service.state import Served
from shelfcast.types import Task

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (it says nothing about models or stores: see /ready)."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: problem("Not ready, with the reason.")})
def ready(state: StateDep) -> Readiness:
    """Data and a model (or the rule baseline) are loaded and the prediction store answers; 503 with why not."""
    snapshot = state.snapshot
    if snapshot is None:
        raise HTTPException(503, f"not ready: {state.problem}")
    try:
        latest = state.predictions.store.latest_day()
    except StoreError as exc:
        raise HTTPException(503, f"not ready: prediction store {state.predictions.location}: {exc}") from None
    if snapshot.scorer is None:
        model = snapshot.no_risk or "none"
    elif snapshot.fallback:
        model = f"rule-baseline ({snapshot.fallback})"
    else:
        model = f"{snapshot.stockout_name} v{snapshot.stockout_version}"
    held = state.predictions.day
    return Readiness(
        status="ready",
        data=f"{snapshot.first_date} to {snapshot.last_date}",
        stockout_model=model,
        predictions=f"scored on {held.scored_on}" if held else f"none yet (latest in store: {latest})",
    )


def _version(info: VersionInfo | None) -> VersionOut | None:
    if info is None:
        return None
    gate = {k.removeprefix("gate."): v for k, v in info.tags.items() if k.startswith("gate.")}
    return VersionOut(version=info.version, run_id=info.run_id, aliases=info.aliases, gate=gate)


def _served(served: Served | None) -> ServedOut | None:
    if served is None:
        return None
    return ServedOut(name=served.name, version=served.version, run_id=served.run_id, from_registry=served.from_registry)


@router.get("/models", response_model=ModelsResponse, responses={503: problem("No data or model loaded.")})
def models(state: StateDep, snapshot: SnapshotDep) -> ModelsResponse:
    """The served models, and the registry's champion, challenger and previous champion with their gate results."""
    tasks: dict[Task, TaskModels] = {
        Task.DEMAND: TaskModels(served=_served(snapshot.demand)),
        Task.STOCKOUT: TaskModels(served=_served(snapshot.stockout)),
    }
    error = None
    uri = "unknown"
    try:
        from shelfcast.io.registry import Registry

        registry = Registry(state.settings)
        uri = registry.uri
        for task, entry in tasks.items():
            entry.champion = _version(registry.alias(task, CHAMPION))
            entry.challenger = _version(registry.alias(task, CHALLENGER))
            entry.previous_champion = _version(registry.alias(task, PREVIOUS))
    except TrackingError as exc:  # an unreachable registry: say so and still show what is served
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        log.warning("registry unreachable for /models: %s", error)
    return ModelsResponse(
        registry=uri,
        registry_error=error,
        fallback=snapshot.fallback,
        demand=tasks[Task.DEMAND],
        stockout=tasks[Task.STOCKOUT],
        features=snapshot.scorer.settable if snapshot.scorer is not None else [],
        loaded_at=snapshot.loaded_at,
    )


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    dependencies=[AdminDep],
    responses={
        401: problem("Missing or wrong X-API-Key."),
        403: problem("No api_key configured."),
        413: problem("A body over `serve.max_body_bytes`."),
        503: problem("The reload failed; the old snapshot still serves."),
    },
)
def reload(state: StateDep) -> ReloadResponse:
    """Reload the champions, the data and the latest predictions; requests in flight finish on the old model."""
    try:
        fresh = state.reload()
    except ShelfcastError as exc:
        old = state.snapshot
        still = f"still serving {old.stockout_name} v{old.stockout_version}" if old else "nothing loaded"
        raise HTTPException(503, f"reload failed ({exc}); {still}") from None
    state.predictions.refresh(force=True)
    day = state.predictions.day
    return ReloadResponse(
        demand_version=fresh.demand.version if fresh.demand else None,
        stockout_version=fresh.stockout_version,
        fallback=fresh.fallback,
        loaded_at=fresh.loaded_at,
        predictions_of=day.scored_on if day else None,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(state: StateDep) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
