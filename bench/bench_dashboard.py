"""Page-load time of the dashboard (issue 17) in a real browser, on the demo workspace and on FreshRetailNet-50K.

Setup (not timed), each workspace built once with the real CLI and reused (a marker file says it is complete):

- demo: `shelfcast demo` with its defaults (10 stores x 50 items x 730 days), into `--demo-workspace`
  (default /tmp/shelfcast-bench-demo);
- freshretailnet: `shelfcast ingest DATA/freshretailnet_50k --source freshretailnet`, `shelfcast train` of both
  tasks with one backtest fold (stockout: a day is a stockout when out of stock all 24 hours, as bench_default_path
  scores it), `shelfcast score`, `shelfcast monitor`, into `--frn-workspace` (default /tmp/shelfcast-bench-frn;
  about 10 minutes on 2 cores).

Measured, per page (Store, Item, Models, Monitoring, Data):

- browser, cold: `shelfcast dashboard` is started afresh for each page (its caches empty, nothing imported yet),
  and Debian's Chromium (Playwright, a new profile) loads the page once: from navigation until the app's script
  has finished (Streamlit's `data-test-script-state` is `notRunning`, the status widget gone), the page's title is
  shown, no element is still a loading skeleton and every chart is drawn. The first page load after a restart;
- browser, warm: the median of `--reloads` reloads of the same page in the same browser (a new Streamlit session
  each time, as a user's reload is; the server's caches warm);
- server script: the page's script run time in Streamlit's AppTest (in-process, no browser), in a separate
  process per workspace: the first run of each page (the Store page's first run comes before the others', so
  theirs share its reads), then the median of `--reloads` runs.

The Item page is opened on the riskiest series of the first store (`?store=..&item=..`); the others on their
defaults. A page that shows a Streamlit error (a traceback or an error box) is reported as failed, whatever its
time. Targets: every page under 2 s on the demo workspace, under 5 s on FreshRetailNet.

    uv run python bench/bench_dashboard.py [--data ../shared/data] [--only demo|freshretailnet] [--reloads 5]
        [--demo-workspace DIR] [--frn-workspace DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_JSON = Path(__file__).parent / "results" / "dashboard.json"


def _browser_helpers() -> Any:
    """tests/browser.py: the system Chromium, its flags and when a page is done (loaded and drawn), shared with
    the browser tests so that both wait for the same thing."""
    path = Path(__file__).parents[1] / "tests" / "browser.py"
    spec = importlib.util.spec_from_file_location("shelfcast_browser_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BROWSER = _browser_helpers()
CHROMIUM, CHROMIUM_ARGS, IDLE = str(_BROWSER.CHROMIUM), _BROWSER.CHROMIUM_ARGS, _BROWSER.IDLE
PAGES = {"store": "Store", "item": "Item", "models": "Models", "monitoring": "Monitoring", "data": "Data"}
TARGETS_S = {"demo": 2.0, "freshretailnet": 5.0}
BUILT = ".bench-dashboard-built"
LOAD_TIMEOUT_MS = 300_000
VIEWPORT = {"width": 1280, "height": 800}
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def _cli(*args: str, log: Path) -> None:
    """One `shelfcast` command, its output appended to `log`; raises with the log's tail when it fails."""
    with log.open("ab") as output:
        output.write(f"\n$ shelfcast {' '.join(args)}\n".encode())
        output.flush()
        done = subprocess.run(
            [sys.executable, "-m", "shelfcast", *args], stdout=output, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"shelfcast {args[0]} failed ({done.returncode}):\n{tail}")


def _build(name: str, workspace: Path, data: Path) -> float | None:
    """Build the workspace unless a complete one is there; the build's seconds, or None when reused."""
    if (workspace / BUILT).exists():
        return None
    shutil.rmtree(workspace, ignore_errors=True)  # a half-built one from an interrupted run
    workspace.parent.mkdir(parents=True, exist_ok=True)
    log = workspace.parent / f"{workspace.name}-build.log"
    log.unlink(missing_ok=True)
    ws = ["--workspace", str(workspace)]
    print(f"building the {name} workspace in {workspace} (log: {log}) ...", flush=True)
    started = time.perf_counter()
    if name == "demo":
        _cli("demo", *ws, log=log)
    else:
        source = data / "freshretailnet_50k"
        if not source.exists():
            raise SystemExit(f"{source} not found: give the shared data folder with --data")
        _cli("ingest", str(source), "--source", "freshretailnet", *ws, log=log)
        _cli("train", "--task", "demand", "--folds", "1", *ws, log=log)
        _cli("train", "--task", "stockout", "--folds", "1", "--min-hours", "24", *ws, log=log)
        _cli("score", *ws, log=log)
        _cli("monitor", "--no-evidently", *ws, log=log)
    (workspace / BUILT).write_text(dt.datetime.now(dt.UTC).isoformat(timespec="seconds") + "\n")
    return time.perf_counter() - started


def _facts(workspace: Path) -> dict[str, Any]:
    """The workspace's size and the series the Item page is opened on (the riskiest of the first store)."""
    import polars as pl

    rows = pl.scan_parquet(workspace / "predictions" / "**" / "*.parquet", hive_partitioning=True)
    latest = rows.filter(pl.col("scored_on") == pl.col("scored_on").max())
    series = latest.group_by("store_id", "item_id").agg(pl.col("stockout_risk").first()).collect()
    store = str(series["store_id"].min())
    first = series.filter(pl.col("store_id") == store).sort(["stockout_risk", "item_id"], descending=[True, False])
    sales = pl.scan_parquet(workspace / "lake" / "sales" / "*.parquet").select(pl.len()).collect().item()
    return {
        "series": series.height,
        "stores": series["store_id"].n_unique(),
        "prediction_rows": latest.select(pl.len()).collect().item(),
        "sales_rows": sales,
        "item_query": {"store": store, "item": str(first["item_id"][0])},
    }


def _query(page: str, facts: dict[str, Any]) -> str:
    item = facts["item_query"]
    return f"?store={item['store']}&item={item['item']}" if page == "item" else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(workspace: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """`shelfcast dashboard` in its own process group; (process, base URL, seconds until /_stcore/health is ok)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_"))}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "dashboard", "--workspace", str(workspace), "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    problem = _BROWSER.wait_healthy(url, process, seconds=180, poll=0.2)
    if problem is None:
        return process, url, time.perf_counter() - started
    _BROWSER.stop_group(process)
    raise RuntimeError(f"{problem}; see {log}")


def _browser_page(workspace: Path, page: str, facts: dict[str, Any], *, reloads: int, log: Path) -> dict[str, Any]:
    """Cold and warm loads of one page in Chromium against a dashboard started for it."""
    from playwright.sync_api import sync_playwright

    process, url, startup = _start(workspace, log)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                tab = browser.new_context(viewport=VIEWPORT).new_page()

                def load(first: bool) -> float:
                    started = time.perf_counter()
                    if first:
                        tab.goto(f"{url}/{page}{_query(page, facts)}")
                    else:
                        tab.reload()
                    tab.wait_for_function(IDLE, arg=PAGES[page], timeout=LOAD_TIMEOUT_MS)
                    return time.perf_counter() - started

                cold = load(True)
                errors = list(dict.fromkeys(t.strip()[:300] for t in tab.locator(ERRORS).all_inner_texts()))
                warm = [load(False) for _ in range(reloads)]
            finally:
                browser.close()
    finally:
        _BROWSER.stop_group(process)
    return {
        "server_startup_s": round(startup, 2),
        "cold_s": round(cold, 3),
        "warm_s": [round(w, 3) for w in warm],
        "warm_median_s": round(statistics.median(warm), 3),
        "errors": errors,
    }


def _apptest(workspace: Path, facts: dict[str, Any], *, reloads: int) -> dict[str, Any]:
    """Each page's script time in AppTest, in a process of its own (its caches, its memory)."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--role",
            "apptest",
            "--workspace",
            str(workspace),
            "--reloads",
            str(reloads),
            "--item-query",
            json.dumps(facts["item_query"]),
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_"))},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def apptest_role(workspace: Path, item_query: dict[str, str], *, reloads: int) -> None:
    """(In its own process.) Run each page in AppTest and print the script times as one JSON line."""
    os.environ["SHELFCAST_WORKSPACE"] = str(workspace)
    from streamlit.testing.v1 import AppTest

    from shelfcast import dashboard

    def timed(at: AppTest) -> float:
        started = time.perf_counter()
        at.run()
        return time.perf_counter() - started

    results: dict[str, Any] = {}
    for page in PAGES:
        at = AppTest.from_file(str(dashboard.APP), default_timeout=LOAD_TIMEOUT_MS / 1000)
        if page == "item":
            for name, value in item_query.items():
                at.query_params[name] = value
        if page != "store":
            at.run()  # st.navigation must have run once before a page can be switched to
            at.switch_page(str((dashboard.PAGES / f"{page}.py").relative_to(dashboard.APP.parent)))
        first = timed(at)
        runs = [timed(at) for _ in range(reloads)]
        errors = [str(e.value)[:300] for e in at.exception] + [str(e.value)[:300] for e in at.error]
        results[page] = {
            "first_s": round(first, 3),
            "median_s": round(statistics.median(runs), 3),
            "errors": errors,
        }
    print(json.dumps(results))


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    browser = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    import streamlit

    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "streamlit": streamlit.__version__,
        "browser": browser,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="The shared data folder.")
    parser.add_argument("--demo-workspace", type=Path, default=Path("/tmp/shelfcast-bench-demo"))
    parser.add_argument("--frn-workspace", type=Path, default=Path("/tmp/shelfcast-bench-frn"))
    parser.add_argument("--only", choices=tuple(TARGETS_S), help="One workspace (default: both).")
    parser.add_argument("--reloads", type=int, default=5, help="Warm loads per page (the median is reported).")
    parser.add_argument("--no-apptest", action="store_true", help="Skip the server-side script times.")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--role", default="bench", choices=("bench", "apptest"), help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--item-query", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "apptest":
        apptest_role(args.workspace, json.loads(args.item_query), reloads=args.reloads)
        return
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: `apt-get install chromium` (make test installs it where it can)")
    console = Console(width=150)
    names = [args.only] if args.only else list(TARGETS_S)
    workspaces = {"demo": args.demo_workspace, "freshretailnet": args.frn_workspace}
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    for name in names:
        workspace = workspaces[name].resolve()
        built = _build(name, workspace, args.data.resolve())
        facts = _facts(workspace)
        log = workspace.parent / f"{workspace.name}-dashboard.log"
        log.unlink(missing_ok=True)
        console.print(f"{name}: {facts['series']:,} series in {facts['stores']:,} stores; measuring ...")
        pages = {p: _browser_page(workspace, p, facts, reloads=args.reloads, log=log) for p in PAGES}
        server = {} if args.no_apptest else _apptest(workspace, facts, reloads=args.reloads)
        results[name] = {
            "workspace": str(workspace),
            "build_s": None if built is None else round(built, 1),
            "facts": facts,
            "browser": pages,
            "apptest": server,
        }

    table = Table(title="Dashboard page load in Chromium (navigation until the script has run and the page is drawn)")
    for column in ("workspace", "page", "cold s", "warm s (median)", "server script s (first / median)", "target"):
        table.add_column(column, justify="left" if column in ("workspace", "page") else "right")
    table.add_column("met")
    met: dict[str, bool] = {}
    for name in names:
        target = TARGETS_S[name]
        for page, title in PAGES.items():
            b = results[name]["browser"][page]
            s = results[name]["apptest"].get(page)
            server = f"{s['first_s']:.2f} / {s['median_s']:.2f}" if s else "-"
            ok = not b["errors"] and b["cold_s"] < target and b["warm_median_s"] < target
            met[f"{name}/{page}"] = ok
            verdict = "yes" if ok else ("NO (error on the page)" if b["errors"] else "NO")
            table.add_row(
                name, title, f"{b['cold_s']:.2f}", f"{b['warm_median_s']:.2f}", server, f"< {target:g}", verdict
            )
    console.print(table)
    for name in names:
        for page, title in PAGES.items():
            for error in results[name]["browser"][page]["errors"]:
                console.print(f"[red]{name} {title}:[/red] {error}")
    report = {
        "benchmark": "dashboard",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "load_before": load_before,
        "setup": {"reloads": args.reloads, "viewport": VIEWPORT},
        "results": results,
        "targets_s": TARGETS_S,
        "met": met,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
