from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb

from shelfcast.io import checkpoint as ckpt
from shelfcast.io.checkpoint import FileCheckpoint as Checkpoint
from shelfcast.models.checkpoint import fingerprint, train_lightgbm, train_xgboost

RNG = np.random.default_rng(0)
X = RNG.normal(size=(400, 5))
Y = X[:, 0] * 2 + RNG.normal(size=400)
PARAMS = {"objective": "regression", "verbosity": -1, "num_threads": 1, "seed": 0}


def test_fingerprint_changes_with_data_and_params() -> None:
    base = fingerprint(PARAMS, X, Y, None)
    assert base == fingerprint(PARAMS, X.copy(), Y.copy(), None)
    assert base != fingerprint({**PARAMS, "seed": 1}, X, Y, None)
    assert base != fingerprint(PARAMS, X, Y + 1, None)


def test_lightgbm_saves_every_50_rounds_and_clears_when_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[int] = []
    real_save = Checkpoint.save

    def spy(self: Checkpoint, writer: object, rounds: int) -> None:
        saved.append(rounds)
        real_save(self, writer, rounds)

    monkeypatch.setattr(ckpt.FileCheckpoint, "save", spy)
    point = Checkpoint(tmp_path, fingerprint(PARAMS, X, Y, None))
    booster = train_lightgbm(PARAMS, lgb.Dataset(X, Y), 120, point)
    assert saved == [50, 100]
    assert booster.current_iteration() == 120
    assert not point.exists()


def test_lightgbm_resumes_from_a_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[int] = []
    real_save = Checkpoint.save
    monkeypatch.setattr(ckpt.FileCheckpoint, "save", lambda self, w, r: (saved.append(r), real_save(self, w, r)))
    point = Checkpoint(tmp_path, fingerprint(PARAMS, X, Y, None))
    # An interrupted run left a checkpoint at round 50.
    lgb.train(PARAMS, lgb.Dataset(X, Y), num_boost_round=50).save_model(str(point.model_path))
    booster = train_lightgbm(PARAMS, lgb.Dataset(X, Y), 120, point)
    assert booster.current_iteration() == 120
    assert saved == [100]  # rounds counted from the first run, not from the resume
    uninterrupted = lgb.train(PARAMS, lgb.Dataset(X, Y), num_boost_round=120)
    assert np.corrcoef(booster.predict(X), uninterrupted.predict(X))[0, 1] > 0.99


def test_xgboost_checkpoint_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"objective": "reg:squarederror", "nthread": 1, "seed": 0}
    point = Checkpoint(tmp_path, fingerprint(params, X, Y, None), suffix=".json")
    xgb.train(params, xgb.DMatrix(X, Y), num_boost_round=50).save_model(str(point.model_path))
    saved: list[int] = []
    real_save = Checkpoint.save
    monkeypatch.setattr(ckpt.FileCheckpoint, "save", lambda self, w, r: (saved.append(r), real_save(self, w, r)))
    booster = train_xgboost(params, xgb.DMatrix(X, Y), 120, point)
    assert booster.num_boosted_rounds() == 120
    assert saved == [100]
    assert not point.exists()
