"""Boosting checkpoints in a folder (the workspace's `checkpoints/`): written atomically, found by fingerprint."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
EVERY = 50


@dataclass(frozen=True)
class FileCheckpoint:
    """One fit's checkpoint: a booster file named by the fingerprint of its parameters and data."""

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
        """Remove the checkpoint of a completed fit, and the folder when nothing else is left in it."""
        self.model_path.unlink(missing_ok=True)
        # Other fits' checkpoints (or the folder already gone): the folder stays.
        with contextlib.suppress(OSError):
            self.folder.rmdir()


@dataclass(frozen=True)
class FileCheckpoints:
    """The checkpoints of every fit, in one folder."""

    folder: Path

    def at(self, key: str, suffix: str) -> FileCheckpoint:
        return FileCheckpoint(self.folder, key, suffix)
