"""What a training fit hands to the logging of its run, whichever engine fitted it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.io.plots import calibration_png, confusion_png, feature_importance_png
from shelfcast.models.risk import StockoutBacktest
from shelfcast.models.stockout import StockoutModel


@dataclass(frozen=True)
class Fitted:
    candidate: str
    model: Any
    metrics: pl.DataFrame
    cutoffs: list[dt.date]
    params: dict[str, Any]
    example: pl.DataFrame
    reports: list[Path | None]
    backtest: Any
    # demand: score quantiles per horizon from the candidate's backtest residuals (p10/p50/p90 at scoring).
    quantiles: pl.DataFrame | None = None


def stockout_fitted(
    bt: StockoutBacktest, model: StockoutModel, example: pl.DataFrame, *, out: Path, params: dict[str, Any]
) -> Fitted:
    """The classifier's fit with its reports (importance, confusion, calibration) and run parameters (the
    model's config and stockout definition, then `params`), whichever engine fitted it."""
    overall = bt.metrics.filter((pl.col("model") == "classifier") & (pl.col("window") == "all")).row(0, named=True)
    importance = model.model.feature_importance()
    reports = [
        feature_importance_png(importance, out / "feature_importance.png"),
        confusion_png(overall["tn"], overall["fp"], overall["fn"], overall["tp"], out / "confusion_matrix.png"),
    ]
    if bt.scored is not None and bt.scored.height:
        reports.append(
            calibration_png(
                bt.scored["risk"].to_numpy(), bt.scored["label_true"].to_numpy(), out / "calibration_curve.png"
            )
        )
    importance.write_csv(out / "feature_importance.csv")
    run_params = {
        **model.config.model_dump(),
        **{f"definition.{k}": v for k, v in model.definition.model_dump().items()},
        **params,
    }
    return Fitted("classifier", model, bt.metrics, bt.cutoffs, run_params, example, reports, bt)
