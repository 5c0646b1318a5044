"""Any CSV/Parquet file, mapped onto a canonical table by a column mapping.

The mapping comes from the command line (`--map units=Sales --const item_id=all`)
or a TOML file:

    table = "sales"
    date_format = "%d/%m/%Y"       # optional; detected otherwise
    [columns]                      # canonical name = column in the file
    date = "Date"
    store_id = "Store"
    units = "Sales"
    [constants]                    # canonical name = value for every row
    item_id = "all"
    [exogenous]                    # extra numeric column = past_only | known_in_advance
    Temperature = "past_only"
    [calendar]                     # flag column = event name (rows where the flag is true)
    IsHoliday = "holiday"
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from shelfcast.data.readers import EXTRA_PREFIX, LINE, canonical_targets, check_types, scan_table
from shelfcast.data.sources.base import RawPart, SourceData, flag_events
from shelfcast.errors import ConfigError, first_problem
from shelfcast.schemas import TABLE_NAMES, ExogenousRole, TableName, get_schema


class ColumnMapping(BaseModel):
    """How one file maps onto a canonical table (and, optionally, exogenous and calendar tables)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: TableName = "sales"
    columns: dict[str, str]
    constants: dict[str, str] = {}
    exogenous: dict[str, ExogenousRole] = {}
    exogenous_per_item: bool = False
    calendar: dict[str, str] = {}
    date_format: str | None = None

    @field_validator("table", mode="before")
    @classmethod
    def _known_table(cls, value: object) -> object:
        if value not in TABLE_NAMES:
            raise ValueError(f"`table` must be one of {', '.join(TABLE_NAMES)}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _covers_table(self) -> ColumnMapping:
        schema = get_schema(self.table)
        targets = [*self.columns, *self.constants]
        if schema.extras == "none":
            unknown = [t for t in targets if t not in schema.column_names]
            if unknown:
                raise ValueError(
                    f"{', '.join(map(repr, unknown))} is not a column of table {self.table}; "
                    f"expected one of {', '.join(schema.column_names)}"
                )
        both = set(self.columns) & set(self.constants)
        if both:
            raise ValueError(f"{', '.join(sorted(both))} given both as a column and as a constant")
        missing = [c for c in schema.required if c not in targets and not schema.column(c).nullable]
        if missing:
            raise ValueError(
                f"table {self.table} needs {', '.join(missing)}: map a column (--map {missing[0]}=COLUMN) "
                f"or give a constant (--const {missing[0]}=VALUE)"
            )
        for group in schema.one_of:
            if not any(c in targets for c in group):
                raise ValueError(f"table {self.table} needs one of {' or '.join(group)}")
        if (self.exogenous or self.calendar) and "date" not in self.columns:
            raise ValueError("exogenous and calendar columns need a mapped `date` column")
        return self

    def source_columns(self) -> list[str]:
        return [*self.columns.values(), *self.exogenous, *self.calendar]


def parse_pairs(pairs: Sequence[str], *, option: str) -> dict[str, str]:
    """`["a=b", "c=d"]` -> `{"a": "b", "c": "d"}`, naming the option on a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"`{option}` expects NAME=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


LAYOUT = (
    'expected: table = "sales" (optional), date_format = "%d/%m/%Y" (optional), [columns] with canonical name = '
    'column in the file (date = "Day", store_id = "Store", item_id = "Item", units = "Sales"), and optionally '
    "[constants], [exogenous] and [calendar]"
)


def _check_layout(path: Path, data: dict[str, Any]) -> None:
    """A mapping file's unknown keys and sections, named with the layout expected (not "no column mapping")."""
    unknown = [key for key in data if key not in ColumnMapping.model_fields]
    if unknown:
        shown = ", ".join(f"section [{key}]" if isinstance(data[key], dict) else f"key `{key}`" for key in unknown)
        raise ConfigError(f"mapping file {path}: unknown {shown}; {LAYOUT}")


def load_mapping(path: Path | None = None, **overrides: Any) -> ColumnMapping:
    """A mapping from a TOML file, updated with command-line values; errors are one line."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read mapping file {path}: {exc}") from None
        _check_layout(path, data)
    for key, value in overrides.items():
        if value in (None, {}):
            continue
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    if not data.get("columns"):
        if path is not None:
            raise ConfigError(f"mapping file {path} has no [columns] section and no --map was given; {LAYOUT}")
        raise ConfigError("the generic source needs a column mapping: --map date=COLUMN ... or --mapping FILE.toml")
    try:
        return ColumnMapping.model_validate(data)
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ConfigError(f"mapping{' ' + where if where else ''}: {message}") from None


class GenericSource:
    """One file and a `ColumnMapping`."""

    name: ClassVar[str] = "generic"

    def __init__(
        self, *, mapping: ColumnMapping | None = None, date_format: str | None = None, delimiter: str | None = None
    ) -> None:
        if mapping is None:
            raise ConfigError("the generic source needs a column mapping: --map date=COLUMN ... or --mapping FILE.toml")
        self.mapping = mapping
        self.date_format = date_format or mapping.date_format
        self.delimiter = delimiter

    def load(self, path: Path) -> SourceData:
        m = self.mapping
        raw = scan_table(path, required=m.source_columns(), delimiter=self.delimiter)
        targets = canonical_targets(get_schema(m.table), m.columns)
        targets |= {column: (column, pl.Float64()) for column in m.exogenous}
        targets |= {flag: (flag, pl.Boolean()) for flag in m.calendar}
        raw = check_types(path, raw, targets)
        extras = pl.selectors.starts_with(EXTRA_PREFIX)
        main = raw.select(
            pl.col(LINE),
            *[pl.col(src).alias(dst) for dst, src in m.columns.items()],
            *[pl.lit(value).alias(dst) for dst, value in m.constants.items()],
            extras,
        )
        parts = [RawPart(m.table, str(path), main, date_format=self.date_format)]
        scope = [pl.col(m.columns["store_id"]).alias("store_id")] if "store_id" in m.columns else []
        if m.exogenous:
            per_item = m.exogenous_per_item and "item_id" in m.columns
            item = [pl.col(m.columns["item_id"]).alias("item_id")] if per_item else []
            exo = raw.select(pl.col(LINE), pl.col(m.columns["date"]).alias("date"), *scope, *item, *m.exogenous)
            parts.append(RawPart("exogenous", str(path), exo, date_format=self.date_format))
        for flag, event in m.calendar.items():
            flagged, event_expr = flag_events(raw, flag, pl.lit(event))
            cal = flagged.select(
                pl.col(LINE),
                pl.col(m.columns["date"]).alias("date"),
                event_expr,
                *(s.cast(pl.String) for s in scope),
                pl.lit("holiday").alias("kind"),
            )
            parts.append(RawPart("calendar", f"{path}#{flag}", cal, date_format=self.date_format))
        return SourceData(parts=parts, exogenous_roles=dict(m.exogenous))
