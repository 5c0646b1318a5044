"""Data: the lake's tables and its last ingests, the quarantine by rule with sample rows, and the live stream."""

from __future__ import annotations

import redis
import streamlit as st

from shelfcast.dashboard import charts, lake_data, reads, ui
from shelfcast.errors import StreamError

SAMPLE_ROWS = 20

settings = ui.settings_or_stop()
st.title("Data")
try:
    manifest = lake_data.manifest(settings)
    quarantined = lake_data.quarantine(settings)
except reads.READ_ERRORS as exc:
    ui.problem(f"Cannot read the lake: {exc}")
    st.stop()
if not manifest.get("tables"):
    ui.guide("No data yet", "shelfcast ingest ... (or shelfcast demo)")
    st.stop()

tables = lake_data.tables_frame(manifest)
left, middle, right = st.columns(3)
left.metric("Tables", f"{tables.height:,}")
middle.metric("Quarantined rows", f"{0 if quarantined is None else quarantined.height:,}")
right.metric("Last ingest", str(manifest.get("updated_at", "n/a"))[:16].replace("T", " "), help="UTC")

st.header("Tables")
st.dataframe(
    tables,
    hide_index=True,
    key="tables",
    column_config={
        "table": st.column_config.TextColumn("Table"),
        "rows": st.column_config.NumberColumn("Rows", format="localized"),
        "series": st.column_config.NumberColumn("Series", format="localized", help="store x item pairs"),
        "date_min": st.column_config.DateColumn("First date"),
        "date_max": st.column_config.DateColumn("Last date"),
        "frequency": st.column_config.TextColumn("Frequency", help="D: daily, W: weekly"),
        "columns": st.column_config.TextColumn("Columns", width="large"),
    },
)
st.subheader("Last ingests")
st.dataframe(
    lake_data.ingests_frame(manifest),
    hide_index=True,
    key="ingests",
    column_config={
        "at": st.column_config.DatetimeColumn("At (UTC)", format="YYYY-MM-DD HH:mm"),
        "read": st.column_config.NumberColumn("Rows read", format="localized"),
        "kept": st.column_config.NumberColumn("Kept", format="localized"),
        "quarantined": st.column_config.NumberColumn("Quarantined", format="localized"),
    },
)

st.header("Quarantine")
if quarantined is None or quarantined.is_empty():
    st.caption("No row was quarantined: every ingested row passed the checks.")
else:
    counts = lake_data.rule_counts(quarantined)
    chart_column, table_column = st.columns([3, 2])
    chart_column.altair_chart(charts.quarantine_bars(counts), width="stretch")
    table_column.dataframe(
        counts,
        hide_index=True,
        key="rules",
        column_config={"rows": st.column_config.NumberColumn("Rows", format="localized")},
    )
    rules = counts["rule"].to_list()
    rule = st.selectbox(
        "Rule",
        rules,
        format_func=lambda r: f"{r} ({counts.filter(counts['rule'] == r)['rows'][0]:,} rows)",
        key="quarantine_rule",
    )
    assert rule is not None
    sample = lake_data.rule_sample(quarantined, rule, n=SAMPLE_ROWS)
    st.caption(f"The first {sample.height} rows quarantined by `{rule}` (line 1 of a file is its header).")
    st.dataframe(
        sample,
        hide_index=True,
        key="quarantine_sample",
        column_config={"raw": st.column_config.TextColumn("Row as read", width="large")},
    )

st.header("Live stream")
if not lake_data.live_configured(settings):
    st.caption(
        "The live path is off. Turn it on with `serve = true` under `[live]` in shelfcast.toml (or "
        "SHELFCAST_LIVE__SERVE=true) and Redis at `redis_url`, then `shelfcast stream seed` and "
        "`shelfcast stream consume`."
    )
else:
    try:
        status = lake_data.stream_status(settings)
    except (StreamError, redis.RedisError, OSError) as exc:
        ui.problem(f"Cannot read the live stream: {exc}")
    else:
        lag = [g.lag for g in status.groups if g.lag is not None]
        first, second, third, fourth = st.columns(4)
        first.metric(
            "Consumer lag", "n/a" if not status.groups else f"{sum(lag):,} events", help="entries not yet read"
        )
        second.metric("Dead letters", f"{status.dead_letters:,}")
        third.metric("Events applied", f"{status.stats.applied:,}")
        fourth.metric("Stream length", f"{status.length:,}")
        compacted = status.compaction.compacted_through or "never"
        st.caption(
            f"Redis `{status.url}`, prefix `{status.prefix}`; {status.series:,} series; last applied "
            f"{status.meta.last_applied_at or 'never'}; compacted through {compacted}."
        )
        if status.groups:
            st.dataframe(
                [
                    {"group": g.name, "lag": g.lag, "pending": g.pending, "consumers": len(g.consumers)}
                    for g in status.groups
                ],
                hide_index=True,
                key="stream_groups",
            )
        if status.latest_dead:
            st.caption("The latest dead letters")
            st.dataframe(status.latest_dead, hide_index=True, key="dead_letters")
