"""Kaggle "Store Item Demand Forecasting Challenge": date, store, item, sales."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from shelfcast.data.readers import LINE, scan_table
from shelfcast.data.sources.base import RawPart, SourceData, as_text_id, find_file


class StoreItemSource:
    """train.csv/parquet (a folder or the file itself) -> sales; masters derived from the ids."""

    name: ClassVar[str] = "store-item"
    columns = ("date", "store", "item", "sales")

    def __init__(self, *, date_format: str | None = None, delimiter: str | None = None) -> None:
        self.date_format = date_format
        self.delimiter = delimiter

    def load(self, path: Path) -> SourceData:
        file = find_file(path, "train", what="Store Item Demand train file") if path.is_dir() else path
        raw = scan_table(file, required=self.columns, delimiter=self.delimiter)
        frame = raw.select(
            pl.col(LINE),
            pl.col("date"),
            as_text_id("store", "store_id"),
            as_text_id("item", "item_id"),
            pl.col("sales").alias("units"),
            pl.selectors.starts_with("__extra_"),
        )
        return SourceData(parts=[RawPart("sales", str(file), frame, date_format=self.date_format)], frequency="D")
