"""FreshRetailNet-50K (Dingdong Fresh): daily store x product sales with hourly stock-out flags.

One daily file holds everything, so each canonical table is a projection of
it: sales, inventory (stock-out hours and the 24 hourly flags), store x item
covariates, and the item and store masters (repeated on every row; identical
repeats merge, conflicting ones are quarantined by the job).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from shelfcast.data.readers import EXTRA_PREFIX, LINE, check_types, scan_table
from shelfcast.data.sources.base import RawPart, SourceData, as_text_id, find_file
from shelfcast.errors import InputFileError
from shelfcast.schemas import ExogenousRole

# Discounts, activities and holidays are planned; weather is only known after the day.
EXOGENOUS_ROLES: dict[str, ExogenousRole] = {
    "discount": "known_in_advance",
    "holiday_flag": "known_in_advance",
    "activity_flag": "known_in_advance",
    "precpt": "past_only",
    "avg_temperature": "past_only",
    "avg_humidity": "past_only",
    "avg_wind_level": "past_only",
}
ITEM_ATTRIBUTES = ("management_group_id", "first_category_id", "second_category_id", "third_category_id")
STORE_ATTRIBUTES = ("city_id",)
HOURLY_FLAGS = "hours_stock_status"
REQUIRED = (
    "store_id",
    "product_id",
    "dt",
    "sale_amount",
    "stock_hours",
    HOURLY_FLAGS,
    *EXOGENOUS_ROLES,
    *ITEM_ATTRIBUTES,
    *STORE_ATTRIBUTES,
)
# What each column becomes, for the check of a Parquet file's types (None: any single value).
TARGETS: dict[str, tuple[str, pl.DataType | None]] = {
    "store_id": ("store_id", pl.String()),
    "product_id": ("item_id", pl.String()),
    "dt": ("date", pl.Date()),
    "sale_amount": ("units", pl.Float64()),
    "stock_hours": ("stockout_hours", pl.Float64()),
    HOURLY_FLAGS: ("hourly_stockout", pl.List(pl.Int8())),
    **{c: (c, pl.Float64()) for c in EXOGENOUS_ROLES},
    **{c: (c, None) for c in (*ITEM_ATTRIBUTES, *STORE_ATTRIBUTES)},
}
# An hourly flag that cannot be read becomes this value, which the schema's
# 0/1 rule quarantines, instead of a null that would pass unnoticed.
_UNREADABLE_FLAG = -1
TRAIN_STEMS = ("train_daily", "train")
EVAL_STEM = "eval"

NOTES = (
    "freshretailnet: sales.units is sale_amount, normalised units (not raw counts); sales in out-of-stock "
    "hours are censored, see inventory.stockout_hours and inventory.hourly_stockout.",
    "freshretailnet: hours_sale (the 24 hourly sales) is not kept: the canonical tables have no hourly sales.",
    "freshretailnet: licence CC BY 4.0, cite 'FreshRetailNet-50K, Dingdong Fresh'.",
)


def _hourly_flags(dtype: pl.DataType) -> pl.Expr:
    """hours_stock_status as List(Int8), from a list column or from CSV text such as "[0, 1, ...]"."""
    c = pl.col(HOURLY_FLAGS)
    if dtype == pl.String():
        text = c.str.strip_chars().str.strip_chars("[]").str.replace_all(r"[,;\s]+", ",").str.strip_chars(",")
        c = pl.when(text != "").then(text.str.split(","))
        element = pl.element().str.strip_chars()
    else:
        element = pl.element()
    flags = element.cast(pl.Int8, strict=False).fill_null(_UNREADABLE_FLAG)
    return c.list.eval(flags).cast(pl.List(pl.Int8)).alias("hourly_stockout")


def _optional_file(folder: Path, stem: str) -> Path | None:
    try:
        return find_file(folder, stem, what="")
    except InputFileError:
        return None


def _only_daily_file(folder: Path, *, besides: Path | None) -> Path:
    """The folder's one Parquet or CSV file when it is not named train_daily (a renamed download), else an error
    listing what the folder holds."""
    found = sorted(
        f for f in folder.iterdir() if f.is_file() and f != besides and f.name.endswith((".parquet", ".csv", ".csv.gz"))
    )
    if len(found) == 1:
        return found[0]
    names = ", ".join(f.name for f in found[:10]) + (", ..." if len(found) > 10 else "")
    held = f"it holds {len(found)} data files ({names})" if found else "it holds no .parquet or .csv file"
    raise InputFileError(
        folder,
        f"FreshRetailNet daily file not found: looked for train_daily.parquet (or .csv), or a single data file, "
        f"but {held}; pass the file itself",
    )


class FreshRetailNetSource:
    """train_daily.parquet (a folder or the file itself), plus eval.parquet when the folder has it."""

    name: ClassVar[str] = "freshretailnet"

    def __init__(self, *, date_format: str | None = None, delimiter: str | None = None) -> None:
        self.date_format = date_format
        self.delimiter = delimiter

    def files(self, path: Path) -> list[Path]:
        """The daily files to read: the one given, or the folder's train (and eval) files; a folder holding one data
        file under another name is read as that file."""
        if not path.is_dir():
            return [path]
        train = next((f for stem in TRAIN_STEMS if (f := _optional_file(path, stem)) is not None), None)
        evaluation = _optional_file(path, EVAL_STEM)
        if train is None:
            train = _only_daily_file(path, besides=evaluation)
        return [train] if evaluation is None else [train, evaluation]

    def load(self, path: Path) -> SourceData:
        parts: list[RawPart] = []
        for file in self.files(path):
            parts += self._parts(file)
        return SourceData(parts=parts, exogenous_roles=EXOGENOUS_ROLES, notes=NOTES, frequency="D")

    def _parts(self, file: Path) -> list[RawPart]:
        raw = check_types(file, scan_table(file, required=REQUIRED, delimiter=self.delimiter), TARGETS)
        keys = (pl.col(LINE), pl.col("dt").alias("date"), as_text_id("store_id"), as_text_id("product_id", "item_id"))
        # Every part carries the overflow fields of a ragged CSV line, so such a
        # line is quarantined from each table rather than half used.
        extras = pl.selectors.starts_with(EXTRA_PREFIX)
        sales = raw.select(*keys, pl.col("sale_amount").alias("units"), extras)
        inventory = raw.select(
            *keys,
            pl.col("stock_hours").alias("stockout_hours"),
            _hourly_flags(raw.collect_schema()[HOURLY_FLAGS]),
            extras,
        )
        exogenous = raw.select(*keys, *EXOGENOUS_ROLES, extras)
        # Category and city codes are labels, so they are kept as text like the keys.
        items = raw.select(pl.col(LINE), as_text_id("product_id", "item_id"), *map(as_text_id, ITEM_ATTRIBUTES), extras)
        stores = raw.select(pl.col(LINE), as_text_id("store_id"), *map(as_text_id, STORE_ATTRIBUTES), extras)
        source, fmt = str(file), self.date_format
        return [
            RawPart("sales", source, sales, date_format=fmt),
            RawPart("inventory", source, inventory, date_format=fmt),
            RawPart("exogenous", source, exogenous, date_format=fmt),
            RawPart("items", source, items),
            RawPart("stores", source, stores),
        ]


__all__ = ["FreshRetailNetSource"]
