"""Row-level validation: parse text into canonical types and flag the rows that break a rule.

Every row keeps flowing: each gets integer masks with one bit per rule it broke
(`_fail_*`, 0 = clean), and a failing row keeps its original values in
`__orig_*` columns. The quarantine turns the bits into rule names and details
with the offending values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from shelfcast.data.dates import infer_date_format, parse_expr
from shelfcast.data.readers import EXTRA_PREFIX, LINE
from shelfcast.schemas import QUARANTINE_SCHEMA, TableSchema, row_rule_exprs

FAIL = "_fail_"
_BITS = 63
PART = "_part"
ORIG = "__orig_"
BAD = "__bad_"
TRUE_WORDS = ("1", "true", "t", "yes", "y")
FALSE_WORDS = ("0", "false", "f", "no", "n")


@dataclass(frozen=True)
class DateBounds:
    """Dates accepted in a table: facts may not lie in the future."""

    min_date: dt.date
    max_date: dt.date
    max_fact_date: dt.date


def data_columns(schema: pl.Schema | dict[str, pl.DataType]) -> list[str]:
    return [c for c in schema if not c.startswith("_")]


def target_dtype(
    table: TableSchema, column: str, current: pl.DataType, declared: Mapping[str, pl.DataType] | None = None
) -> pl.DataType:
    """The canonical type of a column; extras are numeric for exogenous, as declared, or unchanged."""
    if column in table.column_names:
        return table.column(column).dtype
    if declared and column in declared:
        return declared[column]
    if table.extras == "numeric":
        return pl.Float64()
    return current


def detect_date_formats(lf: pl.LazyFrame, table: TableSchema, explicit: str | None) -> dict[str, str]:
    """Formats for the text date columns: the explicit one, else inferred from distinct values."""
    schema = lf.collect_schema()
    out: dict[str, str] = {}
    for col in table.columns:
        if col.dtype == pl.Date() and schema.get(col.name) == pl.String():
            if explicit is not None:
                out[col.name] = explicit
            else:
                values = lf.select(pl.col(col.name).unique()).collect(engine="streaming").to_series()
                if values.str.strip_chars().replace("", None).drop_nulls().len():
                    out[col.name] = infer_date_format(values, column=col.name)
    return out


def _bool_from_text(c: pl.Expr) -> pl.Expr:
    low = c.str.strip_chars().str.to_lowercase()
    return pl.when(low.is_in(TRUE_WORDS)).then(True).when(low.is_in(FALSE_WORDS)).then(False).otherwise(None)


def _parse(
    col: str, source: pl.DataType, target: pl.DataType, date_format: str | None
) -> tuple[pl.Expr, pl.Expr | None]:
    """(parsed value, expression true where a present value could not be parsed)."""
    c = pl.col(col)
    if source == target and source != pl.String():
        return c, None
    if source == pl.String():
        text = c.str.strip_chars()
        present = text.is_not_null() & (text != "")
        if target == pl.Date():
            parsed = parse_expr(text, date_format or "%Y-%m-%d")
        elif target == pl.Boolean():
            parsed = _bool_from_text(text)
        elif target == pl.Int8():
            as_bool = _bool_from_text(text).cast(pl.Int8)
            number = text.cast(pl.Float64, strict=False)
            whole = pl.when(number == number.round(0)).then(number).otherwise(None)
            parsed = pl.coalesce(as_bool, whole.cast(pl.Int8, strict=False))
        elif target == pl.String():
            parsed = pl.when(present).then(text).otherwise(None)
        else:
            parsed = text.cast(target, strict=False)
        return parsed, present & parsed.is_null()
    if target == pl.Date() and isinstance(source, pl.Datetime):
        return c.dt.date(), None
    if target == pl.String():
        return c.cast(pl.String).str.strip_chars(), None
    parsed = c.cast(target, strict=False)
    return parsed, c.is_not_null() & parsed.is_null()


def as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Any value as text, for messages (lists become `[a,b,...]`)."""
    if isinstance(dtype, pl.List):
        inner = expr.list.eval(pl.element().cast(pl.String)).list.join(",")
        return pl.concat_str([pl.lit("["), inner, pl.lit("]")])
    return expr.cast(pl.String)


def _describe(rule_detail: str, col: str | None) -> pl.Expr:
    """A failing row's detail; by then `__orig_<col>` holds the original value as text."""
    if col is None:
        return pl.lit(rule_detail)
    value = pl.col(f"{ORIG}{col}")
    return pl.concat_str([pl.lit(f"{rule_detail} (got "), value.fill_null("empty"), pl.lit(")")])


@dataclass(frozen=True)
class Check:
    """A row rule as flagged: its name and how to describe a failing row (evaluated on those rows only)."""

    name: str
    detail: pl.Expr


@dataclass(frozen=True)
class Flagged:
    """Parsed rows with one bit per failed check in `_fail_<n>` masks (0 = clean row)."""

    frame: pl.LazyFrame
    checks: tuple[Check, ...]

    @property
    def masks(self) -> list[str]:
        return [f"{FAIL}{i}" for i in range(0, max(len(self.checks), 1), _BITS)]

    def failed(self) -> pl.Expr:
        return pl.any_horizontal([pl.col(m) != 0 for m in self.masks])

    def bit(self, index: int) -> pl.Expr:
        mask = pl.col(f"{FAIL}{index - index % _BITS}")
        return (mask & (1 << (index % _BITS))) != 0


# A check before it gets its bit: name, failing-row test, detail of a failing row.
_Pending = tuple[str, pl.Expr, pl.Expr]


def _with_scope_columns(lf: pl.LazyFrame, table: TableSchema) -> pl.LazyFrame:
    """Add the scope columns (required but nullable, e.g. a calendar's store_id) a source left out, as null.

    They are always present in a canonical table; a source without them means "all".
    """
    present = lf.collect_schema()
    missing = [c for c in table.columns if c.required and c.nullable and c.name not in present]
    return lf.with_columns([pl.lit(None, c.dtype).alias(c.name) for c in missing])


def _parse_columns(
    lf: pl.LazyFrame, schema: pl.Schema, *, targets: dict[str, pl.DataType], date_formats: dict[str, str]
) -> tuple[pl.LazyFrame, dict[str, pl.Expr]]:
    """Keep each column's original in `__orig_<col>` and parse it into its target type.

    Returns the frame and, per column that can fail to parse, the `__bad_<col>` flag of its failures.
    """
    lf = lf.with_columns([pl.col(c).alias(f"{ORIG}{c}") for c in targets])
    parsed: list[pl.Expr] = []
    unparsed: dict[str, pl.Expr] = {}
    for col, target in targets.items():
        expr, failed = _parse(col, schema[col], target, date_formats.get(col))
        parsed.append(expr.alias(col))
        if failed is not None:
            parsed.append(failed.alias(f"{BAD}{col}"))
            unparsed[col] = pl.col(f"{BAD}{col}")
    return lf.with_columns(parsed), unparsed


def _invalid_checks(unparsed: dict[str, pl.Expr], targets: dict[str, pl.DataType]) -> list[_Pending]:
    """A value present but not parseable as its column's type."""
    checks: list[_Pending] = []
    for col, failed in unparsed.items():
        target = targets[col]
        kind = "date" if target == pl.Date() else "number" if target.is_numeric() else str(target).lower()
        checks.append((f"invalid_{col}", failed, _describe(f"{col} is not a valid {kind}", col)))
    return checks


def _too_many_fields_checks(extras: list[str]) -> list[_Pending]:
    """A row with more fields than the header (the reader put the surplus in `__extra_*` columns)."""
    if not extras:
        return []
    too_many = pl.any_horizontal([pl.col(c).is_not_null() for c in extras])
    fields = pl.concat_str([pl.col(c) for c in extras], separator=",", ignore_nulls=True)
    detail = pl.concat_str([pl.lit("row has more fields than the header (extra: "), fields, pl.lit(")")])
    return [("too_many_fields", too_many, detail)]


def _row_rule_checks(table: TableSchema, cols: list[str], unparsed: dict[str, pl.Expr]) -> list[_Pending]:
    """The table's row rules on the parsed values."""
    checks: list[_Pending] = []
    for rule in row_rule_exprs(table, cols):
        failing = rule.failing.fill_null(False)
        if rule.column in unparsed:
            # A value that could not be parsed is reported as invalid, not also as missing.
            failing = failing & ~unparsed[rule.column]
        shown = None if rule.name.startswith("missing_") else rule.column
        checks.append((rule.name, failing, _describe(rule.detail, shown)))
    return checks


def _date_range_checks(table: TableSchema, cols: list[str], bounds: DateBounds) -> list[_Pending]:
    """A date outside the accepted range (facts may not lie in the future)."""
    if not (table.has_date and "date" in cols):
        return []
    latest = bounds.max_fact_date if table.is_fact else bounds.max_date
    out_of_range = ((pl.col("date") < bounds.min_date) | (pl.col("date") > latest)).fill_null(False)
    return [("date_out_of_range", out_of_range, _describe(f"date outside {bounds.min_date}..{latest}", "date"))]


def _masks(checks: list[_Pending]) -> list[pl.Expr]:
    """The `_fail_<n>` masks: bit i of mask n is set when check n + i failed (0 for a clean row)."""
    masks = []
    for start in range(0, max(len(checks), 1), _BITS):
        group = checks[start : start + _BITS]
        bits = [f.cast(pl.UInt64) * (1 << i) for i, (_, f, _) in enumerate(group)] or [pl.lit(0, pl.UInt64)]
        masks.append(pl.sum_horizontal(bits).cast(pl.UInt64).alias(f"{FAIL}{start}"))
    return masks


def flag_rows(
    lf: pl.LazyFrame,
    table: TableSchema,
    *,
    date_formats: dict[str, str],
    bounds: DateBounds,
    dtypes: Mapping[str, pl.DataType] | None = None,
) -> Flagged:
    """Parse every column into its canonical type and flag the rules each row breaks.

    Only integer masks are computed for every row; rule names and details are
    built later for the failing rows alone, which keeps the pass over a large
    file cheap.
    """
    lf = _with_scope_columns(lf, table)
    schema = lf.collect_schema()
    cols = data_columns(schema)
    extras = [c for c in schema if c.startswith(EXTRA_PREFIX)]
    targets = {col: target_dtype(table, col, schema[col], dtypes) for col in cols}
    lf, unparsed = _parse_columns(lf, schema, targets=targets, date_formats=date_formats)
    checks = [
        *_invalid_checks(unparsed, targets),
        *_too_many_fields_checks(extras),
        *_row_rule_checks(table, cols, unparsed),
        *_date_range_checks(table, cols, bounds),
    ]
    flagged = Flagged(lf.with_columns(_masks(checks)), tuple(Check(name, detail) for name, _, detail in checks))
    failed_row = flagged.failed()
    # Original text is kept only where a row failed, for the quarantine's `raw`.
    lf = flagged.frame.drop(*[f"{BAD}{c}" for c in unparsed]).with_columns(
        *[pl.when(failed_row).then(as_text(pl.col(f"{ORIG}{c}"), schema[c])).alias(f"{ORIG}{c}") for c in cols],
        *[pl.when(failed_row).then(pl.col(c)).alias(c) for c in extras],
    )
    return Flagged(lf, flagged.checks)


def clean_rows(flagged: Flagged) -> pl.LazyFrame:
    """The rows that passed, without the bookkeeping columns (but with `_line`)."""
    drop = set(flagged.masks)
    keep = [c for c in flagged.frame.collect_schema() if not c.startswith((ORIG, EXTRA_PREFIX)) and c not in drop]
    return flagged.frame.filter(~flagged.failed()).select(keep)


def quarantine_rows(flagged: Flagged, table: str, source: str) -> pl.LazyFrame:
    """Failing rows in the quarantine shape: rules, details and original values as JSON."""
    origs = [c for c in flagged.frame.collect_schema() if c.startswith(ORIG)]
    raw = pl.struct([pl.col(c).alias(c.removeprefix(ORIG)) for c in origs]).struct.json_encode()
    hits = [(flagged.bit(i), check) for i, check in enumerate(flagged.checks)]
    rule = pl.concat_str([pl.when(b).then(pl.lit(c.name)) for b, c in hits], separator=";", ignore_nulls=True)
    detail = pl.concat_str([pl.when(b).then(c.detail) for b, c in hits], separator="; ", ignore_nulls=True)
    return flagged.frame.filter(flagged.failed()).select(
        pl.lit(source).alias("source"),
        pl.col(LINE).cast(pl.Int64).alias("line"),
        pl.lit(table).alias("table"),
        (rule if hits else pl.lit("")).alias("rule"),
        (detail if hits else pl.lit("")).alias("detail"),
        raw.alias("raw"),
    )


def quarantine_from_clean(
    rows: pl.DataFrame, table: str, rule: str, detail: pl.Expr, *, sources: Mapping[int, str]
) -> pl.DataFrame:
    """Quarantine rows that passed the row rules but fail a table-level rule (keys, references).

    Rows carry only their part index (`_part`); `sources` names the file of each part.
    """
    cols = data_columns(rows.schema)
    if rows.is_empty():
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    raw = pl.struct([as_text(pl.col(c), rows.schema[c]) for c in cols])
    return rows.select(
        pl.col(PART).replace_strict(dict(sources), return_dtype=pl.String).alias("source"),
        pl.col(LINE).cast(pl.Int64).alias("line"),
        pl.lit(table).alias("table"),
        pl.lit(rule).alias("rule"),
        detail.cast(pl.String).alias("detail"),
        raw.struct.json_encode().alias("raw"),
    )
