"""`shelfcast stream produce | consume | status | seed | compact`: live sales through Redis Streams into the online
store, and its closed days into the lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, existing_workspace, settings
from shelfcast.errors import ConfigError
from shelfcast.settings import Settings

app = typer.Typer(
    help="Live sales: publish events, consume them into the online store, status, seed, compact into the lake.",
    no_args_is_help=True,
)

RedisOpt = Annotated[str | None, typer.Option("--redis-url", help="Redis; else the `redis_url` setting.")]
PrefixOpt = Annotated[str | None, typer.Option("--prefix", help="Key prefix; else the `live.prefix` setting.")]


def _settings(workspace: Path | None, redis_url: str | None, prefix: str | None) -> Settings:
    cfg = settings(workspace=workspace, redis_url=redis_url)
    if prefix is not None:
        cfg = cfg.model_copy(update={"live": cfg.live.model_copy(update={"prefix": prefix})})
    return cfg


def _date(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"`{flag}` must be a date YYYY-MM-DD, got {value!r}") from None


def _shift_to_today(cfg: Settings, last: dt.date | None) -> int:
    """Days from `last` (default: the lake's last sales day) to today: how far `--retime` moves a replay."""
    from shelfcast.io.lake import Lake

    lake = Lake(cfg.workspace)
    if last is None and lake.has("sales"):
        last = lake.scan("sales").select("date").max().collect().item()
    return (dt.date.today() - last).days if isinstance(last, dt.date) else 0


@app.command()
def produce(
    file: Annotated[
        Path | None, typer.Argument(help="Parquet or CSV of events (wire fields as columns); omit with --from-lake.")
    ] = None,
    from_lake: Annotated[
        bool, typer.Option("--from-lake", help="Replay the lake's sales, counts and receipts.")
    ] = False,
    start: Annotated[str | None, typer.Option(help="First day replayed, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day replayed, YYYY-MM-DD.")] = None,
    retime: Annotated[bool, typer.Option(help="Shift the replayed days so the last one is today.")] = False,
    speed: Annotated[
        float | None, typer.Option(help="Pace by event time: seconds of event time per second (86400 = a day/s).")
    ] = None,
    workspace: WorkspaceOpt = None,
    redis_url: RedisOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Publish events into the stream (bounded with MAXLEN ~, waiting while the consumers lag)."""
    from shelfcast.io.lake import Lake
    from shelfcast.jobs.stream import entries, file_events, lake_events
    from shelfcast.jobs.stream import produce as run_produce

    if (file is None) == (not from_lake):
        raise ConfigError("give a FILE of events or --from-lake (one of them)")
    if speed is not None and speed <= 0:
        raise ConfigError(f"`--speed` must be > 0, got {speed}")
    cfg = _settings(workspace, redis_url, prefix)
    if file is not None:
        frame = file_events(file)
    else:
        existing_workspace(cfg)
        first, last = _date(start, "--start"), _date(end, "--end")
        shift = _shift_to_today(cfg, last) if retime else 0
        frame = lake_events(Lake(cfg.workspace), first, last, shift_days=shift)
    report = run_produce(cfg, entries(frame), speed=speed)
    waited = f", waited {report.waited:.1f}s for the consumers" if report.waited >= 0.1 else ""
    out.console.print(
        f"published {report.published:,} events to {cfg.live.prefix}:events in {report.seconds:.1f}s "
        f"({report.events_per_second:,.0f}/s{waited})",
        highlight=False,
    )


@app.command()
def consume(
    name: Annotated[
        str | None, typer.Option(help="Consumer name; reuse it after a crash to re-read its pending entries first.")
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once nothing is left to read and nothing is pending.")
    ] = False,
    max_events: Annotated[int | None, typer.Option(min=1, help="Stop after this many entries.")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Entries per atomic batch; else `live.batch_size`.")] = None,
    compact_every: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Also write the closed days into the workspace's lake (as `stream compact`) when this many seconds "
            "passed since the last time, between batches, and once when stopping.",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve Prometheus metrics of the stream (lag, pending, dead letters, events by outcome) on this "
            "port at /metrics.",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Interface of --metrics-port (0.0.0.0 for every one).")
    ] = "127.0.0.1",
    workspace: WorkspaceOpt = None,
    redis_url: RedisOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Apply events to the online store as one worker of the consumer group (run several for more throughput)."""
    from shelfcast.jobs.stream import consume as run_consume

    cfg = _settings(workspace, redis_url, prefix)
    if metrics_port is not None:
        from shelfcast.jobs.stream_metrics import serve_stream_metrics

        serve_stream_metrics(cfg, port=metrics_port, host=metrics_host)
    if batch is not None:
        cfg = cfg.model_copy(update={"live": cfg.live.model_copy(update={"batch_size": batch})})
    if compact_every is not None:
        from shelfcast.workflows.live import consume_and_compact, describe

        report, compactions = consume_and_compact(
            cfg, every=compact_every, consumer=name, until_idle=until_idle, max_events=max_events
        )
        for done in compactions:
            if not done.skipped:
                out.console.print(f"compaction: {describe(done)}", highlight=False)
    else:
        report = run_consume(cfg, consumer=name, until_idle=until_idle, max_events=max_events)
    rules = ", ".join(f"{rule} {n}" for rule, n in sorted(report.dead_rules.items()))
    out.console.print(
        f"{report.consumer}: read {report.read:,} = applied {report.applied:,} + duplicates {report.duplicates:,} "
        f"+ dead {report.dead:,}{f' ({rules})' if rules else ''}; re-read {report.reread:,}, claimed "
        f"{report.claimed:,}; {report.events_per_second:,.0f} events/s; stopped: {report.stopped}",
        highlight=False,
    )


@app.command()
def status(
    workspace: WorkspaceOpt = None,
    redis_url: RedisOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Lag and pending per group, dead letters, the store's counts and throughput."""
    from shelfcast.jobs.stream import status as run_status

    cfg = _settings(workspace, redis_url, prefix)
    report = run_status(cfg)
    out.console.print(
        f"{report.url} prefix {report.prefix}: {report.length:,} entries in the stream, {report.series:,} series",
        highlight=False,
    )
    table = Table(title="Consumer groups", title_justify="left")
    for column in ("group", "lag", "pending", "consumers (pending)"):
        table.add_column(column, justify="left" if column in ("group", "consumers (pending)") else "right")
    for group in report.groups:
        consumers = ", ".join(f"{c} ({n})" for c, n in sorted(group.consumers.items())) or "-"
        table.add_row(group.name, "?" if group.lag is None else f"{group.lag:,}", f"{group.pending:,}", consumers)
    out.console.print(table)
    s = report.stats
    rate = f"{s.events_per_second:,.0f} events/s" if s.events_per_second else "-"
    out.console.print(
        f"read {s.read:,} = applied {s.applied:,} + duplicates {s.duplicates:,} + dead {s.dead:,}; "
        f"throughput {rate}; dead letters in the stream {report.dead_letters:,}",
        highlight=False,
    )
    m = report.meta
    seeded = f"seeded {m.seeded_at:%Y-%m-%d %H:%M} through {m.seeded_through}" if m.seeded_at else "never seeded"
    last = f"last applied {m.last_applied_at:%Y-%m-%d %H:%M:%S} UTC" if m.last_applied_at else "nothing applied yet"
    out.console.print(f"store layout {m.layout or '-'}, {seeded}, {last}", highlight=False)
    c = report.compaction
    if c.compacted_through is not None:
        at = f" at {c.compacted_at:%Y-%m-%d %H:%M} UTC" if c.compacted_at else ""
        out.console.print(f"compacted through {c.compacted_through}{at} into {c.workspace}", highlight=False)
    else:
        out.console.print("never compacted into a lake (`shelfcast stream compact`)", highlight=False)
    for row in report.latest_dead:
        out.console.print(f"  dead {row.get('entry_id')}: {row.get('rule')} ({row.get('detail')})", highlight=False)


@app.command()
def seed(
    through: Annotated[
        str | None, typer.Option(help="Last day seeded, YYYY-MM-DD.", show_default="the lake's last")
    ] = None,
    retime: Annotated[
        bool, typer.Option(help="Shift the days as `produce --from-lake --retime` does: the lake's last day is today.")
    ] = False,
    workspace: WorkspaceOpt = None,
    redis_url: RedisOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Fill the online store from the lake (a new Redis, or after data loss); stream from the next day on."""
    from shelfcast.jobs.stream import seed as run_seed

    cfg = existing_workspace(_settings(workspace, redis_url, prefix))
    shift = _shift_to_today(cfg, None) if retime else 0
    report = run_seed(cfg, through=_date(through, "--through"), shift_days=shift)
    out.console.print(
        f"seeded {report.series:,} series with {report.first}..{report.through} in {report.seconds:.1f}s",
        highlight=False,
    )


@app.command()
def compact(
    through: Annotated[
        str | None,
        typer.Option(help="Last day written, YYYY-MM-DD.", show_default="the day before the store's latest day"),
    ] = None,
    every_day: Annotated[
        bool,
        typer.Option(
            "--every-day",
            help="Write every closed day again, changed or not (a restored lake; rows quarantined under other "
            "settings).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    redis_url: RedisOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Write the online store's closed days into the lake, through the ingest's validation, quarantine and
    manifest; idempotent (a day is written again only when late events changed it)."""
    from shelfcast.workflows.live import compact as run_compact
    from shelfcast.workflows.live import describe

    cfg = _settings(workspace, redis_url, prefix)
    report = run_compact(cfg, through=_date(through, "--through"), every_day=every_day, notice=out.console.print)
    span = f"closed days {report.first}..{report.through}" if report.first and report.through else "no closed day"
    out.console.print(f"{span}: {describe(report)} ({report.seconds:.1f}s)", highlight=False)
