"""Save and load fitted models as a folder of native booster files and JSON; never a pickle.

A folder holds `booster.txt` (LightGBM model text) or `booster.json`
(XGBoost JSON) and `model.json`: the kind of model, the booster's
constructor arguments, the fitted encoder, the feature spec and config, and
what else predicting needs (cutoff, horizon and the quantile table that
turns a point forecast into p10/p50/p90; or the stockout definition,
calibration map, threshold and positive rate). Anyone can read both files
without shelfcast, and loading runs no code from them. `reference.parquet`,
when present, is the training window's feature rows and predictions that
drift monitoring compares the current window with.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shelfcast.errors import ModelFormatError, NotFittedError
from shelfcast.features.frames import HORIZON
from shelfcast.features.labels import StockoutDefinition
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.baselines import BASELINES
from shelfcast.models.forecaster import FeatureEncoder, GBMForecaster
from shelfcast.models.stockout import StockoutConfig, StockoutModel
from shelfcast.models.train import ForecastConfig, TrainedForecaster
from shelfcast.types import Task

FORMAT_VERSION = 1
META = "model.json"
# Optional (models saved before monitoring have none), so the format version is unchanged.
REFERENCE = "reference.parquet"
_BOOSTER_FILES = {"lightgbm": "booster.txt", "xgboost": "booster.json"}


def _booster_params(model: GBMForecaster) -> dict[str, Any]:
    """The constructor arguments that change how a fitted booster predicts or is described."""
    return {
        "engine": model.engine,
        "objective": model.objective,
        "alpha": model.alpha,
        "n_estimators": model.n_estimators,
        "learning_rate": model.learning_rate,
        "num_leaves": model.num_leaves,
        "min_child_samples": model.min_child_samples,
        "subsample": model.subsample,
        "colsample": model.colsample,
        "categorical": list(model.categorical),
        "monotone": model.monotone,
        "seed": model.seed,
    }


def _save_booster(model: GBMForecaster, folder: Path) -> dict[str, Any]:
    if not hasattr(model, "model_"):
        raise NotFittedError("GBMForecaster is not fitted; nothing to save")
    path = folder / _BOOSTER_FILES[model.engine]
    model.model_.save_model(str(path))
    return {"file": path.name, "params": _booster_params(model), "encoder": model.encoder_.to_dict()}


def _load_booster(folder: Path, entry: dict[str, Any]) -> GBMForecaster:
    params = dict(entry["params"])
    # Models saved before `shelfcast.threads` recorded `n_jobs` (2); the count is the machine's, not the model's.
    params.pop("n_jobs", None)
    path = folder / entry["file"]
    if not path.exists():
        raise ModelFormatError(f"{folder}: booster file {entry['file']} is missing")
    model = GBMForecaster(**params)
    model.encoder_ = FeatureEncoder.from_dict(entry["encoder"])
    if model.engine == "lightgbm":
        import lightgbm as lgb

        model.model_ = lgb.Booster(model_file=str(path))
    else:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        model.model_ = booster
    return model


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / META).write_text(json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2) + "\n")


def read_meta(folder: Path) -> dict[str, Any]:
    """The folder's `model.json`, checked for a known format version."""
    path = Path(folder) / META
    if not path.exists():
        raise ModelFormatError(f"{folder} holds no {META}; is it a saved shelfcast model?")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: format version {meta.get('format_version')!r}, this shelfcast reads {FORMAT_VERSION}"
        )
    return meta


def save_forecaster(model: TrainedForecaster, folder: Path, *, quantiles: pl.DataFrame | None = None) -> Path:
    """Write a demand forecaster to `folder` (created), with its quantile table if given; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "kind": "demand",
        "booster": _save_booster(model.model, folder),
        "spec": model.spec.model_dump(mode="json"),
        "config": model.config.model_dump(mode="json"),
        "cutoff": model.cutoff.isoformat(),
        "horizon": model.horizon,
    }
    if model.level_window is not None:
        meta["level_window"] = model.level_window
    if model.mix is not None:
        meta["mix"] = {"baseline": model.mix[0], "gbm_weight": model.mix[1]}
    if quantiles is not None:
        # Column-wise lists: `h` and one list per level (q0.1, q0.5, q0.9), floats repr-exact.
        meta["quantiles"] = {c: quantiles[c].to_list() for c in quantiles.columns}
    _write_meta(folder, meta)
    return folder


def load_quantiles(folder: Path) -> pl.DataFrame | None:
    """The demand model's quantile table (per horizon `h`: score quantiles `q0.1`...), or None if none was saved."""
    table = _expect(Path(folder), Task.DEMAND).get("quantiles")
    if table is None:
        return None
    return pl.DataFrame(table).with_columns(pl.col(HORIZON).cast(pl.Int32))


def load_forecaster(folder: Path) -> TrainedForecaster:
    """The demand forecaster saved by `save_forecaster`."""
    folder = Path(folder)
    meta = _expect(folder, Task.DEMAND)
    return TrainedForecaster(
        spec=FeatureSpec.model_validate(meta["spec"]),
        config=ForecastConfig.model_validate(meta["config"]),
        model=_load_booster(folder, meta["booster"]),
        cutoff=dt.date.fromisoformat(meta["cutoff"]),
        horizon=int(meta["horizon"]),
        mix=_mix(meta.get("mix"), folder),
        level_window=int(meta["level_window"]) if meta.get("level_window") is not None else None,
    )


def _mix(entry: Any, folder: Path) -> tuple[str, float] | None:
    """The served mix of a saved forecaster (None: the GBM alone, as every model saved before it existed)."""
    if entry is None:
        return None
    try:
        baseline, weight = str(entry["baseline"]), float(entry["gbm_weight"])
    except (KeyError, TypeError, ValueError):
        raise ModelFormatError(f"{folder / META}: `mix` must hold `baseline` and `gbm_weight`, got {entry!r}") from None
    if baseline not in BASELINES or not 0.0 <= weight <= 1.0:
        raise ModelFormatError(f"{folder / META}: `mix` {entry!r} names no baseline or a weight outside 0..1")
    return baseline, weight


def save_stockout(model: StockoutModel, folder: Path) -> Path:
    """Write a stockout classifier, its calibration map and threshold to `folder` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_meta(
        folder,
        {
            "kind": "stockout",
            "booster": _save_booster(model.model, folder),
            "spec": model.spec.model_dump(mode="json"),
            "config": model.config.model_dump(mode="json"),
            "definition": model.definition.model_dump(mode="json"),
            # repr-exact floats: JSON keeps every bit of a float64.
            "calibration_x": [float(v) for v in model.calibration_x],
            "calibration_y": [float(v) for v in model.calibration_y],
            "threshold": float(model.threshold),
            "positive_rate": float(model.positive_rate),
        },
    )
    return folder


def load_stockout(folder: Path) -> StockoutModel:
    """The stockout model saved by `save_stockout`."""
    folder = Path(folder)
    meta = _expect(folder, Task.STOCKOUT)
    return StockoutModel(
        spec=FeatureSpec.model_validate(meta["spec"]),
        # Saved before the calibration and threshold choices existed: say what chose its knots and threshold.
        config=StockoutConfig.model_validate({"calibration": "isotonic", "threshold": "holdout_f1", **meta["config"]}),
        definition=StockoutDefinition.model_validate(meta["definition"]),
        model=_load_booster(folder, meta["booster"]),
        calibration_x=np.asarray(meta["calibration_x"], dtype=np.float64),
        calibration_y=np.asarray(meta["calibration_y"], dtype=np.float64),
        threshold=float(meta["threshold"]),
        positive_rate=float(meta["positive_rate"]),
    )


def save_reference(frame: pl.DataFrame, folder: Path) -> Path:
    """The model's reference window for drift monitoring (feature rows + `prediction`), beside the model."""
    path = Path(folder) / REFERENCE
    frame.write_parquet(path)
    return path


def load_reference(folder: Path) -> pl.DataFrame | None:
    """The reference window saved with the model, or None for a model saved without one (before monitoring)."""
    path = Path(folder) / REFERENCE
    return pl.read_parquet(path) if path.exists() else None


def save_model(
    model: TrainedForecaster | StockoutModel, folder: Path, *, quantiles: pl.DataFrame | None = None
) -> Path:
    """Either kind of model, by its type (`quantiles` only for a demand model)."""
    if isinstance(model, StockoutModel):
        return save_stockout(model, folder)
    return save_forecaster(model, folder, quantiles=quantiles)


def load_model(folder: Path) -> TrainedForecaster | StockoutModel:
    """Either kind of model, by the kind written in its `model.json`."""
    kind = read_meta(folder).get("kind")
    return load_stockout(folder) if kind == Task.STOCKOUT else load_forecaster(folder)


def _expect(folder: Path, kind: Task) -> dict[str, Any]:
    meta = read_meta(folder)
    if meta.get("kind") != kind:
        raise ModelFormatError(f"{folder} holds a {meta.get('kind')} model, not a {kind} model")
    return meta
