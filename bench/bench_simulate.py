"""Benchmark of the retail-chain simulator: time, memory and stockout rate.

Default: 100 stores x 100 items x 1000 days = 10 million store-item-days;
target under 60 s for `simulate()` on 2 cores. Writing the canonical Parquet
tables is timed separately.

    uv run python bench/bench_simulate.py [--stores 100 --items 100 --days 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from shelfcast.data.simulator import SimConfig, simulate

DEFAULT_JSON = Path(__file__).parent / "results" / "simulate.json"
TARGET_SECONDS = 60.0


def _peak_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes.
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1024**2


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    parser.add_argument("--no-write", action="store_true", help="skip timing the canonical Parquet writes")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Simulate once (and write the canonical tables once) and return the measurements."""
    config = SimConfig(seed=args.seed, n_stores=args.stores, n_items=args.items, n_days=args.days)
    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    result = simulate(config)
    seconds = time.perf_counter() - started
    rss_peak = _peak_rss_mb()
    rows = config.n_stores * config.n_items * config.n_days
    write_seconds: float | None = None
    parquet_mb: float | None = None
    if not args.no_write:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            for name, frame in result.tables().items():
                frame.write_parquet(Path(tmp) / f"{name}.parquet")
            write_seconds = time.perf_counter() - started
            parquet_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1024**2
    return {
        "benchmark": "simulate",
        "stores": config.n_stores,
        "items": config.n_items,
        "days": config.n_days,
        "store_item_days": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mb": round(rss_peak, 1),
        "rss_before_mb": round(rss_before, 1),
        "stockout_rate": round(result.stockout_rate, 4),
        "censored_rate": round(result.censored_rate, 4),
        "fill_rate": round(result.fill_rate, 4),
        "movements": result.movements.height,
        "write_canonical_seconds": None if write_seconds is None else round(write_seconds, 3),
        "canonical_parquet_mb": None if parquet_mb is None else round(parquet_mb, 1),
        "target_seconds": TARGET_SECONDS,
        "within_target": seconds < TARGET_SECONDS,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "polars": pl.__version__,
        "config": config.model_dump(mode="json"),
    }


def _table(results: dict[str, Any]) -> Table:
    table = Table(title="shelfcast simulate benchmark")
    for column in ("rows", "seconds", "rows/s", "peak RSS MB", "stockout rate", "write s"):
        table.add_column(column, justify="right")
    write = results["write_canonical_seconds"]
    table.add_row(
        f"{results['store_item_days']:,}",
        f"{results['seconds']:.1f}",
        f"{results['rows_per_second']:,}",
        f"{results['peak_rss_mb']:,.0f}",
        f"{results['stockout_rate']:.2%}",
        "-" if write is None else f"{write:.1f}",
    )
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON."""
    logging.basicConfig(level=logging.WARNING)
    args = _parse(argv)
    results = run(args)
    console = Console()
    console.print(_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {args.json}")
    return 0 if results["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
