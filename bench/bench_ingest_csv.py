"""Ingest a large CSV and measure time and peak memory against the file size.

Usage: uv run python bench/bench_ingest_csv.py [--rows 20000000] [--json bench/results/ingest_csv.json]

Writes a store-item CSV (with a few bad rows), then runs, each in a fresh
process so peak RSS is its own:
- shelfcast: `shelfcast ingest FILE --source store-item` (lazy scan, streamed staging);
- peer: the naive eager route a notebook takes, `polars.read_csv` of the whole
  file with inferred types (no validation, no quarantine).
Prints a table and writes JSON with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: int, *, chunk: int = 2_000_000) -> None:
    """A store-item CSV of `rows` rows: 50 stores x 500 items over consecutive days, 1 bad row in 100k."""
    rng = np.random.default_rng(0)
    series = 50 * 500
    start = np.datetime64("2015-01-01")
    with path.open("w") as fh:
        fh.write("date,store,item,sales\n")
    for offset in range(0, rows, chunk):
        n = min(chunk, rows - offset)
        idx = np.arange(offset, offset + n)
        frame = pl.DataFrame(
            {
                "date": (start + (idx // series).astype("timedelta64[D]")).astype(str),
                "store": (idx % series) // 500 + 1,
                "item": idx % 500 + 1,
                "sales": rng.poisson(20, n).astype(str),
            }
        )
        bad = idx % 100_000 == 7
        frame = frame.with_columns(
            pl.when(pl.Series(bad)).then(pl.lit("n/a")).otherwise(pl.col("sales")).alias("sales")
        )
        with path.open("a") as fh:
            frame.write_csv(fh, include_header=False)


_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], capture_output=True, check=False).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)


def run_measured(args: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of a command, measured through its own parent process."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    peak_kb, code = proc.stdout.split()
    return seconds, int(peak_kb) / 1024, int(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "ingest_csv.json")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "train.csv"
        t0 = time.perf_counter()
        write_csv(csv, opts.rows)
        size_mb = csv.stat().st_size / 1e6
        print(f"wrote {opts.rows:,} rows ({size_mb:,.0f} MB) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        ours = run_measured(
            [sys.executable, "-m", "shelfcast", "ingest", str(csv), "--source", "store-item", "-w", f"{tmp}/ws"]
        )
        peer_code = f"import polars as pl; df = pl.read_csv({str(csv)!r}); print(df.height)"
        peer = run_measured([sys.executable, "-c", peer_code])
    results = {
        "rows": opts.rows,
        "file_mb": round(size_mb, 1),
        "shelfcast": {"seconds": round(ours[0], 2), "peak_rss_mb": round(ours[1]), "exit": ours[2]},
        "peer_polars_read_csv": {"seconds": round(peer[0], 2), "peak_rss_mb": round(peer[1]), "exit": peer[2]},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    results["ratio_time_vs_peer"] = round(ours[0] / peer[0], 2)
    results["ratio_rss_vs_file"] = round(ours[1] / size_mb, 2)
    table = Table(title=f"Ingest of a {size_mb:,.0f} MB CSV ({opts.rows:,} rows)")
    for col in ("run", "seconds", "peak RSS MB", "RSS / file size", "validates + quarantines"):
        table.add_column(col, justify="right" if col != "run" else "left")
    table.add_row("shelfcast ingest", f"{ours[0]:.1f}", f"{ours[1]:,.0f}", f"{ours[1] / size_mb:.2f}", "yes")
    table.add_row("polars.read_csv (peer)", f"{peer[0]:.1f}", f"{peer[1]:,.0f}", f"{peer[1] / size_mb:.2f}", "no")
    Console().print(table)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(results, indent=2) + "\n")
    if ours[2] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
