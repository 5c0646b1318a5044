"""GET /explain: why a series is at risk, from the served model and the snapshot's feature table (fast as /predict)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from shelfcast.models.explain import explain
from shelfcast.service.deps import SnapshotDep
from shelfcast.service.schemas import ExplainReason, ExplainResponse, problem

router = APIRouter(tags=["predict"])
IdQuery = Annotated[str, Query(min_length=1, max_length=128)]
_REFUSED: dict[int | str, dict[str, Any]] = {
    404: problem("Unknown store_id/item_id."),
    409: problem("No model to explain: the rule baseline answers (no champion, or fallback), or sales-only data."),
    503: problem("No data or model loaded."),
}


@router.get("/explain", response_model=ExplainResponse, responses=_REFUSED)
def explain_risk(
    store_id: IdQuery,
    item_id: IdQuery,
    snapshot: SnapshotDep,
    top: Annotated[int, Query(ge=1, le=50, description="Features kept in each direction.")] = 5,
) -> ExplainResponse:
    """The stockout risk of one store x item at the latest date and the features that pushed it up and down most.

    The row is the lake's, as POST /predict scores it without a stock count or live features.
    """
    if snapshot.scorer is None:
        raise HTTPException(409, snapshot.no_risk or "no stockout risk on this workspace's data")
    if snapshot.model is None:
        raise HTTPException(409, f"the rule baseline answers; no model to explain ({snapshot.fallback})")
    scorer = snapshot.scorer
    row = scorer.rows([(store_id, item_id)])[0]  # UnknownSeriesError: a 404
    why = explain(snapshot.model, scorer.table.matrix[row], top=top)
    return ExplainResponse(
        store_id=store_id,
        item_id=item_id,
        cutoff=scorer.table.origin,
        risk_days=snapshot.model.definition.window,
        risk=why.risk,
        label=why.label,
        threshold=why.threshold,
        base_value=why.base_value,
        model_name=snapshot.stockout_name,
        model_version=snapshot.stockout_version,
        reasons=[
            ExplainReason(
                feature=r.feature, value=r.value, contribution=r.contribution, direction=r.direction, text=r.text
            )
            for r in why.reasons
        ],
    )
