"""Scale benchmark of the two engines: time and peak memory of training and scoring as the chain grows.

    uv run python bench/bench_spark.py [--sizes 1M,10M,50M] [--engines local,spark] [--tasks demand,stockout] [--cap 4G]
        [--cap-method auto|systemd|watchdog|prlimit|none] [--json bench/results/spark.json]

Per size (store-item-days; the chain is `--items` items per store over
`--days` days, stores = size / (items x days), more items per store where
the simulator's 999 stores would not hold it), in a temporary folder:

- `shelfcast simulate` and `shelfcast ingest` (canonical) once, uncapped;
- per engine, `shelfcast train --task demand|stockout --folds 1` (a backtest
  fold, features, fit, register; `--engine spark` for Spark, with
  `spark.groups` scaled to the chain: `--spark-groups`) then
  `shelfcast score` (features of every series, the champions' forecasts,
  stockout risk, advice, into the Parquet prediction store; `--engine
  spark`), each in its own process. A command without `--engine` yet is
  reported "not available"; a score with no champion says it scored the
  baseline (so it is not comparable).

Spark is local[2] in the command's process (a JVM below it), its JVM heap set
by `--spark-memory` (the setting spark.executor_memory, which is the driver's
in local mode). Each step is timed wall-clock, and its peak memory is the
highest sum over its process tree (the command, the JVM, Spark's Python
workers) of each process's proportional set size (PSS, from
/proc/PID/smaps_rollup; RSS where not readable), sampled every 0.2 s.

The memory cap (`--cap`, default 4G; `--cap 0` for none) applies to the
training and scoring steps of both engines:
- systemd: `systemd-run --scope -p MemoryMax=CAP` (a cgroup, what an OOM
  killer does), where systemd runs;
- watchdog: the sampler kills the step's process tree when its summed PSS
  passes the cap (the same decision, without a cgroup: machines without
  systemd, e.g. containers);
- prlimit: `prlimit --as=CAP` (address space per process: the JVM and Polars
  reserve far more address space than they use, so this fails early).
`auto` takes systemd when it works here, else the watchdog. A capped step
that dies is reported as "over the cap", and larger sizes of that engine
are not run.

Sizes whose estimated disk use (from the bytes per store-item-day of the
sizes done so far, 150 B before any) exceeds the free space are skipped.
Do not run large sizes on a shared machine: 50M store-item-days take hours
on 2 cores. A smoke run: `--sizes 100k`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "bench" / "results" / "spark.json"
SAMPLE_SECONDS = 0.2
BYTES_PER_ROW_GUESS = 150.0  # raw Parquet + lake + registry + predictions, before a size has been measured
SUFFIX = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
MAX_STORES = 999  # `shelfcast simulate --stores` at most


@dataclass
class Step:
    """One command's cost."""

    size: int
    engine: str
    step: str
    seconds: float
    peak_mb: float
    status: str  # ok, over the cap, failed, not available
    capped: bool = False
    detail: str = ""
    command: list[str] = field(default_factory=list)


def parse_count(text: str) -> int:
    """100k, 1M, 2.5M, 50000 -> a count."""
    text = text.strip().lower()
    scale = SUFFIX.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def parse_bytes(text: str) -> int:
    """4G, 512M, 0 -> bytes (binary units, as cgroups and prlimit take them)."""
    text = text.strip().upper().removesuffix("B")
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    scale = units.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


# --------------------------------------------------------------------------- process tree memory, from /proc


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def tree(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children, out, todo = _children(), [pid], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def memory_kb(pid: int) -> int:
    """A process's PSS in kB (its share of pages shared with others, so a tree's sum counts each page once);
    its RSS when smaps_rollup cannot be read; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Sampler(threading.Thread):
    """Samples a process tree's summed memory until stopped; kills the tree past `limit_kb` (the watchdog cap)."""

    def __init__(self, pid: int, limit_kb: int = 0) -> None:
        super().__init__(daemon=True)
        self.pid, self.limit_kb = pid, limit_kb
        self.peak_kb, self.killed = 0, False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            pids = tree(self.pid)
            total = sum(memory_kb(p) for p in pids)
            self.peak_kb = max(self.peak_kb, total)
            if self.limit_kb and total > self.limit_kb and not self.killed:
                self.killed = True
                for p in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._done.set()
        self.join()


# --------------------------------------------------------------------------- running one step


def systemd_works() -> bool:
    """Whether `systemd-run --scope` can put a command in a cgroup with a memory cap here."""
    if shutil.which("systemd-run") is None:
        return False
    try:
        probe = subprocess.run(
            ["systemd-run", "--scope", "--quiet", "-p", "MemoryMax=1G", "true"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def capped_command(command: list[str], cap: int, method: str) -> tuple[list[str], int]:
    """The command wrapped for the cap, and the watchdog's limit in kB (0: no watchdog)."""
    if not cap or method == "none":
        return command, 0
    if method == "systemd":
        return ["systemd-run", "--scope", "--quiet", "-p", f"MemoryMax={cap}", "-p", "MemorySwapMax=0", *command], 0
    if method == "prlimit":
        return ["prlimit", f"--as={cap}", "--", *command], 0
    return command, cap // 1024


def run_step(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path, cap: int, method: str, timeout: float
) -> tuple[float, float, int | None, bool, str]:
    """Run a command in its own process group: wall seconds, peak MB of its tree, exit code (None: timed out),
    whether the watchdog killed it, the last lines of its output."""
    wrapped, limit_kb = capped_command(command, cap, method)
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            wrapped, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        sampler = Sampler(process.pid, limit_kb)
        sampler.start()
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        except KeyboardInterrupt:  # the run is stopped: so is its step, the whole group
            os.killpg(process.pid, signal.SIGKILL)
            sampler.stop()
            raise
        seconds = time.perf_counter() - started
        sampler.stop()
    with contextlib.suppress(ProcessLookupError):  # what is left of the group (a JVM outliving its driver) goes too
        os.killpg(process.pid, signal.SIGKILL)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return seconds, sampler.peak_kb / 1024, code, sampler.killed, "\n".join(lines[-5:])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "shelfcast", *args]


def _status(code: int | None, killed: bool, capped: bool, tail: str) -> str:
    """ok, not available (the command has no --engine yet), over the cap, timed out or failed."""
    if code == 0:
        return "ok"
    if "No such option: --engine" in tail:
        return "not available"
    # The watchdog's kill, a cgroup's OOM kill (SIGKILL), or an allocation refused under prlimit.
    if killed or (capped and (code == -signal.SIGKILL or "MemoryError" in tail or "memory allocation" in tail)):
        return "over the cap"
    return "timed out" if code is None else "failed"


def _force_champion(log: Path, *, env: dict[str, str], cwd: Path, workspace: Path) -> None:
    """The version a train step registered made champion although the gates refused it (a chain too small or
    too short for the gates): the score step must score a model, not the baseline, to be comparable."""
    found = re.search(r"version\s*\S\s*(demand|stockout) v(\S+)", log.read_text(errors="replace"))
    if found is None:
        return
    task, version = found.groups()
    command = _cli("models", "promote", "--task", task, "--version", version, "--force", "-w", str(workspace))
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def chain_shape(size: int, items: int, days: int) -> tuple[int, int, int]:
    """(stores, items, days) of about `size` store-item-days; more items per store where the simulator's
    `MAX_STORES` would not hold the chain."""
    series = max(1, round(size / days))
    items = min(max(items, math.ceil(series / MAX_STORES)), series)
    return max(1, math.ceil(series / items)), items, days


def spark_groups(size: int, setting: str) -> int:
    """Groups of series for a chain: the setting, or (auto) one per 250,000 store-item-days, at least 8 (four per
    core): a group is what one task builds at once, so its rows, not the chain's, bound a Python worker's memory."""
    if setting != "auto":
        return int(setting)
    return max(8, math.ceil(size / 250_000))


def bench_size(
    size: int, engines: list[str], *, args: argparse.Namespace, root: Path, console: Console, out: list[Step]
) -> int:
    """Every step of one size; returns the bytes the size used on disk."""
    stores, items, days = chain_shape(size, args.items, args.days)
    actual = stores * items * days
    folder = root / f"size-{size}"
    raw, ws = folder / "raw", folder / "ws"
    folder.mkdir(parents=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_"))}
    env = base | {
        "COLUMNS": "200",
        "PYSPARK_PYTHON": sys.executable,
        "SHELFCAST_SPARK__MASTER": "local[2]",
        "SHELFCAST_SPARK__EXECUTOR_MEMORY": args.spark_memory,
        "SHELFCAST_SPARK__GROUPS": str(spark_groups(actual, args.spark_groups)),
    }

    def step(engine: str, name: str, command: list[str], capped: bool) -> Step:
        console.print(f"  {actual:,} store-item-days, {engine}: {name} ...", style="dim")
        log = folder / f"{engine}-{name}.log"
        cap = args.cap if capped else 0
        seconds, peak, code, killed, tail = run_step(
            command, env=env, cwd=folder, log=log, cap=cap, method=args.cap_method, timeout=args.timeout
        )
        status = _status(code, killed, bool(cap), tail)
        detail = "" if status == "ok" else (tail.splitlines()[-1] if tail else f"exit {code}")
        if status == "over the cap" and killed:
            detail = f"its processes passed {cap / 1024**2:,.0f} MB together: killed"
        elif status == "not available":
            detail = "this shelfcast's command has no --engine yet"
        elif status == "ok" and "no demand champion" in log.read_text(errors="replace"):
            detail = "no demand champion: the seasonal-naive baseline scored"
        elif status == "ok" and name.startswith("train") and "stays `challenger`" in log.read_text(errors="replace"):
            detail = "refused by the gates: made champion with --force (not timed), so score uses it"
            _force_champion(log, env=env, cwd=folder, workspace=ws)
        result = Step(actual, engine, name, round(seconds, 2), round(peak), status, bool(cap), detail, command)
        out.append(result)
        return result

    common = ["-w", str(ws)]
    sim = _cli("simulate", "--out", str(raw), "--stores", str(stores), "--items", str(items), "--days", str(days))
    if step("chain", "simulate", [*sim, "--seed", "1", *common], capped=False).status != "ok":
        return _dir_bytes(folder)
    if (
        step(
            "chain", "ingest", _cli("ingest", str(raw / "canonical"), "--source", "canonical", *common), capped=False
        ).status
        != "ok"
    ):
        return _dir_bytes(folder)
    for engine in engines:
        flag = ["--engine", "spark"] if engine == "spark" else []
        stop = False
        for task in args.tasks.split(","):
            command = _cli("train", "--task", task, "--folds", "1", *flag, *common)
            stop = stop or step(engine, f"train {task}", command, capped=True).status in ("over the cap", "timed out")
        if not stop:
            step(engine, "score", _cli("score", *flag, *common), capped=True)
    used = _dir_bytes(folder)
    if not args.keep:  # the next size needs the disk
        shutil.rmtree(folder, ignore_errors=True)
    return used


def _method(requested: str) -> str:
    if requested != "auto":
        return requested
    return "systemd" if systemd_works() else "watchdog"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M,50M", help="Store-item-days per chain, e.g. 100k,1M,10M.")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--tasks", default="demand,stockout", choices=("demand,stockout", "demand", "stockout"))
    parser.add_argument("--items", type=int, default=50, help="Items per store.")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--cap", default="4G", help="Memory cap of the train and score steps; 0: none.")
    parser.add_argument("--cap-method", default="auto", choices=("auto", "systemd", "watchdog", "prlimit", "none"))
    parser.add_argument("--spark-memory", default="2g", help="Spark's JVM heap (local mode: the driver's).")
    parser.add_argument(
        "--spark-groups", default="auto", help="spark.groups per chain; auto: one per 250k store-item-days, 8 at least."
    )
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="Seconds per step.")
    parser.add_argument("--root", type=Path, default=None, help="Folder for the chains (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep each size's chain, workspace and logs.")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    args.cap = parse_bytes(args.cap)
    args.cap_method = _method(args.cap_method)
    sizes = sorted(parse_count(s) for s in args.sizes.split(","))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    console = Console()
    load_before = os.getloadavg()
    console.print(
        f"cap {args.cap / 1024**3:.1f} GiB by {args.cap_method}" if args.cap else "no memory cap",
        style="dim",
    )

    steps: list[Step] = []
    skipped: list[dict[str, Any]] = []
    bytes_per_row, measured = BYTES_PER_ROW_GUESS, False
    failed: set[str] = set()  # engines over the cap (or timed out) at a smaller size
    root = Path(tempfile.mkdtemp(dir=args.root, prefix="bench-spark-"))
    interrupted = False
    # Ctrl-C or a SIGTERM stops the run but keeps what was measured: the table and the JSON say it was cut short.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for size in sizes:
            free = shutil.disk_usage(root).free
            need = size * bytes_per_row * 1.5
            if need > free:
                skipped.append({"size": size, "reason": f"needs ~{need / 1e9:.0f} GB, {free / 1e9:.0f} GB free"})
                console.print(f"[yellow]{size:,} skipped[/]: {skipped[-1]['reason']}")
                continue
            left = [e for e in engines if e not in failed]
            used = bench_size(size, left, args=args, root=root, console=console, out=steps)
            bytes_per_row = max(bytes_per_row, used / size) if measured else used / size
            measured = True
            failed |= {s.engine for s in steps if s.status in ("over the cap", "timed out")}
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted[/]: the steps measured so far follow")
    finally:
        if args.keep:
            console.print(f"chains, workspaces and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    table = Table(title=f"Spark and local engines by chain size ({platform.node()}, {os.cpu_count()} cores)")
    for col in ("store-item-days", "engine", "step", "seconds", "peak MB", "status"):
        table.add_column(col, justify="left" if col in ("engine", "step", "status") else "right")
    for s in steps:
        colour = {"ok": "green", "over the cap": "red", "not available": "yellow"}.get(s.status, "red")
        status = f"[{colour}]{s.status}[/]" + (f": {s.detail[:90]}" if s.detail else "")
        table.add_row(f"{s.size:,}", s.engine, s.step, f"{s.seconds:,.1f}", f"{s.peak_mb:,.0f}", status)
    console.print(table)
    console.print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")

    payload = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        },
        "load_average_before": load_before,
        "config": {
            "sizes": sizes,
            "engines": engines,
            "items_per_store": args.items,
            "days": args.days,
            "cap_bytes": args.cap,
            "cap_method": args.cap_method,
            "spark_master": "local[2]",
            "spark_memory": args.spark_memory,
        },
        "steps": [asdict(s) for s in steps],
        "skipped": skipped,
        "interrupted": interrupted,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"written to {args.json}")


if __name__ == "__main__":
    main()
