"""`/reorder` says why it holds no order quantity (issue 14): sales-only data, or nothing to order."""

from __future__ import annotations

import polars as pl
from prediction_rows import SCORED_ON, prediction_rows

from shelfcast.service.predictions import ScoringDay
from shelfcast.service.routes_read import reorder


def test_sales_only_data_says_why_there_is_no_advice() -> None:
    day = ScoringDay.of(prediction_rows(stock=False), SCORED_ON)
    answer = reorder(day, "S0", include_all=False)
    assert answer.count == 0 and answer.lines == []
    assert answer.note is not None and "sales-only data" in answer.note and "inventory" in answer.note
    assert reorder(day, "S0", include_all=True).note == answer.note


def test_nothing_to_order_says_so_and_a_normal_answer_has_no_note() -> None:
    covered = prediction_rows().with_columns(pl.lit(0.0).alias("order_quantity"))
    answer = reorder(ScoringDay.of(covered, SCORED_ON), "S0", include_all=False)
    assert answer.count == 0 and answer.note is not None and "nothing to order now" in answer.note
    assert reorder(ScoringDay.of(prediction_rows(), SCORED_ON), "S0", include_all=False).note is None
