"""Stockout and censoring benchmark: FreshRetailNet-50K and the simulator.

Usage: uv run python bench/bench_stockout.py [DATA_DIR] [--json bench/results/stockout.json] [--skip-frn]

FreshRetailNet (DATA_DIR/freshretailnet_50k): cutoff 2024-06-18, label = a
full-day stockout (24 of 24 hours) on any of the next 7 days. The classifier is
calibrated on origins before the cutoff and its threshold maximises the F1
expected from the cutoff's calibrated probabilities (no label after the
cutoff); the rule is "a full-day stockout in the last 7 days". Also the demand WAPE over the next 7 days on
fully in-stock days (the days whose sales are not censored).

Simulator: a chain with known true demand. Demand accuracy against the TRUE
(uncensored) demand with each censoring treatment (none, mask, impute), and
the stockout classifier against the rule.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.features.labels import StockoutDefinition, rule_baseline, stockout_labels
from shelfcast.features.origin import demand
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.jobs.ingest import run_ingest
from shelfcast.models.classification import f1, pr_auc, roc_auc
from shelfcast.models.data import ModelData
from shelfcast.models.metrics import wape
from shelfcast.models.stockout import StockoutConfig, fit_stockout, stockout_features
from shelfcast.models.train import ForecastConfig, fit_forecaster
from shelfcast.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FRN_CUTOFF = dt.date(2024, 6, 18)
TARGETS = {"pr_auc": 0.47, "f1": 0.48}
CENSORING = ("none", "mask", "impute")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def classify(
    panel: Panel, spec: FeatureSpec, definition: StockoutDefinition, cutoff: dt.date
) -> dict[str, dict[str, float]]:
    """The classifier and the rule at one origin, scored on the window after it."""
    started = time.perf_counter()
    model = fit_stockout(panel, spec, StockoutConfig(), definition, cutoff=cutoff)
    window = definition.window
    features = stockout_features(panel.as_known_at(cutoff), spec, [cutoff], window=window)
    labels = stockout_labels(panel, origins=[cutoff], definition=definition).drop_nulls("label")
    keys = ["store_id", "item_id", "origin"]
    scored = features.select(*keys).with_columns(pl.Series("risk", model.predict_proba(features)))
    scored = scored.join(labels.select(*keys, "label"), on=keys)
    seconds = time.perf_counter() - started
    y, p = scored["label"].to_numpy(), scored["risk"].to_numpy()
    rule = rule_baseline(panel, origins=[cutoff], window=window, definition=definition)
    rule = rule.join(labels.select(*keys, "label"), on=keys).drop_nulls("score")
    ry, rs = rule["label"].to_numpy(), rule["score"].to_numpy().astype(float)
    return {
        "classifier": {
            "pr_auc": pr_auc(y, p),
            "roc_auc": roc_auc(y, p),
            "f1": f1(y, p, threshold=model.threshold),
            "threshold": model.threshold,
            "positive_rate": float(y.mean()),
            "rows": float(len(y)),
            "seconds": seconds,
        },
        "rule": {
            "pr_auc": pr_auc(ry, rs),
            "roc_auc": roc_auc(ry, rs),
            "f1": f1(ry, rs, threshold=0.5),
            "rows": float(len(ry)),
        },
    }


def frn(data_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        settings = Settings(workspace=Path(tmp))
        run_ingest(
            get_source("freshretailnet"),
            data_dir / "freshretailnet_50k",
            settings=settings,
            today=dt.date.today(),
            now=dt.datetime.now(),
        )
        ingest_s = time.perf_counter() - started
        data = load_model_data(Lake(Path(tmp)))
    definition = StockoutDefinition(window=7, min_hours=24, use_on_hand=False)
    scores = classify(data.panel, data.spec, definition, FRN_CUTOFF)
    scores["demand_wape_in_stock"] = {"wape": _frn_demand(data)}
    scores["timing"] = {"ingest_seconds": ingest_s, "peak_rss_mb": _peak_mb()}
    return scores


def _frn_demand(data: ModelData) -> float:
    """WAPE of the 7-day demand forecast on days that were fully in stock (uncensored sales)."""
    model = fit_forecaster(data.panel, data.spec, data.config, cutoff=FRN_CUTOFF, horizon=7, calendar=data.calendar)
    forecast = model.predict(data.panel, calendar=data.calendar)
    actual = data.panel.frame.filter(pl.col("stockout_hours").fill_null(0) == 0).select(
        "store_id", "item_id", "date", "y"
    )
    joined = forecast.join(actual, on=["store_id", "item_id", "date"])
    return wape(joined["y"].to_numpy(), joined["forecast"].to_numpy())


SIM_SEEDS = (21, 3, 8)


def _censoring_split(seed: int) -> dict[str, Any]:
    """One simulated chain: how censored the sales are, and each treatment's 28-day forecast vs true demand."""
    config = SimConfig(n_stores=8, n_items=40, n_days=540, seed=seed, safety_factor=0.4)
    result = simulate(config)
    panel = build_panel(result.tables(), freq="D", exogenous_roles=result.exogenous_roles)
    cutoff = config.start_date + dt.timedelta(days=config.n_days - 29)
    truth = result.truth.select("store_id", "item_id", "date", pl.col("demand").cast(pl.Float64))
    # The signal each treatment learns from, against the truth, on days with a partial stockout.
    hours = pl.col("stockout_hours").fill_null(0.0)
    partial = panel.frame.join(truth, on=["store_id", "item_id", "date"]).filter((hours > 0) & (hours < 24))
    signal = {
        mode: float(partial.select(demand(panel, FeatureSpec.for_freq("D", censoring=mode))).to_series().sum())
        / float(partial["demand"].sum())
        for mode in ("none", "impute")
    }
    out: dict[str, Any] = {"seed": seed, "cutoff": cutoff, "partial_days": partial.height, "signal": signal}
    for mode in CENSORING:
        spec = FeatureSpec.for_freq("D", censoring=mode)
        forecast = fit_forecaster(panel, spec, ForecastConfig(), cutoff=cutoff, horizon=28).predict(panel)
        joined = forecast.join(truth, on=["store_id", "item_id", "date"])
        out[mode] = {
            "wape_vs_true_demand": wape(joined["demand"].to_numpy(), joined["forecast"].to_numpy()),
            "bias_vs_true_demand": float((joined["forecast"] - joined["demand"]).sum() / joined["demand"].sum()),
        }
    return out


def simulator() -> dict[str, Any]:
    """Censoring treatments over several simulated chains (one split alone is too noisy), and stockout risk."""
    splits = [_censoring_split(seed) for seed in SIM_SEEDS]
    censoring: dict[str, Any] = {}
    for mode in CENSORING:
        wapes = [s[mode]["wape_vs_true_demand"] for s in splits]
        biases = [s[mode]["bias_vs_true_demand"] for s in splits]
        censoring[mode] = {
            "wape_vs_true_demand": sum(wapes) / len(wapes),
            "bias_vs_true_demand": sum(biases) / len(biases),
            "wins_on_wape": sum(
                s[mode]["wape_vs_true_demand"] == min(s[m]["wape_vs_true_demand"] for m in CENSORING) for s in splits
            ),
        }
    signal = {m: sum(s["signal"][m] for s in splits) / len(splits) for m in ("none", "impute")}
    config = SimConfig(n_stores=8, n_items=40, n_days=540, seed=SIM_SEEDS[0], safety_factor=0.4)
    result = simulate(config)
    panel = build_panel(result.tables(), freq="D", exogenous_roles=result.exogenous_roles)
    cutoff = config.start_date + dt.timedelta(days=config.n_days - 29)
    definition = StockoutDefinition(window=7, min_hours=1)
    stockout = classify(panel, FeatureSpec.for_freq("D"), definition, cutoff)
    return {
        "censoring": censoring,
        "censoring_splits": splits,
        "partial_day_signal_vs_true_demand": signal,
        "stockout": stockout,
        "stockout_rate": result.stockout_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "stockout.json")
    parser.add_argument("--skip-frn", action="store_true")
    opts = parser.parse_args()
    console = Console()
    results: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    if not opts.skip_frn:
        results["freshretailnet"] = frn(opts.data_dir)
        table = Table(title="FreshRetailNet-50K: full-day stockout in the next 7 days (cutoff 2024-06-18)")
        for col in ("candidate", "PR-AUC", "ROC-AUC", "F1", "target"):
            table.add_column(col, justify="left" if col == "candidate" else "right")
        for name in ("classifier", "rule"):
            r = results["freshretailnet"][name]
            target = "PR-AUC >= 0.47, F1 >= 0.48" if name == "classifier" else ""
            table.add_row(name, f"{r['pr_auc']:.3f}", f"{r['roc_auc']:.3f}", f"{r['f1']:.3f}", target)
        console.print(table)
        c = results["freshretailnet"]["classifier"]
        met = c["pr_auc"] >= TARGETS["pr_auc"] and c["f1"] >= TARGETS["f1"]
        console.print(
            f"classifier: {'target met' if met else 'gap'}; positives {c['positive_rate']:.1%}; "
            f"fit+score {c['seconds']:.1f}s; demand WAPE on in-stock days "
            f"{results['freshretailnet']['demand_wape_in_stock']['wape']:.3f}"
        )
    results["simulator"] = simulator()
    table = Table(
        title=f"Simulator: 28-day demand forecast against TRUE demand, by censoring treatment "
        f"(mean of {len(SIM_SEEDS)} chains)"
    )
    for col in ("censoring", "WAPE vs true demand", "bias vs true demand", "best WAPE in"):
        table.add_column(col, justify="left" if col == "censoring" else "right")
    for mode, r in results["simulator"]["censoring"].items():
        table.add_row(
            mode,
            f"{r['wape_vs_true_demand']:.4f}",
            f"{r['bias_vs_true_demand']:+.4f}",
            f"{r['wins_on_wape']}/{len(SIM_SEEDS)}",
        )
    console.print(table)
    sig = results["simulator"]["partial_day_signal_vs_true_demand"]
    console.print(
        f"on days with a partial stockout, sales are {sig['none']:.0%} of true demand; "
        f"the imputed demand is {sig['impute']:.0%}"
    )
    s = results["simulator"]["stockout"]
    console.print(
        f"simulator stockout (any stockout hour in the next 7 days): classifier PR-AUC "
        f"{s['classifier']['pr_auc']:.3f} F1 {s['classifier']['f1']:.3f}; rule PR-AUC {s['rule']['pr_auc']:.3f} "
        f"F1 {s['rule']['f1']:.3f}"
    )
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"results written to {opts.json}")


if __name__ == "__main__":
    sys.exit(main())
