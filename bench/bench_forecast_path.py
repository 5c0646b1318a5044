"""Where the time of `shelfcast forecast` goes on Store Item: start-up, lake, features, fits, predicts, the rest.

DATA_DIR defaults to ../shared/data next to the repository. In one run:

- ingest (not in the times): `shelfcast ingest --source store-item` into a
  temporary workspace, as a user would;
- start-up: `python -c "import shelfcast.cli"` and `python -c "import
  lightgbm"` in fresh processes (the best of --repeat);
- the whole command: `shelfcast forecast --cutoff 2017-10-02 --horizon 90`
  as one process, wall clock and CPU (what issue 15 compares with mlforecast);
- the phases: the forecast job run again in a fresh worker process, with a
  timer around each function below (wall and process CPU, every thread).
  `incl.` is the time inside the function, `excl.` leaves out the other timed
  functions it called, so the `excl.` column adds up to the job's time. A
  function that is gone (renamed by a later change) is skipped and listed.

Checkpoints are removed before each forecast, so no fit resumes. The machine
is shared: the load average before and after is printed and saved; compare
runs made close together, and prefer the CPU column when the load is high.

    uv run python bench/bench_forecast_path.py [DATA_DIR] [--repeat 3] [--skip-cli] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_JSON = Path(__file__).parent / "results" / "forecast_path.json"
CUTOFF = "2017-10-02"
HORIZON = 90
# (label, module, attribute): functions timed in the worker. "Class.method" patches the method on the class.
PHASES: tuple[tuple[str, str, str], ...] = (
    ("load the lake into model data", "shelfcast.io.model_data", "load_model_data"),
    ("training frame", "shelfcast.models.train", "training_frame"),
    ("feature grid (model_rows)", "shelfcast.features.frames", "model_rows"),
    ("origin features, every date", "shelfcast.features.origin", "origin_features"),
    ("phase features, every date", "shelfcast.features.build", "phase_features"),
    ("build features (joins, target features)", "shelfcast.features.build", "build_features"),
    ("GBM fit: encode + LightGBM", "shelfcast.models.forecaster", "GBMForecaster.fit"),
    ("LightGBM Dataset (binning)", "lightgbm", "Dataset.construct"),
    ("LightGBM boosting", "lightgbm", "train"),
    ("GBM forecasts (TrainedForecaster.predict)", "shelfcast.models.train", "TrainedForecaster.predict"),
    ("LightGBM predict", "lightgbm", "Booster.predict"),
    ("baselines", "shelfcast.models.baselines", "naive"),
    ("baselines", "shelfcast.models.baselines", "seasonal_naive"),
    ("baselines", "shelfcast.models.baselines", "moving_average"),
    ("window scores (forecast_metrics)", "shelfcast.models.metrics", "forecast_metrics"),
    ("quantiles", "shelfcast.models.backtest", "quantile_table"),
    ("quantiles", "shelfcast.models.backtest", "add_quantiles"),
    ("write Parquet", "polars", "DataFrame.write_parquet"),
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class _Totals:
    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    self_wall: float = 0.0
    self_cpu: float = 0.0


@dataclass
class _Timer:
    """Inclusive and exclusive time per label; a label inside itself (recursion) counts once."""

    totals: dict[str, _Totals] = field(default_factory=dict)
    stack: list[list[Any]] = field(default_factory=list)

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if any(frame[0] == label for frame in self.stack):
                return fn(*args, **kwargs)
            frame = [label, time.perf_counter(), _cpu(), 0.0, 0.0]  # label, start wall, start cpu, children
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                wall, cpu = time.perf_counter() - frame[1], _cpu() - frame[2]
                total = self.totals.setdefault(label, _Totals())
                total.calls += 1
                total.wall += wall
                total.cpu += cpu
                total.self_wall += wall - frame[3]
                total.self_cpu += cpu - frame[4]
                if self.stack:
                    self.stack[-1][3] += wall
                    self.stack[-1][4] += cpu

        return timed


def _patch(timer: _Timer) -> list[str]:
    """Put a timer around every phase's function, wherever a module imported it by name; the missing ones."""
    import importlib

    missing = []
    for label, module_name, attribute in PHASES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{module_name}.{attribute}")
            continue
        owner: Any = module
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            missing.append(f"{module_name}.{attribute}")
            continue
        wrapped = timer.wrap(label, original)
        setattr(owner, name, wrapped)
        if path:
            continue
        # `from module import fn` copies: replace the copies too (and in dicts of functions such as BASELINES).
        for other in list(sys.modules.values()):
            if other is None or not getattr(other, "__name__", "").startswith("shelfcast"):
                continue
            for key, value in list(vars(other).items()):
                if value is original:
                    setattr(other, key, wrapped)
                elif isinstance(value, dict):
                    for k, v in list(value.items()):
                        if v is original:
                            value[k] = wrapped
    return missing


def _worker(workspace: Path, out: Path, result: Path) -> None:
    """The forecast job in this fresh process, every phase timed; results as JSON in `result`."""
    started, cpu0 = time.perf_counter(), _cpu()
    import shelfcast.cli  # what every command imports

    imported = (time.perf_counter() - started, _cpu() - cpu0)
    started, cpu0 = time.perf_counter(), _cpu()
    import lightgbm  # noqa: F401  (imported by the first fit)

    lgb_imported = (time.perf_counter() - started, _cpu() - cpu0)
    import shelfcast.models.quantile_forecast  # noqa: F401  (so its names can be patched)
    from shelfcast.jobs.forecast import run_forecast
    from shelfcast.settings import Settings

    timer = _Timer()
    missing = _patch(timer)
    started, cpu0 = time.perf_counter(), _cpu()
    report = run_forecast(Settings(workspace=workspace), cutoff=CUTOFF, horizon=HORIZON, out=out)
    job = (time.perf_counter() - started, _cpu() - cpu0)
    phases = [
        {
            "phase": label,
            "calls": t.calls,
            "wall": round(t.wall, 3),
            "cpu": round(t.cpu, 3),
            "self_wall": round(t.self_wall, 3),
            "self_cpu": round(t.self_cpu, 3),
        }
        for label, t in timer.totals.items()
    ]
    payload = {
        "import shelfcast.cli": imported,
        "import lightgbm": lgb_imported,
        "job": job,
        "model": report.model,
        "rows": report.rows,
        "phases": phases,
        "missing": missing,
    }
    result.write_text(json.dumps(payload))


@contextmanager
def _child_cpu() -> Iterator[list[float]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out: list[float] = []
    yield out
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one process (checked)."""
    with _child_cpu() as cpu:
        started = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, cpu[0]


def _best(samples: list[tuple[float, float]]) -> dict[str, float]:
    return {"wall": round(min(s[0] for s in samples), 3), "cpu": round(min(s[1] for s in samples), 3)}


def _env() -> dict[str, str]:
    # As the tests run LightGBM on these shared machines (threads that wait do not spin).
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def measure(data_dir: Path, *, repeat: int, skip_cli: bool) -> dict[str, Any]:
    folder = data_dir / "store_item_demand"
    if not folder.is_dir():
        raise SystemExit(f"no Store Item data in {folder}; pass the data folder (default {DEFAULT_DATA})")
    python, env = sys.executable, _env()
    cli = [python, "-m", "shelfcast"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-forecast-path-") as tmp:
        workspace = Path(tmp) / "workspace"
        ingest = _run([*cli, "ingest", str(folder), "--source", "store-item", "--workspace", str(workspace)], env)
        startup = {
            "python (nothing imported)": _best([_run([python, "-c", "pass"], env) for _ in range(repeat)]),
            "import shelfcast.cli": _best([_run([python, "-c", "import shelfcast.cli"], env) for _ in range(repeat)]),
            "import lightgbm": _best([_run([python, "-c", "import lightgbm"], env) for _ in range(repeat)]),
            "shelfcast forecast --help": _best([_run([*cli, "forecast", "--help"], env) for _ in range(repeat)]),
        }
        command: dict[str, float] | None = None
        if not skip_cli:
            shutil.rmtree(workspace / "checkpoints", ignore_errors=True)
            wall, cpu = _run(
                [
                    *cli,
                    "forecast",
                    "--cutoff",
                    CUTOFF,
                    "--horizon",
                    str(HORIZON),
                    "--workspace",
                    str(workspace),
                    "--out",
                    str(Path(tmp) / "cli.parquet"),
                ],
                env,
            )
            command = {"wall": round(wall, 3), "cpu": round(cpu, 3)}
        shutil.rmtree(workspace / "checkpoints", ignore_errors=True)
        result = Path(tmp) / "phases.json"
        worker = [python, __file__, "--worker", str(workspace), str(Path(tmp) / "worker.parquet"), str(result)]
        _run(worker, env)
        phases = json.loads(result.read_text())
    return {
        "date": dt.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "omp_wait_policy": env["OMP_WAIT_POLICY"],
        "config": {"dataset": "store_item_demand", "cutoff": CUTOFF, "horizon": HORIZON},
        "ingest": {"wall": round(ingest[0], 3), "cpu": round(ingest[1], 3)},
        "startup": startup,
        "forecast_command": command,
        "worker": phases,
    }


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    worker = result["worker"]
    job_wall, job_cpu = worker["job"]
    table = Table(title=f"shelfcast forecast on Store Item (cutoff {CUTOFF}, horizon {HORIZON}): where the time goes")
    for name in ("phase", "calls", "wall s (incl.)", "cpu s (incl.)", "wall s (excl.)", "cpu s (excl.)", "% job cpu"):
        table.add_column(name, justify="left" if name == "phase" else "right")
    for name, times in result["startup"].items():
        table.add_row(f"start-up: {name}", "1", f"{times['wall']:.2f}", f"{times['cpu']:.2f}", "", "", "")
    if result["forecast_command"]:
        cmd = result["forecast_command"]
        table.add_row(
            "[b]the whole command (one process)[/]", "1", f"{cmd['wall']:.2f}", f"{cmd['cpu']:.2f}", "", "", ""
        )
    table.add_section()
    for name in ("import shelfcast.cli", "import lightgbm"):
        wall, cpu = worker[name]
        table.add_row(f"worker: {name}", "1", f"{wall:.2f}", f"{cpu:.2f}", "", "", "")
    table.add_row("[b]worker: the forecast job[/]", "1", f"{job_wall:.2f}", f"{job_cpu:.2f}", "", "", "100")
    accounted = 0.0
    for p in sorted(worker["phases"], key=lambda p: -p["cpu"]):
        accounted += p["self_cpu"]
        share = 100 * p["self_cpu"] / job_cpu if job_cpu else 0.0
        table.add_row(
            f"  {p['phase']}",
            str(p["calls"]),
            f"{p['wall']:.2f}",
            f"{p['cpu']:.2f}",
            f"{p['self_wall']:.2f}",
            f"{p['self_cpu']:.2f}",
            f"{share:.0f}",
        )
    rest = job_cpu - accounted
    table.add_row("  everything else in the job", "", "", "", "", f"{rest:.2f}", f"{100 * rest / job_cpu:.0f}")
    console.print(table)
    if worker["missing"]:
        console.print(f"not timed (not found): {', '.join(worker['missing'])}", style="yellow")
    console.print(
        f"model chosen: {worker['model']}; load average before {result['load_average_before'][0]:.2f}, "
        f"after {result['load_average_after'][0]:.2f} on {result['machine']['cpus']} CPUs; "
        f"OMP_WAIT_POLICY={result['omp_wait_policy']}",
        highlight=False,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3, help="start-up runs; the fastest is kept")
    parser.add_argument("--skip-cli", action="store_true", help="do not time the whole `shelfcast forecast` process")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--worker", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return
    result = measure(args.data_dir, repeat=max(1, args.repeat), skip_cli=args.skip_cli)
    show(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
