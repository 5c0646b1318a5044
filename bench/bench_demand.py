"""Demand benchmark: shelfcast's GBM against baselines, a blend and mlforecast, on real retail data.

    uv run --group bench python bench/bench_demand.py [DATA_DIR] [--json bench/results/demand.json]
        [--datasets store-item,walmart] [--variants tweedie,raw_target|all] [--diagnose]

DATA_DIR defaults to ../shared/data next to the repository. Per dataset, in one run:

- store-item (Kaggle Store Item Demand): train to 2017-10-02, forecast 90 days, SMAPE (Kaggle's);
- walmart (Kaggle Walmart Store Sales): train to 2012-01-27, forecast 39 weeks, WMAE with the
  holiday weeks of train (IsHoliday) weighing 5, on the store-dept-weeks train has.

The dataset is ingested once into a temporary workspace (timed apart). Every
candidate then runs in its own process, started through a wrapper process that
reads the child's peak RSS: shelfcast's GBM (panel from the canonical lake,
features, fit, predict), each baseline (panel + baseline), the 50/50 blend of
the GBM and the seasonal naive (the GBM's process, plus the seasonal naive on
the same panel), and mlforecast with LightGBM (raw file -> pandas -> fit ->
recursive predict) in two configurations: "mlforecast" as in its documentation
(default LGBMRegressor, a few lags and rolling means) and "mlforecast_tuned"
(500 trees, more lags, expanding means, day-of-year). Speed ratios are taken
against the more accurate of the two. `seconds` is the candidate's work inside its process
(imports and interpreter start excluded, reported as `process_seconds`).

All candidates are scored against the ORIGINAL train actuals: on Walmart that
includes the negative weekly sales that shelfcast quarantines at ingest (its
models never see them), so the figures compare with the issue's. A row with no
forecast counts as a forecast of 0 (`missing` says how many).

`--variants` adds shelfcast GBMs trained with other ForecastConfig / FeatureSpec
settings (see VARIANTS), each with its blend; `--diagnose` prints where the
errors come from (by horizon, holiday weeks, worst series). Always exits 0:
this is a measurement; "target met" / "gap" lines say how it went.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_JSON = ROOT / "bench" / "results" / "demand.json"
KEYS = ["store_id", "item_id", "date"]
PEER = "mlforecast"
PEER_TUNED = "mlforecast_tuned"
GBM = "shelfcast_gbm"
BLEND = "blend_gbm_seasonal_naive"
BASELINE_NAMES = ("seasonal_naive", "naive", "moving_average_28")


@dataclass(frozen=True)
class Dataset:
    """One benchmark split: where the data is, how shelfcast reads it, and what to beat."""

    name: str
    folder: str
    source: str
    cutoff: dt.date
    horizon: int
    freq: str
    metric: str
    issue: dict[str, float] = field(default_factory=dict)
    target: float = 0.0
    # The issue's speed target, as a fraction of the peer's wall time (None: no speed target).
    time_target: float | None = None


DATASETS = {
    "store-item": Dataset(
        name="store-item",
        folder="store_item_demand",
        source="store-item",
        cutoff=dt.date(2017, 10, 2),
        horizon=90,
        freq="D",
        metric="smape",
        issue={PEER: 12.33, "seasonal_naive": 22.27, f"{PEER}_seconds": 39.0},
        target=12.0,
        time_target=0.5,
    ),
    "walmart": Dataset(
        name="walmart",
        folder="walmart_store_sales",
        source="walmart",
        cutoff=dt.date(2012, 1, 27),
        horizon=39,
        freq="W",
        metric="wmae",
        issue={PEER: 1945.0, "seasonal_naive": 1799.0},
        target=1650.0,
    ),
}

# Principled alternatives to the default ForecastConfig / FeatureSpec, general
# enough for any retail data (nothing here is fitted to these two datasets).
VARIANTS: dict[str, dict[str, Any]] = {
    "tweedie": {"config": {"objective": "tweedie"}},
    "poisson": {"config": {"objective": "poisson"}},
    "raw_target": {"config": {"target": "raw"}},
    "no_weight": {"config": {"weight": "none"}},
    "more_trees": {"config": {"n_estimators": 800, "learning_rate": 0.03}},
    "more_rows": {"config": {"max_rows": 1_000_000}},
    "more_origins": {"config": {"n_origins": 208, "max_rows": 600_000}},
    # Speed for accuracy: half the rows, half the trees at a higher rate.
    "fast": {"config": {"max_rows": 150_000, "n_estimators": 150, "learning_rate": 0.15}},
    # The other multi-step strategy: a one-step model fed its own forecasts (shelfcast_gbm is the direct one).
    "recursive": {"config": {"strategy": "recursive"}},
}


# --------------------------------------------------------------------------- workers (child processes)


def _frame_out(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        pl.col("store_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("date").cast(pl.Date),
        pl.col("forecast").cast(pl.Float64),
    )


def _worker_ingest(job: dict[str, Any]) -> dict[str, Any]:
    from shelfcast.data.sources import get_source
    from shelfcast.jobs.ingest import run_ingest
    from shelfcast.settings import Settings

    started = time.perf_counter()
    report = run_ingest(
        get_source(job["source"]),
        Path(job["path"]),
        settings=Settings(workspace=Path(job["workspace"])),
        today=dt.date.today(),
        now=dt.datetime.now(),
    )
    return {
        "seconds": time.perf_counter() - started,
        "read": report.total("read"),
        "kept": report.total("kept"),
        "quarantined": report.total("quarantined"),
        "quarantine_by_rule": report.quarantine_by_rule,
    }


def _worker_shelfcast(job: dict[str, Any]) -> dict[str, Any]:
    # Imported before the clock starts, as the peer's worker does (lightgbm
    # pulls in scikit-learn: ~3 s cold that neither side should be charged).
    import lightgbm  # noqa: F401

    from shelfcast.io.lake import Lake
    from shelfcast.io.model_data import load_model_data
    from shelfcast.models.baselines import BASELINES
    from shelfcast.models.train import fit_forecaster

    cutoff = dt.date.fromisoformat(job["cutoff"])
    started = time.perf_counter()
    data = load_model_data(Lake(Path(job["workspace"])))
    loaded = time.perf_counter()
    out: dict[str, Any] = {"load_seconds": loaded - started}
    if job["kind"] == "baseline":
        forecast = BASELINES[job["baseline"]](data.panel, cutoff=cutoff, horizon=job["horizon"])
        out["seconds"] = time.perf_counter() - started
        _frame_out(forecast).write_parquet(job["forecast"])
        return out
    override = VARIANTS.get(job.get("variant") or "", {})
    spec = data.spec.model_copy(update=override.get("spec", {}))
    config = data.config.model_copy(update=override.get("config", {}))
    model = fit_forecaster(data.panel, spec, config, cutoff=cutoff, horizon=job["horizon"], calendar=data.calendar)
    fitted = time.perf_counter()
    forecast = model.predict(data.panel, calendar=data.calendar)
    done = time.perf_counter()
    out |= {"fit_seconds": fitted - loaded, "predict_seconds": done - fitted, "seconds": done - started}
    out |= {"spec": spec.model_dump(mode="json"), "config": config.model_dump(mode="json")}
    out["importance"] = model.model.feature_importance().head(15).to_dicts()
    _frame_out(forecast).write_parquet(job["forecast"])
    # The blend's extra work: the seasonal naive on the panel already built.
    sn_started = time.perf_counter()
    naive = BASELINES["seasonal_naive"](data.panel, cutoff=cutoff, horizon=job["horizon"])
    out["blend_extra_seconds"] = time.perf_counter() - sn_started
    _frame_out(naive).write_parquet(job["naive_forecast"])
    return out


def _week_of_year(dates: Any) -> Any:
    return dates.isocalendar().week.to_numpy().astype("int32")


def _worker_mlforecast(job: dict[str, Any]) -> dict[str, Any]:
    import lightgbm as lgb
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import ExpandingMean, RollingMean
    from utilsforecast.preprocessing import fill_gaps

    cutoff = pd.Timestamp(job["cutoff"])
    started = time.perf_counter()
    cols = job["columns"]
    raw = pd.read_parquet(job["path"], columns=list(cols.values()))
    df = pd.DataFrame(
        {
            "unique_id": raw[cols["store"]].astype(str) + "_" + raw[cols["item"]].astype(str),
            "ds": pd.to_datetime(raw[cols["date"]]),
            "y": raw[cols["y"]].astype("float64"),
        }
    )
    df = df[df["ds"] <= cutoff]
    tuned = job["config"] == "tuned"
    # "quick": the documentation's pattern, default LGBMRegressor (100 trees).
    # "tuned": what a skilled user adds: more trees at a lower rate, more lags
    # (a year back), expanding means and day-of-year / year features.
    params = {"n_estimators": 500, "learning_rate": 0.05, "num_leaves": 63} if tuned else {}
    model = lgb.LGBMRegressor(verbosity=-1, **params)
    if job["freq"] == "D" and tuned:
        fcst = MLForecast(
            models=[model],
            freq="D",
            lags=[1, 7, 14, 21, 28, 364],
            lag_transforms={
                1: [ExpandingMean(), RollingMean(7), RollingMean(28)],
                7: [RollingMean(7), RollingMean(28)],
            },
            date_features=["dayofweek", "month", "dayofyear", "year"],
        )
        freq = "D"
    elif job["freq"] == "D":
        fcst = MLForecast(
            models=[model],
            freq="D",
            lags=[1, 7, 14, 28],
            lag_transforms={1: [RollingMean(7), RollingMean(28)], 7: [RollingMean(7)]},
            date_features=["dayofweek", "month"],
        )
        freq = "D"
    else:
        # Ragged weekly series: the missing weeks are weeks without sales (0), up
        # to the cutoff, so every series' forecast starts the week after it.
        df = fill_gaps(df, freq="W-FRI", start="per_serie", end=cutoff)
        df["y"] = df["y"].fillna(0.0)
        fcst = MLForecast(
            models=[model],
            freq="W-FRI",
            lags=[1, 2, 3, 4, 52] if tuned else [1, 2, 52],
            lag_transforms=(
                {1: [ExpandingMean(), RollingMean(4), RollingMean(13), RollingMean(52)], 52: [RollingMean(4)]}
                if tuned
                else {1: [RollingMean(4), RollingMean(13)], 52: [RollingMean(4)]}
            ),
            date_features=["month", _week_of_year],
        )
        freq = "W-FRI"
    fcst.fit(df)
    fitted = time.perf_counter()
    pred = fcst.predict(job["horizon"])
    done = time.perf_counter()
    ids = pred["unique_id"].str.split("_", n=1, expand=True)
    out = pl.DataFrame(
        {
            "store_id": ids[0].to_numpy(),
            "item_id": ids[1].to_numpy(),
            "date": pred["ds"].to_numpy().astype("datetime64[D]"),
            "forecast": pred["LGBMRegressor"].to_numpy(),
        }
    )
    _frame_out(out).write_parquet(job["forecast"])
    return {
        "seconds": done - started,
        "fit_seconds": fitted - started,
        "predict_seconds": done - fitted,
        "freq": freq,
        "train_rows": len(df),
        "config": {
            "model": f"LGBMRegressor(verbosity=-1, {params or '100 trees'}) (all cores)",
            "lags": fcst.ts.lags,
            "lag_transforms": sorted(fcst.ts.transforms),
            "date_features": [getattr(f, "__name__", f) for f in fcst.ts.date_features],
            "predict": "recursive",
        },
    }


def worker(job_file: Path) -> None:
    job = json.loads(job_file.read_text())
    started = time.perf_counter()
    handlers = {"ingest": _worker_ingest, "mlforecast": _worker_mlforecast}
    result = handlers.get(job["kind"], _worker_shelfcast)(job)
    result["worker_seconds"] = time.perf_counter() - started
    Path(job["result"]).write_text(json.dumps(result, default=str))


# --------------------------------------------------------------------------- measurement (parent)

# Runs its arguments as a child and prints the child's peak RSS (kB on Linux), CPU seconds and exit code.
_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=sys.stderr, check=False).returncode; "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(u.ru_maxrss, u.ru_utime + u.ru_stime, code)"
)


@dataclass
class Process:
    """What a worker process returned and cost."""

    result: dict[str, Any] | None
    peak_mb: float
    process_seconds: float
    cpu_seconds: float
    load: tuple[float, float]
    log_tail: str


@dataclass
class Measured:
    """One candidate's forecast and costs."""

    name: str
    seconds: float
    peak_mb: float
    process_seconds: float
    cpu_seconds: float = float("nan")
    load: tuple[float, float] = (float("nan"), float("nan"))
    forecast: pl.DataFrame | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_job(job: dict[str, Any], tmp: Path, *, verbose: bool) -> Process:
    """Run one worker job in its own process, through a wrapper process that reads its peak RSS."""
    job_file = tmp / f"job-{job['id']}.json"
    job["result"] = str(tmp / f"result-{job['id']}.json")
    job_file.write_text(json.dumps(job, default=str))
    args = [sys.executable, "-c", _WRAPPER, sys.executable, str(Path(__file__).resolve()), "--worker", str(job_file)]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True, check=False
    )
    seconds = time.perf_counter() - started
    peak_kb, cpu, code = proc.stdout.split()
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    peak_mb = int(peak_kb) / (1024.0 if sys.platform == "darwin" else 1.0) / 1024
    ok = int(code) == 0 and Path(job["result"]).exists()
    result = json.loads(Path(job["result"]).read_text()) if ok else None
    load = (load_before, os.getloadavg()[0])
    return Process(result, peak_mb, seconds, float(cpu), load, (proc.stderr or "")[-3000:])


def measure(name: str, job: dict[str, Any], tmp: Path, *, repeat: int, verbose: bool, console: Console) -> Measured:
    """Run a candidate `repeat` times and keep its fastest run (the one least disturbed by other load)."""
    runs: list[Process] = []
    for i in range(repeat):
        console.print(f"  running {name}{f' ({i + 1}/{repeat})' if repeat > 1 else ''} ...", style="dim")
        p = run_job(job, tmp, verbose=verbose)
        if p.result is None:
            console.print(f"  [red]{name} failed[/red]\n{p.log_tail}")
            last = p.log_tail.strip().splitlines()[-1:] or ["no output"]
            return Measured(name, float("nan"), p.peak_mb, p.process_seconds, p.cpu_seconds, p.load, error=last[0])
        runs.append(p)
    best = min(runs, key=lambda r: r.result["seconds"] if r.result else float("inf"))
    assert best.result is not None
    details = best.result | {"all_seconds": [round(r.result["seconds"], 2) for r in runs if r.result]}
    forecast = pl.read_parquet(job["forecast"]) if job.get("forecast") else None
    return Measured(
        name, details["seconds"], best.peak_mb, best.process_seconds, best.cpu_seconds, best.load, forecast, details
    )


# --------------------------------------------------------------------------- scoring


def actuals(ds: Dataset, data_dir: Path) -> pl.DataFrame:
    """The evaluation rows: original train actuals after the cutoff, within the horizon, with weights."""
    folder = data_dir / ds.folder
    step = 7 if ds.freq == "W" else 1
    last = ds.cutoff + dt.timedelta(days=step * ds.horizon)
    if ds.name == "store-item":
        frame = pl.read_parquet(folder / "train.parquet").select(
            pl.col("store").cast(pl.String).alias("store_id"),
            pl.col("item").cast(pl.String).alias("item_id"),
            "date",
            pl.col("sales").cast(pl.Float64).alias("y"),
            pl.lit(1.0).alias("weight"),
        )
    else:
        frame = pl.read_parquet(folder / "train.parquet").select(
            pl.col("Store").cast(pl.String).alias("store_id"),
            pl.col("Dept").cast(pl.String).alias("item_id"),
            pl.col("Date").alias("date"),
            pl.col("Weekly_Sales").cast(pl.Float64).alias("y"),
            pl.when(pl.col("IsHoliday")).then(5.0).otherwise(1.0).alias("weight"),
        )
    return frame.filter((pl.col("date") > ds.cutoff) & (pl.col("date") <= last))


def joined(truth: pl.DataFrame, forecast: pl.DataFrame, ds: Dataset) -> pl.DataFrame:
    step = 7 if ds.freq == "W" else 1
    out = truth.join(forecast.unique(KEYS), on=KEYS, how="left")
    h = ((pl.col("date") - pl.lit(ds.cutoff)).dt.total_days() // step).cast(pl.Int32)
    return out.with_columns(pl.col("forecast").is_null().alias("missing"), h.alias("h")).with_columns(
        pl.col("forecast").fill_null(0.0).fill_nan(0.0)
    )


def score(frame: pl.DataFrame, metric: str) -> float:
    from shelfcast.models.metrics import smape, wmae

    if frame.is_empty():
        return float("nan")
    y, f = frame["y"].to_numpy(), frame["forecast"].to_numpy()
    if metric == "smape":
        return smape(y, f)
    return wmae(y, f, weights=frame["weight"].to_numpy())


def blend(gbm: pl.DataFrame, naive: pl.DataFrame) -> pl.DataFrame:
    both = gbm.join(naive, on=KEYS, how="full", coalesce=True, suffix="_sn")
    value = (pl.col("forecast") + pl.col("forecast_sn")) / 2
    return both.select(*KEYS, pl.coalesce(value, "forecast", "forecast_sn").alias("forecast"))


def diagnose(ds: Dataset, scored: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """Where the error comes from: by horizon bucket, holiday weeks, and the worst series of the GBM."""
    buckets = [(1, 7), (8, 28), (29, 56), (57, 90)] if ds.freq == "D" else [(1, 4), (5, 13), (14, 26), (27, 39)]
    out: dict[str, Any] = {"by_horizon": {}, "holiday": {}, "worst_series": {}, "by_weekday": {}}
    for name, frame in scored.items():
        out["by_horizon"][name] = {
            f"h{lo}-{hi}": score(frame.filter(pl.col("h").is_between(lo, hi)), ds.metric) for lo, hi in buckets
        }
        if ds.metric == "wmae":
            err = (pl.col("forecast") - pl.col("y")).abs() * pl.col("weight")
            parts = frame.group_by(pl.col("weight") > 1).agg(err.sum(), pl.len()).sort("weight")
            total = frame["weight"].sum()
            out["holiday"][name] = {
                ("holiday" if row["weight"] else "other"): {
                    "wmae_contribution": row["literal"] / total,
                    "rows": row["len"],
                }
                for row in parts.rename({"forecast": "literal"}).to_dicts()
            }
        else:
            out["by_weekday"][name] = {
                str(d): score(frame.filter(pl.col("date").dt.weekday() == d), ds.metric) for d in range(1, 8)
            }
    if GBM in scored:
        gbm = scored[GBM]
        ref = scored.get("seasonal_naive", gbm)
        err = (pl.col("forecast") - pl.col("y")).abs() * pl.col("weight")
        per = gbm.group_by("store_id", "item_id").agg(err.sum().alias("gbm_abs_err"), pl.col("y").sum().alias("y_sum"))
        per = per.join(
            ref.group_by("store_id", "item_id").agg(err.sum().alias("sn_abs_err")), on=["store_id", "item_id"]
        )
        total = per["gbm_abs_err"].sum()
        top = (
            per.sort("gbm_abs_err", descending=True)
            .head(10)
            .with_columns((pl.col("gbm_abs_err") / total).alias("share"))
        )
        out["worst_series"] = {
            "top10_share": float(top["share"].sum()),
            "series_where_gbm_beats_seasonal_naive": float((per["gbm_abs_err"] < per["sn_abs_err"]).mean()),
            "top10": top.to_dicts(),
        }
    return out


# --------------------------------------------------------------------------- one dataset


def peer_columns(ds: Dataset) -> dict[str, str]:
    if ds.name == "store-item":
        return {"store": "store", "item": "item", "date": "date", "y": "sales"}
    return {"store": "Store", "item": "Dept", "date": "Date", "y": "Weekly_Sales"}


def bench_dataset(
    ds: Dataset,
    data_dir: Path,
    variants: list[str],
    *,
    repeat: int,
    diagnose_errors: bool,
    verbose: bool,
    console: Console,
) -> dict[str, Any]:
    folder = data_dir / ds.folder
    console.rule(f"{ds.name}: train to {ds.cutoff}, {ds.horizon} {'weeks' if ds.freq == 'W' else 'days'} ahead")
    with tempfile.TemporaryDirectory(prefix="bench-demand-") as tmp_name:
        tmp = Path(tmp_name)
        workspace = tmp / "workspace"
        common = {"cutoff": ds.cutoff.isoformat(), "horizon": ds.horizon, "workspace": str(workspace)}
        console.print("  ingesting ...", style="dim")
        ingest_job = {"id": "ingest", "kind": "ingest", "source": ds.source, "path": str(folder), **common}
        p = run_job(ingest_job, tmp, verbose=verbose)
        if p.result is None:
            raise RuntimeError(f"ingest of {ds.name} failed:\n{p.log_tail}")
        ingest = p.result | {"peak_rss_mb": p.peak_mb, "process_seconds": p.process_seconds}

        runs: list[Measured] = []
        naive_forecasts: dict[str, pl.DataFrame] = {}
        for variant in [None, *variants]:
            label = GBM if variant is None else f"{GBM}:{variant}"
            job_id = GBM if variant is None else f"{GBM}-{variant}"
            job = {
                "id": job_id,
                "kind": "gbm",
                "variant": variant,
                "forecast": str(tmp / f"{job_id}.parquet"),
                "naive_forecast": str(tmp / f"{job_id}-sn.parquet"),
                **common,
            }
            # Variants are there for their accuracy: one run each.
            m = measure(label, job, tmp, repeat=repeat if variant is None else 1, verbose=verbose, console=console)
            runs.append(m)
            if m.forecast is not None:
                naive_forecasts[label] = pl.read_parquet(job["naive_forecast"])
        for name in BASELINE_NAMES:
            job = {"id": name, "kind": "baseline", "baseline": name, "forecast": str(tmp / f"{name}.parquet"), **common}
            runs.append(measure(name, job, tmp, repeat=repeat, verbose=verbose, console=console))
        for name, config in ((PEER, "quick"), (PEER_TUNED, "tuned")):
            peer_job = {
                "id": name,
                "kind": "mlforecast",
                "config": config,
                "path": str(folder / "train.parquet"),
                "columns": peer_columns(ds),
                "freq": ds.freq,
                "forecast": str(tmp / f"{name}.parquet"),
                **common,
            }
            runs.append(measure(name, peer_job, tmp, repeat=repeat, verbose=verbose, console=console))

    # Blends: the GBM's process also ran the seasonal naive on its panel.
    for m in list(runs):
        if m.name.startswith(GBM) and m.forecast is not None:
            suffix = m.name[len(GBM) :]
            runs.append(
                Measured(
                    f"{BLEND}{suffix}",
                    m.seconds + m.details["blend_extra_seconds"],
                    m.peak_mb,
                    m.process_seconds,
                    m.cpu_seconds,
                    m.load,
                    blend(m.forecast, naive_forecasts[m.name]),
                    {"from": [m.name, "seasonal_naive on the same panel, same process"]},
                )
            )

    truth = actuals(ds, data_dir)
    scored = {m.name: joined(truth, m.forecast, ds) for m in runs if m.forecast is not None}
    # Speed is compared with the more accurate of the two peer configurations.
    peers = [m for m in runs if m.name in (PEER, PEER_TUNED) and m.name in scored]
    peer = min(peers, key=lambda m: score(scored[m.name], ds.metric)) if peers else None
    candidates: list[dict[str, Any]] = []
    for m in runs:
        row: dict[str, Any] = {
            "candidate": m.name,
            "seconds": round(m.seconds, 2),
            "process_seconds": round(m.process_seconds, 2),
            "process_cpu_seconds": round(m.cpu_seconds, 2),
            "load_avg_1min_before_after": [round(v, 2) for v in m.load],
            "peak_rss_mb": round(m.peak_mb),
            "ratio_time_vs_peer": round(m.seconds / peer.seconds, 3) if peer else None,
            "error": m.error,
        }
        if m.name in scored:
            frame = scored[m.name]
            row[ds.metric] = score(frame, ds.metric)
            row["missing_forecasts"] = int(frame["missing"].sum())
        details = {k: v for k, v in m.details.items() if k not in ("spec", "config", "importance")}
        row["details"] = details
        if m.name == GBM:
            row["spec"], row["config"] = m.details.get("spec"), m.details.get("config")
            row["importance_top15"] = m.details.get("importance")
        if m.name.startswith(f"{GBM}:"):
            row["override"] = VARIANTS[m.name.split(":", 1)[1]]
        candidates.append(row)

    result: dict[str, Any] = {
        "dataset": ds.name,
        "data": str(data_dir / ds.folder),
        "cutoff": ds.cutoff.isoformat(),
        "horizon": ds.horizon,
        "freq": ds.freq,
        "metric": ds.metric,
        "evaluation_rows": truth.height,
        "repeat": repeat,
        "evaluation_note": (
            "scored against the original train actuals after the cutoff"
            + (
                ", including the negative Weekly_Sales shelfcast quarantines at ingest; "
                "holiday weeks (train IsHoliday) weigh 5"
                if ds.metric == "wmae"
                else ""
            )
        ),
        "ingest": ingest,
        "candidates": candidates,
        "issue_figures": ds.issue,
        "speed_peer": peer.name if peer else None,
        "target": {"metric_at_most": ds.target, "time_at_most_ratio_vs_peer": ds.time_target},
    }
    if diagnose_errors:
        result["diagnosis"] = diagnose(ds, scored)
    print_dataset(result, console)
    return result


def print_dataset(result: dict[str, Any], console: Console) -> None:
    metric = result["metric"]

    def fmt(value: float) -> str:
        if abs(value) >= 1e7:  # a diverged model: keep the table readable
            return f"{value:.2g}"
        return f"{value:.2f}" if metric == "smape" else f"{value:,.0f}"

    ing = result["ingest"]
    table = Table(
        title=f"{result['dataset']}: {metric.upper()} on {result['evaluation_rows']:,} rows "
        f"(cutoff {result['cutoff']}, horizon {result['horizon']})",
        caption=f"ingest (not in the times): {ing['seconds']:.1f}s, peak {ing['peak_rss_mb']:,.0f} MB, "
        f"{ing['quarantined']:,} of {ing['read']:,} rows quarantined",
    )
    columns = ("candidate", metric.upper(), "seconds", "process s", "peak MB", "time / peer", "missing", "load")
    for col in columns:
        table.add_column(col, justify="left" if col == "candidate" else "right", no_wrap=col == "candidate")
    for row in sorted(result["candidates"], key=lambda r: (r.get(metric) is None, r.get(metric) or 0)):
        value = row.get(metric)
        ratio = row["ratio_time_vs_peer"]
        table.add_row(
            row["candidate"],
            "failed" if value is None else fmt(value),
            f"{row['seconds']:.1f}",
            f"{row['process_seconds']:.1f}",
            f"{row['peak_rss_mb']:,}",
            "-" if ratio is None else f"{ratio:.2f}",
            str(row.get("missing_forecasts", "-")),
            f"{row['load_avg_1min_before_after'][0]:.1f}",
        )
    console.print(table)
    if result["metric"] == "wmae":
        console.print(f"  note: {result['evaluation_note']}")
    by_name = {r["candidate"]: r for r in result["candidates"]}
    target = result["target"]["metric_at_most"]
    peer = by_name.get(result["speed_peer"] or "", {})
    time_target = result["target"]["time_at_most_ratio_vs_peer"]
    issue = ", ".join(f"{k} {v:g}" for k, v in result["issue_figures"].items())
    console.print(f"  issue figures: {issue}")
    for name in (GBM, BLEND):
        row = by_name.get(name, {})
        value, ratio = row.get(metric), row.get("ratio_time_vs_peer")
        if value is None:
            console.print(f"  gap: {name} failed")
            continue
        accurate = value <= target
        fast = time_target is None or (ratio is not None and ratio <= time_target)
        verdict = "target met" if accurate and fast else "gap"
        speed = (
            f", time {row['seconds']:.1f}s = {'n/a' if ratio is None else f'{ratio:.2f}'}x "
            f"{result['speed_peer']}'s {peer.get('seconds', float('nan')):.1f}s"
        )
        if time_target is not None:
            speed += f" (target <= {time_target:g}x{'' if fast else ', MISSED'})"
        missed = "" if accurate else ", MISSED"
        console.print(f"  {verdict}: {name} {metric} {fmt(value)} (target <= {fmt(target)}{missed}){speed}")
    ours = [r for r in result["candidates"] if r["candidate"].startswith((GBM, BLEND)) and r.get(metric) is not None]
    if ours:
        best = min(ours, key=lambda r: r[metric])
        console.print(
            f"  best shelfcast candidate: {best['candidate']} {metric} {fmt(best[metric])} "
            f"({'within' if best[metric] <= target else 'above'} the {fmt(target)} target), {best['seconds']:.1f}s"
        )
    if "diagnosis" in result:
        diag = result["diagnosis"]
        t = Table(title=f"{result['dataset']}: {metric.upper()} by horizon")
        t.add_column("candidate", no_wrap=True)
        buckets = next(iter(diag["by_horizon"].values())).keys()
        for b in buckets:
            t.add_column(b, justify="right")
        for name, values in diag["by_horizon"].items():
            t.add_row(name, *[fmt(values[b]) for b in buckets])
        console.print(t)
        if diag.get("worst_series"):
            w = diag["worst_series"]
            console.print(
                f"  GBM: worst 10 series carry {w['top10_share']:.1%} of its absolute error; it beats the "
                f"seasonal naive on {w['series_where_gbm_beats_seasonal_naive']:.1%} of series"
            )
            for r in w["top10"][:5]:
                console.print(
                    f"    store {r['store_id']} item {r['item_id']}: gbm {r['gbm_abs_err']:,.0f} vs "
                    f"seasonal naive {r['sn_abs_err']:,.0f} (sum of actuals {r['y_sum']:,.0f})"
                )


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    """CPUs, platform, versions and the commit of the code measured."""
    versions = {}
    for pkg in ("shelfcast", "polars", "lightgbm", "mlforecast", "pandas", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True
    )
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit.stdout.strip() or None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    parser.add_argument("--datasets", default="store-item,walmart", help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--variants", default="", help=f"extra GBM configs: 'all' or some of {', '.join(VARIANTS)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs per candidate; the fastest is kept")
    parser.add_argument("--diagnose", action="store_true", help="break the errors down by horizon and series")
    parser.add_argument("--verbose", action="store_true", help="show the workers' logs")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.worker:
        worker(opts.worker)
        return
    names = [n.strip() for n in opts.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    variants = list(VARIANTS) if opts.variants == "all" else [v.strip() for v in opts.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if unknown or bad:
        parser.error(
            f"unknown dataset(s) {unknown} or variant(s) {bad}; datasets: {list(DATASETS)}, variants: {list(VARIANTS)}"
        )
    console = Console(width=None if sys.stdout.isatty() else 150)
    # Read before the run: other work may commit to the repository meanwhile.
    host = machine()
    started = time.perf_counter()
    results = [
        bench_dataset(
            DATASETS[n],
            opts.data_dir,
            variants,
            repeat=max(1, opts.repeat),
            diagnose_errors=opts.diagnose,
            verbose=opts.verbose,
            console=console,
        )
        for n in names
    ]
    payload = {
        "benchmark": "demand",
        "measured_at": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": host,
        "total_seconds": round(time.perf_counter() - started, 1),
        "datasets": results,
    }
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(_finite(payload), indent=2, default=str) + "\n")
    console.print(f"wrote {opts.json}")


def _finite(value: Any) -> Any:
    """NaN and infinities as null, so the JSON is standard."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


if __name__ == "__main__":
    main()
