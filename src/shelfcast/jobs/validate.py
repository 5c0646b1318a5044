"""Re-check the lake as a whole: structure, row rules, keys, references and gaps.

Ingest already enforces all of this; this job proves it on what is stored
(after manual edits, partial copies or an older version of shelfcast).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from shelfcast.data.tables import STORE_COLUMNS, GapReport, series_gaps
from shelfcast.errors import WorkspaceError
from shelfcast.io.lake import Lake
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

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


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


def _check(lake: Lake, table: str, ids: dict[str, pl.Series | None]) -> TableCheck:
    found: Counter[str] = Counter()
    rows = 0
    # One stored file at a time: keys hold the date, so a key never spans two months.
    for _, frame in lake.iter_partitions(table):
        rows += frame.height
        found.update(_problems(frame, table, ids))
    problems = [f"{n} {p}" if p.startswith(("row", "row(s)")) else p for p, n in found.items()]
    freq = (lake.table_info(table) or {}).get("frequency") or "D"
    gaps = series_gaps(lake.scan(table), freq) if table in ("sales", "inventory") else None
    return TableCheck(table, rows, problems, gaps)


def run_validate(lake: Lake) -> ValidationReport:
    """Check every stored table; raises when the workspace holds no tables."""
    tables = lake.tables()
    if not tables:
        raise WorkspaceError(f"no tables in {lake.root}; run `shelfcast ingest` (or `shelfcast demo`) first")
    ids: dict[str, pl.Series | None] = {
        "stores": lake.read("stores")["store_id"] if lake.has("stores") else None,
        "items": lake.read("items")["item_id"] if lake.has("items") else None,
    }
    checks = [_check(lake, t, ids) for t in tables]
    quarantine = lake.scan("quarantine").select(pl.len()).collect().item() if lake.has("quarantine") else 0
    return ValidationReport(checks, quarantine)
