"""The MLflow pyfunc wrapper: a saved shelfcast model behind `predict(feature rows)`.

Its only artifact is the folder written by `shelfcast.io.model_files`
(native booster file plus JSON). `predict` takes feature rows (pandas, as
MLflow serving sends them, or polars) as built by the feature functions and
returns a pandas frame: `forecast` (units) and its `p10`/`p50`/`p90` for a
demand model (from the quantile table saved with it, per horizon `h`, as
scoring and the service compute them), `risk` and `alert` for a stockout
model. Serving needs shelfcast installed
(`mlflow models serve -m ... --env-manager local`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from mlflow.pyfunc.model import PythonModel

from shelfcast.features.frames import HORIZON
from shelfcast.io.model_files import load_model, load_quantiles
from shelfcast.models.backtest import QUANTILES, add_quantiles
from shelfcast.models.stockout import StockoutModel
from shelfcast.models.train import TrainedForecaster


def predict_frame(
    model: TrainedForecaster | StockoutModel, features: pl.DataFrame, quantiles: pl.DataFrame | None = None
) -> pl.DataFrame:
    """What the pyfunc returns, as polars (the job uses it for the signature's output example).

    Demand: `forecast` and p10/p50/p90 from `quantiles` at each row's horizon `h` (rows without one are a
    first step); without a table the interval collapses onto the forecast, as in scoring.
    """
    if isinstance(model, StockoutModel):
        risk = model.predict_proba(features)
        return pl.DataFrame({"risk": risk, "alert": risk >= model.threshold})
    forecast = pl.DataFrame(
        {
            HORIZON: features[HORIZON].cast(pl.Int32)
            if HORIZON in features.columns
            else pl.repeat(1, features.height, dtype=pl.Int32, eager=True),
            "forecast": np.asarray(model.score(features), dtype=np.float64),
        }
    )
    if quantiles is None:
        quantiles = pl.DataFrame(schema={HORIZON: pl.Int32, **{f"q{q:g}": pl.Float64 for q in QUANTILES}})
    # A left join keeps the rows' order; the horizon column is the caller's own input, not an output.
    return add_quantiles(forecast.with_row_index("_row"), quantiles).sort("_row").drop("_row", HORIZON)


class ShelfcastPyfunc(PythonModel):
    """Loads the native model folder once; predicts on feature rows."""

    def load_context(self, context: Any) -> None:
        folder = Path(context.artifacts["native"])
        self.model_ = load_model(folder)
        self.quantiles_ = None if isinstance(self.model_, StockoutModel) else load_quantiles(folder)

    # `model_input` is left unannotated: MLflow 3 reads a type hint there as a schema of its own
    # (and warns about `Any`); the logged signature is the schema.
    def predict(self, context: Any, model_input, params: Any = None) -> Any:  # type: ignore[no-untyped-def]
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        return predict_frame(self.model_, frame, self.quantiles_).to_pandas()
