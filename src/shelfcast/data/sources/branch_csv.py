"""A chain's branch exports: a folder of six CSVs (branches, items, sales, stock, movements, employees).

    stock_movement.csv      MovementID, Date, FromBranchID, ToBranchID, ItemCode, QuantityMoved -> movements
    stock_current.csv       BranchID, ItemCode, CurrentQuantity, ReservedQuantity, SafetyStockLevel,
                            LastUpdatedAt -> inventory (the on-hand at the end of that day)
    sales_transactions.csv  Date, BranchID, ItemCode, QuantitySold (invoice lines) -> daily sales
    item_master.csv         ItemCode, ArabicName, EnglishName, BrandOnBox -> items
    employees.csv           BranchID (the rest is personal data and is never kept) -> checked, counted
    branches.csv            BranchID, BranchName, OpeningDate -> stores

Item and branch names repeated in the fact files are not stored: the masters
own them. The daily on-hand history is rebuilt from the snapshot, the sales
and the movements after they are validated (see `branch_onhand`).
"""

from __future__ import annotations

import logging
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import polars as pl

from shelfcast.data.dates import parse_expr
from shelfcast.data.readers import EXTRA_PREFIX, LINE, scan_table
from shelfcast.data.sources.base import Derived, RawPart, SourceData, as_text_id, find_file
from shelfcast.data.sources.branch_dates import DEFAULT_FORMAT, date_text, distinct_dates, resolve_date_formats
from shelfcast.data.sources.branch_onhand import SERIES, reconstruct_on_hand
from shelfcast.errors import ConfigError
from shelfcast.schemas import INVENTORY, MOVEMENTS, SALES, TableName

log = logging.getLogger(__name__)

FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "movements": ("stock_movement", ("MovementID", "Date", "FromBranchID", "ToBranchID", "ItemCode", "QuantityMoved")),
    "snapshot": (
        "stock_current",
        ("BranchID", "ItemCode", "CurrentQuantity", "ReservedQuantity", "SafetyStockLevel", "LastUpdatedAt"),
    ),
    "sales": ("sales_transactions", ("Date", "BranchID", "ItemCode", "QuantitySold")),
    "items": ("item_master", ("ItemCode", "ArabicName", "EnglishName", "BrandOnBox")),
    "employees": ("employees", ("BranchID",)),
    "branches": ("branches", ("BranchID", "BranchName", "OpeningDate")),
}
DATE_COLUMNS = {"movements": "Date", "sales": "Date", "snapshot": "LastUpdatedAt", "branches": "OpeningDate"}
# Where the fact files repeat a master's name: (file, id column, name column).
_ITEM_NAMES = (
    ("sales", "ItemCode", "ItemName"),
    ("movements", "ItemCode", "ItemName"),
    ("snapshot", "ItemCode", "ItemName"),
)
_BRANCH_NAMES = (
    ("sales", "BranchID", "BranchName"),
    ("snapshot", "BranchID", "BranchName"),
    ("movements", "FromBranchID", "FromBranchName"),
    ("movements", "ToBranchID", "ToBranchName"),
)
NOTES = (
    "Item and branch names come from item_master.csv and branches.csv only; names repeated in the other "
    "files are not stored.",
    "employees.csv is only checked against branches.csv and counted (stores.headcount); no personal data is kept.",
    "Daily on-hand is rebuilt from stock_current.csv, the sales and the movements, backwards and forwards from "
    "each series' snapshot; series with sales or movements but no snapshot row get no history, and negative "
    "rebuilt values (the files disagree) are quarantined as negative_on_hand.",
)


def _extras(redact: bool = False) -> pl.Expr:
    """The overflow fields of ragged rows, so validation quarantines them; redacted for personal files."""
    extras = pl.selectors.starts_with(EXTRA_PREFIX)
    return pl.when(extras.is_not_null()).then(pl.lit("<redacted>")).name.keep() if redact else extras


def _blank(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars().fill_null("") == ""


def _movement_kind() -> pl.Expr:
    """receipt (no sending branch), adjustment (no receiving branch) or transfer."""
    return (
        pl.when(_blank("FromBranchID") & ~_blank("ToBranchID"))
        .then(pl.lit("receipt"))
        .when(_blank("ToBranchID"))
        .then(pl.lit("adjustment"))
        .otherwise(pl.lit("transfer"))
        .alias("kind")
    )


def _opening_date(frame: pl.LazyFrame, fmt: str) -> pl.Expr:
    """OpeningDate as a Date: stores attributes are not parsed by validation (unparseable -> null)."""
    dtype = frame.collect_schema()["OpeningDate"]
    if dtype == pl.String():
        return parse_expr(date_text(frame, "OpeningDate"), fmt).alias("opening_date")
    return pl.col("OpeningDate").cast(pl.Date, strict=False).alias("opening_date")


def _opening_note(branches: pl.LazyFrame, fmt: str) -> list[str]:
    """A note naming the opening dates that could not be read (the file is small: read it now)."""
    given = pl.col("OpeningDate").cast(pl.String).str.strip_chars().fill_null("") != ""
    bad = branches.filter(given & _opening_date(branches, fmt).is_null())
    lines = bad.select(LINE).collect().to_series().to_list()
    if not lines:
        return []
    return [
        f"branches.csv: {len(lines)} OpeningDate value(s) not read as {fmt} (lines {reprlib.repr(lines)}); left empty."
    ]


def _renamed(frames: Mapping[str, pl.LazyFrame], master: pl.LazyFrame, uses: tuple[tuple[str, str, str], ...]) -> str:
    """A note when a fact file names a known id differently from its master; empty otherwise."""
    pairs = [
        frames[key].select(as_text_id(ident, "id"), pl.col(name).cast(pl.String).str.strip_chars().alias("name"))
        for key, ident, name in uses
        if name in frames[key].collect_schema()
    ]
    if not pairs:
        return ""
    named = pl.concat(pairs).filter(pl.col("name").fill_null("") != "").unique()
    differ = named.join(master, on="id", how="semi").join(master, on=["id", "name"], how="anti")
    found = differ.group_by("id").agg(pl.col("name").first()).sort("id").collect(engine="streaming")
    if found.is_empty():
        return ""
    examples = reprlib.repr([f"{i}: {n}" for i, n in found.head(3).iter_rows()])
    return f"{found.height} id(s) named differently in the fact files than in the master (e.g. {examples})"


class BranchCsvSource:
    """A folder of branch exports -> stores, items, sales, movements, inventory (+ rebuilt on-hand history)."""

    name: ClassVar[str] = "branch-csv"

    def __init__(self, *, date_format: str | None = None, delimiter: str | None = None) -> None:
        self.date_format = date_format
        self.delimiter = delimiter

    def load(self, path: Path) -> SourceData:
        if not path.is_dir():
            raise ConfigError(
                f"`--source branch-csv` expects a folder holding {', '.join(self.file_names())}, got {path}"
            )
        files = {key: find_file(path, stem, what=f"{stem} (branch-csv)") for key, (stem, _) in FILES.items()}
        raw = {key: scan_table(files[key], required=FILES[key][1], delimiter=self.delimiter) for key in FILES}
        formats = self._date_formats(raw, files)
        src = {key: str(file) for key, file in files.items()}
        parts = [
            RawPart("stores", src["branches"], self._stores(raw, formats["branches"])),
            RawPart(
                "stores",
                src["employees"],
                raw["employees"].select(LINE, as_text_id("BranchID", "store_id"), _extras(redact=True)),
                stored=False,
            ),
            RawPart("items", src["items"], self._items(raw["items"])),
            RawPart("sales", src["sales"], self._sales(raw["sales"]), date_format=formats["sales"], aggregate=True),
            RawPart("movements", src["movements"], self._movements(raw["movements"]), date_format=formats["movements"]),
            RawPart("inventory", src["snapshot"], self._snapshot(raw["snapshot"]), date_format=formats["snapshot"]),
        ]
        return SourceData(
            parts=parts,
            notes=(*NOTES, *self._name_notes(raw, files), *_opening_note(raw["branches"], formats["branches"])),
            derive=OnHandHistory(f"{src['snapshot']} (rebuilt on-hand)"),
            frequency="D",
        )

    @staticmethod
    def file_names() -> list[str]:
        return [f"{stem}.csv" for stem, _ in FILES.values()]

    def _date_formats(self, raw: Mapping[str, pl.LazyFrame], files: Mapping[str, Path]) -> dict[str, str]:
        """The given format for every file, else one inferred per file and settled across them."""
        if self.date_format is not None:
            return dict.fromkeys(DATE_COLUMNS, self.date_format)
        labels = {key: f"{files[key].name} {column}" for key, column in DATE_COLUMNS.items()}
        texts = {labels[key]: distinct_dates(raw[key], column) for key, column in DATE_COLUMNS.items()}
        # Opening dates are an attribute: unreadable ones become null (and a note), not a failed ingest.
        found = resolve_date_formats(
            {label: v for label, v in texts.items() if v is not None}, optional=frozenset({labels["branches"]})
        )
        return {key: found.get(labels[key], DEFAULT_FORMAT) for key in DATE_COLUMNS}

    @staticmethod
    def _stores(raw: Mapping[str, pl.LazyFrame], fmt: str) -> pl.LazyFrame:
        branches = raw["branches"]
        # Count the employees rows that validation keeps: ragged rows are quarantined.
        heads = (
            raw["employees"]
            .filter(pl.all_horizontal(pl.selectors.starts_with(EXTRA_PREFIX).is_null()))
            .select(as_text_id("BranchID", "store_id"))
            .filter(pl.col("store_id").fill_null("") != "")
            .group_by("store_id")
            .agg(pl.len().cast(pl.Int64).alias("headcount"))
        )
        return (
            branches.select(
                LINE,
                as_text_id("BranchID", "store_id"),
                pl.col("BranchName").cast(pl.String).str.strip_chars().alias("name"),
                _opening_date(branches, fmt),
                _extras(),
            )
            .join(heads, on="store_id", how="left")
            .with_columns(pl.col("headcount").fill_null(0))
        )

    @staticmethod
    def _items(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.select(
            LINE,
            as_text_id("ItemCode", "item_id"),
            pl.col("ArabicName").cast(pl.String).alias("name_ar"),
            pl.col("EnglishName").cast(pl.String).alias("name_en"),
            pl.col("BrandOnBox").cast(pl.String).alias("brand"),
            _extras(),
        )

    @staticmethod
    def _sales(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.select(
            LINE,
            date_text(frame, "Date").alias("date"),
            as_text_id("BranchID", "store_id"),
            as_text_id("ItemCode", "item_id"),
            pl.col("QuantitySold").alias("units"),
            _extras(),
        )

    @staticmethod
    def _movements(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.select(
            LINE,
            date_text(frame, "Date").alias("date"),
            as_text_id("ItemCode", "item_id"),
            as_text_id("FromBranchID", "from_store_id"),
            as_text_id("ToBranchID", "to_store_id"),
            pl.col("QuantityMoved").alias("quantity"),
            _movement_kind(),
            as_text_id("MovementID", "movement_id"),
            _extras(),
        )

    @staticmethod
    def _snapshot(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.select(
            LINE,
            date_text(frame, "LastUpdatedAt").alias("date"),
            as_text_id("BranchID", "store_id"),
            as_text_id("ItemCode", "item_id"),
            pl.col("CurrentQuantity").alias("on_hand"),
            pl.col("ReservedQuantity").alias("reserved"),
            pl.col("SafetyStockLevel").alias("safety_stock"),
            _extras(),
        )

    @staticmethod
    def _name_notes(raw: Mapping[str, pl.LazyFrame], files: Mapping[str, Path]) -> list[str]:
        text = pl.col("name").cast(pl.String).str.strip_chars()
        items = raw["items"]
        item_names = pl.concat(
            [items.select(as_text_id("ItemCode", "id"), pl.col(c).alias("name")) for c in ("ArabicName", "EnglishName")]
        ).with_columns(text)
        branch_names = raw["branches"].select(as_text_id("BranchID", "id"), pl.col("BranchName").alias("name"))
        notes = []
        for master, names, uses in (
            ("items", item_names, _ITEM_NAMES),
            ("branches", branch_names.with_columns(text), _BRANCH_NAMES),
        ):
            found = _renamed(raw, names, uses)
            if found:
                notes.append(f"{files[master].name}: {found}; the master's names are kept.")
        return notes


class OnHandHistory:
    """The deriver: the on-hand of every other day, rebuilt from the clean snapshot, sales and movements."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, tables: Mapping[TableName, pl.DataFrame]) -> Derived:
        snapshot = tables.get("inventory")
        if snapshot is None or snapshot.is_empty() or "on_hand" not in snapshot.columns:
            return Derived([], ("no usable stock_current rows: no on-hand history was rebuilt",))
        sales = tables.get("sales", pl.DataFrame(schema=SALES.dtypes(["date", *SERIES, "units"])))
        movements = tables.get("movements", pl.DataFrame(schema=MOVEMENTS.dtypes()))
        rebuilt = reconstruct_on_hand(snapshot, sales, movements)
        notes: list[str] = []
        if rebuilt.without_snapshot.height:
            examples = [f"{s}/{i}" for s, i in rebuilt.without_snapshot.head(3).iter_rows()]
            notes.append(
                f"{rebuilt.without_snapshot.height} series have sales or movements but no stock_current row: "
                f"no on-hand history for them (e.g. {reprlib.repr(examples)})"
            )
        if rebuilt.negative:
            notes.append(
                f"{rebuilt.negative} rebuilt on-hand values are negative (stock_current disagrees with the sales "
                "and movements); they are quarantined as negative_on_hand"
            )
        for note in notes:
            log.warning("%s", note)
        # The snapshot rows themselves come from the read part.
        rows = rebuilt.history.join(snapshot.select("date", *SERIES), on=["date", *SERIES], how="anti")
        if rows.is_empty():
            return Derived([], tuple(notes))
        # `_line` numbers the rebuilt rows by series, then date, so a quarantined one can be found.
        frame = rows.sort(*SERIES, "date").with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))
        typed = frame.lazy().cast(pl.Schema(INVENTORY.dtypes(frame.columns)))
        return Derived([RawPart("inventory", self.source, typed, derived=True)], tuple(notes))


__all__ = ["BranchCsvSource", "OnHandHistory"]
