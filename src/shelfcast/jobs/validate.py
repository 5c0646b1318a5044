"""Re-check the lake as a whole: structure, row rules, keys, references and gaps.

Ingest already enforces all of this; this job proves it on what is stored
(after manual edits, partial copies or an older version of shelfcast), and
compares the files with the manifest (rows, content hashes, files it does not
know or misses) and shows an ingest that was interrupted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.data.tables import STORE_COLUMNS, GapReport, series_gaps
from shelfcast.errors import LakeError, WorkspaceError
from shelfcast.io.lake import Lake
from shelfcast.io.lake_check import verify, writing_problem
from shelfcast.io.workspace_lock import holder
from shelfcast.schemas import SCHEMAS, row_rule_exprs, structural_problems


@dataclass(frozen=True)
class TableCheck:
    """Problems found in one stored table (empty lists mean it is sound)."""

    table: str
    rows: int
    problems: list[str] = field(default_factory=list)
    gaps: GapReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ValidationReport:
    checks: list[TableCheck]
    quarantine_rows: int
    lake_problems: list[str] = field(default_factory=list)  # files vs manifest, an interrupted ingest

    @property
    def ok(self) -> bool:
        return not self.lake_problems and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The figures of the check (`validate --json`): rows kept and quarantined, problems, per table."""
        tables: dict[str, dict[str, Any]] = {}
        for check in self.checks:
            entry: dict[str, Any] = {"rows": check.rows, "problems": len(check.problems)}
            if check.gaps is not None:
                entry["series_with_gaps"] = check.gaps.series_with_gaps
                entry["missing_periods"] = check.gaps.missing_periods
            tables[check.table] = entry
        return {
            "ok": self.ok,
            "rows": sum(c.rows for c in self.checks),
            "quarantined": self.quarantine_rows,
            "problems": sum(len(c.problems) for c in self.checks) + len(self.lake_problems),
            "tables": tables,
        }


def _problems(frame: pl.DataFrame, table: str, ids: dict[str, pl.Series | None]) -> Counter[str]:
    """Counts of broken rules in one stored file (a month, or a whole master table)."""
    schema = SCHEMAS[table]  # type: ignore[index]
    found: Counter[str] = Counter()
    for problem in structural_problems(schema, frame.schema):
        found[problem] += 1
    if found:
        return found
    for rule in row_rule_exprs(schema, frame.columns):
        failing = frame.select(rule.failing.fill_null(False).sum()).item()
        if failing:
            found[f"row(s) break {rule.name} ({rule.detail})"] += failing
    duplicated = frame.select(pl.struct(list(schema.keys)).is_duplicated().sum()).item()
    if duplicated:
        found[f"row(s) share a key ({', '.join(schema.keys)})"] += duplicated
    for col, master in [*((c, "stores") for c in STORE_COLUMNS), ("item_id", "items")]:
        known = ids[master]
        if known is None or col not in frame.columns or table == master:
            continue
        unknown = frame.filter(pl.col(col).is_not_null() & ~pl.col(col).is_in(known.implode())).height
        if unknown:
            found[f"row(s) with {col} not in {master}"] += unknown
    return found


def _read(file: Path) -> pl.DataFrame | str:
    try:
        return pl.read_parquet(file)
    except (OSError, pl.exceptions.PolarsError) as exc:
        return f"{file.name} cannot be read ({str(exc).strip().splitlines()[0][:160]})"


def _check(lake: Lake, table: str, ids: dict[str, pl.Series | None], manifest: dict[str, Any]) -> TableCheck:
    found: Counter[str] = Counter()
    rows = 0
    unreadable = []
    # One stored file at a time: keys hold the date, so a key never spans two months.
    for file in lake.files(table):
        frame = _read(file)
        if isinstance(frame, str):
            unreadable.append(frame)
            continue
        rows += frame.height
        found.update(_problems(frame, table, ids))
    problems = [f"{n} {p}" if p.startswith(("row", "row(s)")) else p for p, n in found.items()]
    if unreadable:  # the rest of the table is still checked; gaps need every file
        return TableCheck(table, rows, [*unreadable, *problems])
    freq = (manifest["tables"].get(table) or {}).get("frequency") or "D"
    gaps = series_gaps(lake.scan(table), freq) if table in ("sales", "inventory") else None
    return TableCheck(table, rows, problems, gaps)


def _ids(lake: Lake, master: str, column: str) -> pl.Series | None:
    if not lake.has(master):
        return None
    frame = _read(lake.path(master))
    return None if isinstance(frame, str) else frame[column]


def run_validate(lake: Lake) -> ValidationReport:
    """Check every stored table, and the files against the manifest; raises when the workspace holds no tables.

    A damaged manifest raises LakeError (one line); an interrupted ingest and files that disagree with the
    manifest are `lake_problems`.
    """
    busy = holder(lake.workspace)
    if busy is not None:  # its files are changing: checking them now would only find that
        raise LakeError(f"{busy.line('an ingest')}; validate when it has finished")
    tables = lake.tables()
    manifest = lake.manifest()
    marker = writing_problem(lake)
    if not tables and not marker:
        raise WorkspaceError(f"no tables in {lake.root}; run `shelfcast ingest` (or `shelfcast demo`) first")
    lake_problems = verify(lake, deep=True)
    ids: dict[str, pl.Series | None] = {
        "stores": _ids(lake, "stores", "store_id"),
        "items": _ids(lake, "items", "item_id"),
    }
    checks = [_check(lake, t, ids, manifest) for t in tables]
    quarantine = 0
    if lake.has("quarantine"):
        counted = _read(lake.path("quarantine"))
        quarantine = counted.height if isinstance(counted, pl.DataFrame) else 0
    return ValidationReport(checks, quarantine, lake_problems)
