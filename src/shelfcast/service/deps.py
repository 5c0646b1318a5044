"""Dependencies of the routes, as `Annotated` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from shelfcast.service.predictions import ScoringDay
from shelfcast.service.state import ServiceState, Snapshot


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.shelfcast
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_snapshot(state: StateDep) -> Snapshot:
    """The snapshot this request uses to the end (a reload meanwhile does not change it)."""
    snapshot = state.snapshot
    if snapshot is None:
        raise HTTPException(503, f"the service has no data or model loaded: {state.problem}")
    return snapshot


SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]


def get_scoring_day(state: StateDep) -> ScoringDay:
    day = state.predictions.day
    if day is None:
        problem = state.predictions.problem or "it holds no predictions yet"
        raise HTTPException(
            404, f"no batch predictions to answer from ({problem}): run `shelfcast score`, then POST /admin/reload"
        )
    return day


ScoringDayDep = Annotated[ScoringDay, Depends(get_scoring_day)]


def require_api_key(state: StateDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """The `X-API-Key` header must match the `api_key` setting (compared in constant time)."""
    expected = state.settings.api_key
    if expected is None:
        raise HTTPException(403, "admin routes are disabled: set the `api_key` setting (SHELFCAST_API_KEY)")
    given = (x_api_key or "").encode()
    if not x_api_key or not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"})


AdminDep = Depends(require_api_key)
