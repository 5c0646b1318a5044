"""The MLflow model registry with aliases (`challenger`, `champion`, `previous_champion`), never stages.

One registered model per task, named like its experiment. Gate verdicts are
version tags (`gate.passed`, `gate.reason`, `gate.<metric>`).

Errors: an unknown model or version is a ModelNotFoundError; a server or
store that fails is a TrackingError naming the URI (`tracking.mlflow_errors`
wraps every method), so callers never catch MLflow's own exceptions.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from shelfcast.errors import ModelNotFoundError, PromotionError
from shelfcast.io.tracking import EXPERIMENTS, client, connect, fluent, mlflow_errors
from shelfcast.models.gates import GateResult
from shelfcast.settings import Settings
from shelfcast.types import Task

CHALLENGER, CHAMPION, PREVIOUS = "challenger", "champion", "previous_champion"
# When a version became champion (promotion or rollback): MLflow keeps no time for an alias.
PROMOTED_AT = "shelfcast.promoted_at"
MODEL_NAMES: dict[Task, str] = dict(EXPERIMENTS)
# What MLflow answers for a registered model or an alias that does not exist.
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def task_of(name_or_task: str) -> Task:
    """'demand' or 'shelfcast-demand' -> 'demand'."""
    for task, name in MODEL_NAMES.items():
        if name_or_task in (task, name):
            return task
    raise ModelNotFoundError(f"unknown model {name_or_task!r}; expected one of {', '.join(MODEL_NAMES.values())}")


@dataclass(frozen=True)
class VersionInfo:
    task: Task
    name: str
    version: str
    run_id: str
    aliases: list[str]
    tags: dict[str, str]
    created: int
    source: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _guarded(method: Callable[Concatenate[Registry, _P], _R]) -> Callable[Concatenate[Registry, _P], _R]:
    """The method with MLflow's failures raised as TrackingError."""

    @wraps(method)
    def guarded(self: Registry, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with mlflow_errors(self.uri):
            return method(self, *args, **kwargs)

    return guarded


class Registry:
    """Thin wrapper over `MlflowClient` for shelfcast's registered models and their runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uri = connect(settings)
        with mlflow_errors(self.uri):
            # Jobs go through the methods (which raise TrackingError); tests read runs through it.
            self.client = client(self.uri)

    @_guarded
    def register(self, task: Task, model_uri: str, *, run_id: str) -> VersionInfo:
        """A new version of the task's model from a logged model, aliased `challenger`."""
        import mlflow

        name = MODEL_NAMES[task]
        # `register_model` (not the client's `create_model_version`) resolves a logged model's URI to its source.
        with fluent(self.uri):
            created = mlflow.register_model(model_uri, name, tags={"shelfcast.run_id": run_id})
        self.client.set_registered_model_alias(name, CHALLENGER, created.version)
        return self.version(task, str(created.version))

    def _info(self, task: Task, mv: Any) -> VersionInfo:
        return VersionInfo(
            task=task,
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or "",
            aliases=sorted(mv.aliases or []),
            tags=dict(mv.tags or {}),
            created=int(mv.creation_timestamp or 0),
            source=mv.source or "",
        )

    @_guarded
    def version(self, task: Task, version: str) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        name = MODEL_NAMES[task]
        try:
            return self._info(task, self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                raise ModelNotFoundError(f"{name} has no version {version!r}; see `shelfcast models list`") from None
            raise  # a failing server is not an unknown version: TrackingError

    @_guarded
    def alias(self, task: Task, alias: str) -> VersionInfo | None:
        """The aliased version, or None when the model or the alias does not exist.

        Any other failure (a server that does not answer, a broken store)
        is a TrackingError: "no champion" and "cannot tell" must not look the same.
        """
        from mlflow.exceptions import MlflowException

        try:
            return self._info(task, self.client.get_model_version_by_alias(MODEL_NAMES[task], alias))
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                return None
            raise

    @_guarded
    def versions(self, task: Task) -> list[VersionInfo]:
        name = MODEL_NAMES[task]
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted((self._info(task, mv) for mv in found), key=lambda v: int(v.version))

    @_guarded
    def tag_gates(self, task: Task, version: str, result: GateResult) -> None:
        tags = {"gate.passed": str(result.passed).lower(), "gate.reason": result.reason[:5000]}
        tags |= {f"gate.{k}": f"{v:.6g}" for k, v in result.values.items()}
        self.tag_version(task, version, tags)

    @_guarded
    def tag_version(self, task: Task, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(MODEL_NAMES[task], str(version), key, value)

    @_guarded
    def tag_model(self, task: Task, tags: Mapping[str, str]) -> None:
        """Tags of the task's registered model (not of a version)."""
        for key, value in tags.items():
            self.client.set_registered_model_tag(MODEL_NAMES[task], key, value)

    @_guarded
    def run(self, run_id: str) -> Any:
        """The MLflow run (`.data.params`, `.data.metrics`, `.data.tags`)."""
        return self.client.get_run(run_id)

    @_guarded
    def tag_run(self, run_id: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    @_guarded
    def promote(self, task: Task, version: str) -> VersionInfo | None:
        """`version` becomes champion, the old champion previous_champion; returns the old champion."""
        name = MODEL_NAMES[task]
        self.version(task, version)  # a clear error for an unknown version
        old = self.alias(task, CHAMPION)
        if old is not None and old.version == str(version):
            raise PromotionError(f"{name} version {version} is already the champion")
        if old is not None:
            self.client.set_registered_model_alias(name, PREVIOUS, old.version)
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        self.client.set_model_version_tag(name, str(version), PROMOTED_AT, _now())
        challenger = self.alias(task, CHALLENGER)
        if challenger is not None and challenger.version == str(version):
            self.client.delete_registered_model_alias(name, CHALLENGER)
        return old

    @_guarded
    def rollback(self, task: Task) -> tuple[VersionInfo, VersionInfo | None]:
        """previous_champion becomes champion again; returns (restored, demoted)."""
        name = MODEL_NAMES[task]
        previous = self.alias(task, PREVIOUS)
        if previous is None:
            raise PromotionError(f"nothing to roll back to: {name} has no {PREVIOUS} version")
        demoted = self.alias(task, CHAMPION)
        self.client.set_registered_model_alias(name, CHAMPION, previous.version)
        self.client.set_model_version_tag(name, previous.version, PROMOTED_AT, _now())
        self.client.delete_registered_model_alias(name, PREVIOUS)
        if demoted is not None:
            self.client.set_model_version_tag(name, demoted.version, "rolled_back", "true")
        return self.version(task, previous.version), demoted

    @_guarded
    def download(self, task: Task, alias: str, dest: Path) -> Path:
        """The aliased version's pyfunc folder, replacing `dest`; its native model is in `dest/artifacts/native`."""
        import mlflow

        info = self.alias(task, alias)
        if info is None:
            raise ModelNotFoundError(f"{MODEL_NAMES[task]} has no {alias} version")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
        try:
            # MLflow resolves a `models:/` URI against its global registry URI, whatever URIs it is passed.
            with fluent(self.uri):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{info.name}/{info.version}", dst_path=str(staging), tracking_uri=self.uri
                )
            (staging / "version.json").write_text(
                json.dumps({"name": info.name, "version": info.version, "run_id": info.run_id, "alias": alias}) + "\n"
            )
            if dest.exists():
                shutil.rmtree(dest)
            staging.rename(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest
