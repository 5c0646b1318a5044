"""Table-level checks on clean rows: duplicate keys, unknown stores/items, gaps in series.

Rows carry `_source`, `_line` and `_part` (the index of the input part) so
every merged or rejected row can be traced and counted.
"""

from __future__ import annotations

import reprlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from shelfcast.data.readers import LINE
from shelfcast.data.validate import PART, data_columns, quarantine_from_clean
from shelfcast.schemas import QUARANTINE_SCHEMA, TableSchema
from shelfcast.settings import DuplicatePolicy

STORE_COLUMNS = ("store_id", "from_store_id", "to_store_id")
ITEM_COLUMNS = ("item_id",)


@dataclass(frozen=True)
class MergeResult:
    """One row per key, the rows quarantined for their key, and rows merged per part."""

    table: pl.DataFrame
    quarantine: pl.DataFrame
    merged: Counter[int] = field(default_factory=Counter)
    quarantined: Counter[int] = field(default_factory=Counter)


def _per_part(rows: pl.DataFrame) -> Counter[int]:
    if rows.is_empty():
        return Counter()
    counts = rows.group_by(PART).len()
    return Counter(dict(zip(counts[PART].to_list(), counts["len"].to_list(), strict=True)))


def _key_text(keys: tuple[str, ...]) -> pl.Expr:
    values = [pl.col(k).cast(pl.String).fill_null("*") for k in keys]
    return pl.concat_str([pl.lit(f"key ({', '.join(keys)}) = ("), pl.concat_str(values, separator=", "), pl.lit(")")])


def _aggregations(schema: TableSchema, columns: list[str]) -> list[pl.Expr]:
    aggs: list[pl.Expr] = []
    for col in columns:
        if col in schema.keys:
            continue
        if col in schema.additive:
            aggs.append(pl.col(col).sum())
        elif col == "promo":
            aggs.append(pl.col(col).max())
        elif col == "price":
            aggs.append(pl.col(col).mean())
        else:
            aggs.append(pl.col(col).first())
    return [*aggs, pl.col(LINE).first(), pl.col(PART).first()]


def _repeated_keys(rows: pl.DataFrame, keys: list[str]) -> pl.Series:
    """True for rows whose key hash occurs more than once: a superset of the duplicated keys.

    Hashing first keeps the exact (string-keyed) work to the few candidate rows;
    a hash collision only sends a unique row down the exact path, which is still correct.
    """
    return rows.select(pl.struct(keys).hash(seed=0)).to_series().is_duplicated()


def merge_duplicates(
    rows: pl.DataFrame,
    schema: TableSchema,
    *,
    policy: DuplicatePolicy,
    sources: Mapping[int, str],
    aggregate_parts: frozenset[int] = frozenset(),
) -> MergeResult:
    """Resolve rows that share a key.

    Additive tables (sales, movements) sum them, or reject every row of the key
    when `policy` is "reject" (rows of `aggregate_parts` are always summed: they
    are pieces of one fact). State tables merge identical rows and quarantine
    every row of a key whose rows disagree.
    """
    keys = list(schema.keys)
    repeated = _repeated_keys(rows, keys)
    singles = rows.filter(~repeated)
    candidates = rows.filter(repeated).sort([PART, LINE])
    merge = _merge_additive if schema.additive else _merge_state
    result = merge(candidates, schema, policy=policy, sources=sources, aggregate_parts=aggregate_parts)
    table = pl.concat([singles, result.table.select(rows.columns)]) if result.table.height else singles
    return MergeResult(table, result.quarantine, result.merged, result.quarantined)


def _merge_additive(
    rows: pl.DataFrame,
    schema: TableSchema,
    *,
    policy: DuplicatePolicy,
    sources: Mapping[int, str],
    aggregate_parts: frozenset[int],
) -> MergeResult:
    keys = list(schema.keys)
    rejected = pl.DataFrame(schema=rows.schema)
    quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if policy == "reject":
        is_rejected = (pl.len().over(keys) > 1) & ~pl.col(PART).is_in(list(aggregate_parts))
        rejected = rows.filter(is_rejected).with_columns(pl.len().over(keys).alias("_n"))
        rows = rows.filter(~is_rejected)
        if rejected.height:
            times = pl.concat_str([_key_text(schema.keys), pl.lit(" appears "), pl.col("_n").cast(pl.String)])
            detail = pl.concat_str([times, pl.lit(" times")])
            quarantine = quarantine_from_clean(rejected, schema.name, "duplicate_key", detail, sources=sources)
    merged = rows.group_by(keys, maintain_order=True).agg(_aggregations(schema, data_columns(rows.schema)))
    folded = _per_part(rows)
    folded.subtract(_per_part(merged))
    return MergeResult(merged.select(rows.columns), quarantine, +folded, _per_part(rejected))


def _merge_state(
    rows: pl.DataFrame,
    schema: TableSchema,
    *,
    policy: DuplicatePolicy,
    sources: Mapping[int, str],
    aggregate_parts: frozenset[int],
) -> MergeResult:
    keys = list(schema.keys)
    cols = data_columns(rows.schema)
    distinct = rows.unique(subset=cols, keep="first", maintain_order=True)
    conflict_keys = distinct.filter(pl.len().over(keys) > 1).select(keys).unique()
    conflicting = rows.join(conflict_keys, on=keys, how="semi", nulls_equal=True)
    rest = rows.join(conflict_keys, on=keys, how="anti", nulls_equal=True)
    kept = rest.unique(subset=cols, keep="first", maintain_order=True)
    quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if conflicting.height:
        detail = pl.concat_str([_key_text(schema.keys), pl.lit(" has rows that disagree")])
        quarantine = quarantine_from_clean(conflicting, schema.name, "conflicting_duplicate", detail, sources=sources)
    folded = _per_part(rest)
    folded.subtract(_per_part(kept))
    return MergeResult(kept, quarantine, +folded, _per_part(conflicting))


def check_references(
    rows: pl.DataFrame,
    *,
    table: str,
    stores: pl.Series | None,
    items: pl.Series | None,
    sources: Mapping[int, str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into (known, quarantined) by the store and item masters; None = no master to check."""
    failing: list[tuple[str, str, pl.Expr]] = []
    for col in STORE_COLUMNS:
        if stores is not None and col in rows.columns:
            failing.append(("unknown_store", col, pl.col(col).is_not_null() & ~pl.col(col).is_in(stores.implode())))
    for col in ITEM_COLUMNS:
        if items is not None and col in rows.columns:
            failing.append(("unknown_item", col, pl.col(col).is_not_null() & ~pl.col(col).is_in(items.implode())))
    if not failing or rows.is_empty():
        return rows, pl.DataFrame(schema=QUARANTINE_SCHEMA)
    quarantined: list[pl.DataFrame] = []
    for rule, col, bad in failing:
        hit = rows.filter(bad)
        if not hit.is_empty():
            master = "stores" if rule == "unknown_store" else "items"
            detail = pl.concat_str([pl.lit(f"{col} "), pl.col(col), pl.lit(f" is not in the {master} table")])
            quarantined.append(quarantine_from_clean(hit, table, rule, detail, sources=sources))
        rows = rows.filter(~bad)
    return rows, pl.concat(quarantined) if quarantined else pl.DataFrame(schema=QUARANTINE_SCHEMA)


def detect_frequency(dates: pl.Series) -> str:
    """ "D" for daily data, "W" for weekly, "<n>D" otherwise; from the commonest step between dates."""
    distinct = dates.drop_nulls().unique().sort()
    if distinct.len() < 2:
        return "D"
    steps = distinct.diff().drop_nulls().dt.total_days()
    step = int(steps.mode().min())  # type: ignore[arg-type]
    return {1: "D", 7: "W"}.get(step, f"{step}D")


def step_days(freq: str) -> int:
    return {"D": 1, "W": 7}.get(freq) or int(freq.removesuffix("D"))


@dataclass(frozen=True)
class GapReport:
    """Missing periods inside series (between a series' first and last date)."""

    series: int
    series_with_gaps: int
    missing_periods: int
    examples: str


def series_gaps(table: pl.DataFrame | pl.LazyFrame, freq: str) -> GapReport:
    """Count periods missing between each series' first and last observation (memory: one row per series)."""
    lf = table.lazy()
    if not {"store_id", "item_id", "date"} <= set(lf.collect_schema()):
        return GapReport(0, 0, 0, "")
    step = step_days(freq)
    per = (
        lf.group_by("store_id", "item_id")
        .agg(pl.len().alias("n"), pl.col("date").min().alias("first"), pl.col("date").max().alias("last"))
        .collect(engine="streaming")
    )
    if per.is_empty():
        return GapReport(0, 0, 0, "")
    per = per.with_columns(
        ((pl.col("last") - pl.col("first")).dt.total_days() // step + 1 - pl.col("n")).alias("missing")
    )
    gaps = per.filter(pl.col("missing") > 0).sort("missing", "store_id", "item_id", descending=[True, False, False])
    examples = [f"{r['store_id']}/{r['item_id']}: {r['missing']}" for r in gaps.head(3).iter_rows(named=True)]
    return GapReport(
        series=per.height,
        series_with_gaps=gaps.height,
        missing_periods=int(gaps["missing"].sum()) if gaps.height else 0,
        examples=reprlib.repr(examples) if examples else "",
    )
