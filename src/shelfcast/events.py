"""Live events (sales, stock counts, receipts): their versioned models, wire format and validation.

An event travels through a Redis Stream as a flat entry of text fields (`encode` writes one, `parse_entry` reads
one back). The models are the documented shape and what Python producers build; `parse_entry` is a hand-written,
allocation-light check of the same rules (fast enough for tens of thousands of events per second), returning the
event or a `Rejection` naming the rule broken and the field, as the lake's quarantine does for rows:

- `invalid_v` / `invalid_type`: an unknown version or event type;
- `missing_<field>`: a required field is absent or empty;
- `invalid_<field>`: a value that does not parse (a number, a time, promo other than 0/1);
- `non_finite_<field>`: NaN or infinity;
- `negative_<field>`: below 0 (`units`, `price`, `on_hand`, `safety_stock`); `not_positive_quantity` for a receipt;
- `date_out_of_range` (field `time`): the event's day is before `min_date`, after `max_date`, or more than
  `future_days` after today;
- `unknown_store` / `unknown_item`: not in the known set, under the `reject` policy for new series;
- `unexpected_field`: a field no event type of this version has.

The day an event belongs to is the calendar date of its `time` as sent (store-local); an offset, if any, is kept
but not used to move the event to another day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_VERSION = 1
EventType = Literal["sale", "stock", "receipt"]
NewSeriesPolicy = Literal["accept", "reject"]


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    v: Literal[1] = 1
    event_id: str = Field(min_length=1, description="Unique id of the event; a re-sent event keeps its id.")
    time: dt.datetime = Field(description="When it happened, store-local; its calendar date is the event's day.")
    store_id: str = Field(min_length=1)
    item_id: str = Field(min_length=1)

    @property
    def day(self) -> dt.date:
        return self.time.date()


class SaleEvent(_EventBase):
    """Units sold (one receipt line, or a total for a while); `price` is the unit price paid."""

    type: Literal["sale"] = "sale"
    units: float = Field(ge=0)
    price: float | None = Field(None, ge=0)
    promo: Literal[0, 1] | None = None


class StockCountEvent(_EventBase):
    """A count of units on hand; the latest count of a day is that day's end-of-day stock."""

    type: Literal["stock"] = "stock"
    on_hand: float = Field(ge=0)
    safety_stock: float | None = Field(None, ge=0)


class ReceiptEvent(_EventBase):
    """Units received from a supplier."""

    type: Literal["receipt"] = "receipt"
    quantity: float = Field(gt=0)


Event = Annotated[SaleEvent | StockCountEvent | ReceiptEvent, Field(discriminator="type")]
EventModel = SaleEvent | StockCountEvent | ReceiptEvent
MODELS: Mapping[str, type[EventModel]] = {"sale": SaleEvent, "stock": StockCountEvent, "receipt": ReceiptEvent}

_COMMON = ("v", "type", "event_id", "time", "store_id", "item_id")
FIELDS: Mapping[str, tuple[str, ...]] = {
    "sale": (*_COMMON, "units", "price", "promo"),
    "stock": (*_COMMON, "on_hand", "safety_stock"),
    "receipt": (*_COMMON, "quantity"),
}
"""The wire fields of each event type (all text)."""
ALL_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(f for fields in FIELDS.values() for f in fields))


_PROMO: Mapping[str, Literal[0, 1]] = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an entry is not a valid event: the rule broken, the field it is about, and a readable detail."""

    rule: str
    field: str
    detail: str


@dataclass(frozen=True)
class EventRules:
    """What `parse_entry` accepts besides the types: the lake's date bounds and the policy for unknown ids.

    `stores` / `items` are the known ids; None means "not checked". Under `new_series="accept"` unknown ids pass
    (the consumer then records them as known); under `reject` they are rejected.
    """

    min_date: dt.date = dt.date(1990, 1, 1)
    max_date: dt.date = dt.date(2100, 12, 31)
    future_days: int = 1
    today: dt.date | None = None  # None: the local date when checked
    stores: frozenset[str] | None = None
    items: frozenset[str] | None = None
    new_series: NewSeriesPolicy = "accept"

    def latest_day(self) -> dt.date:
        today = self.today if self.today is not None else dt.date.today()
        return min(self.max_date, today + dt.timedelta(days=self.future_days))


def encode(event: EventModel) -> dict[str, str]:
    """The stream entry of an event: its set fields as text (floats as `repr`, time in ISO 8601)."""
    out: dict[str, str] = {}
    for name in FIELDS[event.type]:
        value = getattr(event, name)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            out[name] = value.isoformat()
        elif isinstance(value, float):
            out[name] = repr(value)
        else:
            out[name] = str(value)
    return out


def _decoded(raw: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str | None]:
    """Field -> stripped text, None for an empty value."""
    out: dict[str, str | None] = {}
    for key, value in raw.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        text = (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()
        out[name] = text or None
    return out


def _number(text: str | None, name: str, *, required: bool, positive: bool = False) -> float | Rejection | None:
    if text is None:
        return Rejection(f"missing_{name}", name, f"{name} is empty") if required else None
    try:
        value = float(text)
    except ValueError:
        return Rejection(f"invalid_{name}", name, f"{name} is not a number (got {text!r})")
    if not math.isfinite(value):
        return Rejection(f"non_finite_{name}", name, f"{name} is NaN or infinite (got {text!r})")
    if positive and value <= 0:
        return Rejection(f"not_positive_{name}", name, f"{name} <= 0 (got {text})")
    if value < 0:
        return Rejection(f"negative_{name}", name, f"{name} < 0 (got {text})")
    return value


def parse_entry(raw: Mapping[bytes, bytes] | Mapping[str, str], rules: EventRules) -> EventModel | Rejection:
    """An entry of the stream (field -> value, bytes as redis-py returns them, or text) as an event, or the first
    rule it breaks. Never raises on bad input."""
    data = _decoded(raw)
    get = data.get
    version = get("v")
    if version is None:
        return Rejection("missing_v", "v", "v is empty")
    if version != str(EVENT_VERSION):
        return Rejection("invalid_v", "v", f"unknown event version {version!r}; this consumer reads v{EVENT_VERSION}")
    kind = get("type")
    if kind is None:
        return Rejection("missing_type", "type", "type is empty")
    if kind not in FIELDS:
        return Rejection("invalid_type", "type", f"type must be one of {', '.join(FIELDS)} (got {kind!r})")
    allowed = FIELDS[kind]
    for name in data:
        if name not in allowed:
            return Rejection("unexpected_field", name, f"a {kind} event has no field {name!r}")
    common: dict[str, str] = {}
    for name in ("event_id", "time", "store_id", "item_id"):
        text = get(name)
        if text is None:
            return Rejection(f"missing_{name}", name, f"{name} is empty")
        common[name] = text
    try:
        time = dt.datetime.fromisoformat(common["time"])
    except ValueError:
        return Rejection("invalid_time", "time", f"time is not an ISO 8601 date-time (got {common['time']!r})")
    day = time.date()
    latest = rules.latest_day()
    if day < rules.min_date or day > latest:
        return Rejection("date_out_of_range", "time", f"day outside {rules.min_date}..{latest} (got {day})")
    store, item = common["store_id"], common["item_id"]
    if rules.new_series == "reject":
        if rules.stores is not None and store not in rules.stores:
            return Rejection("unknown_store", "store_id", f"store {store!r} is not known")
        if rules.items is not None and item not in rules.items:
            return Rejection("unknown_item", "item_id", f"item {item!r} is not known")
    event_id = common["event_id"]
    if kind == "sale":
        units = _number(get("units"), "units", required=True)
        if isinstance(units, Rejection):
            return units
        price = _number(get("price"), "price", required=False)
        if isinstance(price, Rejection):
            return price
        promo_text = get("promo")
        promo: Literal[0, 1] | None = None
        if promo_text is not None:
            if promo_text not in _PROMO:
                return Rejection("invalid_promo", "promo", f"promo must be 0 or 1 (got {promo_text!r})")
            promo = _PROMO[promo_text]
        return SaleEvent.model_construct(
            event_id=event_id, time=time, store_id=store, item_id=item, units=units or 0.0, price=price, promo=promo
        )
    if kind == "stock":
        on_hand = _number(get("on_hand"), "on_hand", required=True)
        if isinstance(on_hand, Rejection):
            return on_hand
        safety = _number(get("safety_stock"), "safety_stock", required=False)
        if isinstance(safety, Rejection):
            return safety
        return StockCountEvent.model_construct(
            event_id=event_id, time=time, store_id=store, item_id=item, on_hand=on_hand or 0.0, safety_stock=safety
        )
    quantity = _number(get("quantity"), "quantity", required=True, positive=True)
    if isinstance(quantity, Rejection):
        return quantity
    return ReceiptEvent.model_construct(
        event_id=event_id, time=time, store_id=store, item_id=item, quantity=quantity or 0.0
    )
