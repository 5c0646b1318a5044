"""The Data page's reads, cached (keyed on the files' stamps), and their frames: the lake, the quarantine,
the live stream."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from shelfcast.dashboard.reads import instant
from shelfcast.io.lake import QUARANTINE, Lake, file_stamp
from shelfcast.settings import Settings

SPINNER = False


# -- the lake ----------------------------------------------------------------------------------------------------


def manifest(settings: Settings) -> dict[str, Any]:
    """The lake's manifest (empty tables when nothing was ingested); LakeError when it is damaged."""
    return Lake(settings.workspace).manifest()


def tables_frame(info: Mapping[str, Any]) -> pl.DataFrame:
    """The lake's tables: rows, series, first and last date, frequency, columns."""
    rows = [
        {
            "table": name,
            "rows": int(t.get("rows") or 0),
            "series": t.get("series"),
            "date_min": t.get("date_min"),
            "date_max": t.get("date_max"),
            "frequency": t.get("frequency"),
            "columns": ", ".join(t.get("columns") or {}),
        }
        for name, t in sorted((info.get("tables") or {}).items())
    ]
    schema = pl.Schema(
        {
            "table": pl.String(),
            "rows": pl.Int64(),
            "series": pl.Int64(),
            "date_min": pl.String(),
            "date_max": pl.String(),
            "frequency": pl.String(),
            "columns": pl.String(),
        }
    )
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col("date_min", "date_max").str.to_date())


def ingests_frame(info: Mapping[str, Any]) -> pl.DataFrame:
    """The last ingests, newest first: when, source, path, rows read, kept and quarantined."""
    rows = []
    for ingest in info.get("ingests") or []:
        parts = ingest.get("parts") or []
        rows.append(
            {
                "at": instant(ingest.get("at")),
                "source": ingest.get("source"),
                "path": ingest.get("path"),
                "tables": ", ".join(sorted({str(p.get("table")) for p in parts})),
                "read": sum(int(p.get("read") or 0) for p in parts),
                "kept": sum(int(p.get("kept") or 0) for p in parts),
                "quarantined": sum(int(p.get("quarantined") or 0) for p in parts),
            }
        )
    schema = pl.Schema(
        {
            "at": pl.Datetime("us", "UTC"),
            "source": pl.String(),
            "path": pl.String(),
            "tables": pl.String(),
            "read": pl.Int64(),
            "kept": pl.Int64(),
            "quarantined": pl.Int64(),
        }
    )
    return pl.DataFrame(rows, schema=schema).sort("at", descending=True, nulls_last=True)


def quarantine(settings: Settings) -> pl.DataFrame | None:
    """The quarantine table (source, line, table, rule, detail, raw); None when nothing was ever quarantined."""
    lake = Lake(settings.workspace)
    if not lake.has(QUARANTINE):
        return None
    path = lake.path(QUARANTINE)
    return _quarantine(settings, str(path.resolve()), file_stamp(path))


@st.cache_resource(max_entries=4, show_spinner=SPINNER)
def _quarantine(_settings: Settings, path: str, stamp: str) -> pl.DataFrame:
    return Lake(_settings.workspace).read(QUARANTINE)


def rule_counts(rows: pl.DataFrame) -> pl.DataFrame:
    """Quarantined rows per rule (and the tables it hit), most first."""
    return (
        rows.group_by("rule")
        .agg(pl.len().cast(pl.Int64).alias("rows"), pl.col("table").unique().sort().str.join(", ").alias("tables"))
        .sort(["rows", "rule"], descending=[True, False])
    )


def rule_sample(rows: pl.DataFrame, rule: str, *, n: int = 20) -> pl.DataFrame:
    """The first `n` rows quarantined by `rule`: source, line, table, detail and the row as read."""
    return rows.filter(pl.col("rule") == rule).select("source", "line", "table", "detail", "raw").head(n)


def workspace_path(settings: Settings, path: str | Path) -> str:
    """`path` relative to the workspace where it is inside it (shorter on the page)."""
    try:
        return str(Path(path).resolve().relative_to(settings.workspace.resolve()))
    except ValueError:
        return str(path)


# -- the live path -----------------------------------------------------------------------------------------------


def live_configured(settings: Settings) -> bool:
    """Whether the live path is set up: the service reads it (`live.serve`), or Redis or the `live` section
    were set (in the environment or shelfcast.toml) rather than left to their defaults."""
    return settings.live.serve or bool({"live", "redis_url"} & settings.model_fields_set)


def stream_status(settings: Settings) -> Any:
    """`shelfcast stream status` (not cached: a few Redis calls, and the page is watched for change);
    StreamError when Redis does not answer."""
    from shelfcast.jobs.stream import status

    return status(settings)
