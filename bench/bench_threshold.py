"""How well the stockout alert threshold chosen before a cutoff holds after it: the old choice against the new.

Usage: uv run python bench/bench_threshold.py [DATA_DIR] [--json bench/results/threshold.json]
       [--skip-frn] [--frn-only] [--frn-parts a,b,all] [--shapes default,weekly] [--seeds 2] [--cutoffs 4]

Each fit is the stockout classifier at a cutoff (default StockoutConfig); its
threshold and calibration are chosen on origins before the cutoff only, then
the cutoff's 7-day window is scored. One fit serves every method: the
calibration and threshold are recomputed from the fit's held-out evidence
(`StockoutModel.holdout`), so the methods differ in nothing else.

- old: the held-out isotonic staircase applied to the refit model as is, and
  the threshold where F1 peaks on the held-out rows;
- new (the default now): centred isotonic on the held-out model's scores, the
  refit model's scores matched onto them quantile by quantile on the cutoff's
  rows, and half the best held-out F1 as the threshold;
- the other rows of the JSON: every calibration x threshold pair measured.

Datasets: simulated chains of several shapes (frequent, rare and intermittent
stockouts, weekly data), several seeds and cutoffs each; FreshRetailNet
(DATA_DIR/freshretailnet_50k) split into two halves of its series by a stable
hash: the method was chosen looking at half A (and the simulator) and half B
reports it, then the whole shared set at the README's cutoff. F1 and PR-AUC
are pooled over each dataset's scored rows (each cutoff at its own threshold);
`hindsight F1` is the best F1 any threshold reaches on those rows (a ceiling).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.features.labels import StockoutDefinition, stockout_labels
from shelfcast.features.panel import SERIES, Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.jobs.ingest import run_ingest
from shelfcast.models.classification import best_threshold, f1, pr_auc
from shelfcast.models.stockout import (
    Calibration,
    StockoutConfig,
    ThresholdMethod,
    calibration_map,
    choose_threshold,
    fit_stockout,
    stockout_features,
    window_steps,
)
from shelfcast.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FRN_CUTOFF = dt.date(2024, 6, 18)
# (calibration, matched onto the held-out model) x threshold method; `old` and `new` are two of them.
CALIBRATIONS: dict[str, tuple[Calibration, bool]] = {
    "isotonic": ("isotonic", False),
    "centered": ("centered", False),
    "centered+matched": ("centered", True),
}
METHODS: tuple[ThresholdMethod, ...] = ("holdout_f1", "half_f1", "origin_median", "expected_f1", "base_rate")
OLD = ("isotonic", "holdout_f1")
NEW = ("centered+matched", StockoutConfig().threshold)
SHAPES: dict[str, dict[str, Any]] = {
    "sim default (daily)": {},
    "sim frequent stockouts": {"safety_factor": 0.0},
    "sim rare stockouts": {"safety_factor": 1.5},
    "sim intermittent slow movers": {"max_base_demand": 3.0, "safety_factor": 0.3},
    "sim weekly": {"freq": "W", "safety_factor": 0.3},
}


def _scored(panel: Panel, spec: FeatureSpec, definition: StockoutDefinition, cutoff: dt.date) -> dict[str, Any]:
    """One fit at `cutoff`: per calibration x method, the probabilities and threshold for the cutoff's rows."""
    config = StockoutConfig() if panel.freq == "D" else StockoutConfig(n_origins=30, holdout_origins=6)
    started = time.perf_counter()
    model = fit_stockout(panel, spec, config, definition, cutoff=cutoff)
    window = window_steps(panel, definition.window)
    features = stockout_features(panel.as_known_at(cutoff), spec, [cutoff], window=window)
    labels = stockout_labels(panel, origins=[cutoff], definition=definition).drop_nulls("label")
    keys = [*SERIES, "origin"]
    rows = (
        features.select(*keys)
        .with_columns(pl.Series("raw", model.raw_scores(features)))
        .join(labels.select(*keys, "label"), on=keys)
    )
    holdout = model.holdout
    assert holdout is not None
    out: dict[str, Any] = {"y": rows["label"].to_numpy().astype(np.float64), "seconds": time.perf_counter() - started}
    for name, (calibration, matched) in CALIBRATIONS.items():
        x, y = calibration_map(holdout, calibration, matched=matched)
        held = np.interp(holdout.raw, *calibration_map(holdout, calibration, matched=False))
        current = np.interp(holdout.current_final, x, y)
        probability = np.interp(rows["raw"].to_numpy(), x, y)
        for method in METHODS:
            threshold = choose_threshold(held, holdout.label, holdout.origin, method=method, current=current)
            out[(name, method)] = (probability, threshold)
    return out


def _summary(fits: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled F1 (each fit at its own threshold) and PR-AUC per calibration x method, over a dataset's fits."""
    y = np.concatenate([f["y"] for f in fits])
    result: dict[str, Any] = {
        "rows": int(y.size),
        "fits": len(fits),
        "positive_rate": float(y.mean()),
        "fit_seconds": sum(f["seconds"] for f in fits),
    }
    for name in CALIBRATIONS:
        for method in METHODS:
            probability = np.concatenate([f[(name, method)][0] for f in fits])
            alert = np.concatenate([(f[(name, method)][0] >= f[(name, method)][1]).astype(float) for f in fits])
            wins = sum(
                f1(f["y"], f[(name, method)][0], threshold=f[(name, method)][1])
                >= f1(f["y"], f[OLD][0], threshold=f[OLD][1])
                for f in fits
            )
            result[f"{name}/{method}"] = {
                "f1": f1(y, alert, threshold=0.5),
                "pr_auc": pr_auc(y, probability),
                "alert_rate": float(alert.mean()),
                "fits_at_least_old_f1": int(wins),
            }
    new = np.concatenate([f[NEW][0] for f in fits])
    result["hindsight_f1"] = f1(y, new, threshold=best_threshold(y, new))
    return result


def simulated(shape: str, seeds: int, n_cutoffs: int) -> dict[str, Any]:
    """Fits at `n_cutoffs` cutoffs, three windows apart, on `seeds` chains of one shape."""
    options = SHAPES[shape]
    freq = options.get("freq", "D")
    fits = []
    for seed in range(1, seeds + 1):
        result = simulate(SimConfig(n_stores=6, n_items=50, n_days=560, seed=seed, **options))
        panel = build_panel(result.tables(), freq=freq, exogenous_roles=result.exogenous_roles)
        last = panel.frame["date"].max()
        assert isinstance(last, dt.date)
        window = window_steps(panel, 7)
        definition = StockoutDefinition(window=7, min_hours=1)
        for k in range(n_cutoffs):
            cutoff = last - panel.step * window * (1 + 3 * k)
            fits.append(_scored(panel, FeatureSpec.for_freq(freq), definition, cutoff))
    return _summary(fits)


def _half(panel: Panel, half: int) -> Panel:
    """The series whose stable hash (CRC32 of "store|item") has parity `half`."""
    series = panel.frame.select(*SERIES).unique()
    parity = [zlib.crc32(f"{s}|{i}".encode()) % 2 for s, i in series.iter_rows()]
    keep = series.filter(pl.Series(parity) == half)
    return dataclasses.replace(panel, frame=panel.frame.join(keep, on=list(SERIES), how="semi"))


FRN_PARTS = {
    "a": "FreshRetailNet half A (chosen on)",
    "b": "FreshRetailNet half B (reported)",
    "all": "FreshRetailNet shared set",
}


def frn(data_dir: Path, parts: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(workspace=Path(tmp))
        run_ingest(
            get_source("freshretailnet"),
            data_dir / "freshretailnet_50k",
            settings=settings,
            today=dt.date.today(),
            now=dt.datetime.now(),
        )
        data = load_model_data(Lake(Path(tmp)))
    definition = StockoutDefinition(window=7, min_hours=24, use_on_hand=False)
    out: dict[str, Any] = {}
    for part in parts:
        name = FRN_PARTS[part]
        panel = data.panel if part == "all" else _half(data.panel, 0 if part == "a" else 1)
        out[name] = _summary([_scored(panel, data.spec, definition, FRN_CUTOFF)])
        out[name]["series"] = panel.frame.select(*SERIES).n_unique()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "threshold.json")
    parser.add_argument("--skip-frn", action="store_true")
    parser.add_argument("--frn-only", action="store_true")
    parser.add_argument("--frn-parts", default="a,b,all", help="FreshRetailNet halves a, b and/or all, comma-separated")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="simulated shapes, comma-separated")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cutoffs", type=int, default=4)
    opts = parser.parse_args()
    shapes = [s.strip() for s in opts.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape {unknown[0]!r}; choose from {', '.join(SHAPES)}")
    parts = [p.strip() for p in opts.frn_parts.split(",") if p.strip()]
    if bad := [p for p in parts if p not in FRN_PARTS]:
        parser.error(f"unknown FreshRetailNet part {bad[0]!r}; choose from {', '.join(FRN_PARTS)}")
    console = Console()
    results: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "old": "/".join(OLD),
        "new": "/".join(NEW),
        "datasets": {},
    }
    if not opts.skip_frn:
        results["datasets"].update(frn(opts.data_dir, parts))
    if not opts.frn_only:
        for shape in shapes:
            results["datasets"][shape] = simulated(shape, opts.seeds, opts.cutoffs)
    table = Table(title="Stockout alerts after the cutoff: threshold chosen before it, old vs new")
    for col in ("dataset", "fits", "positives", "PR-AUC old", "PR-AUC new", "F1 old", "F1 new", "hindsight F1"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    old, new = "/".join(OLD), "/".join(NEW)
    for name, r in results["datasets"].items():
        table.add_row(
            name,
            str(r["fits"]),
            f"{r['positive_rate']:.1%}",
            f"{r[old]['pr_auc']:.4f}",
            f"{r[new]['pr_auc']:.4f}",
            f"{r[old]['f1']:.3f}",
            f"{r[new]['f1']:.3f}",
            f"{r['hindsight_f1']:.3f}",
        )
    console.print(table)
    console.print(f"old: {old}; new: {new}; every pair in {opts.json}")
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"results written to {opts.json}")


if __name__ == "__main__":
    sys.exit(main())
