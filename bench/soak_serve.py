"""Soak run of the service: a steady rate for a few minutes, a model reload in the middle, errors and memory.

`shelfcast serve` (one worker, CPU 0) answers `POST /predict` with ids at a
fixed rate (open loop, bench/loadgen.py on CPU 1) for `--seconds`, in
slices of 10 s; the server's resident memory is read after each slice, and
`POST /admin/reload` is sent halfway while the load goes on. Passes when no
request failed (any status but 200, or a connection error), the reload
answered 200, and memory is flat: it grew by less than `--max-growth-mb`
from the first minute to the reload, and from the slice after the reload to
the end. The reload itself is a step (a new snapshot is built beside the old
one and the allocator keeps the pages), reported apart: a leak is a trend.

    uv run python bench/soak_serve.py [--workspace .shelfcast] [--rate 200] [--seconds 180] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_serve import _free_port, _payloads, _rss_mb, _start, _stop, _wait, _workspace
from loadgen import _Connection, open_loop, post
from rich.console import Console
from rich.table import Table

DEFAULT_JSON = Path(__file__).parent / "results" / "soak.json"
SLICE_SECONDS = 10.0
KEY = "soak-key"


async def _reload(port: int) -> tuple[int, float]:
    conn = await _Connection.open("127.0.0.1", port)
    started = time.perf_counter()
    status = await asyncio.wait_for(conn.call(post("/admin/reload", b"", headers={"X-API-Key": KEY})), 300)
    conn.close()
    return status, time.perf_counter() - started


async def _soak(port: int, pid: int, bodies: list[bytes], *, rate: float, seconds: float) -> dict[str, Any]:
    slices = max(2, round(seconds / SLICE_SECONDS))
    rows: list[dict[str, Any]] = []
    reload_task: asyncio.Task[tuple[int, float]] | None = None
    for k in range(slices):
        if k == slices // 2:
            reload_task = asyncio.create_task(_reload(port))
        result = await open_loop("127.0.0.1", port, bodies, rate=rate, seconds=SLICE_SECONDS)
        rows.append({"slice": k, **result.summary(), "rss_mb": round(_rss_mb(pid), 1), "reload": k == slices // 2})
    status, took = await reload_task if reload_task is not None else (0, 0.0)
    return {"slices": rows, "reload_status": status, "reload_seconds": round(took, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, help="A workspace with champions (default: build the demo's).")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    console = Console(width=150)
    with tempfile.TemporaryDirectory(prefix="shelfcast-soak-") as tmp_name:
        tmp = Path(tmp_name)
        workspace = _workspace(args.workspace, tmp).resolve()
        ids, _, facts = _payloads(workspace, 500)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_"))}
        env |= {"SHELFCAST_WORKSPACE": str(workspace), "SHELFCAST_API_KEY": KEY}
        port = _free_port()
        server = _start(
            [sys.executable, "-m", "shelfcast", "serve", "--port", str(port), "--log-level", "warning"],
            env,
            tmp / "server.log",
        )
        try:
            _wait(f"http://127.0.0.1:{port}/ready", server)
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {1})
            outcome = asyncio.run(_soak(port, server.pid, ids, rate=args.rate, seconds=args.seconds))
        finally:
            _stop(server)
    slices = outcome["slices"]
    errors = sum(s["errors"] for s in slices)
    mid = next(s["slice"] for s in slices if s["reload"])
    rss = [s["rss_mb"] for s in slices]
    first = min(int(60 / SLICE_SECONDS), mid - 1)
    before = rss[mid - 1] - rss[first]
    after = rss[-1] - rss[min(mid + 1, len(rss) - 1)]
    step = rss[min(mid + 1, len(rss) - 1)] - rss[mid - 1]
    growth = max(before, after)
    table = Table(title=f"Soak: {args.rate:.0f} req/s for {args.seconds:.0f} s, reload halfway ({facts['model']})")
    for column in ("slice", "requests", "errors", "p50 ms", "p99 ms", "max ms", "RSS MB", ""):
        table.add_column(column, justify="right")
    for s in slices:
        table.add_row(
            f"{s['slice'] * SLICE_SECONDS:.0f}-{(s['slice'] + 1) * SLICE_SECONDS:.0f} s",
            str(s["requests"]),
            str(s["errors"]),
            f"{s['p50_ms']:.2f}",
            f"{s['p99_ms']:.2f}",
            f"{s['max_ms']:.1f}",
            f"{s['rss_mb']:.0f}",
            "reload sent" if s["reload"] else "",
        )
    console.print(table)
    passed = errors == 0 and outcome["reload_status"] == 200 and growth < args.max_growth_mb
    console.print(
        f"errors {errors}; reload answered {outcome['reload_status']} in {outcome['reload_seconds']:.1f} s; "
        f"memory: {before:+.1f} MB from the first minute to the reload, a {step:+.1f} MB step at the reload, "
        f"{after:+.1f} MB from after it to the end (limit {args.max_growth_mb:g} MB each): "
        f"{'PASSED' if passed else 'FAILED'}"
    )
    report = {
        "benchmark": "soak_serve",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": facts | {"rate": args.rate, "seconds": args.seconds},
        **outcome,
        "errors": errors,
        "rss_growth_mb": {
            "before_reload": round(before, 1),
            "reload_step": round(step, 1),
            "after_reload": round(after, 1),
        },
        "passed": passed,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
