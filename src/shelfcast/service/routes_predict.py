"""POST /predict and /predict/batch: stockout risk computed on request."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

import numpy as np
import redis
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from shelfcast.service.deps import SnapshotDep, StateDep
from shelfcast.service.live import LiveRows
from shelfcast.service.metrics import ServiceMetrics
from shelfcast.service.online import OnlineScorer, Scored
from shelfcast.service.schemas import (
    RENAMED,
    LiveSeries,
    LiveTotals,
    PredictBatchRequest,
    PredictBatchResponse,
    Prediction,
    PredictRequest,
    problem,
)
from shelfcast.service.state import ServiceState, Snapshot

log = logging.getLogger(__name__)
router = APIRouter(tags=["predict"])
_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: problem("Unknown store_id/item_id."),
    409: problem("No stockout risk on this workspace's data (sales-only data)."),
    413: problem("A body over `serve.max_body_bytes`, or a batch over `serve.max_batch` rows."),
    503: problem("No data or model loaded, or explicit features while no model is served."),
}
# When the request fields in `schemas.RENAMED` were deprecated: the `Deprecation` header's date (RFC 9745).
DEPRECATED_SINCE = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


@router.post("/predict", response_model=Prediction, responses=_UNKNOWN)
async def predict(
    body: PredictRequest, snapshot: SnapshotDep, state: StateDep, request: Request, response: Response
) -> Prediction:
    """Stockout risk of one store x item over the model's risk window after the cutoff."""
    _flag_old_names(response, [body])
    return (await _predict(snapshot, [body], state, request))[0]


@router.post("/predict/batch", response_model=PredictBatchResponse, responses=_UNKNOWN)
async def predict_batch(
    body: PredictBatchRequest, snapshot: SnapshotDep, state: StateDep, request: Request, response: Response
) -> PredictBatchResponse:
    """Up to `serve.max_batch` rows in one call, scored together; one bad row refuses the batch and names it."""
    limit = state.settings.serve.max_batch
    if len(body.rows) > limit:
        raise HTTPException(413, f"{len(body.rows)} rows is over the batch limit of {limit} (setting serve_max_batch)")
    _flag_old_names(response, body.rows)
    return PredictBatchResponse(predictions=await _predict(snapshot, body.rows, state, request))


@router.get(
    "/live/{store_id}/{item_id}",
    response_model=LiveSeries,
    responses={
        404: problem("Unknown store_id/item_id."),
        409: problem("Live features are off (setting `live.serve`)."),
        503: problem("Live features cannot be used now (Redis unreachable, the store stale or not built yet)."),
    },
)
def live_series(store_id: str, item_id: str, snapshot: SnapshotDep, state: StateDep) -> LiveSeries:
    """A series' running totals (today, this week, this month), latest stock count and live features."""
    if state.live is None:
        raise HTTPException(409, "live features are off: set `live.serve = true` (SHELFCAST_LIVE__SERVE=true)")
    found = state.live.rows([(store_id, item_id)])
    if found is None:
        raise HTTPException(503, f"live features cannot be used now: {state.live.problem}")
    scorer = found.table.scorer
    row = scorer.rows([(store_id, item_id)])  # UnknownSeriesError: a 404
    counts = found.counts[:1] if not np.isnan(found.counts[0]) else None
    values = scorer.matrix(row, count=1, on_hand=counts)[0] if scorer.columns else np.empty(0)
    try:
        buckets = state.live.store.buckets(store_id, item_id, found.table.origin + dt.timedelta(days=1))
    except redis.RedisError as exc:
        raise HTTPException(503, f"live features cannot be used now: Redis failed ({exc})") from None
    return LiveSeries(
        store_id=store_id,
        item_id=item_id,
        cutoff=found.table.origin,
        features_as_of=found.as_of[0],
        today=LiveTotals(units=buckets.today.units, revenue=buckets.today.revenue),
        week=LiveTotals(units=buckets.week.units, revenue=buckets.week.revenue),
        month=LiveTotals(units=buckets.month.units, revenue=buckets.month.revenue),
        last_on_hand=buckets.last_on_hand,
        last_count=buckets.last_count,
        on_hand_now=found.stock[0].now,
        events_after_count=found.stock[0].after,
        updated_at=buckets.updated_at,
        features={c: None if np.isnan(v) else float(v) for c, v in zip(scorer.columns, values, strict=True)},
    )


def _flag_old_names(response: Response, requests: list[PredictRequest]) -> None:
    """A request that used a deprecated field name: `Deprecation` (RFC 9745) and a `Warning: 299` naming the field
    (as the Kubernetes API does), so a client sees it in its logs without parsing the body."""
    old = sorted({name for r in requests for name in r.old_names})
    if not old:
        return
    response.headers["Deprecation"] = f"@{int(DEPRECATED_SINCE.timestamp())}"
    fields = "; ".join(f"request field `{name}` is deprecated, send `{RENAMED[name]}`" for name in old)
    response.headers["Warning"] = f'299 - "{fields}"'


def _origin(snapshot: Snapshot, request: PredictRequest) -> dt.date:
    return request.cutoff or snapshot.last_date


async def _predict(
    snapshot: Snapshot, requests: list[PredictRequest], state: ServiceState, request: Request
) -> list[Prediction]:
    if snapshot.scorer is None:
        raise HTTPException(409, snapshot.no_risk or "no stockout risk on this workspace's data")
    groups: dict[dt.date, list[int]] = defaultdict(list)
    for n, row in enumerate(requests):
        groups[_origin(snapshot, row)].append(n)
    bad = [d for d in groups if not snapshot.first_date <= d <= snapshot.last_date]
    if bad:
        raise HTTPException(
            422,
            f"cutoff {bad[0]} is outside the workspace's data ({snapshot.first_date} to {snapshot.last_date}): "
            "the risk is computed from the data up to that day; ingest newer data for later cutoffs",
        )
    # Each cutoff but the latest builds its feature table (about a second on a big workspace): a bounded number per
    # request, and none more once the client has gone.
    other = [d for d in groups if d != snapshot.last_date]
    limit = state.settings.serve.max_origins
    if len(other) > limit:
        raise HTTPException(
            422,
            f"{len(other)} distinct cutoffs before the latest in one request, over the limit of {limit} "
            "(setting serve.max_origins): split the batch by cutoff",
        )
    out: list[Prediction | None] = [None] * len(requests)
    stale: frozenset[int] = frozenset()
    if state.live is not None:
        # Requests for the latest day by ids are answered from live features when they can be; else from the lake's.
        live = [n for n in groups.get(snapshot.last_date, []) if requests[n].cutoff is None and requests[n].store_id]
        keys = [(requests[n].store_id or "", requests[n].item_id or "") for n in live]
        # Redis is read off the event loop: a slow answer (up to `live.timeout_seconds`) holds this request only.
        found = await run_in_threadpool(state.live.rows, keys) if live else None
        if found is not None:
            rest = [n for n in groups[snapshot.last_date] if n not in set(live)]
            if rest:
                groups[snapshot.last_date] = rest
            else:
                del groups[snapshot.last_date]
            _score_group(
                snapshot,
                found.table.scorer,
                requests=requests,
                positions=live,
                out=out,
                metrics=state.metrics,
                live=found,
            )
        elif live:
            state.metrics.live_fallbacks.labels(reason=state.live.reason).inc(len(live))
            stale = frozenset(live)
    for done, (origin, positions) in enumerate(groups.items()):
        if origin == snapshot.last_date:
            scorer = snapshot.scorer_at(origin)
        else:
            if await request.is_disconnected():
                log.info(
                    "stopped %s after %d of %d cutoffs: the client disconnected", request.url.path, done, len(groups)
                )
                raise HTTPException(499, "the client closed the request")
            scorer = await _scorer(snapshot, origin)
        _score_group(
            snapshot, scorer, requests=requests, positions=positions, out=out, metrics=state.metrics, stale=stale
        )
    return [p for p in out if p is not None]


async def _scorer(snapshot: Snapshot, origin: dt.date) -> OnlineScorer:
    """Another origin's table is built once (seconds on a big workspace): off the event loop."""
    return await run_in_threadpool(snapshot.scorer_at, origin)


def _score_group(
    snapshot: Snapshot,
    scorer: OnlineScorer,
    *,
    requests: list[PredictRequest],
    positions: list[int],
    out: list[Prediction | None],
    metrics: ServiceMetrics,
    live: LiveRows | None = None,
    stale: frozenset[int] = frozenset(),
) -> None:
    """Score the requests at `positions` on `scorer`'s table; with `live`, every one has ids and is in its order."""
    with_ids = [n for n in positions if requests[n].store_id is not None]
    explicit = [n for n in positions if requests[n].store_id is None]
    keys = [(requests[n].store_id or "", requests[n].item_id or "") for n in with_ids]
    found = scorer.rows(keys, positions=with_ids if len(requests) > 1 else None)  # UnknownSeriesError: a 404
    fallback = snapshot.model is None
    if explicit and fallback:
        raise HTTPException(
            503, f"no model to score explicit features ({snapshot.fallback}); send store_id and item_id instead"
        )
    risk_days = snapshot.model.definition.window if snapshot.model is not None else 7
    for part in (with_ids, explicit):
        if not part:
            continue
        batch = [requests[n] for n in part]
        rows = found if part is with_ids else None
        features = [r.features for r in batch]
        # A stock count comes as `on_hand` or as the feature `inventory`: both move the same inputs.
        counts = scorer.stock_counts([r.on_hand for r in batch], features)
        if live is not None:  # today's stock count from the online store, unless the request sent one
            counts = np.where(np.isnan(counts), live.counts, counts)
        on_hand = counts if rows is not None and not np.isnan(counts).all() else None
        # UnknownFeatureError and DataValidationError (the rule cannot tell) are 422s (see `app._domain`).
        if fallback:
            assert rows is not None
            scored = scorer.rule(rows, on_hand)
        else:
            scored = scorer.score(scorer.matrix(rows, count=len(batch), on_hand=on_hand, features=features))
        _record(metrics, scored, snapshot, fallback)
        for k, n in enumerate(part):
            r = requests[n]
            out[n] = Prediction(
                store_id=r.store_id,
                item_id=r.item_id,
                cutoff=scorer.table.origin,
                date=scorer.table.origin,
                risk_days=risk_days,
                risk=float(scored.risk[k]),
                label=bool(scored.label[k]),
                threshold=scored.threshold,
                model_name=snapshot.stockout_name,
                model_version=snapshot.stockout_version,
                fallback=fallback,
                source="live" if live is not None else "lake",
                features_as_of=live.as_of[k] if live is not None else None,
                stale=n in stale,
            )


def _record(metrics: ServiceMetrics, scored: Scored, snapshot: Snapshot, fallback: bool) -> None:
    positives = int(scored.label.sum())
    version = snapshot.stockout_version
    if positives:
        metrics.predictions.labels(label="stockout", model_version=version).inc(positives)
    if len(scored.label) - positives:
        metrics.predictions.labels(label="ok", model_version=version).inc(len(scored.label) - positives)
    if fallback:
        metrics.fallbacks.labels(reason="no stockout model").inc(len(scored.label))
