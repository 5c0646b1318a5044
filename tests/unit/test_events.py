"""Live events: every rule gives a rejection naming it and the field; good events parse and round-trip."""

from __future__ import annotations

import datetime as dt

import pytest

from shelfcast.events import (
    EventRules,
    ReceiptEvent,
    Rejection,
    SaleEvent,
    StockCountEvent,
    encode,
    parse_entry,
)

TODAY = dt.date(2026, 11, 23)
RULES = EventRules(today=TODAY, future_days=1)
SALE = {
    "v": "1",
    "type": "sale",
    "event_id": "e1",
    "time": "2026-11-23T10:15:00",
    "store_id": "S1",
    "item_id": "I1",
    "units": "2",
    "price": "1.5",
    "promo": "1",
}
STOCK = {**{k: SALE[k] for k in ("v", "event_id", "time", "store_id", "item_id")}, "type": "stock", "on_hand": "7"}
RECEIPT = {**{k: SALE[k] for k in ("v", "event_id", "time", "store_id", "item_id")}, "type": "receipt", "quantity": "3"}


def as_bytes(fields: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in fields.items()}


def test_good_events_parse_from_bytes_and_text() -> None:
    sale = parse_entry(as_bytes(SALE), RULES)
    assert sale == SaleEvent(
        event_id="e1", time=dt.datetime(2026, 11, 23, 10, 15), store_id="S1", item_id="I1", units=2, price=1.5, promo=1
    )
    assert isinstance(parse_entry(STOCK, RULES), StockCountEvent)
    receipt = parse_entry(RECEIPT, RULES)
    assert isinstance(receipt, ReceiptEvent) and receipt.quantity == 3.0
    minimal = parse_entry({k: v for k, v in SALE.items() if k not in ("price", "promo")}, RULES)
    assert isinstance(minimal, SaleEvent) and minimal.price is None and minimal.promo is None


@pytest.mark.parametrize(
    "event",
    [
        SaleEvent(event_id="a", time=dt.datetime(2026, 11, 22, 9), store_id="S", item_id="I", units=0.1, price=0.7),
        StockCountEvent(
            event_id="b", time=dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC), store_id="S", item_id="I", on_hand=3.0
        ),
        ReceiptEvent(event_id="c", time=dt.datetime(2026, 11, 22), store_id="S", item_id="I", quantity=1.0),
    ],
)
def test_encode_then_parse_gives_the_event_back(event: SaleEvent | StockCountEvent | ReceiptEvent) -> None:
    assert parse_entry(as_bytes(encode(event)), RULES) == event


def test_the_day_is_the_date_as_sent() -> None:
    late = parse_entry({**SALE, "time": "2026-11-22T23:30:00-05:00"}, RULES)
    assert isinstance(late, SaleEvent) and late.day == dt.date(2026, 11, 22)


def _without(fields: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k != name}


CASES = [
    ("missing_v", "v", _without(SALE, "v")),
    ("invalid_v", "v", {**SALE, "v": "2"}),
    ("missing_type", "type", _without(SALE, "type")),
    ("invalid_type", "type", {**SALE, "type": "refund"}),
    ("unexpected_field", "on_hand", {**SALE, "on_hand": "3"}),
    ("missing_event_id", "event_id", {**SALE, "event_id": " "}),
    ("missing_time", "time", _without(SALE, "time")),
    ("invalid_time", "time", {**SALE, "time": "yesterday"}),
    ("date_out_of_range", "time", {**SALE, "time": "2026-11-25T00:00:00"}),
    ("date_out_of_range", "time", {**SALE, "time": "1989-12-31T12:00:00"}),
    ("missing_store_id", "store_id", _without(SALE, "store_id")),
    ("missing_item_id", "item_id", _without(SALE, "item_id")),
    ("missing_units", "units", _without(SALE, "units")),
    ("invalid_units", "units", {**SALE, "units": "two"}),
    ("non_finite_units", "units", {**SALE, "units": "nan"}),
    ("non_finite_units", "units", {**SALE, "units": "inf"}),
    ("negative_units", "units", {**SALE, "units": "-1"}),
    ("negative_price", "price", {**SALE, "price": "-0.5"}),
    ("non_finite_price", "price", {**SALE, "price": "-inf"}),
    ("invalid_promo", "promo", {**SALE, "promo": "2"}),
    ("missing_on_hand", "on_hand", _without(STOCK, "on_hand")),
    ("negative_on_hand", "on_hand", {**STOCK, "on_hand": "-3"}),
    ("negative_safety_stock", "safety_stock", {**STOCK, "safety_stock": "-1"}),
    ("missing_quantity", "quantity", _without(RECEIPT, "quantity")),
    ("not_positive_quantity", "quantity", {**RECEIPT, "quantity": "0"}),
    ("non_finite_quantity", "quantity", {**RECEIPT, "quantity": "NaN"}),
]


@pytest.mark.parametrize(("rule", "field", "fields"), CASES, ids=[f"{r}-{f}-{i}" for i, (r, f, _) in enumerate(CASES)])
def test_each_rule_is_named_with_its_field(rule: str, field: str, fields: dict[str, str]) -> None:
    result = parse_entry(as_bytes(fields), RULES)
    assert isinstance(result, Rejection), result
    assert (result.rule, result.field) == (rule, field)
    assert result.detail


def test_future_days_and_max_date_bound_the_day() -> None:
    assert isinstance(parse_entry({**SALE, "time": "2026-11-24T23:59:59"}, RULES), SaleEvent)
    tight = EventRules(today=TODAY, future_days=0, max_date=dt.date(2030, 1, 1))
    assert parse_entry({**SALE, "time": "2026-11-24T00:00:00"}, tight) == Rejection(
        "date_out_of_range", "time", "day outside 1990-01-01..2026-11-23 (got 2026-11-24)"
    )


def test_unknown_store_or_item_follows_the_policy() -> None:
    known = {"stores": frozenset({"S1"}), "items": frozenset({"I1"})}
    reject = EventRules(today=TODAY, new_series="reject", **known)  # type: ignore[arg-type]
    accept = EventRules(today=TODAY, new_series="accept", **known)  # type: ignore[arg-type]
    new_store, new_item = {**SALE, "store_id": "S9"}, {**SALE, "item_id": "I9"}
    assert parse_entry(new_store, reject) == Rejection("unknown_store", "store_id", "store 'S9' is not known")
    assert parse_entry(new_item, reject) == Rejection("unknown_item", "item_id", "item 'I9' is not known")
    assert isinstance(parse_entry(new_store, accept), SaleEvent)
    assert isinstance(parse_entry(SALE, reject), SaleEvent)


def test_bad_utf8_is_a_rejection_not_a_crash() -> None:
    fields = {**as_bytes(SALE), b"units": b"\xff\xfe"}
    result = parse_entry(fields, RULES)
    assert isinstance(result, Rejection) and result.rule == "invalid_units"
