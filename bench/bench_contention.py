"""Benchmark of training under CPU contention: `shelfcast train --task demand`, idle and beside one busy process.

What is timed, honestly: the whole `shelfcast train --task demand` process
(start-up, backtest, training, MLflow logging and registration), on a copy
of one ingested workspace each run (no champion to compare with), as a user
runs it. "Contended" runs it while another process holds a core: a Python
busy loop started a second before and killed by its PID after. Modes, each
idle and contended in the same run:

- `before`: the behaviour before `shelfcast.threads` (the CLI without the
  entry point that sets threads: OpenMP's default, one thread per CPU,
  spinning libgomp's default 300,000 times before sleeping);
- `auto`: the default now (`shelfcast train`: the count from the CPUs other
  processes leave free, spin count 10,000);
- `fixed`: `SHELFCAST_THREADS` set to the CPU count: one thread per CPU with
  the lower spin count only (contention that starts after the decision).

The machine's load (1-minute average) is recorded before each run: on a
shared machine "idle" is only idle of the busy loop. Compare ratios within
one run, not seconds across runs.

    uv run python bench/bench_contention.py [--stores 4 --items 20 --days 400] [--modes before,auto,fixed]
        [--timeout 1200] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_JSON = Path(__file__).parent / "results" / "contention.json"
TARGET_RATIO = 2.5
MODES = ("before", "auto", "fixed")
# Variables that would decide the threads instead of the mode under test.
THREAD_VARIABLES = ("OMP_", "GOMP_", "KMP_", "POLARS_MAX_THREADS", "SHELFCAST_THREADS")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(THREAD_VARIABLES)}
    return {**base, "COLUMNS": "200", **(extra or {})}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _shelfcast(*args: str, cwd: Path, env: dict[str, str], timeout: float, before: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of one `shelfcast` process (`before`: the CLI without the entry point that sets threads).

    CPU seconds include the spinning: the work is the same in every mode, so extra CPU is waiting, not working.
    """
    entry = ["-c", "from shelfcast.cli import main; main()"] if before else ["-m", "shelfcast"]
    cpu = _cpu()
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *entry, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"shelfcast {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return seconds, _cpu() - cpu


def _prepare(folder: Path, *, stores: int, items: int, days: int, seed: int) -> Path:
    """A workspace with the simulated chain ingested (not timed)."""
    base = folder / "base"
    sim = ("simulate", "--stores", str(stores), "--items", str(items), "--days", str(days), "--seed", str(seed))
    _shelfcast(*sim, "-w", str(base), cwd=folder, env=_env(), timeout=600)
    canonical = base / "simulation" / "canonical"
    _shelfcast("ingest", str(canonical), "--source", "canonical", "-w", str(base), cwd=folder, env=_env(), timeout=600)
    return base


def _busy_loop() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _train(base: Path, folder: Path, *, mode: str, contended: bool, timeout: float) -> dict[str, Any]:
    workspace = folder / f"ws-{mode}-{'contended' if contended else 'idle'}"
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.copytree(base, workspace)
    extra = {"SHELFCAST_THREADS": str(len(os.sched_getaffinity(0)))} if mode == "fixed" else {}
    load = os.getloadavg()[0]
    loop = _busy_loop() if contended else None
    try:
        if loop is not None:
            time.sleep(1.0)  # running before the command starts, as a job already on the machine
        seconds, cpu = _shelfcast(
            "train", "--task", "demand", "-w", str(workspace), cwd=folder, env=_env(extra), timeout=timeout,
            before=mode == "before",
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        seconds = cpu = float("inf")
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    shutil.rmtree(workspace, ignore_errors=True)
    return {
        "mode": mode,
        "contended": contended,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "load_1min_before": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds a run may take (then: inf)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; expected some of {', '.join(MODES)}")

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shelfcast-contention-") as tmp:
        folder = Path(tmp)
        base = _prepare(folder, stores=args.stores, items=args.items, days=args.days, seed=args.seed)
        # Interleaved (idle, contended per mode) so that a change in the machine's load hits every mode alike.
        for mode in modes:
            for contended in (False, True):
                runs.append(_train(base, folder, mode=mode, contended=contended, timeout=args.timeout))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)

    rows = []
    by = {(r["mode"], r["contended"]): r["seconds"] for r in runs}
    cpu = {(r["mode"], r["contended"]): r["cpu_seconds"] for r in runs}
    reference = by.get(("before", False))
    table = Table(title=f"shelfcast train --task demand, {args.stores} stores x {args.items} items x {args.days} days")
    columns = ("mode", "idle s", "contended s", "contended / idle", "idle / before's idle", "CPU s idle, contended")
    for column in (*columns, "target"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode in modes:
        idle, busy = by[(mode, False)], by[(mode, True)]
        ratio = busy / idle
        against = idle / reference if reference else None
        rows.append({"mode": mode, "idle_s": idle, "contended_s": busy, "ratio": round(ratio, 2),
                     "idle_vs_before": None if against is None else round(against, 2),
                     "cpu_idle_s": cpu[(mode, False)], "cpu_contended_s": cpu[(mode, True)]})  # fmt: skip
        verdict = "" if mode == "before" else ("met" if ratio <= TARGET_RATIO else "missed")
        shown = "-" if against is None else f"{against:.2f}x"
        cpus = f"{cpu[(mode, False)]:.0f}, {cpu[(mode, True)]:.0f}"
        table.add_row(mode, f"{idle:.1f}", f"{busy:.1f}", f"{ratio:.2f}x", shown, cpus, verdict)
    Console().print(table)
    print(f"target: contended <= {TARGET_RATIO}x idle; load average (1 min) before the runs: "
          + ", ".join(f"{r['load_1min_before']}" for r in runs))  # fmt: skip

    result = {
        "benchmark": "contention",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "usable": len(os.sched_getaffinity(0))},
        "chain": {"stores": args.stores, "items": args.items, "days": args.days, "seed": args.seed},
        "target_ratio": TARGET_RATIO,
        "rows": rows,
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
