"""A folder of files already in the canonical shape: `<table>.parquet` or `<table>.csv`.

This is what `shelfcast simulate` writes; it is also the simplest way in for a
team that can export the canonical tables themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, cast

from shelfcast.data.readers import EXTRA_PREFIX, LINE, canonical_targets, check_types, scan_table
from shelfcast.data.sources.base import RawPart, SourceData
from shelfcast.errors import ConfigError, InputFileError
from shelfcast.schemas import TABLE_NAMES, ExogenousRole, get_schema

ROLES_FILE = "exogenous_roles.json"
_ROLES = ("past_only", "known_in_advance")


def read_roles(path: Path) -> dict[str, ExogenousRole]:
    """`{column: role}` from a JSON file, with a clear error for anything else."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"cannot read exogenous roles: {exc}") from None
    if not isinstance(data, dict) or any(v not in _ROLES for v in data.values()):
        raise InputFileError(path, f"expected {{column: {' | '.join(_ROLES)}}}, got {data!r:.200}")
    return cast(dict[str, ExogenousRole], data)


class CanonicalSource:
    """Reads every canonical table found in a folder."""

    name: ClassVar[str] = "canonical"

    def __init__(self, *, date_format: str | None = None, delimiter: str | None = None) -> None:
        self.date_format = date_format
        self.delimiter = delimiter

    def load(self, path: Path) -> SourceData:
        if not path.is_dir():
            raise ConfigError(f"`--source canonical` expects a folder of <table>.parquet/.csv files, got {path}")
        parts: list[RawPart] = []
        for table in TABLE_NAMES:
            file = next((path / f"{table}{s}" for s in (".parquet", ".csv") if (path / f"{table}{s}").exists()), None)
            if file is None:
                continue
            schema = get_schema(table)
            lf = scan_table(file, required=schema.must_have, delimiter=self.delimiter)
            unexpected = [c for c in lf.collect_schema() if not c.startswith("_") and c not in schema.column_names]
            if schema.extras == "none" and unexpected:
                raise InputFileError(file, f"unexpected column(s) {', '.join(unexpected)} for table {table}")
            columns = [
                c for c in lf.collect_schema() if c == LINE or not c.startswith("_") or c.startswith(EXTRA_PREFIX)
            ]
            lf = check_types(file, lf.select(columns), canonical_targets(schema, {c: c for c in columns if c != LINE}))
            parts.append(RawPart(table, str(file), lf, date_format=self.date_format))
        if not parts:
            raise InputFileError(
                path, f"no canonical tables found (expected files named {', '.join(TABLE_NAMES)} .parquet/.csv)"
            )
        roles_path = path / ROLES_FILE
        roles = read_roles(roles_path) if roles_path.exists() else {}
        return SourceData(parts=parts, exogenous_roles=roles)


__all__ = ["CanonicalSource", "read_roles"]
