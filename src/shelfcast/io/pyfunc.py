"""The MLflow pyfunc wrapper: a saved shelfcast model behind `predict(feature rows)`.

Its only artifact is the folder written by `shelfcast.io.model_files`
(native booster file plus JSON). `predict` takes feature rows (pandas, as
MLflow serving sends them, or polars) as built by the feature functions and
returns a pandas frame: `forecast` (units) for a demand model, `risk` and
`alert` for a stockout model. Serving needs shelfcast installed
(`mlflow models serve -m ... --env-manager local`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from mlflow.pyfunc.model import PythonModel

from shelfcast.io.model_files import load_model
from shelfcast.models.stockout import StockoutModel
from shelfcast.models.train import TrainedForecaster


def predict_frame(model: TrainedForecaster | StockoutModel, features: pl.DataFrame) -> pl.DataFrame:
    """What the pyfunc returns, as polars (the job uses it for the signature's output example)."""
    if isinstance(model, StockoutModel):
        risk = model.predict_proba(features)
        return pl.DataFrame({"risk": risk, "alert": risk >= model.threshold})
    return pl.DataFrame({"forecast": np.asarray(model.score(features), dtype=np.float64)})


class ShelfcastPyfunc(PythonModel):
    """Loads the native model folder once; predicts on feature rows."""

    def load_context(self, context: Any) -> None:
        self.model_ = load_model(Path(context.artifacts["native"]))

    # `model_input` is left unannotated: MLflow 3 reads a type hint there as a schema of its own
    # (and warns about `Any`); the logged signature is the schema.
    def predict(self, context: Any, model_input, params: Any = None) -> Any:  # type: ignore[no-untyped-def]
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        return predict_frame(self.model_, frame).to_pandas()
