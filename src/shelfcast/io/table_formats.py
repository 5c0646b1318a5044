"""The formats shelfcast writes its tables in (`--format`): Parquet always, Delta tables too on request.

A module of its own, free of deltalake and Polars, so the commands that
take `--format` check it without paying for those imports (see `io.delta_tables`).
"""

from __future__ import annotations

from typing import Literal, get_args

from shelfcast.errors import ConfigError

TableFormat = Literal["parquet", "delta"]
FORMATS: tuple[str, ...] = get_args(TableFormat)


def parse_format(value: str) -> TableFormat:
    """`value` as a table format; a one-line error listing the choices otherwise."""
    if value not in FORMATS:
        raise ConfigError(f"`--format` takes {' or '.join(FORMATS)}, got {value!r}")
    return value  # type: ignore[return-value]
