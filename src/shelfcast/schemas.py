"""The canonical tables every source is mapped onto, and their checks.

One module owns the data model: column names, types, keys and row rules.
Readers and adapters produce frames in these shapes; validation and the lake
rely on nothing else.

Conventions:
- Keys `store_id` and `item_id` are strings, `date` is a Date (weekly data
  uses the period's date).
- A *required* column is always present in a canonical table. A required but
  *nullable* column is a scope: null means "all" (an exogenous value with a
  null `store_id` holds for every store) or "outside the chain" (a movement
  with a null `from_store_id` comes from a supplier).
- Optional columns are present only when the source has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

TableName = Literal["sales", "inventory", "movements", "calendar", "exogenous", "items", "stores"]
TABLE_NAMES: tuple[TableName, ...] = (
    "sales",
    "inventory",
    "movements",
    "calendar",
    "exogenous",
    "items",
    "stores",
)
MOVEMENT_KINDS = ("receipt", "transfer", "adjustment")
ExogenousRole = Literal["past_only", "known_in_advance"]
HOURS_PER_DAY = 24


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    dtype: pl.DataType
    doc: str
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSchema:
    """A canonical table: its columns, key and merge behaviour."""

    name: TableName
    doc: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...]
    # Columns summed when rows with the same key are merged; empty for state
    # tables, where only identical duplicates may merge.
    additive: tuple[str, ...] = ()
    # At least one column of each group must be present (inventory).
    one_of: tuple[tuple[str, ...], ...] = ()
    # Extra columns beyond the declared ones: "numeric" (exogenous), "any"
    # (item/store attributes) or "none".
    extras: Literal["none", "numeric", "any"] = "none"
    is_fact: bool = field(default=False)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def must_have(self) -> tuple[str, ...]:
        """Columns a source must provide (scope columns default to null = all)."""
        return tuple(c.name for c in self.columns if c.required and not c.nullable)

    @property
    def has_date(self) -> bool:
        return "date" in self.column_names

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    def dtypes(self, present: list[str] | None = None) -> dict[str, pl.DataType]:
        names = present if present is not None else list(self.column_names)
        return {c.name: c.dtype for c in self.columns if c.name in names}


_STR = pl.String()
_F64 = pl.Float64()
_DATE = pl.Date()

SALES = TableSchema(
    name="sales",
    doc="Units sold per day (or week) and series.",
    columns=(
        Column("date", _DATE, "Day of sale (weekly data: the period's date)."),
        Column("store_id", _STR, "Store key."),
        Column("item_id", _STR, "Item key."),
        Column("units", _F64, "Units sold (or sales value when the source has no units); >= 0.", minimum=0.0),
        Column("price", _F64, "Average unit price paid.", required=False, nullable=True, minimum=0.0),
        Column(
            "promo", pl.Int8(), "1 when the item was on promotion.", required=False, nullable=True, minimum=0, maximum=1
        ),
        Column("revenue", _F64, "Sales value.", required=False, nullable=True, minimum=0.0),
    ),
    keys=("date", "store_id", "item_id"),
    additive=("units", "revenue"),
    is_fact=True,
)

INVENTORY = TableSchema(
    name="inventory",
    doc="End-of-day stock position per series, or observed stock-out hours.",
    columns=(
        Column("date", _DATE, "Day of the observation."),
        Column("store_id", _STR, "Store key."),
        Column("item_id", _STR, "Item key."),
        Column(
            "on_hand", _F64, "Units on hand at the end of the day; >= 0.", required=False, nullable=True, minimum=0.0
        ),
        Column(
            "stockout_hours",
            _F64,
            "Hours out of stock that day, 0..24.",
            required=False,
            nullable=True,
            minimum=0.0,
            maximum=HOURS_PER_DAY,
        ),
        Column("reserved", _F64, "Units reserved (not sellable).", required=False, nullable=True, minimum=0.0),
        Column("on_order", _F64, "Units ordered and not yet received.", required=False, nullable=True, minimum=0.0),
        Column(
            "safety_stock", _F64, "Safety stock level set by the business.", required=False, nullable=True, minimum=0.0
        ),
        Column(
            "hours_open",
            _F64,
            "Opening hours that day.",
            required=False,
            nullable=True,
            minimum=0.0,
            maximum=HOURS_PER_DAY,
        ),
        Column(
            "hourly_stockout",
            pl.List(pl.Int8()),
            "24 flags, 1 = out of stock during that hour (when the source has them).",
            required=False,
            nullable=True,
        ),
    ),
    keys=("date", "store_id", "item_id"),
    one_of=(("on_hand", "stockout_hours"),),
    is_fact=True,
)

MOVEMENTS = TableSchema(
    name="movements",
    doc="Stock that moved: receipts from suppliers, transfers between stores, adjustments.",
    columns=(
        Column("date", _DATE, "Day of the movement."),
        Column("item_id", _STR, "Item key."),
        Column("from_store_id", _STR, "Sending store; null = from outside the chain (supplier).", nullable=True),
        Column("to_store_id", _STR, "Receiving store; null = out of the chain (write-off, return).", nullable=True),
        Column("quantity", _F64, "Units moved; > 0.", minimum=0.0),
        Column("kind", _STR, "receipt, transfer or adjustment.", allowed=MOVEMENT_KINDS),
        Column("movement_id", _STR, "Source document id; null when the source has none.", nullable=True),
    ),
    keys=("date", "item_id", "from_store_id", "to_store_id", "kind", "movement_id"),
    additive=("quantity",),
    is_fact=True,
)

CALENDAR = TableSchema(
    name="calendar",
    doc="Holidays and events; a null store_id and region mean everywhere.",
    columns=(
        Column("date", _DATE, "Day (or period) of the event."),
        Column("event", _STR, "Event name."),
        Column("store_id", _STR, "Store the event applies to; null = all.", nullable=True),
        Column("region", _STR, "Region the event applies to; null = all.", nullable=True),
        Column("kind", _STR, "holiday, event, promotion, ...", required=False, nullable=True),
        Column("transferred", pl.Boolean(), "Holiday moved to another day.", required=False, nullable=True),
    ),
    keys=("date", "event", "store_id", "region"),
)

EXOGENOUS = TableSchema(
    name="exogenous",
    doc=(
        "External numeric covariates by date; null store_id / item_id mean the value holds "
        "for all stores / items. Each extra column is past-only or known in advance (manifest)."
    ),
    columns=(
        Column("date", _DATE, "Day (or period)."),
        Column("store_id", _STR, "Store scope; null = all stores.", nullable=True),
        Column("item_id", _STR, "Item scope; null = all items.", nullable=True),
    ),
    keys=("date", "store_id", "item_id"),
    extras="numeric",
)

ITEMS = TableSchema(
    name="items",
    doc="Item master: one row per item with any attributes.",
    columns=(Column("item_id", _STR, "Item key."),),
    keys=("item_id",),
    extras="any",
)

STORES = TableSchema(
    name="stores",
    doc="Store master: one row per store with any attributes.",
    columns=(
        Column("store_id", _STR, "Store key."),
        Column("opening_date", _DATE, "Day the store opened.", required=False, nullable=True),
    ),
    keys=("store_id",),
    extras="any",
)

SCHEMAS: Mapping[TableName, TableSchema] = {
    s.name: s for s in (SALES, INVENTORY, MOVEMENTS, CALENDAR, EXOGENOUS, ITEMS, STORES)
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "line": pl.Int64(),
    "table": pl.String(),
    "rule": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
}
"""Rows that failed a rule: the file, its line (1 = header), the rule and the row as JSON."""


def get_schema(table: str) -> TableSchema:
    """The schema of a canonical table, or a clear error naming the valid ones."""
    try:
        return SCHEMAS[table]  # type: ignore[index]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; expected one of {', '.join(TABLE_NAMES)}") from None


def extra_columns(schema: TableSchema, columns: list[str]) -> list[str]:
    """Columns of a frame that the schema does not declare."""
    declared = set(schema.column_names)
    return [c for c in columns if c not in declared]


def canonical_order(schema: TableSchema, columns: list[str]) -> list[str]:
    """Declared columns in schema order, then extras in their given order."""
    return [c for c in schema.column_names if c in columns] + extra_columns(schema, columns)


def replace_rows(schema: TableSchema, existing: pl.DataFrame | None, rows: pl.DataFrame) -> pl.DataFrame:
    """`existing` with `rows` in it: a row replaces the one with the same key; canonical columns, sorted by key."""
    keys = list(schema.keys)
    if existing is not None:
        kept = existing.join(rows.select(keys), on=keys, how="anti", nulls_equal=True)
        rows = pl.concat([kept, rows], how="diagonal_relaxed")
    return rows.select(canonical_order(schema, rows.columns)).sort(keys, nulls_last=False)


def structural_problems(schema: TableSchema, frame_schema: Mapping[str, pl.DataType]) -> list[str]:
    """Whole-table problems (missing or mistyped columns): empty when the frame conforms."""
    problems: list[str] = []
    names = list(frame_schema)
    missing = [c for c in schema.required if c not in frame_schema]
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    for group in schema.one_of:
        if not any(c in frame_schema for c in group):
            problems.append(f"needs at least one of {' or '.join(group)}")
    for col in schema.columns:
        if col.name in frame_schema and frame_schema[col.name] != col.dtype:
            problems.append(f"column {col.name} is {frame_schema[col.name]}, expected {col.dtype}")
    extras = extra_columns(schema, names)
    if schema.extras == "none" and extras:
        problems.append(f"unexpected column(s) {', '.join(extras)}")
    if schema.extras == "numeric":
        bad = [c for c in extras if not frame_schema[c].is_numeric()]
        if bad:
            problems.append(f"exogenous column(s) {', '.join(bad)} are not numeric")
    return problems


@dataclass(frozen=True)
class RowRule:
    """A row-level rule: its name, the column it is about, what it means, and the failing-row test."""

    name: str
    column: str | None
    detail: str
    failing: pl.Expr


def _missing(col: Column) -> RowRule | None:
    if col.nullable:
        return None
    return RowRule(f"missing_{col.name}", col.name, f"{col.name} is empty", pl.col(col.name).is_null())


def _non_finite(col: Column) -> RowRule | None:
    if col.dtype != _F64:
        return None
    c = pl.col(col.name)
    detail = f"{col.name} is NaN or infinite"
    return RowRule(f"non_finite_{col.name}", col.name, detail, c.is_not_null() & ~c.is_finite())


def _below_minimum(col: Column) -> RowRule | None:
    if col.minimum is None:
        return None
    name = "negative" if col.minimum == 0 else "below_minimum"
    return RowRule(f"{name}_{col.name}", col.name, f"{col.name} < {col.minimum:g}", pl.col(col.name) < col.minimum)


def _above_maximum(col: Column) -> RowRule | None:
    if col.maximum is None:
        return None
    detail = f"{col.name} > {col.maximum:g}"
    return RowRule(f"above_maximum_{col.name}", col.name, detail, pl.col(col.name) > col.maximum)


def _not_allowed(col: Column) -> RowRule | None:
    if col.allowed is None:
        return None
    c = pl.col(col.name)
    detail = f"{col.name} not in {', '.join(col.allowed)}"
    return RowRule(f"invalid_{col.name}", col.name, detail, c.is_not_null() & ~c.is_in(col.allowed))


def _bad_hourly_flags(col: Column) -> RowRule | None:
    if col.dtype != pl.List(pl.Int8()):
        return None
    c = pl.col(col.name)
    bad = (
        (c.list.len() != HOURS_PER_DAY)
        | (c.list.max() > 1)
        | (c.list.min() < 0)
        | c.list.eval(pl.element().is_null()).list.any()
    )
    detail = f"{col.name} must hold {HOURS_PER_DAY} flags of 0/1"
    return RowRule(f"invalid_{col.name}", col.name, detail, c.is_not_null() & bad)


# Checked on every present column, in this order (the order of a quarantined row's rules).
_COLUMN_RULES = (_missing, _non_finite, _below_minimum, _above_maximum, _not_allowed, _bad_hourly_flags)

# Rules across columns, checked after the column rules.
_TABLE_RULES: Mapping[TableName, tuple[RowRule, ...]] = {
    "movements": (
        RowRule(
            "movement_without_store",
            None,
            "from_store_id and to_store_id are both empty",
            pl.col("from_store_id").is_null() & pl.col("to_store_id").is_null(),
        ),
        RowRule(
            "movement_to_itself",
            "to_store_id",
            "from_store_id equals to_store_id",
            pl.col("from_store_id") == pl.col("to_store_id"),
        ),
    ),
}


def row_rule_exprs(schema: TableSchema, present: list[str]) -> list[RowRule]:
    """Row-level rules that apply to the present columns of a typed frame."""
    columns = [col for col in schema.columns if col.name in present]
    rules = [rule for col in columns for check in _COLUMN_RULES if (rule := check(col)) is not None]
    return [*rules, *_TABLE_RULES.get(schema.name, ())]
