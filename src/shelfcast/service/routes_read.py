"""GET /forecast, /stockout/alerts and /reorder: answers from the latest batch predictions in the store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Query

from shelfcast.io.lake import Lake
from shelfcast.service.deps import ScoringDayDep, StateDep
from shelfcast.service.predictions import ScoringDay
from shelfcast.service.schemas import (
    AlertsResponse,
    ForecastPoint,
    ForecastResponse,
    ReorderResponse,
    ShelfAdvice,
    problem,
)
from shelfcast.types import Freq, PeriodAnchor

router = APIRouter(tags=["predictions"])
IdQuery = Annotated[str, Query(min_length=1, max_length=128)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: problem("Unknown ids, a date outside the scoring, or no predictions yet.")
}
_ADVICE = list(ShelfAdvice.model_fields)


@dataclass(frozen=True)
class Period:
    """The data's period: its days, and whether a date is its first day or its last."""

    days: int
    anchor: PeriodAnchor = PeriodAnchor.START


def data_period(state: StateDep) -> Period:
    """The period of the data loaded, else of the lake's manifest (ingest records frequency and anchor)."""
    if state.snapshot is not None:
        data = state.snapshot.data
        return Period(Freq(data.panel.freq).days, data.period_anchor)
    info = Lake(state.settings.workspace).table_info("sales") or {}
    return Period(Freq(info.get("frequency") or Freq.DAILY).days, PeriodAnchor(info.get("period_anchor") or "start"))


@router.get("/forecast", response_model=ForecastResponse, responses=_NOT_FOUND)
def forecast(
    day: ScoringDayDep,
    store_id: IdQuery,
    item_id: IdQuery,
    date: Annotated[dt.date | None, Query(description="One day (or the week holding it, on weekly data).")] = None,
    period: Annotated[Period | None, Depends(data_period)] = None,
) -> ForecastResponse:
    """The latest scoring's forecast of one store x item: every horizon, or the period holding `date`."""
    span = day.spans.get((store_id, item_id))
    if span is None:
        raise HTTPException(
            404,
            f"no forecast for store_id={store_id!r} item_id={item_id!r} in the scoring of {day.scored_on} "
            f"({len(day.spans)} series)",
        )
    rows = day.rows.slice(span[0], span[1] - span[0])
    if date is not None:
        period = period or Period(_step(rows))
        step = period.days
        # The period's first day: its date, or on data dated by the week's end, six days before it.
        opens = pl.col("date") - dt.timedelta(days=step - 1) if period.anchor is PeriodAnchor.END else pl.col("date")
        rows = rows.filter((opens <= date) & (opens + dt.timedelta(days=step) > date))
        if rows.is_empty():
            # The days the scoring covers: its periods' first day to their last.
            covered = (
                (day.first - dt.timedelta(days=step - 1), day.last)
                if period.anchor is PeriodAnchor.END
                else (day.first, day.last + dt.timedelta(days=step - 1))
            )
            raise HTTPException(
                404, f"date {date} is outside what was scored on {day.scored_on}: {covered[0]} to {covered[1]}"
            )
    first = rows.row(0, named=True)
    return ForecastResponse(
        store_id=store_id,
        item_id=item_id,
        scored_on=day.scored_on,
        scored_at=first["scored_at"],
        model_name=first["model_name"],
        model_version=first["model_version"],
        points=[
            ForecastPoint.model_validate(r) for r in rows.select(*ForecastPoint.model_fields).iter_rows(named=True)
        ],
    )


def _step(rows: pl.DataFrame) -> int:
    """Days per forecast period: 7 on weekly data, else 1."""
    if rows.height < 2:
        return 1
    gap = rows["date"][1] - rows["date"][0]
    return 7 if isinstance(gap, dt.timedelta) and gap.days == 7 else 1


def _store(day: ScoringDay, store_id: str | None) -> pl.DataFrame:
    series = day.series
    if store_id is None:
        return series
    rows = series.filter(pl.col("store_id") == store_id)
    if rows.is_empty():
        raise HTTPException(404, f"unknown store_id={store_id!r}: not in the scoring of {day.scored_on}")
    return rows


def _advice(rows: pl.DataFrame) -> list[ShelfAdvice]:
    return [ShelfAdvice.model_validate(r) for r in rows.select(_ADVICE).iter_rows(named=True)]


@router.get(
    "/stockout/alerts",
    response_model=AlertsResponse,
    responses=_NOT_FOUND | {409: problem("The scoring has no stockout risk (sales-only data, or no stockout model).")},
)
def alerts(
    day: ScoringDayDep,
    store_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    min_risk: Annotated[
        float | None,
        Query(
            ge=0.0,
            le=1.0,
            allow_inf_nan=False,
            description="Default: the items the model flags (risk >= threshold).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> AlertsResponse:
    """A store's items (or every store's) ranked by stockout risk, with their reorder advice."""
    rows = _store(day, store_id).filter(pl.col("stockout_risk").is_not_null())
    if rows.is_empty() and day.series["stockout_risk"].is_null().all():
        raise HTTPException(
            409, f"the scoring of {day.scored_on} has no stockout risk (sales-only data, or no stockout model)"
        )
    keep: Any = pl.col("stockout_label") if min_risk is None else pl.col("stockout_risk") >= min_risk
    ranked = rows.filter(keep).sort("stockout_risk", "store_id", "item_id", descending=[True, False, False])
    versions = day.series["stockout_model_version"].drop_nulls()
    return AlertsResponse(
        scored_on=day.scored_on,
        store_id=store_id,
        min_risk=min_risk,
        count=ranked.height,
        stockout_model_version=versions[0] if versions.len() else None,
        alerts=_advice(ranked.head(limit)),
    )


@router.get("/reorder", response_model=ReorderResponse, responses=_NOT_FOUND)
def reorder(
    day: ScoringDayDep,
    store_id: IdQuery,
    include_all: Annotated[bool, Query(alias="all", description="Every item, not only those to order now.")] = False,
) -> ReorderResponse:
    """What a store should order now (order quantity > 0), largest first, with the advice behind it."""
    every = _store(day, store_id)
    rows = every if include_all else every.filter(pl.col("order_quantity") > 0)
    rows = rows.sort("order_quantity", "item_id", descending=[True, False], nulls_last=True)
    return ReorderResponse(
        scored_on=day.scored_on,
        store_id=store_id,
        count=rows.height,
        lines=_advice(rows),
        note=_reorder_note(day, every, rows, store_id),
    )


def _reorder_note(day: ScoringDay, every: pl.DataFrame, rows: pl.DataFrame, store_id: str) -> str | None:
    """Why the answer holds no order quantity, when it holds none."""
    if every["order_quantity"].is_null().all():
        return (
            f"no reorder advice in the scoring of {day.scored_on} for store_id={store_id!r}: it has no stock "
            "data (sales-only data: order quantities need on-hand counts); ingest an inventory table, then "
            "run `shelfcast score`"
        )
    if rows.is_empty():
        return f"nothing to order now at store_id={store_id!r}: every item's stock covers its order-up-to level"
    return None
