"""Polars functions run on Spark per group of series: the lake's per-series tables cut by a hash of the series key.

Every feature, forecast and score shelfcast computes for a series reads that
series' rows only (and small tables every series shares: calendar, items,
stores, chain-wide covariates), so cutting the series into groups and running
the same Polars function on each group gives the rows one run over everything
would. Spark moves each group's rows to one task (`applyInArrow`); the
function sees Polars frames and returns one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from shelfcast.errors import SparkError
from shelfcast.features.panel import SERIES
from shelfcast.io.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)
GROUP = "__group"
# Tables whose rows belong to one series each: they are cut into groups; every other table goes whole to each group.
PER_SERIES = ("sales", "inventory")
_SIGNED: dict[pl.DataType, pl.DataType] = {pl.UInt8(): pl.Int16(), pl.UInt16(): pl.Int32(), pl.UInt32(): pl.Int64()}
_SIGNED[pl.UInt64()] = pl.Int64()
GroupFunction = Callable[[dict[str, pl.DataFrame]], pl.DataFrame]


def read_table(session: SparkSession, lake: Lake, table: str) -> DataFrame:
    """A lake table as a Spark frame, read from its Parquet files (month partitions merged)."""
    files = [str(Path(f).resolve()) for f in lake.files(table)]
    if not files:
        raise SparkError(f"the lake in {lake.root} has no {table} table")
    return session.read.option("mergeSchema", "true").parquet(*files)


def spark_schema(schema: pl.Schema) -> StructType:
    """The Spark schema of a Polars schema: all-null columns (in the probe) become floats, unsigned integers the
    next signed type (Spark has none unsigned)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    fixed = pl.Schema({c: _SIGNED.get(t, pl.Float64 if t == pl.Null else t) for c, t in schema.items()})
    return from_arrow_schema(pl.DataFrame(schema=fixed).to_arrow().schema)


def arrow_schema(schema: StructType) -> pa.Schema:
    """The Arrow schema Spark expects back from an Arrow function returning `schema`."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


def _to_polars(table: pa.Table, like: pl.Schema | None) -> pl.DataFrame:
    frame = pl.from_arrow(table.drop_columns([GROUP]) if GROUP in table.column_names else table)
    assert isinstance(frame, pl.DataFrame)
    if like is not None:  # Spark hands back its own types (int32 for Int8, large strings): the lake's again
        frame = frame.cast({c: t for c, t in like.items() if c in frame.columns and frame.schema[c] != t})
    return frame


def _to_arrow(frame: pl.DataFrame, target: pa.Schema) -> pa.Table:
    missing = [f.name for f in target if f.name not in frame.columns]
    if missing:
        raise SparkError(f"a group's result lacks column(s) {', '.join(missing)} of the schema")
    return frame.select(target.names).to_arrow().cast(target)


def map_groups(
    session: SparkSession,
    tables: Mapping[str, DataFrame],
    fn: GroupFunction,
    schema: StructType,
    *,
    groups: int,
    shared: Mapping[str, pl.DataFrame] | None = None,
    schemas: Mapping[str, pl.Schema] | None = None,
) -> DataFrame:
    """`fn` run once per group of series, on that group's rows of `tables` and the whole of `shared`.

    `tables` are per-series Spark frames (one or two: sales, and inventory when
    there is one); `shared` small Polars tables are shipped with the function
    (broadcast); `schemas` the Polars schemas the group's frames are cast back
    to. Returns the union of every group's result as a Spark frame of `schema`.
    Groups are `pmod(xxhash64(store_id, item_id), groups)`: a series' rows of
    every table land in the same group, whatever table they come from.
    """
    from pyspark.sql import functions as sf

    if not 1 <= len(tables) <= 2:
        raise ValueError(f"`tables` must hold one or two per-series tables, got {len(tables)}")
    names = list(tables)
    small = {k: v for k, v in (shared or {}).items()}
    like = dict(schemas or {})
    target = arrow_schema(schema)
    key = sf.pmod(sf.xxhash64(*[sf.col(c) for c in SERIES]), sf.lit(groups)).alias(GROUP)
    keyed = [tables[n].select(key, "*") for n in names]

    def run(parts: Sequence[pa.Table]) -> pa.Table:
        frames = {n: _to_polars(t, like.get(n)) for n, t in zip(names, parts, strict=True)}
        frames = {n: f for n, f in frames.items() if f.height or n == names[0]}
        if frames[names[0]].is_empty():  # a group with stock rows and no sales: no series of the panel
            return pa.Table.from_pylist([], schema=target)
        return _to_arrow(fn({**small, **frames}), target)

    if len(names) == 1:
        return keyed[0].groupBy(GROUP).applyInArrow(lambda table: run([table]), schema)
    grouped = keyed[0].groupBy(GROUP).cogroup(keyed[1].groupBy(GROUP))
    return grouped.applyInArrow(lambda left, right: run([left, right]), schema)


def to_polars(frame: DataFrame) -> pl.DataFrame:
    """A Spark frame collected on the driver as Polars (Arrow all the way)."""
    out = pl.from_arrow(frame.toArrow())
    assert isinstance(out, pl.DataFrame)
    return out


def probe(fn: GroupFunction, sample: Mapping[str, pl.DataFrame]) -> pl.Schema:
    """The schema `fn` returns, from running it on the driver over a small sample of series."""
    return fn(dict(sample)).schema


def first_series(lake: Lake, count: int = 3) -> dict[str, pl.DataFrame]:
    """The rows of the first `count` series (by the sales' first file) of each per-series table, read on the driver."""
    files = lake.files("sales")
    if not files:
        raise SparkError(f"the lake in {lake.root} has no sales table")
    ids = pl.read_parquet(files[-1], columns=list(SERIES)).unique().sort(SERIES).head(count)
    out: dict[str, pl.DataFrame] = {}
    for table in PER_SERIES:
        if lake.has(table):
            out[table] = lake.scan(table).join(ids.lazy(), on=list(SERIES), how="semi").collect()
    return out


def map_batches(frame: DataFrame, fn: Callable[[pl.DataFrame], pl.DataFrame], schema: StructType) -> DataFrame:
    """`fn` run on every Arrow batch of `frame` (`mapInArrow`): for row-wise work that needs no grouping."""
    target = arrow_schema(schema)
    names = frame.columns

    def run(batches: Any) -> Any:
        for batch in batches:
            part = pl.from_arrow(batch)
            assert isinstance(part, pl.DataFrame)
            yield from _to_arrow(fn(part.rename(dict(zip(part.columns, names, strict=True)))), target).to_batches()

    # Spark reads a dot in a column name (`ewm_0.05`) as a struct's field when it plans the call: plain names in
    # between, the function sees the real ones.
    return frame.toDF(*[f"__c{i}" for i in range(len(names))]).mapInArrow(run, schema)
