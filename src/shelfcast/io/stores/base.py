"""The prediction store protocol every backend follows."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import polars as pl


class PredictionStore(Protocol):
    """Writes one scoring day's predictions, replacing that day; reads them back."""

    @property
    def location(self) -> str:
        """Where the predictions go, for messages (a folder, a table, a URL)."""
        ...

    def check(self) -> None:
        """Fail early (StoreError) when the store cannot be written, before any model runs."""
        ...

    def write(self, predictions: pl.DataFrame, *, scored_on: dt.date) -> int:
        """Replace the predictions of `scored_on` with these rows atomically; returns the rows written."""
        ...

    def read(self, *, scored_on: dt.date | None = None) -> pl.DataFrame:
        """The stored predictions (of one scoring day, or all), in schema order, sorted by key."""
        ...

    def latest_day(self) -> dt.date | None:
        """The latest scoring day stored (None when empty), without reading the rows; StoreError if unreachable."""
        ...
