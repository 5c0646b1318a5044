"""Boosting with checkpoints: save the model every N rounds, resume an interrupted fit on the same data.

A checkpoint is the booster in its native text/JSON format plus a fingerprint
of the parameters and the training data; a fit resumes only from a
checkpoint with the same fingerprint, and removes it once it completes.
Where checkpoints are kept is the caller's: the fits take a `Checkpoints`
(the files are written by `io.checkpoint`), so the models stay free of I/O.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)


def fingerprint(params: dict[str, Any], X: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> str:
    """sha256 of the parameters and the exact training data."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for array in (X, y, weight):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class Checkpoint(Protocol):
    """Where one fit keeps its checkpoint (`io.checkpoint.FileCheckpoint` keeps it in a folder)."""

    @property
    def every(self) -> int: ...
    @property
    def model_path(self) -> Path: ...
    def save(self, writer: Any, rounds: int) -> None: ...
    def exists(self) -> bool: ...
    def clear(self) -> None: ...


class Checkpoints(Protocol):
    """Where fits keep their checkpoints: one per fingerprint (`io.checkpoint.FileCheckpoints`)."""

    def at(self, key: str, suffix: str) -> Checkpoint: ...


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
