"""Load benchmark of the service: single-row stockout risk, `shelfcast serve` vs `mlflow models serve`.

Setup (not timed): a workspace with demand and stockout champions, the one
`make demo` builds (`shelfcast demo` is run into a temporary folder unless
`--workspace` names one). Each server then runs alone, one worker, pinned
to CPU 0; the load generator (bench/loadgen.py, raw asyncio HTTP/1.1 with
keep-alive) runs in this process on CPU 1.

- shelfcast: `POST /predict` with ids (`{"store_id", "item_id"}`): the
  server picks the series' row of features computed from the lake and runs
  the champion; series cycle over every one in the workspace.
- MLflow: `POST /invocations` on the same registered champion (the pyfunc
  shelfcast logs), one row of the same features per request as
  `dataframe_split`; the features of each series are computed here first,
  since `mlflow models serve` cannot compute them from ids.

For each: a closed loop (4 connections back to back) gives the throughput;
an open loop at a fixed rate (300 requests/s; for MLflow at most 80 % of its
throughput, since a rate above it only measures a growing queue) gives
latency percentiles from each request's scheduled time.

    uv run python bench/bench_serve.py [--workspace .shelfcast] [--rate 300] [--seconds 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from loadgen import Result, closed_loop, open_loop, post
from rich.console import Console
from rich.table import Table

DEFAULT_JSON = Path(__file__).parent / "results" / "serve.json"
TARGET_P99_MS = 5.0
TARGET_RATIO = 5.0
SERVER_CPU, LOADGEN_CPU = 0, 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds:.0f} s")


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    def pin() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {SERVER_CPU})

    # No thread runs in this process when servers start, which is what makes preexec_fn unsafe.
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=pin)  # noqa: PLW1509


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _workspace(given: Path | None, tmp: Path) -> Path:
    if given is not None:
        return given
    workspace = tmp / "ws"
    print(f"building the demo workspace in {workspace} (about 90 s) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "shelfcast", "demo", "--workspace", str(workspace)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return workspace


def _payloads(workspace: Path, limit: int) -> tuple[list[bytes], list[bytes], dict[str, Any]]:
    """(/predict bodies by ids, /invocations bodies of the same series' features, facts) for up to `limit` series."""
    import polars as pl

    from shelfcast.io.champion import load_champion
    from shelfcast.io.lake import Lake
    from shelfcast.io.model_data import load_model_data
    from shelfcast.io.model_files import load_stockout
    from shelfcast.models.stockout import stockout_features, window_steps
    from shelfcast.settings import Settings

    settings = Settings(workspace=workspace)
    champion = load_champion(settings, "stockout")
    model = load_stockout(champion.folder)
    data = load_model_data(Lake(workspace))
    last = data.last_date
    window = window_steps(data.panel, model.definition.window)
    rows = stockout_features(data.panel.as_known_at(last), model.spec, [last], window=window).head(limit)
    columns = json.loads((champion.folder.parent.parent / "input_example.json").read_text())["columns"]
    frame = rows.select(columns).with_columns(pl.col(pl.Date).cast(pl.String))
    ids = [
        post("/predict", json.dumps({"store_id": s, "item_id": i}).encode())
        for s, i in rows.select("store_id", "item_id").iter_rows()
    ]
    mlflow = [
        post("/invocations", json.dumps({"dataframe_split": {"columns": columns, "data": [list(r)]}}).encode())
        for r in frame.iter_rows()
    ]
    facts = {"series": rows.height, "features": len(columns), "model": f"{champion.name} v{champion.version}"}
    return ids, mlflow, facts


def _measure(port: int, bodies: list[bytes], *, rate: float, seconds: float) -> dict[str, Any]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {LOADGEN_CPU})
    asyncio.run(closed_loop("127.0.0.1", port, bodies, seconds=2.0))  # warm-up
    closed: Result = asyncio.run(closed_loop("127.0.0.1", port, bodies, seconds=seconds, connections=4))
    at = min(rate, 0.8 * closed.throughput)
    opened: Result = asyncio.run(open_loop("127.0.0.1", port, bodies, rate=at, seconds=seconds))
    return {"closed_loop": closed.summary(), "open_loop": {"rate_rps": round(at, 1), **opened.summary()}}


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, help="A workspace with champions (default: build the demo's).")
    parser.add_argument("--rate", type=float, default=300.0, help="Open-loop rate, requests per second.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of each measured run.")
    parser.add_argument("--series", type=int, default=500, help="Series the requests cycle over.")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    console = Console(width=150)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="shelfcast-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        workspace = _workspace(args.workspace, tmp).resolve()
        ids, features, facts = _payloads(workspace, args.series)
        bin_dir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_"))}
        env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"  # `mlflow models serve` execs `uvicorn` from PATH
        env["SHELFCAST_WORKSPACE"] = str(workspace)
        results: dict[str, Any] = {}

        port = _free_port()
        server = _start(
            [
                sys.executable,
                "-m",
                "shelfcast",
                "serve",
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            env,
            tmp / "shelfcast.log",
        )
        try:
            started = time.perf_counter()
            _wait(f"http://127.0.0.1:{port}/ready", server)
            startup = time.perf_counter() - started
            rss_before = _rss_mb(server.pid)
            results["shelfcast"] = _measure(port, ids, rate=args.rate, seconds=args.seconds)
            results["shelfcast"] |= {
                "startup_s": round(startup, 1),
                "rss_mb": [round(rss_before, 1), round(_rss_mb(server.pid), 1)],
            }
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                metrics = answer.read().decode()
            results["shelfcast"]["server_5xx"] = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("shelfcast_request_errors_total") and 'kind="server"' in line
            )
        finally:
            _stop(server)

        port = _free_port()
        env_ml = env | {"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow' / 'mlflow.db'}"}
        ml = _start(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                "models:/shelfcast-stockout@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            env_ml,
            tmp / "mlflow.log",
        )
        try:
            started = time.perf_counter()
            _wait(f"http://127.0.0.1:{port}/ping", ml)
            results["mlflow"] = _measure(port, features, rate=args.rate, seconds=args.seconds)
            results["mlflow"]["startup_s"] = round(time.perf_counter() - started, 1)
        finally:
            _stop(ml)
        if args.workspace is None:
            shutil.rmtree(workspace, ignore_errors=True)

    ours, theirs = results["shelfcast"], results["mlflow"]
    ratio = ours["closed_loop"]["throughput_rps"] / max(theirs["closed_loop"]["throughput_rps"], 1e-9)
    p99 = ours["open_loop"]["p99_ms"]
    table = Table(
        title=f"Single-row stockout risk, one worker, loopback ({facts['model']}, {facts['features']} features)"
    )
    for column in ("server", "throughput (req/s)", "open-loop rate", "p50 ms", "p99 ms", "max ms", "errors"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, label in (
        ("shelfcast", "shelfcast serve /predict (ids)"),
        ("mlflow", "mlflow models serve /invocations"),
    ):
        r = results[name]
        table.add_row(
            label,
            f"{r['closed_loop']['throughput_rps']:,.0f}",
            f"{r['open_loop']['rate_rps']:,.0f}/s",
            f"{r['open_loop']['p50_ms']:.2f}",
            f"{r['open_loop']['p99_ms']:.2f}",
            f"{r['open_loop']['max_ms']:.1f}",
            str(r["closed_loop"]["errors"] + r["open_loop"]["errors"]),
        )
    console.print(table)
    ratio_met = "met" if ratio >= TARGET_RATIO else "NOT met"
    console.print(
        f"throughput ratio {ratio:.1f}x (target >= {TARGET_RATIO:g}x: {ratio_met}); "
        f"p99 {p99:.2f} ms at {ours['open_loop']['rate_rps']:.0f} req/s "
        f"(target <= {TARGET_P99_MS:g} ms at {args.rate:.0f}: "
        f"{'met' if p99 <= TARGET_P99_MS and ours['open_loop']['rate_rps'] >= args.rate else 'NOT met'})"
    )
    report = {
        "benchmark": "serve",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": load_before,
        "setup": facts
        | {"rate": args.rate, "seconds": args.seconds, "server_cpu": SERVER_CPU, "loadgen_cpu": LOADGEN_CPU},
        "results": results,
        "throughput_ratio": round(ratio, 2),
        "targets": {"p99_ms": TARGET_P99_MS, "ratio": TARGET_RATIO},
        "met": {"p99": p99 <= TARGET_P99_MS, "ratio": ratio >= TARGET_RATIO},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
