"""Date format detection that never guesses between day-first and month-first."""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from shelfcast.errors import AmbiguousDateError, DataValidationError

_TIMES = ("", " %H:%M", " %H:%M:%S", "T%H:%M:%S", " %H:%M:%S%.f", "T%H:%M:%S%.f")
_ISO_DATES = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d")
_DAY_FIRST = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y", "%d-%m-%y", "%d.%m.%y")
_MONTH_FIRST = ("%m/%d/%Y", "%m-%d-%Y", "%m.%d.%Y", "%m/%d/%y", "%m-%d-%y", "%m.%d.%y")


@dataclass(frozen=True)
class DateFormat:
    """A candidate format and the family it belongs to (iso, day-first, month-first, compact)."""

    fmt: str
    family: str


def _candidates() -> list[DateFormat]:
    out = [DateFormat(d + t, "iso") for d in _ISO_DATES for t in _TIMES]
    out += [DateFormat(d + t, "day-first") for d in _DAY_FIRST for t in _TIMES[:3]]
    out += [DateFormat(d + t, "month-first") for d in _MONTH_FIRST for t in _TIMES[:3]]
    out.append(DateFormat("%Y%m%d", "compact"))
    return out


CANDIDATES: tuple[DateFormat, ...] = tuple(_candidates())


def parse_expr(expr: pl.Expr, fmt: str) -> pl.Expr:
    """Parse a string expression with `fmt` into a Date; unparseable values become null."""
    return expr.str.strip_chars().str.to_datetime(fmt, strict=False, exact=True).dt.date()


def _twin(fmt: str) -> str:
    """The same format with day and month swapped (day-first <-> month-first)."""
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def infer_date_format(values: Sequence[str | None] | pl.Series, *, column: str = "date") -> str:
    """The one format that parses every distinct value.

    Raises:
        AmbiguousDateError: a day-first and a month-first format both parse every
            value (for example 03/04/2024 with no day above 12).
        DataValidationError: no known format parses most values.
    """
    series = pl.Series("v", values, dtype=pl.String).str.strip_chars().drop_nulls()
    series = series.filter(series != "").unique().sort()
    if series.len() == 0:
        raise DataValidationError(f"column {column!r} has no dates to read")
    frame = series.to_frame()
    counts = frame.select(
        [parse_expr(pl.col("v"), c.fmt).is_not_null().sum().alias(str(i)) for i, c in enumerate(CANDIDATES)]
    ).row(0)
    best = max(counts)
    winners = [c for c, n in zip(CANDIDATES, counts, strict=True) if n == best and n > 0]
    examples = reprlib.repr(series.head(3).to_list())
    if not winners or best < series.len() / 2:
        raise DataValidationError(
            f"column {column!r}: could not recognise the date format of values like {examples}; "
            "pass the format explicitly, e.g. --date-format %d/%m/%Y"
        )
    families = {c.family for c in winners}
    if "day-first" in families and "month-first" in families:
        day = next(c.fmt for c in winners if c.family == "day-first")
        raise AmbiguousDateError(
            f"column {column!r}: dates like {examples} read as day-first ({day}) and as "
            f"month-first ({_twin(day)}); pass --date-format {day} or --date-format {_twin(day)}"
        )
    return winners[0].fmt
