"""Boosting checkpoints: save the model every N rounds, resume an interrupted fit on the same data.

A checkpoint is the booster in its native text/JSON format plus a fingerprint
of the parameters and the training data; a fit resumes only from a
checkpoint with the same fingerprint, and removes it once it completes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
EVERY = 50


def fingerprint(params: dict[str, Any], X: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> str:
    """sha256 of the parameters and the exact training data."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for array in (X, y, weight):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """Where one fit keeps its checkpoint."""

    folder: Path
    key: str
    suffix: str = ".txt"  # LightGBM text; ".json" for XGBoost (never a pickle)
    every: int = EVERY

    @property
    def model_path(self) -> Path:
        return self.folder / f"{self.key[:16]}{self.suffix}"

    def save(self, writer: Any, rounds: int) -> None:
        """Write atomically with `writer(path)` (the booster's own save method)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{self.key[:16]}.partial{self.suffix}"
        writer(str(tmp))
        os.replace(tmp, self.model_path)
        log.info("checkpoint after %d rounds: %s", rounds, self.model_path)

    def exists(self) -> bool:
        return self.model_path.exists()

    def clear(self) -> None:
        self.model_path.unlink(missing_ok=True)


def train_lightgbm(params: dict[str, Any], data: Any, rounds: int, checkpoint: Checkpoint | None) -> Any:
    """lgb.train with a checkpoint every `checkpoint.every` rounds, resuming from one if present."""
    import lightgbm as lgb

    if checkpoint is None:
        return lgb.train(params, data, num_boost_round=rounds)
    init = None
    done = 0
    if checkpoint.exists():
        init = lgb.Booster(model_file=str(checkpoint.model_path))
        done = init.current_iteration()
        log.info("resuming from round %d of %d", done, rounds)

    point = checkpoint

    def save_every(env: Any) -> None:
        # env.iteration counts from the start of the first run, resumed or not.
        total = env.iteration + 1
        if total % point.every == 0:
            point.save(env.model.save_model, total)

    booster = lgb.train(params, data, num_boost_round=max(rounds - done, 0), init_model=init, callbacks=[save_every])
    checkpoint.clear()
    return booster


def train_xgboost(params: dict[str, Any], data: Any, rounds: int, checkpoint: Checkpoint | None) -> Any:
    """xgb.train with a checkpoint every `checkpoint.every` rounds, resuming from one if present."""
    import xgboost as xgb

    if checkpoint is None:
        return xgb.train(params, data, num_boost_round=rounds)
    init = None
    done = 0
    if checkpoint.exists():
        init = xgb.Booster(model_file=str(checkpoint.model_path))
        done = init.num_boosted_rounds()
        log.info("resuming from round %d of %d", done, rounds)

    point = checkpoint

    class SaveEvery(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            # Unlike LightGBM, epoch restarts at 0 when resuming.
            total = done + epoch + 1
            if total % point.every == 0:
                point.save(model.save_model, total)
            return False

    booster = xgb.train(params, data, num_boost_round=max(rounds - done, 0), xgb_model=init, callbacks=[SaveEvery()])
    checkpoint.clear()
    return booster
