"""Open CSV and Parquet files lazily, with the file-level checks done up front.

A file that cannot be used at all raises `InputFileError` naming the file and
the problem. Everything else (bad values in a row) is left for validation, so
no row is lost here: CSV columns are read as text, rows with too many fields
keep their extra values in `__extra_*` columns, and every row carries `_line`
(its line in the file, header = 1; for Parquet, its 1-based row number).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from shelfcast.errors import InputFileError
from shelfcast.schemas import TableSchema

LINE = "_line"
EXTRA_PREFIX = "__extra_"
_MAX_EXTRA_FIELDS = 8
_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024
_CHECK_CHUNK = 4 * 1024 * 1024
_PARQUET_MAGIC = b"PAR1"


def _head(path: Path, size: int = _SNIFF_BYTES) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a folder, expected a file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty")


def is_parquet(path: Path) -> bool:
    """True when the file starts with the Parquet magic bytes, whatever its name."""
    return _head(path, 4) == _PARQUET_MAGIC


def check_utf8(path: Path) -> None:
    """Fail with the line of the first byte that is not UTF-8 (streamed, constant memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHECK_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = chunk[exc.start]
                line += chunk.count(b"\n", 0, exc.start)
                raise InputFileError(
                    path,
                    f"not UTF-8 text: byte 0x{bad:02x} at line {line} (offset {offset + exc.start}); "
                    "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                ) from None
            line += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputFileError(path, "not UTF-8 text: the file ends inside a character") from None


def _header_line(path: Path) -> str:
    raw = _head(path)
    if b"\x00" in raw:
        raise InputFileError(path, "not a text file (it contains NUL bytes); expected CSV or Parquet")
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        raise InputFileError(path, "no header row (the first line is blank)")
    return first


def sniff_delimiter(header: str) -> str:
    """The delimiter that splits the header into the most fields (comma on ties)."""
    counts = {d: len(next(csv.reader([header], delimiter=d))) for d in _DELIMITERS}
    return max(_DELIMITERS, key=lambda d: (counts[d], d == ","))


def csv_columns(path: Path, delimiter: str) -> list[str]:
    header = _header_line(path)
    return [c.strip() for c in next(csv.reader([header.lstrip("\ufeff")], delimiter=delimiter))]


def require_columns(path: Path, found: Sequence[str], required: Sequence[str], *, delimiter: str | None = None) -> None:
    """A one-line error for missing columns, with a hint when the delimiter looks wrong."""
    missing = [c for c in required if c not in found]
    if not missing:
        return
    hint = ""
    if delimiter is not None and len(found) == 1:
        others = [d for d in _DELIMITERS if d != delimiter and d in found[0]]
        if others:
            hint = f" (the header has one field; is the delimiter {others[0]!r}? pass --delimiter)"
    shown = ", ".join(found[:20]) + (", ..." if len(found) > 20 else "")
    raise InputFileError(path, f"missing required column(s) {', '.join(missing)}; found: {shown}{hint}")


def scan_table(
    path: Path,
    *,
    required: Sequence[str] = (),
    delimiter: str | None = None,
) -> pl.LazyFrame:
    """A lazy frame over a CSV (all text) or Parquet file, with `_line`, after file checks."""
    path = Path(path)
    _check_file(path)
    if is_parquet(path):
        return _scan_parquet(path, required)
    if path.suffix.lower() == ".parquet":
        raise InputFileError(path, "not a Parquet file (missing the PAR1 magic bytes)")
    return _scan_csv(path, required, delimiter)


def _scan_parquet(path: Path, required: Sequence[str]) -> pl.LazyFrame:
    try:
        lf = pl.scan_parquet(path)
        schema = lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputFileError(path, f"cannot read Parquet: {str(exc).splitlines()[0]}") from None
    require_columns(path, list(schema), required)
    if lf.select(pl.len()).collect().item() == 0:
        raise InputFileError(path, "no data rows")
    return lf.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))


def _scan_csv(path: Path, required: Sequence[str], delimiter: str | None) -> pl.LazyFrame:
    header = _header_line(path)
    sep = delimiter or sniff_delimiter(header)
    if len(sep) != 1:
        raise InputFileError(path, f"`delimiter` must be a single character, got {sep!r}")
    columns = csv_columns(path, sep)
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise InputFileError(path, f"duplicate column name(s) in the header: {', '.join(dupes)}")
    require_columns(path, columns, required, delimiter=sep)
    head = _head(path).decode("utf-8", errors="replace").lstrip("\ufeff")
    if not "".join(head.splitlines()[1:]).strip():
        raise InputFileError(path, "no data rows (only a header)")
    check_utf8(path)
    # Extra slots catch rows with more fields than the header instead of
    # silently truncating them; validation quarantines such rows.
    schema = {c: pl.String() for c in columns}
    schema |= {f"{EXTRA_PREFIX}{i}": pl.String() for i in range(_MAX_EXTRA_FIELDS)}
    lf = pl.scan_csv(
        path,
        separator=sep,
        has_header=False,
        skip_rows=1,
        schema=schema,
        truncate_ragged_lines=True,
        raise_if_empty=False,
        missing_columns="insert",
    )
    return lf.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))


def _kind(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.List | pl.Array):
        return "lists"
    if isinstance(dtype, pl.Struct):
        return "structs"
    if dtype.is_integer():
        return "whole numbers"
    if dtype.is_numeric():
        return "decimal numbers"
    kinds = {pl.Date: "dates", pl.Datetime: "timestamps", pl.Duration: "durations", pl.Time: "times of day"}
    return kinds.get(dtype.base_type(), "values")


def _fits(source: pl.DataType, target: pl.DataType | None) -> bool:
    """Whether validation turns a typed column into `target` (None: any single value) value by value, rather than
    making up numbers."""
    if source in (pl.String(), pl.Null(), target) or isinstance(source, pl.Categorical | pl.Enum):
        return True
    if target is None:
        return not (source.is_nested() or source in (pl.Binary(), pl.Object()))
    if isinstance(target, pl.List):
        return isinstance(source, pl.List | pl.Array)
    if source.is_nested() or source in (pl.Binary(), pl.Object()):
        return False
    if target.is_numeric():
        return source.is_numeric() or source == pl.Boolean()
    if target == pl.Date():
        return source == pl.Date() or isinstance(source, pl.Datetime)
    if target == pl.Boolean():
        return source == pl.Boolean() or source.is_integer()
    # Text (ids, names): anything but spans and times of day, which would become numbers of microseconds.
    return not isinstance(source, pl.Duration) and source != pl.Time()


def _wanted(target: pl.DataType | None) -> str:
    if target is None:
        return "one value per cell"
    if isinstance(target, pl.List):
        return "a list"
    if target.is_numeric():
        return "numbers"
    return {pl.Date(): "dates", pl.Boolean(): "true/false flags"}.get(target, "text")


def check_types(path: Path, lf: pl.LazyFrame, targets: Mapping[str, tuple[str, pl.DataType | None]]) -> pl.LazyFrame:
    """`lf` with its typed (Parquet) columns checked against what they become: file column -> (canonical name,
    type; None for any single value), see `canonical_targets`.

    A column whose type cannot become its canonical one (a date or duration as units, a list or struct anywhere)
    is an `InputFileError` naming the column and its type; a Parquet file's types are the file's, not a row's, so
    quarantining its rows one by one would only hide the mistake. Decimal numbers as ids are refused too, and
    whole ones become integer text ("1", not "1.0"), as a CSV file would give them.
    """
    schema = lf.collect_schema()
    fixes: list[pl.Expr] = []
    for column, (name, target) in targets.items():
        source = schema.get(column)
        if source is None:
            continue
        what = f"column {column!r}" + ("" if name == column else f" (mapped to {name})")
        if not _fits(source, target):
            needs = "shelfcast needs" if name == column else f"{name} needs"
            raise InputFileError(
                path,
                f"{what} holds {_kind(source)} ({source}), but {needs} {_wanted(target)}; "
                "convert it in the file or map another column",
            )
        if isinstance(source, pl.Categorical | pl.Enum):
            fixes.append(pl.col(column).cast(pl.String))
        elif source.is_float() and target == pl.String():
            c = pl.col(column)
            fractional = lf.filter(c.is_not_null() & ((c != c.round(0)) | c.is_nan() | (c.abs() >= 2.0**53)))
            bad = fractional.select(*([LINE] if LINE in schema else []), column).head(1).collect()
            if bad.height:
                where = f" at row {bad[LINE][0]}" if LINE in bad.columns else ""
                raise InputFileError(
                    path,
                    f"{what} holds decimal numbers ({source}, e.g. {bad[column][0]}{where}), but {name} is an id; "
                    "store ids as text or whole numbers",
                )
            fixes.append(c.cast(pl.Int64).cast(pl.String))
    return lf.with_columns(fixes) if fixes else lf


def canonical_targets(table: TableSchema, columns: Mapping[str, str]) -> dict[str, tuple[str, pl.DataType | None]]:
    """What each file column becomes, for `check_types`: `columns` maps canonical names to file columns; columns the
    table does not declare are numbers (exogenous) or any single value (attributes)."""
    targets: dict[str, tuple[str, pl.DataType | None]] = {}
    for name, column in columns.items():
        if name in table.column_names:
            targets[column] = (name, table.column(name).dtype)
        else:
            targets[column] = (name, pl.Float64() if table.extras == "numeric" else None)
    return targets


def extra_field_columns(lf: pl.LazyFrame) -> list[str]:
    return [c for c in lf.collect_schema() if c.startswith(EXTRA_PREFIX)]
