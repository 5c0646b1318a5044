"""What a source adapter hands to ingestion: raw parts mapped onto canonical tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

import polars as pl

from shelfcast.data.validate import FALSE_WORDS, TRUE_WORDS
from shelfcast.schemas import ExogenousRole, TableName


@dataclass(frozen=True)
class RawPart:
    """One input file (or one derivation) mapped onto one canonical table.

    `frame` uses canonical column names and keeps `_line`. CSV columns are text;
    validation parses and checks them, so the adapter only renames and reshapes.
    """

    table: TableName
    source: str
    frame: pl.LazyFrame
    # Explicit strptime format for text date columns; None = detect.
    date_format: str | None = None
    # Rows sharing a key are pieces of one fact (invoice lines of a day) and
    # are summed whatever the duplicate policy.
    aggregate: bool = False
    # Rows computed by the adapter rather than read from a file.
    derived: bool = False
    # False: rows are validated (and checked against the masters) but not
    # written to the lake, e.g. employees, whose personal data stays out.
    stored: bool = True
    # Types for attribute columns the schema does not declare (e.g. a store's
    # size): text is parsed into them and bad values are quarantined.
    dtypes: Mapping[str, pl.DataType] = field(default_factory=dict)


@dataclass(frozen=True)
class Derived:
    """Parts computed from the clean tables, with notes for the user about what was found."""

    parts: list[RawPart]
    notes: tuple[str, ...] = ()


# Called after the read parts are validated, with the clean tables; returns
# more parts computed from them (e.g. an on-hand history from a snapshot).
Deriver = Callable[[Mapping[TableName, pl.DataFrame]], Derived]


@dataclass(frozen=True)
class SourceData:
    """Everything an adapter produced for one ingest."""

    parts: list[RawPart]
    exogenous_roles: Mapping[str, ExogenousRole] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    derive: Deriver | None = None
    # "D" or "W" when the source knows its grain; otherwise detected from the dates.
    frequency: str | None = None
    # Weekly data: whether a row's date is its week's first day ("start") or last ("end"); None: "start".
    period_anchor: str | None = None


class Source(Protocol):
    """A dataset adapter: reads files under `path` and maps them onto canonical tables."""

    name: ClassVar[str]

    def load(self, path: Path) -> SourceData: ...


def find_file(folder: Path, stem: str, *, what: str) -> Path:
    """`stem`.parquet or `stem`.csv inside `folder` (Parquet preferred), or a clear error."""
    from shelfcast.errors import InputFileError

    for suffix in (".parquet", ".csv", ".csv.gz"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    raise InputFileError(folder / f"{stem}.csv", f"{what} not found (looked for {stem}.parquet and {stem}.csv)")


def as_text_id(column: str, alias: str | None = None) -> pl.Expr:
    """An id column as text whatever its source type (integers keep no decimal point)."""
    return pl.col(column).cast(pl.String).str.strip_chars().alias(alias or column)


def flag_events(lf: pl.LazyFrame, flag: str, event: pl.Expr) -> tuple[pl.LazyFrame, pl.Expr]:
    """Rows of a true/false flag column that become calendar events, and their event expression.

    Rows whose flag is false or empty are left out (they are accounted for in
    the part that reads the whole file). A flag that is neither true nor false
    keeps its row with no event, so validation quarantines it as
    `missing_event` instead of dropping it.
    """
    text = pl.col(flag).cast(pl.String).str.strip_chars().str.to_lowercase()
    rows = lf.filter(text.is_not_null() & (text != "") & ~text.is_in(FALSE_WORDS))
    return rows, pl.when(text.is_in(TRUE_WORDS)).then(event).alias("event")
