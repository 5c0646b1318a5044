"""Default-path benchmark: what a user gets from `shelfcast ingest` then `forecast` / `stockout` with no tuning flags.

    uv run --group bench python bench/bench_default_path.py [--data ../shared/data] [--only walmart ...] [--quick]
        [--json bench/results/default_path.json]

Every step of the default path runs as a whole `shelfcast` process, timed wall-clock including interpreter
start-up, imports and loading the lake: `shelfcast ingest --source S PATH`, then `shelfcast forecast --cutoff C
--horizon H` (and, on FreshRetailNet, `shelfcast stockout --cutoff 2024-06-18 --risk-days 7 --min-hours 24`).
Beside it, in the same run and each in its own process (bench_demand.py's workers, imported, not copied):
the seasonal naive on the same lake, and mlforecast with LightGBM in bench_demand's two configurations
("mlforecast": its documentation's pattern; "mlforecast_tuned": more trees, lags a year back), reading the raw
file. Their wall time (`wall s`) is also the whole process (start-up, imports, reading the data).

Datasets (see CASES; `--only` picks some):

- store-item: cutoff 2017-10-02, 90 days, SMAPE;
- walmart: cutoff 2012-01-27, 39 weeks, WMAE with the holiday weeks (train IsHoliday) weighing 5, against the
  original train actuals (negative sales included, as bench_demand.py scores them);
- freshretailnet: cutoff 2024-06-18, 7 days, WAPE on the fully in-stock days (stock_hours 0: the days whose sales
  are not censored), and the stockout alert: a full-day stockout on any of the next 7 days, PR-AUC of the risk and
  F1 of the alerts the CLI writes, beside the rule "a full-day stockout in the last 7 days";
- simulated chains made with `shelfcast simulate` (canonical layout, ingested with `--source canonical`), WAPE
  against the chain's sales: sim-intermittent (the simulator has no option for slow movers, so the script thins
  every day's sales to Binomial(units, 0.03) before ingest), sim-weekly (`--freq W`, 13 weeks), sim-short
  (120 days of history), sim-level-shift (`--drift level --drift-magnitude 1.5` eight weeks before the cutoff).
  `--quick` makes the chains smaller (4 stores x 20 items instead of 10 x 50, shorter).

mlforecast needs a year of history for its yearly lags: a configuration whose longest lag does not fit in the
history before the cutoff is reported as n/a. On the weekly chain (weeks dated by their Monday) mlforecast's
W-FRI configuration is fed dates shifted by four days and its forecast shifted back.

Targets (issue 15): the default path's error at most 0.95x the best of the seasonal naive and the two mlforecast
configurations on every dataset (stockouts: PR-AUC at least 1.05x the rule's); Walmart WMAE <= 1650; Store Item
SMAPE <= 12.0 and the forecast process at most 0.5x the tuned mlforecast's wall time; FreshRetailNet PR-AUC >= 0.47
and F1 >= 0.48. Always exits 0: this is a measurement; the summary says which targets hold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from bench_demand import (
    _WRAPPER,
    DATASETS,
    PEER,
    PEER_TUNED,
    Measured,
    _finite,
    actuals,
    joined,
    machine,
    measure,
    peer_columns,
)
from rich.console import Console
from rich.table import Table

from shelfcast.models.classification import f1, pr_auc
from shelfcast.models.metrics import smape, wape, wmae

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_JSON = ROOT / "bench" / "results" / "default_path.json"
SHELFCAST = Path(sys.executable).parent / "shelfcast"
DEFAULT = "default_path"
NAIVE = "seasonal_naive"
KEYS = ["store_id", "item_id", "date"]
FRN_CUTOFF = dt.date(2024, 6, 18)
THIN = 0.03  # sim-intermittent: share of the simulated units kept
TARGETS = {"beat_best_by": 0.05, "walmart_wmae": 1650.0, "store_item_smape": 12.0, "store_item_time_ratio": 0.5}
STOCKOUT_TARGETS = {"pr_auc": 0.47, "f1": 0.48}


@dataclass(frozen=True)
class Case:
    """One dataset of the benchmark: how to get it onto the default path, and how to score it."""

    name: str
    freq: str  # D or W
    metric: str  # smape, wmae or wape
    horizon: int
    cutoff: dt.date | None = None  # None: simulated, `horizon` steps before the chain's last date
    sim: dict[str, Any] = field(default_factory=dict)  # `shelfcast simulate` options (simulated cases)
    quick_sim: dict[str, Any] = field(default_factory=dict)


CASES = {
    "store-item": Case("store-item", "D", "smape", 90, dt.date(2017, 10, 2)),
    "walmart": Case("walmart", "W", "wmae", 39, dt.date(2012, 1, 27)),
    "freshretailnet": Case("freshretailnet", "D", "wape", 7, FRN_CUTOFF),
    "sim-intermittent": Case(
        "sim-intermittent", "D", "wape", 28, sim={"days": 730, "seed": 11}, quick_sim={"days": 400}
    ),
    "sim-weekly": Case("sim-weekly", "W", "wape", 13, sim={"days": 730, "seed": 12, "freq": "W"}),
    "sim-short": Case("sim-short", "D", "wape", 28, sim={"days": 120 + 28, "seed": 13}),
    "sim-level-shift": Case(
        "sim-level-shift", "D", "wape", 28, sim={"days": 730, "seed": 14, "drift": "level"}, quick_sim={"days": 400}
    ),
}
SIM_SIZE = {"stores": 10, "items": 50}
QUICK_SIM_SIZE = {"stores": 4, "items": 20}
SIM_START = dt.date(2022, 1, 3)  # a Monday: `shelfcast simulate`'s default first day
# Longest history (steps before the cutoff) each mlforecast configuration needs: its longest lag plus the
# rolling window on it and some rows to learn from (bench_demand.py's configurations).
PEER_MIN_HISTORY = {("D", "quick"): 60, ("D", "tuned"): 400, ("W", "quick"): 60, ("W", "tuned"): 60}


# --------------------------------------------------------------------------- processes


@dataclass
class Run:
    """One whole process: its wall time, CPU, peak memory and the tail of its output."""

    seconds: float
    cpu_seconds: float
    peak_mb: float
    code: int
    tail: str
    load: tuple[float, float]


def run_process(args: list[str], cwd: Path) -> Run:
    """Run `args` as a child of bench_demand's wrapper, which reports the child's peak RSS and CPU time."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *args], cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    peak_kb, cpu, code = proc.stdout.split()
    peak_mb = int(peak_kb) / (1024.0 if sys.platform == "darwin" else 1.0) / 1024
    return Run(seconds, float(cpu), peak_mb, int(code), proc.stderr[-2000:], (load_before, os.getloadavg()[0]))


def cli(args: list[str], workspace: Path, tmp: Path, label: str, console: Console) -> Run:
    """One `shelfcast` command as a user runs it; a failure stops the dataset."""
    console.print(f"  {label}: shelfcast {' '.join(args)}", style="dim", highlight=False)
    run = run_process([str(SHELFCAST), *args, "--workspace", str(workspace)], cwd=tmp)
    if run.code != 0:
        raise RuntimeError(f"`shelfcast {' '.join(args)}` exited {run.code}:\n{run.tail}")
    console.print(f"  {label}: {run.seconds:.1f}s wall, peak {run.peak_mb:,.0f} MB", style="dim")
    return run


# --------------------------------------------------------------------------- simulated chains


def simulate(case: Case, tmp: Path, workspace: Path, *, quick: bool, console: Console) -> tuple[Path, dt.date, Run]:
    """`shelfcast simulate` the case's chain; returns the canonical folder to ingest, the cutoff and the run."""
    sim = case.sim | (case.quick_sim if quick else {}) | (QUICK_SIM_SIZE if quick else SIM_SIZE)
    end = SIM_START + dt.timedelta(days=sim["days"] - 1)
    cutoff = end - dt.timedelta(days=case.horizon)  # daily; weekly: read from the simulated weeks below
    args = ["simulate", "--out", str(tmp / "sim"), "--start", SIM_START.isoformat()]
    args += ["--stores", str(sim["stores"]), "--items", str(sim["items"]), "--days", str(sim["days"])]
    args += ["--seed", str(sim["seed"])]
    if "freq" in sim:
        args += ["--freq", sim["freq"]]
    if sim.get("drift") == "level":
        shift = cutoff - dt.timedelta(days=55)
        args += ["--drift", "level", "--drift-start", shift.isoformat(), "--drift-magnitude", "1.5"]
    run = cli(args, workspace, tmp, "simulate", console)
    folder = tmp / "sim" / "canonical"
    if case.freq == "W":
        weeks = pl.read_parquet(folder / "sales.parquet", columns=["date"])["date"].unique().sort()
        cutoff = weeks[-1 - case.horizon]
    if case.name == "sim-intermittent":
        # Slow movers: keep each simulated unit with probability THIN (the simulator's CLI has no such option).
        sales = pl.read_parquet(folder / "sales.parquet")
        rng = np.random.default_rng(sim["seed"])
        units = rng.binomial(sales["units"].fill_null(0).cast(pl.Int64).to_numpy(), THIN).astype(np.float64)
        sales = sales.with_columns(pl.Series("units", units)).with_columns(
            (pl.col("units") * pl.col("price")).round(2).alias("revenue")
        )
        sales.write_parquet(folder / "sales.parquet")
    return folder, cutoff, run


# --------------------------------------------------------------------------- actuals and scores


def truth_for(case: Case, data_dir: Path, cutoff: dt.date, sim_folder: Path | None) -> pl.DataFrame:
    """The evaluation rows (store_id, item_id, date, y, weight) after the cutoff, within the horizon."""
    step = 7 if case.freq == "W" else 1
    last = cutoff + dt.timedelta(days=step * case.horizon)
    if case.name in DATASETS:
        return actuals(DATASETS[case.name], data_dir)
    if case.name == "freshretailnet":
        raw = pl.scan_parquet(data_dir / "freshretailnet_50k" / "train_daily.parquet")
        return (
            raw.filter((pl.col("dt") > cutoff) & (pl.col("dt") <= last) & (pl.col("stock_hours") == 0))
            .select(
                pl.col("store_id").cast(pl.String),
                pl.col("product_id").cast(pl.String).alias("item_id"),
                pl.col("dt").alias("date"),
                pl.col("sale_amount").cast(pl.Float64).alias("y"),
                pl.lit(1.0).alias("weight"),
            )
            .collect()
        )
    assert sim_folder is not None
    return (
        pl.read_parquet(sim_folder / "sales.parquet")
        .filter((pl.col("date") > cutoff) & (pl.col("date") <= last))
        .select("store_id", "item_id", "date", pl.col("units").cast(pl.Float64).alias("y"), pl.lit(1.0).alias("weight"))
    )


def score(truth: pl.DataFrame, forecast: pl.DataFrame, case: Case, cutoff: dt.date) -> tuple[float, int]:
    """The case's metric of `forecast` on `truth` (a missing forecast counts as 0) and how many were missing."""
    spec = replace(DATASETS["store-item"], name=case.name, cutoff=cutoff, horizon=case.horizon, freq=case.freq)
    frame = joined(truth, forecast.select(*KEYS, "forecast"), spec)
    y, f = frame["y"].to_numpy(), frame["forecast"].to_numpy()
    if case.metric == "wmae":
        value = wmae(y, f, weights=frame["weight"].to_numpy())
    else:
        value = {"smape": smape, "wape": wape}[case.metric](y, f)
    return value, int(frame["missing"].sum())


def frn_stockout(data_dir: Path, scored: pl.DataFrame) -> dict[str, Any]:
    """The CLI's stockout risk and alerts, and the rule, against full-day stockouts in the 7 days after the cutoff."""
    raw = pl.scan_parquet(data_dir / "freshretailnet_50k" / "train_daily.parquet").select(
        pl.col("store_id").cast(pl.String),
        pl.col("product_id").cast(pl.String).alias("item_id"),
        "dt",
        (pl.col("stock_hours") >= 24).alias("full_day"),
    )
    after = raw.filter((pl.col("dt") > FRN_CUTOFF) & (pl.col("dt") <= FRN_CUTOFF + dt.timedelta(days=7)))
    before = raw.filter((pl.col("dt") <= FRN_CUTOFF) & (pl.col("dt") > FRN_CUTOFF - dt.timedelta(days=7)))
    labels = (
        after.group_by("store_id", "item_id")
        .agg(pl.col("full_day").any().cast(pl.Int8).alias("y"), pl.len().alias("days"))
        .filter(pl.col("days") == 7)
        .collect()
    )
    rule = before.group_by("store_id", "item_id").agg(pl.col("full_day").any().cast(pl.Float64).alias("rule")).collect()
    frame = labels.join(
        scored.select("store_id", "item_id", "risk", "threshold"), on=["store_id", "item_id"], how="left"
    )
    frame = frame.join(rule, on=["store_id", "item_id"], how="left").with_columns(
        pl.col("risk").fill_null(0.0), pl.col("rule").fill_null(0.0)
    )
    y = frame["y"].to_numpy()
    threshold = float(scored["threshold"][0])
    return {
        "rows": frame.height,
        "unscored": int(frame["threshold"].is_null().sum()),
        "positive_rate": float(y.mean()),
        "threshold": threshold,
        DEFAULT: {
            "pr_auc": pr_auc(y, frame["risk"].to_numpy()),
            "f1": f1(y, frame["risk"].to_numpy(), threshold=threshold),
        },
        "rule": {"pr_auc": pr_auc(y, frame["rule"].to_numpy()), "f1": f1(y, frame["rule"].to_numpy(), threshold=0.5)},
    }


# --------------------------------------------------------------------------- one dataset


def peer_source(case: Case, data_dir: Path, tmp: Path, sim_folder: Path | None) -> tuple[Path, dict[str, str], int]:
    """The raw file mlforecast reads, its columns, and the days to shift its dates by (weekly Monday data)."""
    if case.name in DATASETS:
        ds = DATASETS[case.name]
        return data_dir / ds.folder / "train.parquet", peer_columns(ds), 0
    if case.name == "freshretailnet":
        cols = {"store": "store_id", "item": "product_id", "date": "dt", "y": "sale_amount"}
        return data_dir / "freshretailnet_50k" / "train_daily.parquet", cols, 0
    assert sim_folder is not None
    shift = 4 if case.freq == "W" else 0  # Monday -> Friday: bench_demand's weekly configuration is W-FRI
    path = tmp / "peer_sales.parquet"
    pl.read_parquet(sim_folder / "sales.parquet").select(
        "store_id", "item_id", (pl.col("date") + pl.duration(days=shift)).alias("date"), "units"
    ).write_parquet(path)
    return path, {"store": "store_id", "item": "item_id", "date": "date", "y": "units"}, shift


def history_steps(case: Case, data_dir: Path, cutoff: dt.date, sim_folder: Path | None) -> int:
    """Steps of history before the cutoff (from the first date of the data)."""
    if case.name == "store-item":
        first = dt.date(2013, 1, 1)
    elif case.name == "walmart":
        first = dt.date(2010, 2, 5)
    elif case.name == "freshretailnet":
        first = dt.date(2024, 3, 28)
    else:
        assert sim_folder is not None
        first = pl.read_parquet(sim_folder / "sales.parquet", columns=["date"])["date"].min()
    assert isinstance(first, dt.date)
    return (cutoff - first).days // (7 if case.freq == "W" else 1) + 1


def bench_case(case: Case, data_dir: Path, *, quick: bool, console: Console) -> dict[str, Any]:
    console.rule(f"{case.name}: {case.metric.upper()}, {case.horizon} {'weeks' if case.freq == 'W' else 'days'}")
    with tempfile.TemporaryDirectory(prefix="bench-default-") as tmp_name:
        tmp = Path(tmp_name)
        workspace = tmp / "workspace"
        sim_folder: Path | None = None
        simulate_run: Run | None = None
        if case.sim:
            sim_folder, cutoff, simulate_run = simulate(case, tmp, workspace, quick=quick, console=console)
            source, path = "canonical", sim_folder
        else:
            assert case.cutoff is not None
            cutoff = case.cutoff
            folder = {"store-item": "store_item_demand", "walmart": "walmart_store_sales"}.get(
                case.name, "freshretailnet_50k"
            )
            source, path = case.name, data_dir / folder
        runs: dict[str, Run] = {}
        runs["ingest"] = cli(["ingest", str(path), "--source", source], workspace, tmp, "ingest", console)
        out = tmp / "forecast.parquet"
        args = ["forecast", "--cutoff", cutoff.isoformat(), "--horizon", str(case.horizon), "--out", str(out)]
        runs[DEFAULT] = cli(args, workspace, tmp, "forecast", console)
        forecast = pl.read_parquet(out)
        stockout: dict[str, Any] | None = None
        if case.name == "freshretailnet":
            out_s = tmp / "stockout.parquet"
            args = ["stockout", "--cutoff", cutoff.isoformat(), "--risk-days", "7", "--min-hours", "24"]
            runs["stockout"] = cli([*args, "--out", str(out_s)], workspace, tmp, "stockout", console)
            stockout = frn_stockout(data_dir, pl.read_parquet(out_s))

        # The comparators, in the same run, each in its own process (bench_demand.py's workers).
        common = {"cutoff": cutoff.isoformat(), "horizon": case.horizon, "workspace": str(workspace)}
        measured: dict[str, Measured] = {}
        skipped: dict[str, str] = {}
        job = {"id": NAIVE, "kind": "baseline", "baseline": NAIVE, "forecast": str(tmp / "sn.parquet"), **common}
        measured[NAIVE] = measure(NAIVE, job, tmp, repeat=1, verbose=False, console=console)
        peer_path, columns, shift = peer_source(case, data_dir, tmp, sim_folder)
        history = history_steps(case, data_dir, cutoff, sim_folder)
        for name, config in ((PEER, "quick"), (PEER_TUNED, "tuned")):
            need = PEER_MIN_HISTORY[(case.freq, config)]
            if history < need:
                skipped[name] = f"n/a: {history} steps of history, its lags need {need}"
                console.print(f"  {name}: {skipped[name]}", style="dim")
                continue
            peer_job = {
                "id": name,
                "kind": "mlforecast",
                "config": config,
                "path": str(peer_path),
                "columns": columns,
                "freq": case.freq,
                "forecast": str(tmp / f"{name}.parquet"),
                **common,
                "cutoff": (cutoff + dt.timedelta(days=shift)).isoformat(),
            }
            m = measure(name, peer_job, tmp, repeat=1, verbose=False, console=console)
            if m.forecast is not None and shift:
                m.forecast = m.forecast.with_columns(pl.col("date") - pl.duration(days=shift))
            measured[name] = m
        truth = truth_for(case, data_dir, cutoff, sim_folder)

    rows: list[dict[str, Any]] = []
    value, missing = score(truth, forecast, case, cutoff)
    chosen = sorted(forecast["model"].unique().to_list()) if "model" in forecast.columns else []
    default_row = {
        "candidate": DEFAULT,
        case.metric: value,
        "missing_forecasts": missing,
        "wall_seconds": runs[DEFAULT].seconds,
        "cpu_seconds": runs[DEFAULT].cpu_seconds,
        "peak_rss_mb": runs[DEFAULT].peak_mb,
        "load_1min_before_after": runs[DEFAULT].load,
        "model": chosen,
        "cli_summary": runs[DEFAULT].tail.strip().splitlines()[-3:],
    }
    rows.append(default_row)
    for name, m in measured.items():
        row: dict[str, Any] = {
            "candidate": name,
            "wall_seconds": m.process_seconds,
            "work_seconds": m.seconds,
            "cpu_seconds": m.cpu_seconds,
            "peak_rss_mb": m.peak_mb,
            "load_1min_before_after": m.load,
            "error": m.error,
        }
        if m.forecast is not None:
            row[case.metric], row["missing_forecasts"] = score(truth, m.forecast, case, cutoff)
        if name != NAIVE:
            row["config"] = m.details.get("config")
        rows.append(row)
    for name, reason in skipped.items():
        rows.append({"candidate": name, "error": reason})

    by_name = {r["candidate"]: r for r in rows}
    peers_ok = [r for r in rows if r["candidate"] in (PEER, PEER_TUNED) and r.get(case.metric) is not None]
    peer = min(peers_ok, key=lambda r: r[case.metric]) if peers_ok else None
    for r in rows:
        r["time_vs_mlforecast"] = r["wall_seconds"] / peer["wall_seconds"] if peer and "wall_seconds" in r else None
    comparators = [r[case.metric] for r in rows if r["candidate"] != DEFAULT and r.get(case.metric) is not None]
    best = min(comparators) if comparators else float("nan")
    ratio = value / best if comparators else float("nan")
    targets: dict[str, bool] = {"beats_best_by_5pct": bool(ratio <= 1 - TARGETS["beat_best_by"])}
    if case.name == "walmart":
        targets["wmae_at_most_1650"] = value <= TARGETS["walmart_wmae"]
    if case.name == "store-item":
        targets["smape_at_most_12"] = value <= TARGETS["store_item_smape"]
        tuned = by_name.get(PEER_TUNED, {})
        speed = runs[DEFAULT].seconds / tuned["wall_seconds"] if tuned.get("wall_seconds") else float("nan")
        default_row["time_vs_mlforecast_tuned"] = speed
        targets["time_at_most_half_of_tuned_mlforecast"] = bool(speed <= TARGETS["store_item_time_ratio"])
    if stockout is not None:
        s, rule = stockout[DEFAULT], stockout["rule"]
        stockout["wall_seconds"] = runs["stockout"].seconds
        stockout["peak_rss_mb"] = runs["stockout"].peak_mb
        targets["stockout_pr_auc_at_least_0.47"] = s["pr_auc"] >= STOCKOUT_TARGETS["pr_auc"]
        targets["stockout_f1_at_least_0.48"] = s["f1"] >= STOCKOUT_TARGETS["f1"]
        targets["stockout_pr_auc_beats_rule_by_5pct"] = s["pr_auc"] >= (1 + TARGETS["beat_best_by"]) * rule["pr_auc"]
    result: dict[str, Any] = {
        "dataset": case.name,
        "metric": case.metric,
        "cutoff": cutoff.isoformat(),
        "horizon": case.horizon,
        "freq": case.freq,
        "evaluation_rows": truth.height,
        "history_steps": history,
        "ingest": {"wall_seconds": runs["ingest"].seconds, "peak_rss_mb": runs["ingest"].peak_mb},
        "simulate": None if simulate_run is None else {"wall_seconds": simulate_run.seconds, **case.sim},
        "candidates": rows,
        "speed_peer": peer["candidate"] if peer else None,
        "default_vs_best_comparator": ratio,
        "stockout": stockout,
        "targets": targets,
    }
    print_case(result, console)
    return result


def fmt(metric: str, value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    if metric == "wmae":
        return f"{value:,.1f}"
    return f"{value:.3f}"


def print_case(result: dict[str, Any], console: Console) -> None:
    metric = result["metric"]
    table = Table(
        title=f"{result['dataset']}: {metric.upper()} on {result['evaluation_rows']:,} rows "
        f"(cutoff {result['cutoff']}, horizon {result['horizon']}{'w' if result['freq'] == 'W' else 'd'})",
        caption=f"ingest {result['ingest']['wall_seconds']:.1f}s wall (not in the forecast's time)",
    )
    for col in ("candidate", metric.upper(), "vs default", "wall s", "time / mlforecast", "peak MB", "note"):
        table.add_column(col, justify="left" if col in ("candidate", "note") else "right", no_wrap=True)
    default = result["candidates"][0].get(metric)
    for r in result["candidates"]:
        value = r.get(metric)
        rel = "-" if value is None or default is None else f"{default / value:.3f}"
        ratio = r.get("time_vs_mlforecast")
        note = ", ".join(r["model"]) if r["candidate"] == DEFAULT else (r.get("error") or "")
        table.add_row(
            r["candidate"],
            fmt(metric, value),
            rel,
            "-" if "wall_seconds" not in r else f"{r['wall_seconds']:.1f}",
            "-" if ratio is None else f"{ratio:.2f}",
            "-" if "peak_rss_mb" not in r else f"{r['peak_rss_mb']:,.0f}",
            note[:60],
        )
    console.print(table)
    s = result["stockout"]
    if s:
        console.print(
            f"  stockout (full day in the next 7 days, {s['positive_rate']:.1%} positive, {s['rows']:,} series): "
            f"default path PR-AUC {s[DEFAULT]['pr_auc']:.4f} F1 {s[DEFAULT]['f1']:.4f} (threshold "
            f"{s['threshold']:.3f}, {s['wall_seconds']:.1f}s); rule PR-AUC {s['rule']['pr_auc']:.4f} "
            f"F1 {s['rule']['f1']:.4f}"
        )
    held = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["targets"].items())
    console.print(f"  default / best comparator {result['default_vs_best_comparator']:.3f}; targets: {held}")


def _cell(by: dict[str, dict[str, Any]], name: str, key: str, metric: str) -> str:
    value = by.get(name, {}).get(key)
    if value is None:
        return "n/a"
    return fmt(metric, value) if key == metric else f"{value:.1f}"


def print_summary(results: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Default path against the seasonal naive and mlforecast (same run; wall s = whole process)")
    cols = ("dataset", "metric", "default (model)", "seasonal naive", "mlforecast", "mlf tuned", "default/best")
    cols += ("default s", "mlf s", "mlf tuned s", "targets")
    for col in cols:
        table.add_column(col, justify="left" if col in ("dataset", "metric", "targets") else "right")
    for res in results:
        m = res["metric"]
        by = {r["candidate"]: r for r in res["candidates"]}

        d = by[DEFAULT]
        table.add_row(
            res["dataset"],
            m.upper(),
            f"{fmt(m, d.get(m))} ({'+'.join(d['model'])})",
            _cell(by, NAIVE, m, m),
            _cell(by, PEER, m, m),
            _cell(by, PEER_TUNED, m, m),
            f"{res['default_vs_best_comparator']:.3f}",
            f"{d['wall_seconds']:.1f}",
            _cell(by, PEER, "wall_seconds", m),
            _cell(by, PEER_TUNED, "wall_seconds", m),
            " ".join(("ok" if v else "MISS") + f":{k}" for k, v in res["targets"].items()),
        )
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the shared datasets")
    parser.add_argument("--only", action="append", choices=list(CASES), help="run this dataset only (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller simulated chains")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    opts = parser.parse_args(argv)
    names = opts.only or list(CASES)
    real = [n for n in names if n in ("store-item", "walmart", "freshretailnet")]
    if real and not opts.data.is_dir():
        parser.error(f"--data {opts.data} is not a folder (needed for {', '.join(real)})")
    if not SHELFCAST.exists():
        parser.error(f"no shelfcast command next to {sys.executable}: run `make install` first")
    console = Console(width=None if sys.stdout.isatty() else 170)
    host = machine()  # read before the run: other work may commit to the repository meanwhile
    host["load_avg_at_start"] = os.getloadavg()
    host["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY")
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    for n in names:
        try:
            results.append(bench_case(CASES[n], opts.data, quick=opts.quick, console=console))
        except RuntimeError as err:  # a CLI step failed: say so and go on with the other datasets
            console.print(f"[red]{n} failed[/red]: {err}")
            failures[n] = str(err)[-2000:]
        write_json(opts, host, started, results, failures)  # after each dataset: a long run keeps what it measured
    if results:
        print_summary(results, console)
    payload = write_json(opts, host, started, results, failures)
    console.print(f"wrote {opts.json} in {payload['total_seconds']:.0f}s")


def write_json(
    opts: argparse.Namespace,
    host: dict[str, Any],
    started: float,
    results: list[dict[str, Any]],
    failures: dict[str, str],
) -> dict[str, Any]:
    payload = {
        "benchmark": "default_path",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": host | {"load_avg_at_end": os.getloadavg()},
        "quick": opts.quick,
        "total_seconds": round(time.perf_counter() - started, 1),
        "targets": TARGETS | {"freshretailnet_stockout": STOCKOUT_TARGETS},
        "datasets": results,
        "failures": failures,
    }
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(_finite(payload), indent=2, default=str) + "\n")
    return payload


if __name__ == "__main__":
    main()
