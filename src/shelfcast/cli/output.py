"""The CLI's output layer: Rich tables and one-line messages. Nothing else prints."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shelfcast.jobs.ingest import IngestReport
from shelfcast.jobs.simulate import SimulateReport
from shelfcast.jobs.validate import ValidationReport
from shelfcast.models.backtest import DemandBacktest
from shelfcast.models.risk import StockoutBacktest

if TYPE_CHECKING:
    # Annotations only: importing these at run time would load MLflow for every command.
    from shelfcast.io.registry import VersionInfo
    from shelfcast.jobs.score import ScoreReport
    from shelfcast.jobs.train import TrainReport
    from shelfcast.workflows.demo import DemoReport

console = Console()
err_console = Console(stderr=True)


def error(message: str) -> None:
    # Escaped: a message may hold brackets (a TOML section, a list) that Rich would read as markup and drop.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def info(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True, markup=False)


def note(message: str) -> None:
    """A one-line notice on stderr that does not stop the command (e.g. a deprecated flag)."""
    err_console.print(f"note: {message}", highlight=False, soft_wrap=True, markup=False)


class _StepLines:
    """Progress as one plain line per step, for logs (CI, a pipe) where a live bar shows nothing.

    On stdout, with the results: stderr keeps to warnings and the one-line error, and a log that times its lines
    (as CI's do) says how long each step took.
    """

    def __init__(self, description: str) -> None:
        self.description = description
        self.last: str | None = None

    def __call__(self, label: str, done: int | None = None, total: int | None = None) -> None:
        if label == self.last:
            return
        self.last = label
        count = f" ({done}/{total})" if total else ""
        console.print(f"{self.description}: {label}{count}", highlight=False, markup=False, soft_wrap=True)


def command(text: str) -> None:
    """A command for the user to copy: on one line whatever the terminal's width, so that it pastes whole."""
    console.print(f"  {text}", soft_wrap=True, highlight=False, markup=False)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar fed by jobs through `(label, done, total)` callbacks; a line per step when not on a terminal."""
    if not err_console.is_terminal:
        yield _StepLines(description)
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, description=f"{description}: {label}", completed=done, total=total)

        yield update


@contextmanager
def status(description: str) -> Iterator[Callable[[str], None]]:
    """A spinner whose text jobs update with one-line messages; off a terminal, a line to start and one per message."""
    if not err_console.is_terminal:
        console.print(f"{description} ...", highlight=False, markup=False, soft_wrap=True)
        yield _StepLines(description)
        return
    with err_console.status(description) as spinner:

        def update(message: str) -> None:
            spinner.update(f"{description}: {message}")

        yield update


def _relative(source: str, root: str) -> str:
    """A part's file relative to the ingested folder (the table title shows the folder)."""
    prefix = root.rstrip("/") + "/"
    return source.removeprefix(prefix) if source.startswith(prefix) else source


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def ingest_summary(report: IngestReport) -> None:
    parts = Table(title=f"Ingest {report.source} <- {report.path}", title_justify="left")
    parts.add_column("file", overflow="fold")
    for col in ("table", "read", "kept", "quarantined", "merged"):
        parts.add_column(col, justify="left" if col == "table" else "right")
    for p in report.parts:
        name = _relative(p.source, report.path)
        label = name + (" (derived)" if p.derived else "") + ("" if p.stored else " (checked, not stored)")
        parts.add_row(label, p.table, _n(p.read), _n(p.kept), _n(p.quarantined), _n(p.merged))
    console.print(parts)
    tables_summary(report.tables)
    if report.quarantine_by_rule:
        rules = ", ".join(f"{rule} {n:,}" for rule, n in report.quarantine_by_rule.items())
        console.print(f"quarantined rows by rule: {rules}  (see `shelfcast quarantine`)")
    for table, gap in report.gaps.items():
        if gap.series_with_gaps:
            console.print(
                f"gaps in {table}: {gap.series_with_gaps:,} of {gap.series:,} series miss "
                f"{gap.missing_periods:,} period(s), e.g. {gap.examples}"
            )
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(f"done in {report.seconds:.1f}s")


def tables_summary(tables: Mapping[str, Any], *, title: str = "Lake tables") -> None:
    table = Table(title=title, title_justify="left")
    for col in ("table", "rows", "series", "from", "to", "freq", "origin"):
        table.add_column(col, justify="right" if col in ("rows", "series") else "left")
    for name, info in tables.items():
        get = info.get if isinstance(info, dict) else lambda k, i=info: getattr(i, k)
        table.add_row(
            name,
            _n(get("rows")),
            _n(get("series")),
            get("date_min") or "",
            get("date_max") or "",
            get("frequency") or "",
            get("origin") or "",
        )
    console.print(table)


def validation_summary(report: ValidationReport) -> None:
    table = Table(title="Validation of the lake", title_justify="left")
    for col in ("table", "rows", "status", "gaps"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for check in report.checks:
        status = "[green]ok[/]" if check.ok else "[red]" + "; ".join(check.problems) + "[/]"
        gaps = ""
        if check.gaps is not None:
            gaps = (
                f"{check.gaps.series_with_gaps:,}/{check.gaps.series:,} series, {check.gaps.missing_periods:,} missing"
            )
        table.add_row(check.table, _n(check.rows), status, gaps)
    console.print(table)
    console.print(f"quarantined rows: {report.quarantine_rows:,}")


def frame_table(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    if not rows:
        console.print(f"{title}: none")
        return
    for col in rows[0]:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def simulation_summary(report: SimulateReport) -> None:
    table = Table(title=f"Simulated chain in {report.out_dir}", title_justify="left")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, path in report.paths.items():
        table.add_row(str(path), _n(report.rows.get(name)))
    console.print(table)
    console.print(
        f"stockout rate {report.stockout_rate:.1%} of store-item-days, fill rate {report.fill_rate:.1%}; "
        f"simulated in {report.simulate_seconds:.1f}s, written in {report.write_seconds:.1f}s"
    )


def score_summary(report: ScoreReport) -> None:
    table = Table(title=f"Scored {report.scored_on} into {report.store}", title_justify="left")
    table.add_column("")
    table.add_column("value", overflow="fold")
    alerts = "n/a" if report.alerts is None else f"{report.alerts:,} of {report.series:,} series"
    run = f", run {report.run_id}" if report.run_id else ""
    for name, value in (
        ("series", f"{report.series:,}"),
        ("rows", f"{report.rows:,} ({report.periods} from {report.cutoff})"),
        ("demand model", f"{report.model_name}, version {report.model_version}{run}"),
        ("stockout model", "none" if report.stockout_version is None else f"version {report.stockout_version}"),
        ("stockout alerts", alerts),
        ("written to", report.location),
        ("engine", "Spark" if report.engine == "spark" else "local"),
        ("time", f"model {report.model_seconds:.1f}s, write {report.write_seconds:.1f}s"),
    ):
        table.add_row(name, value)
    console.print(table)
    if report.note:
        console.print(f"note: {report.note}")


def demo_summary(report: DemoReport) -> None:
    sim, ing, val = report.simulation, report.ingest, report.validation
    console.rule("shelfcast demo")
    tables_summary(ing.tables, title=f"Lake in {report.workspace / 'lake'}")
    read, kept = ing.total("read"), ing.total("kept")
    quarantined, merged = ing.total("quarantined"), ing.total("merged")
    console.print(
        f"rows read {read:,} = kept {kept:,} + quarantined {quarantined:,} + merged {merged:,}; "
        f"stockout rate {sim.stockout_rate:.1%} of store-item-days (sales censored by stock)"
    )
    rules = ", ".join(f"{rule} {n}" for rule, n in ing.quarantine_by_rule.items()) or "none"
    console.print(f"the demo planted {report.planted} bad rows in the sales file; quarantined by rule: {rules}")
    state = "[green]all tables pass[/]" if val.ok else "[red]problems found (see `shelfcast validate`)[/]"
    console.print(f"validation: {state}; quarantined rows: {val.quarantine_rows:,}")
    ws = report.workspace
    commands = [f"shelfcast info -w {ws}", f"shelfcast validate -w {ws}", f"shelfcast quarantine -w {ws}"]
    if report.pipeline is not None:
        _pipeline_part(report)
        commands = [
            f"mlflow ui --backend-store-uri {report.tracking_uri}",
            f"shelfcast models list -w {ws}",
            f"shelfcast score -w {ws}",
            f"shelfcast dashboard -w {ws}   (then open http://127.0.0.1:8501)",
            f"shelfcast serve -w {ws}   (then http://127.0.0.1:8000/docs)",
            f"shelfcast monitor -w {ws}",
            f"shelfcast retrain -w {ws} --dry-run",
            f"shelfcast pipeline run -w {ws}",
            *commands,
        ]
    console.print(f"finished in {report.seconds:.1f}s. Look further with:")
    for cmd in commands:
        command(f"uv run {cmd}")
    if report.pipeline is not None and report.last_date is not None:
        week = report.last_date - dt.timedelta(days=7)
        console.print("live sales (Redis at the `redis_url` setting): the last week replayed as events, then served:")
        for cmd in (
            f"shelfcast stream seed -w {ws} --through {week}",
            f"shelfcast stream produce -w {ws} --from-lake --start {week + dt.timedelta(days=1)}",
            f"shelfcast stream consume -w {ws} --until-idle",
            f"shelfcast stream status -w {ws}",
            f"SHELFCAST_LIVE__SERVE=true shelfcast serve -w {ws}   (then POST /predict: `source: live`)",
        ):
            command(cmd if cmd.startswith("SHELFCAST_") else f"uv run {cmd}")


def _pipeline_part(report: DemoReport) -> None:
    """Models against their baselines, the champions, and what scoring wrote."""
    pipeline = report.pipeline
    assert pipeline is not None
    table = Table(title="Models (backtest, mean over windows)", title_justify="left")
    for col in ("model", "metric", "score", "best baseline", "gates", "champion"):
        table.add_column(col, overflow="fold")
    for task, trained in pipeline.trained.items():
        promotion = pipeline.promotions.get(task)
        metric = "wape" if task == "demand" else "pr_auc"
        values = promotion.gate.values if promotion else {}
        baseline = values.get(f"{metric}.best_baseline")
        verdict = "-" if promotion is None else "[green]passed[/]" if promotion.gate.passed else "[red]refused[/]"
        champion = f"v{trained.version}" if promotion and promotion.promoted else "unchanged"
        table.add_row(
            f"{task} ({trained.candidate})",
            metric,
            f"{trained.scores.get(metric, float('nan')):.4f}",
            "-" if baseline is None else f"{baseline:.4f}",
            verdict,
            champion,
        )
    console.print(table)
    for step, why in pipeline.skipped.items():
        console.print(f"{step}: skipped ({why})")
    score = pipeline.score
    if score is None:
        return
    alerts = "no stockout risk" if score.alerts is None else f"{score.alerts:,} stockout alerts"
    console.print(
        f"scored {score.series:,} series x {score.periods} from {score.cutoff} with {score.model_name} "
        f"v{score.model_version}: {alerts}; predictions in {score.location}"
    )
    if report.top_alerts is not None and report.top_alerts.height:
        top = Table(title="Riskiest shelves (next 7 days)", title_justify="left")
        for col in ("store", "item", "risk", "order now", "reorder point"):
            top.add_column(col, justify="left" if col in ("store", "item") else "right")
        for row in report.top_alerts.iter_rows(named=True):
            order = row["order_quantity"]
            top.add_row(
                row["store_id"],
                row["item_id"],
                f"{row['stockout_risk']:.2f}",
                "-" if order is None else f"{order:,.0f}",
                f"{row['reorder_point']:,.0f}",
            )
        console.print(top)
    if pipeline.features is not None:
        console.print(f"features at the cutoff in {pipeline.features.path}")
    if pipeline.monitor is not None:
        verdict = "[red]ALERT[/]" if pipeline.monitor.alert else "no alert"
        console.print(f"monitoring: {verdict}; report in {pipeline.monitor.report_path}")


# The table keeps to a terminal's width; the JSON (--json) has every metric.
_SHOWN = ("wape", "mae", "rmse", "mase", "bias", "wmae", "coverage_80")


_STOCKOUT_SHOWN = ("pr_auc", "roc_auc", "f1", "precision", "recall", "precision_at_k", "brier")


def backtest_summary(result: DemandBacktest | StockoutBacktest, *, task: str) -> None:
    overall = result.metrics.filter(result.metrics["window"] == "all")
    primary = ("wape", False) if task == "demand" else ("pr_auc", True)
    overall = overall.sort(primary[0], descending=primary[1], nulls_last=True)
    cutoffs = ", ".join(str(c) for c in result.cutoffs)
    table = Table(title=f"Backtest ({task}), {len(result.cutoffs)} window(s), cutoffs {cutoffs}", title_justify="left")
    table.add_column("model", no_wrap=True)
    shown = [c for c in (_SHOWN if task == "demand" else _STOCKOUT_SHOWN) if c in overall.columns]
    for col in shown:
        table.add_column(col, justify="right")
    for row in overall.iter_rows(named=True):
        name = row["model"] + (" *" if row["model"] == result.selected else "")
        values = ["" if row[c] is None or row[c] != row[c] else f"{row[c]:.3f}" for c in shown]
        table.add_row(name, *values)
    console.print(table)
    skipped = 0
    if "mape_skipped_zeros" in overall.columns:
        skipped = int(overall.select(pl.col("mape_skipped_zeros").fill_nan(0).max()).item() or 0)
    if skipped:
        console.print(f"MAPE (in the JSON) skips {skipped:,} zero actuals per model; WAPE does not.")
    segments = getattr(result, "segments", None)
    if segments is not None and task == "demand":
        velocity = segments.filter((pl.col("dimension") == "velocity") & (pl.col("model") == result.selected))
        parts = [f"{r['segment']} {r['wape']:.3f}" for r in velocity.iter_rows(named=True)]
        console.print(
            f"WAPE of {result.selected} by sales velocity: {', '.join(parts)} (stores and categories in --json)"
        )
    if task == "demand":
        console.print(
            f"* selected: {result.selected}. coverage_80 is scored from the second window on "
            "(intervals calibrated on earlier windows only)."
        )
    else:
        console.print(
            f"* selected: {result.selected}. F1, precision and recall use each window's threshold, chosen on "
            "origins before its cutoff; precision_at_k alerts the riskiest 5 %."
        )


def selection_summary(decision: Mapping[str, Any], *, top: int = 6) -> None:
    """The selection's per-window scores (best candidates first), the choice and its reason."""
    metric = str(decision["metric"])
    cutoffs = list(decision["cutoffs"])
    overall = {m: v for m, v in decision["overall"].items() if v is not None and not math.isnan(v)}
    ranked = sorted(overall, key=lambda m: overall[m])
    shown = ranked[:top]
    if decision["candidate"] not in shown:
        shown.append(decision["candidate"])
    table = Table(title=f"Selection by {metric} on {len(cutoffs)} window(s)", title_justify="left")
    table.add_column("candidate", no_wrap=True)
    for cutoff in cutoffs:
        table.add_column(f"from {cutoff}", justify="right")
    table.add_column("all", justify="right")
    for model in shown:
        per = decision["per_window"].get(model, {})
        values = [per.get(str(i + 1)) for i in range(len(cutoffs))]
        name = model + (" *" if model == decision["candidate"] else "")
        table.add_row(
            name, *("" if v is None else f"{v:.4g}" for v in values), f"{overall.get(model, float('nan')):.4g}"
        )
    console.print(table)
    weight = decision.get("blend_weight")
    blend = f"; blend weight of the GBM {weight:.2f} (fitted on the windows)" if weight is not None else ""
    console.print(f"* chosen: {decision['candidate']}: {decision['reason']}{blend}", soft_wrap=True)
    if decision.get("windows_note"):
        console.print(f"windows: {decision['windows_note']}", soft_wrap=True)


def train_summary(report: TrainReport) -> None:
    if report.selection is not None:
        selection_summary(report.selection)
    table = Table(title=f"Trained {report.task} model ({report.candidate})", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("run", f"{report.run.run_id} (experiment {report.run.experiment_id})")
    table.add_row("version", f"{report.task} v{report.version}")
    # Two figures of one backtest, labelled: the scores pool every window's rows; the gates average the windows.
    for name, value in report.scores.items():
        table.add_row(f"{name} (backtest, windows pooled)", f"{value:.4f}")
    promotion = report.promotion
    if promotion is None:
        table.add_row("gates", "not run yet")
    else:
        for name, value in promotion.gate.values.items():
            if name in report.scores:
                table.add_row(f"{name} (mean of the windows, as the gates compare)", f"{value:.4f}")
        verdict = "[green]passed[/]" if promotion.gate.passed else "[red]refused[/]"
        table.add_row("gates", f"{verdict}: {promotion.gate.reason}")
        if promotion.promoted:
            before = f" (was v{promotion.previous})" if promotion.previous else ""
            table.add_row("champion", f"v{report.version}{before}; copied to {promotion.cache}")
        else:
            table.add_row("champion", "unchanged; the new version stays `challenger`")
    table.add_row("tracking", report.run.tracking_uri)
    table.add_row("took", f"{report.seconds:.1f}s")
    console.print(table)


def pipeline_summary(summary: dict[str, Any]) -> None:
    """The Prefect flow's summary: what each step did."""
    table = Table(title="Pipeline run", title_justify="left", show_header=False)
    table.add_column("step")
    table.add_column("result", overflow="fold")
    if summary.get("live_compaction"):
        table.add_row("compact live", str(summary["live_compaction"]))
    if summary.get("ingested_rows") is not None:
        table.add_row("ingest", f"{summary['ingested_rows']:,} rows kept")
    table.add_row("validate", "ok" if summary.get("validation_ok") else "problems")
    table.add_row("features", f"{summary.get('feature_rows') or 0:,} series")
    if summary.get("delta_tables"):
        versions = ", ".join(f"{name} v{version}" for name, version in sorted(summary["delta_tables"].items()))
        table.add_row("Delta tables", versions)
    for task, run_id in summary.get("runs", {}).items():
        verdict = "promoted" if summary["promoted"].get(task) else "refused"
        table.add_row(
            f"train {task}",
            f"v{summary['versions'][task]} (MLflow run {run_id}); {verdict}: {summary['gates'][task]}",
        )
    for step, why in summary.get("skipped", {}).items():
        table.add_row(step, f"skipped: {why}")
    if summary.get("scored_rows") is not None:
        alerts = summary.get("alerts")
        table.add_row("score", f"{summary['scored_rows']:,} rows" + (f", {alerts:,} alerts" if alerts else ""))
    table.add_row("Prefect flow run", str(summary.get("prefect_flow_run_id", "")))
    table.add_row("took", f"{summary.get('seconds', 0):.1f}s")
    console.print(table)


def versions_table(title: str, versions: list[VersionInfo]) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("model", "version", "aliases", "gate", "run", "created"):
        table.add_column(col, overflow="fold")
    for v in versions:
        created = dt.datetime.fromtimestamp(v.created / 1000).isoformat(sep=" ", timespec="seconds")
        gate = v.tags.get("gate.passed", "")
        table.add_row(v.name, v.version, ", ".join(v.aliases), gate, v.run_id, created)
    console.print(table)


def version_detail(info: VersionInfo) -> None:
    versions_table(f"{info.name} v{info.version}", [info])
    tags = Table(title="Tags", title_justify="left")
    tags.add_column("tag")
    tags.add_column("value", overflow="fold")
    for key, value in sorted(info.tags.items()):
        tags.add_row(key, value)
    console.print(tags)
    console.print(f"source: {info.source}")
