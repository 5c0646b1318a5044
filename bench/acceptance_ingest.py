"""Acceptance run: ingest the real retail datasets and check that every row is accounted for.

    uv run python bench/acceptance_ingest.py [DATA_DIR] [--json bench/results/acceptance_ingest.json]

DATA_DIR defaults to ../shared/data next to the repository. Each dataset is
ingested into a fresh temporary workspace in its own process, so the peak
memory reported is that dataset's alone. Exits 1 when a dataset fails or its
counts do not add up (read == kept + quarantined + merged for every part).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import platform
import resource
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_JSON = ROOT / "bench" / "results" / "acceptance_ingest.json"
# The generic source on Walmart's train file: the same sales and holidays the
# dedicated adapter reads, so the two can be compared.
GENERIC_WALMART = {
    "columns": {"date": "Date", "store_id": "Store", "item_id": "Dept", "units": "Weekly_Sales"},
    "calendar": {"IsHoliday": "holiday"},
}


@dataclass(frozen=True)
class Run:
    """One ingest to perform: a label, a source name, a path under DATA_DIR, and generic mapping if any."""

    label: str
    source: str
    relative: str
    mapping: dict[str, Any] | None = None


@dataclass
class Outcome:
    """What one ingest did (or why it failed)."""

    label: str
    source: str
    path: str
    ok: bool = False
    skipped: str | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    parts: list[dict[str, Any]] = field(default_factory=list)
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def total(self, what: str) -> int:
        return sum(int(p[what]) for p in self.parts)


RUNS = (
    Run("store-item", "store-item", "store_item_demand/train.parquet"),
    Run("walmart", "walmart", "walmart_store_sales"),
    Run("freshretailnet", "freshretailnet", "freshretailnet_50k"),
    Run("walmart (generic)", "generic", "walmart_store_sales/train.parquet", GENERIC_WALMART),
)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest_one(run: Run, data_dir: Path) -> Outcome:
    """Ingest one dataset into a fresh workspace (runs in a child process)."""
    path = data_dir / run.relative
    outcome = Outcome(run.label, run.source, str(path))
    if not path.exists():
        outcome.skipped = f"{path} not found"
        return outcome
    options: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        if run.mapping is not None:
            try:
                from shelfcast.data.sources.generic import load_mapping
            except ModuleNotFoundError as exc:
                # Only the generic module itself being absent is a skip; a broken import elsewhere is a failure.
                if exc.name != "shelfcast.data.sources.generic":
                    raise
                outcome.skipped = "shelfcast.data.sources.generic is not there yet"
                return outcome
            options["mapping"] = load_mapping(**run.mapping)
        from shelfcast.data.sources import get_source
        from shelfcast.jobs.ingest import run_ingest
        from shelfcast.settings import Settings

        with tempfile.TemporaryDirectory(prefix="shelfcast-acceptance-") as workspace:
            report = run_ingest(
                get_source(run.source, **options),
                path,
                settings=Settings(workspace=Path(workspace)),
                today=dt.date.today(),
                now=dt.datetime.now(dt.UTC),
            )
    except Exception as exc:  # reported in the table and the JSON, and fails the run
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.traceback = traceback.format_exc()
        return outcome
    finally:
        outcome.wall_seconds = time.perf_counter() - started
        outcome.peak_rss_mb = _peak_rss_mb()
    outcome.seconds = report.seconds
    outcome.parts = [asdict(p) for p in report.parts]
    outcome.quarantine_by_rule = dict(report.quarantine_by_rule)
    outcome.tables = {name: info.rows for name, info in report.tables.items()}
    outcome.notes = list(report.notes)
    outcome.ok = all(p.read == p.kept + p.quarantined + p.merged for p in report.parts)
    if not outcome.ok:
        outcome.error = "accounting failed: read != kept + quarantined + merged"
    return outcome


def run_isolated(run: Run, data_dir: Path) -> Outcome:
    """`ingest_one` in a fresh process, so peak memory is per dataset and nothing leaks between runs."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(ingest_one, run, data_dir).result()


def _n(value: int) -> str:
    return f"{value:,}"


def parts_table(outcome: Outcome) -> Table:
    title = f"{outcome.label}: {outcome.path}"
    table = Table(title=title, title_justify="left")
    # The job times the whole ingest, not each part, so time shows on the total row.
    for col in ("file", "table", "read", "kept", "quarantined", "merged", "time (s)", "ok"):
        table.add_column(col, justify="left" if col in ("file", "table") else "right")
    for p in outcome.parts:
        ok = p["read"] == p["kept"] + p["quarantined"] + p["merged"]
        name = Path(p["source"]).name + (" (derived)" if p["derived"] else "")
        row = (_n(p["read"]), _n(p["kept"]), _n(p["quarantined"]), _n(p["merged"]))
        table.add_row(name, p["table"], *row, "", "yes" if ok else "[red]NO[/]")
    totals = (_n(outcome.total("read")), _n(outcome.total("kept")))
    rest = (_n(outcome.total("quarantined")), _n(outcome.total("merged")))
    table.add_row("[b]total[/]", "", *totals, *rest, f"{outcome.seconds:.2f}", "yes" if outcome.ok else "[red]NO[/]")
    return table


def summary_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="Acceptance: ingest of the real datasets", title_justify="left")
    for col in ("dataset", "read", "kept", "quarantined", "merged", "time (s)", "peak MB", "result"):
        table.add_column(col, justify="left" if col in ("dataset", "result") else "right")
    for o in outcomes:
        if o.skipped:
            table.add_row(o.label, "", "", "", "", "", "", f"[yellow]skipped[/]: {o.skipped}")
            continue
        result = "[green]ok[/]" if o.ok else f"[red]FAILED[/]: {o.error}"
        counts = (_n(o.total("read")), _n(o.total("kept")), _n(o.total("quarantined")), _n(o.total("merged")))
        table.add_row(o.label, *counts, f"{o.seconds:.2f}", f"{o.peak_rss_mb:,.0f}", result)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA, help="folder of the datasets")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = parser.parse_args(argv)
    # Wide enough for the counts when the output goes to a file or a CI log.
    console = Console(width=None if sys.stdout.isatty() else 140)
    data_dir: Path = args.data_dir.resolve()
    if not data_dir.is_dir():
        console.print(f"[red]error:[/] data folder {data_dir} not found; pass DATA_DIR")
        return 2

    outcomes: list[Outcome] = []
    for run in RUNS:
        with console.status(f"ingesting {run.label} ..."):
            outcome = run_isolated(run, data_dir)
        outcomes.append(outcome)
        if outcome.parts:
            console.print(parts_table(outcome))
        if outcome.quarantine_by_rule:
            rules = ", ".join(f"{rule} {n:,}" for rule, n in outcome.quarantine_by_rule.items())
            console.print(f"  quarantine rules: {rules}")
        if outcome.error:
            console.print(f"  [red]{outcome.error}[/]")
            if outcome.traceback:
                console.print(outcome.traceback, markup=False, highlight=False)
    console.print(summary_table(outcomes))

    failed = [o.label for o in outcomes if not o.skipped and not o.ok]
    result = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir),
        "python": platform.python_version(),
        "polars": _polars_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "ok": not failed,
        "datasets": [asdict(o) for o in outcomes],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"results written to {args.json}")
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}")
        return 1
    return 0


def _polars_version() -> str:
    import polars

    return str(polars.__version__)


if __name__ == "__main__":
    sys.exit(main())
