"""One date format per file of a multi-file source, settled across the files.

Validation infers each part's format on its own, so a file whose days are all
12 or less is ambiguous even when another file of the same export shows it is
day-first. A stock snapshot usually has a single date, so this happens often;
here an ambiguous column takes the day-first or month-first family that the
other columns agree on.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from shelfcast.data.dates import CANDIDATES, infer_date_format, parse_expr
from shelfcast.errors import AmbiguousDateError, DataValidationError

# A time of day after the date ("2024-12-31 18:00", "31/12/2024T18:00:00"):
# dropped so that one date format serves every file.
_TIME_PART = r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"
_FAMILIES = {c.fmt: c.family for c in CANDIDATES}
_SWAPPABLE = frozenset({"day-first", "month-first"})
DEFAULT_FORMAT = "%Y-%m-%d"


def date_text(frame: pl.LazyFrame, column: str) -> pl.Expr:
    """A text date column without its time of day; typed columns are left to validation."""
    if frame.collect_schema()[column] != pl.String():
        return pl.col(column)
    return pl.col(column).str.strip_chars().str.replace(_TIME_PART, "")


def distinct_dates(frame: pl.LazyFrame, column: str) -> pl.Series | None:
    """The distinct non-empty date texts of a column; None when the column is not text."""
    if frame.collect_schema()[column] != pl.String():
        return None
    values = frame.select(date_text(frame, column).unique().alias("v")).collect(engine="streaming").to_series()
    return values.filter(values.is_not_null() & (values != ""))


def _in_family(values: pl.Series, family: str) -> str | None:
    """The first format of `family` that parses every value."""
    frame = values.to_frame("v")
    for cand in CANDIDATES:
        if cand.family == family and frame.select(parse_expr(pl.col("v"), cand.fmt).is_not_null().all()).item():
            return cand.fmt
    return None


def resolve_date_formats(values: Mapping[str, pl.Series], *, optional: frozenset[str] = frozenset()) -> dict[str, str]:
    """A format for each labelled column of distinct date texts.

    A column with no dates gets the format of the others (any format reads an
    empty file). Raises what `infer_date_format` raises, except that an
    ambiguous column is settled when the unambiguous ones are all day-first or
    all month-first, and that an `optional` column (an attribute, not a fact)
    never fails the ingest: it falls back to the others' format.
    """
    found: dict[str, str] = {}
    ambiguous: dict[str, AmbiguousDateError] = {}
    for label, series in values.items():
        if series.len() == 0:
            continue
        try:
            found[label] = infer_date_format(series, column=label)
        except AmbiguousDateError as exc:
            ambiguous[label] = exc
        except DataValidationError:
            if label not in optional:
                raise
    families = {_FAMILIES[f] for f in found.values()} & _SWAPPABLE
    for label, error in ambiguous.items():
        fmt = _in_family(values[label], next(iter(families))) if len(families) == 1 else None
        if fmt is not None:
            found[label] = fmt
        elif label not in optional:
            raise error
    fallback = next(iter(found.values()), DEFAULT_FORMAT)
    return {label: found.get(label, fallback) for label in values}


__all__ = ["DEFAULT_FORMAT", "date_text", "distinct_dates", "resolve_date_formats"]
