"""`shelfcast ingest | validate | info | quarantine | simulate`: data into the lake, checked and looked at."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, existing_workspace, model, now, settings, writable_workspace
from shelfcast.errors import ConfigError, LakeError
from shelfcast.settings import DuplicatePolicy

app = typer.Typer()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) stops the command as Ctrl-C does: cleanup runs, then one line."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="File or folder to read.")],
    source: Annotated[
        str,
        typer.Option("--source", "-s", help="canonical, store-item, walmart, freshretailnet, branch-csv or generic."),
    ],
    workspace: WorkspaceOpt = None,
    date_format: Annotated[str | None, typer.Option(help="strptime format of the dates, e.g. %d/%m/%Y.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: detected).")] = None,
    duplicates: Annotated[
        DuplicatePolicy | None, typer.Option(help="Rows of sales/movements sharing a key: sum (default) or reject.")
    ] = None,
    mapping: Annotated[Path | None, typer.Option(help="generic: TOML file with the column mapping.")] = None,
    table: Annotated[
        str | None, typer.Option(help="generic: canonical table the file maps onto (default sales).")
    ] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="generic: CANONICAL=COLUMN, repeatable.")] = None,
    const: Annotated[list[str] | None, typer.Option(help="generic: CANONICAL=VALUE for every row, repeatable.")] = None,
    exog: Annotated[
        list[str] | None, typer.Option(help="generic: COLUMN=past_only|known_in_advance, repeatable.")
    ] = None,
    event: Annotated[list[str] | None, typer.Option(help="generic: FLAG_COLUMN=EVENT_NAME, repeatable.")] = None,
) -> None:
    """Read a dataset, validate it, and store the canonical tables in the workspace lake."""
    from shelfcast.data.sources import get_source
    from shelfcast.data.sources.generic import load_mapping, parse_pairs
    from shelfcast.jobs.ingest import run_ingest

    cfg = writable_workspace(settings(workspace=workspace, duplicates=duplicates), create=True)
    options: dict[str, Any] = {"date_format": date_format, "delimiter": delimiter}
    if source == "generic":
        options["mapping"] = load_mapping(
            mapping,
            table=table,
            columns=parse_pairs(map_ or [], option="--map"),
            constants=parse_pairs(const or [], option="--const"),
            exogenous=parse_pairs(exog or [], option="--exog"),
            calendar=parse_pairs(event or [], option="--event"),
        )
    elif any((mapping, table, map_, const, exog, event)):
        raise ConfigError("--mapping/--table/--map/--const/--exog/--event only apply to --source generic")
    adapter = get_source(source, **options)
    try:
        with _sigterm_as_interrupt(), out.progress_bar("ingest") as progress:
            report = run_ingest(
                adapter, path, settings=cfg, today=dt.date.today(), now=now(), progress=progress, notice=out.note
            )
    except KeyboardInterrupt:
        from shelfcast.io.lake import Lake

        if Lake(cfg.workspace).interrupted_marker() is None:
            raise LakeError("ingest interrupted before writing the lake; nothing changed") from None
        raise LakeError(
            "ingest interrupted while writing the lake, which may hold part of its rows: re-run the same ingest"
        ) from None
    out.ingest_summary(report)


@app.command()
def validate(
    workspace: WorkspaceOpt = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the figures as JSON (rows kept and quarantined, problems per table)."),
    ] = None,
) -> None:
    """Re-check every table in the lake; exit 1 if any rule is broken."""
    from shelfcast.io.lake import Lake
    from shelfcast.jobs.validate import run_validate

    with out.status("validating the lake"):
        report = run_validate(Lake(existing_workspace(settings(workspace=workspace)).workspace))
    out.validation_summary(report)
    for problem in report.lake_problems:
        out.error(problem)
    if json_path is not None:  # problems too: the file says what failed
        from shelfcast.io.files import write_json

        out.console.print(f"figures written to {write_json(report.to_dict(), json_path)}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def info(workspace: WorkspaceOpt = None) -> None:
    """Show the lake's tables (rows, series, date range) and the last ingests."""
    from shelfcast.errors import WorkspaceError
    from shelfcast.io.lake import Lake
    from shelfcast.io.lake_check import writing_problem

    lake = Lake(existing_workspace(settings(workspace=workspace)).workspace)
    manifest = lake.manifest()
    writing = writing_problem(lake)
    if not manifest["tables"]:
        if writing:
            raise LakeError(writing)
        raise WorkspaceError(f"no tables in {lake.root}; run `shelfcast ingest` (or `shelfcast demo`) first")
    if writing:
        out.error(writing)
    out.tables_summary(manifest["tables"], title=f"Lake tables in {lake.root}")
    recent = [
        {
            "at": i["at"],
            "source": i["source"],
            "path": i["path"],
            "read": sum(p["read"] for p in i["parts"]),
            "quarantined": sum(p["quarantined"] for p in i["parts"]),
        }
        for i in manifest.get("ingests", [])[-5:]
    ]
    out.frame_table("Recent ingests", recent)
    out.console.print(f"quarantined rows: {manifest.get('quarantine_rows', 0):,}")


@app.command()
def quarantine(
    workspace: WorkspaceOpt = None,
    rule: Annotated[str | None, typer.Option(help="Only rows that broke this rule.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 20,
) -> None:
    """Show quarantined rows with their rule, file, line and original values."""
    import polars as pl

    from shelfcast.io.lake import QUARANTINE, Lake

    lake = Lake(existing_workspace(settings(workspace=workspace)).workspace)
    if not lake.has(QUARANTINE):
        out.console.print("no quarantined rows")
        return
    rows = lake.scan(QUARANTINE)
    if rule:
        rows = rows.filter(pl.col("rule").str.split(";").list.contains(rule))
    total = rows.select(pl.len()).collect().item()
    out.frame_table(f"Quarantine ({total:,} rows)", rows.head(limit).collect().to_dicts())


@app.command()
def simulate(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder.", show_default="<workspace>/simulation")
    ] = None,
    workspace: WorkspaceOpt = None,
    stores: Annotated[int | None, typer.Option(help="Number of stores.", show_default="10")] = None,
    items: Annotated[int | None, typer.Option(help="Number of items.", show_default="50")] = None,
    days: Annotated[int | None, typer.Option(help="Number of days.", show_default="730")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.", show_default="2022-01-03")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives the same chain.", show_default="0")
    ] = None,
    freq: Annotated[str | None, typer.Option(help="D (daily, default) or W (weekly, summed from daily).")] = None,
    safety_factor: Annotated[
        float | None, typer.Option(help="z of the safety stock; lower means more stockouts.", show_default="0.75, ~3%")
    ] = None,
    layout: Annotated[
        list[str] | None, typer.Option(help="canonical (default), branch-csv or wide; repeatable.")
    ] = None,
    drift: Annotated[str | None, typer.Option(help="Inject drift: level, promo or seasonality.")] = None,
    drift_start: Annotated[str | None, typer.Option(help="First day of the drift, YYYY-MM-DD.")] = None,
    drift_magnitude: Annotated[float, typer.Option(help="Size of the drift (level: demand factor).")] = 1.3,
) -> None:
    """Simulate a retail chain (demand, promotions, prices, stock, transfers) and write its tables."""
    from shelfcast.data.simulator import SimConfig
    from shelfcast.jobs.simulate import run_simulate

    given = {
        "n_stores": stores,
        "n_items": items,
        "n_days": days,
        "start_date": start,
        "seed": seed,
        "freq": freq,
        "safety_factor": safety_factor,
    }
    spec: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if drift is not None:
        first_day = drift_start or str(model(SimConfig, spec).start_date)
        spec["drift"] = {"kind": drift, "start": first_day, "magnitude": drift_magnitude}
    elif drift_start is not None:
        raise ConfigError("--drift-start needs --drift level|promo|seasonality")
    config = model(SimConfig, spec)
    target = out_dir or settings(workspace=workspace).workspace / "simulation"
    with out.status("simulate") as say:
        report = run_simulate(config, target, layouts=layout or ["canonical"], progress=say)
    out.simulation_summary(report)
