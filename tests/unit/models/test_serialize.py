"""Saved models load back and predict exactly the same, for both engines, without any pickle."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.errors import ModelFormatError, NotFittedError
from shelfcast.features.labels import StockoutDefinition
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.io.model_files import load_forecaster, load_model, load_stockout, save_forecaster, save_model
from shelfcast.models.forecaster import Engine, GBMForecaster
from shelfcast.models.stockout import StockoutConfig, StockoutModel, fit_stockout, stockout_features
from shelfcast.models.train import ForecastConfig, TrainedForecaster, fit_forecaster

CUTOFF = dt.date(2022, 9, 30)
ENGINES: list[Engine] = ["lightgbm", "xgboost"]


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame]:
    result = simulate(SimConfig(n_stores=2, n_items=5, n_days=300, seed=3, safety_factor=0.2))
    tables = result.tables()
    return build_panel(tables, freq="D", exogenous_roles=result.exogenous_roles), tables["calendar"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_forecaster_round_trip_predicts_identically(
    chain: tuple[Panel, pl.DataFrame], tmp_path: Path, engine: Engine, strategy: str
) -> None:
    panel, calendar = chain
    config = ForecastConfig(engine=engine, strategy=strategy, n_origins=20, n_estimators=30, learning_rate=0.2)
    model = fit_forecaster(panel, FeatureSpec.for_freq("D"), config, cutoff=CUTOFF, horizon=7, calendar=calendar)
    folder = save_forecaster(model, tmp_path / "m")
    loaded = load_forecaster(folder)
    assert loaded.spec == model.spec and loaded.config == model.config
    assert (loaded.cutoff, loaded.horizon) == (model.cutoff, model.horizon)
    before = model.predict(panel, calendar=calendar)
    after = loaded.predict(panel, calendar=calendar)
    assert before.drop("forecast").equals(after.drop("forecast"))
    assert np.array_equal(before["forecast"].to_numpy(), after["forecast"].to_numpy())
    assert {p.name for p in folder.iterdir()} == {
        "model.json",
        "booster.txt" if engine == "lightgbm" else "booster.json",
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_stockout_round_trip_predicts_identically(
    chain: tuple[Panel, pl.DataFrame], tmp_path: Path, engine: Engine
) -> None:
    panel, _ = chain
    spec = FeatureSpec.for_freq("D")
    config = StockoutConfig(engine=engine, n_origins=20, n_estimators=30, learning_rate=0.2, num_leaves=7)
    definition = StockoutDefinition(window=7, min_hours=1)
    model = fit_stockout(panel, spec, config, definition, cutoff=CUTOFF)
    loaded = load_model(save_model(model, tmp_path / "s"))
    assert isinstance(loaded, StockoutModel)
    features = stockout_features(panel, spec, [CUTOFF + dt.timedelta(days=k) for k in range(0, 28, 7)], window=7)
    assert np.array_equal(model.predict_proba(features), loaded.predict_proba(features))
    again = load_stockout(tmp_path / "s")
    assert again.threshold == model.threshold and again.definition == definition
    assert np.array_equal(again.calibration_x, model.calibration_x)


def test_no_pickle_and_readable_json(chain: tuple[Panel, pl.DataFrame], tmp_path: Path) -> None:
    panel, calendar = chain
    config = ForecastConfig(n_origins=10, n_estimators=10, strategy="direct")
    model = fit_forecaster(panel, FeatureSpec.for_freq("D"), config, cutoff=CUTOFF, horizon=3, calendar=calendar)
    folder = save_forecaster(model, tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["kind"] == "demand" and meta["cutoff"] == "2022-09-30" and meta["horizon"] == 3
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.pickle"))


def test_a_model_saved_with_its_thread_count_still_loads(chain: tuple[Panel, pl.DataFrame], tmp_path: Path) -> None:
    # Models saved before `shelfcast.threads` recorded `n_jobs: 2`; the count is now the machine's, not the model's.
    panel, calendar = chain
    config = ForecastConfig(n_origins=10, n_estimators=10, strategy="direct")
    model = fit_forecaster(panel, FeatureSpec.for_freq("D"), config, cutoff=CUTOFF, horizon=3, calendar=calendar)
    folder = save_forecaster(model, tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    assert "n_jobs" not in meta["booster"]["params"]
    meta["booster"]["params"]["n_jobs"] = 2
    (folder / "model.json").write_text(json.dumps(meta))
    loaded = load_forecaster(folder)
    assert loaded.model.n_jobs is None
    before, after = model.predict(panel, calendar=calendar), loaded.predict(panel, calendar=calendar)
    assert np.array_equal(before["forecast"].to_numpy(), after["forecast"].to_numpy())


def test_errors_name_the_problem(chain: tuple[Panel, pl.DataFrame], tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"holds no model\.json"):
        load_forecaster(tmp_path)
    panel, calendar = chain
    config = ForecastConfig(n_origins=10, n_estimators=10, strategy="direct")
    model = fit_forecaster(panel, FeatureSpec.for_freq("D"), config, cutoff=CUTOFF, horizon=3, calendar=calendar)
    folder = save_forecaster(model, tmp_path / "m")
    with pytest.raises(ModelFormatError, match="holds a demand model, not a stockout model"):
        load_stockout(folder)
    (folder / "booster.txt").unlink()
    with pytest.raises(ModelFormatError, match=r"booster file booster\.txt is missing"):
        load_forecaster(folder)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ModelFormatError, match="format version 99"):
        load_forecaster(folder)
    with pytest.raises(NotFittedError):
        save_forecaster(TrainedForecaster(model.spec, config, GBMForecaster(), CUTOFF, 3), tmp_path / "x")
