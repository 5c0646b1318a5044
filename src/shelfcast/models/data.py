"""What every model works on: the panel, the calendar, and the default feature spec and config for its frequency."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import polars as pl

from shelfcast.errors import ConfigError
from shelfcast.features.panel import INVENTORY_COLUMNS, Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.train import ForecastConfig
from shelfcast.schemas import SCHEMAS, TableName, replace_rows
from shelfcast.types import PeriodAnchor

FREQUENCIES = ("D", "W")


@dataclass(frozen=True)
class ModelData:
    panel: Panel
    calendar: pl.DataFrame | None
    spec: FeatureSpec
    config: ForecastConfig
    period_anchor: PeriodAnchor = PeriodAnchor.START  # weekly data: each date is its week's start or end

    @property
    def last_date(self) -> dt.date:
        value = self.panel.frame["date"].max()
        assert isinstance(value, dt.date)
        return value


def model_data(
    tables: dict[TableName, pl.DataFrame],
    *,
    freq: str,
    exogenous_roles: dict[str, str] | None = None,
    period_anchor: str | None = None,
) -> ModelData:
    """The panel built from the canonical tables (sales required), with defaults for its frequency."""
    roles = exogenous_roles or {}
    panel = build_panel(tables, freq=freq, exogenous_roles=roles)
    spec = FeatureSpec.for_freq(
        freq,
        exogenous_known=tuple(c for c, r in roles.items() if r == "known_in_advance"),
        exogenous_past=tuple(c for c, r in roles.items() if r != "known_in_advance"),
        categorical=("store_id", "item_id", *useful_attributes(panel)),
    )
    anchor = PeriodAnchor(period_anchor or PeriodAnchor.START)
    return ModelData(panel, tables.get("calendar"), spec, ForecastConfig.for_freq(freq), anchor)


def with_rows(
    tables: dict[TableName, pl.DataFrame], rows: dict[TableName, pl.DataFrame]
) -> dict[TableName, pl.DataFrame]:
    """The tables with `rows` in them: a row replaces the table's row with the same key, as a lake upsert does.

    How live days (the online store's, `shelfcast stream`) join the lake's
    tables before the panel is built, so online features come from the same
    `model_data` and feature code as batch ones.
    """
    out = dict(tables)
    for table, extra in rows.items():
        if not extra.is_empty():
            out[table] = replace_rows(SCHEMAS[table], out.get(table), extra)
    return out


MAX_CATEGORIES = 1000


def useful_attributes(panel: Panel) -> list[str]:
    """Item and store attributes worth a categorical feature: they group several ids, and not too many groups.

    An attribute with one value per id (a name) adds nothing to the id itself;
    one with thousands of values is noise for the trees.
    """
    frame = panel.frame
    ids = {c: frame[c].n_unique() for c in ("store_id", "item_id")}
    keep = []
    for column in panel.categorical:
        groups = frame[column].n_unique()
        owner = (
            "item_id" if frame.select(pl.struct("item_id", column).n_unique()).item() == ids["item_id"] else "store_id"
        )
        if 1 < groups < min(ids[owner], MAX_CATEGORIES):
            keep.append(column)
    return keep


def parse_cutoff(value: str | dt.date | None, data: ModelData) -> dt.date:
    """The cutoff a job works from: the last date when None, a date as given, a string (from the command line)
    parsed and checked against the data."""
    first = data.panel.frame["date"].min()
    assert isinstance(first, dt.date)
    return cutoff_between(value, first, data.last_date)


def cutoff_between(value: str | dt.date | None, first: dt.date, last: dt.date) -> dt.date:
    """`parse_cutoff` for data from `first` to `last` (a distributed engine knows the dates, not the panel)."""
    if value is None:
        return last
    if isinstance(value, dt.date):
        return value
    try:
        cutoff = dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"`--cutoff` must be a date like 2024-01-31, got {value!r}") from None
    if cutoff <= first or cutoff > last:
        raise ConfigError(f"`--cutoff` {cutoff} must fall after {first} and on or before {last}")
    return cutoff


@dataclass(frozen=True)
class DataShape:
    """What every group of series needs to build its part of the model data as the whole data would.

    The per-series tables (sales, inventory) are cut into groups of series
    (Spark); each group's panel is built with these: the frequency, the
    exogenous roles, the sales' first and last dates over every series, the
    feature spec chosen from the whole data, and the tables every series
    shares (calendar, items, stores, exogenous covariates).
    """

    freq: str
    spec: FeatureSpec
    first: dt.date
    end: dt.date
    shared: dict[TableName, pl.DataFrame]
    exogenous_roles: dict[str, str]
    period_anchor: PeriodAnchor = PeriodAnchor.START
    # The stock columns of the whole inventory table (and their types): a group whose series have no stock row
    # still gets them, null, as those series do in the whole panel.
    stock: dict[str, pl.DataType] = field(default_factory=dict)

    @property
    def config(self) -> ForecastConfig:
        return ForecastConfig.for_freq(self.freq)


def data_shape(
    shared: dict[TableName, pl.DataFrame],
    *,
    store_ids: pl.Series,
    item_ids: pl.Series,
    freq: str,
    first: dt.date,
    end: dt.date,
    exogenous_roles: dict[str, str] | None = None,
    period_anchor: str | None = None,
    inventory: pl.Schema | None = None,
) -> DataShape:
    """The shape of the data whose sales hold `store_ids` and `item_ids` (distinct), from `first` to `end`.

    The feature spec is the one `model_data` chooses from the whole panel:
    an attribute's groups and owner over the panel's rows are those over the
    ids the sales hold, so they are counted on the ids alone.
    """
    roles = exogenous_roles or {}
    attributes = [
        *_useful(shared.get("items"), "item_id", item_ids, "store_id"),
        *_useful(shared.get("stores"), "store_id", store_ids, "item_id"),
    ]
    spec = FeatureSpec.for_freq(
        freq,
        exogenous_known=tuple(c for c, r in roles.items() if r == "known_in_advance"),
        exogenous_past=tuple(c for c, r in roles.items() if r != "known_in_advance"),
        categorical=("store_id", "item_id", *attributes),
    )
    anchor = PeriodAnchor(period_anchor or PeriodAnchor.START)
    stock = {c: inventory[c] for c in INVENTORY_COLUMNS if inventory is not None and c in inventory}
    return DataShape(freq, spec, first, end, dict(shared), roles, anchor, stock)


def _useful(attrs: pl.DataFrame | None, key: str, ids: pl.Series, other: str) -> list[str]:
    """`useful_attributes` of one master table, over one row per id the sales hold (the other id constant)."""
    if attrs is None or attrs.is_empty():
        return []
    rows = ids.unique().to_frame(key).join(attrs, on=key, how="left").with_columns(pl.lit("").alias(other))
    columns = tuple(c for c in attrs.columns if c not in (key, "store_id", "item_id") and attrs.schema[c] == pl.String)
    return useful_attributes(Panel(rows, "D", categorical=columns))


def group_data(shape: DataShape, tables: Mapping[str, pl.DataFrame]) -> ModelData:
    """The model data of one group of series (their sales and inventory rows in `tables`; any other table in it
    is left out: the shared ones come from `shape`) under `shape`."""
    own: dict[TableName, pl.DataFrame] = {"sales": tables["sales"]}
    if "inventory" in tables:
        own["inventory"] = tables["inventory"]
    panel = build_panel({**shape.shared, **own}, freq=shape.freq, exogenous_roles=shape.exogenous_roles, end=shape.end)
    missing = [c for c in shape.stock if c not in panel.frame.columns]
    if missing:  # where the whole panel has them: after the sales columns and `observed`, past-only after revenue
        columns = panel.frame.columns
        at = columns.index("observed") + 1
        frame = panel.frame.with_columns([pl.lit(None, shape.stock[c]).alias(c) for c in missing]).select(
            *columns[:at], *shape.stock, *[c for c in columns[at:] if c not in shape.stock]
        )
        head = [c for c in ("revenue",) if c in panel.past_only]
        past = (*head, *shape.stock, *[c for c in panel.past_only if c not in (*head, *shape.stock)])
        panel = replace(panel, frame=frame, past_only=past)
    return ModelData(panel, shape.shared.get("calendar"), shape.spec, shape.config, shape.period_anchor)
