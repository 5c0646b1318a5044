"""The MLflow model registry with aliases (`challenger`, `champion`, `previous_champion`), never stages.

One registered model per task, named like its experiment. Gate verdicts are
version tags (`gate.passed`, `gate.reason`, `gate.<metric>`).

Errors: an unknown model or version is a ModelNotFoundError; a server or
store that fails is a TrackingError naming the URI (`tracking.mlflow_errors`
wraps every method), so callers never catch MLflow's own exceptions.

Promotion and rollback move two aliases, and MLflow has no transaction: the
move is written down first (the registered model's tag `shelfcast.alias_move`:
the pair before and the pair after), then the aliases move in an order that
never puts `champion` and `previous_champion` on one version, then the tag
goes. A move interrupted (kill -9) is finished by the next `repair` if the
champion had moved, else undone; a pair left on one version by an older
shelfcast loses its `previous_champion` (it points at nothing to roll back to).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from shelfcast.errors import ModelNotFoundError, PromotionError
from shelfcast.io.tracking import EXPERIMENTS, client, connect, crash_point, fluent, mlflow_errors, reap_dead_runs
from shelfcast.models.gates import GateResult
from shelfcast.redact import redact
from shelfcast.settings import Settings
from shelfcast.types import Task

log = logging.getLogger(__name__)
CHALLENGER, CHAMPION, PREVIOUS = "challenger", "champion", "previous_champion"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)
# The alias move under way (JSON: op, champion [before, after], previous [before, after]); see the module's doc.
MOVE_TAG = "shelfcast.alias_move"
ROLLED_BACK = "rolled_back"
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
        with mlflow_errors(self._uri):
            return method(self, *args, **kwargs)

    return guarded


class Registry:
    """Thin wrapper over `MlflowClient` for shelfcast's registered models and their runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._uri = connect(settings)
        self.uri = redact(self._uri)  # for messages and responses
        with mlflow_errors(self._uri):
            # Jobs go through the methods (which raise TrackingError); tests read runs through it.
            self.client = client(self._uri)

    @_guarded
    def register(self, task: Task, model_uri: str, *, run_id: str) -> VersionInfo:
        """A new version of the task's model from a logged model, aliased `challenger`."""
        import mlflow

        name = MODEL_NAMES[task]
        # `register_model` (not the client's `create_model_version`) resolves a logged model's URI to its source.
        with fluent(self._uri):
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
        """Every version, with its aliases (MLflow's version search leaves them out: they come from the model)."""
        name = MODEL_NAMES[task]
        found = self.client.search_model_versions(f"name = '{name}'")
        if not found:
            return []
        aliases: dict[str, list[str]] = {}
        for alias, version in self._aliases(task).items():
            aliases.setdefault(version, []).append(alias)
        infos = (self._info(task, mv) for mv in found)
        return sorted(
            (replace(v, aliases=sorted(set(v.aliases) | set(aliases.get(v.version, [])))) for v in infos),
            key=lambda v: int(v.version),
        )

    def _model(self, task: Task) -> Any | None:
        """The registered model (aliases, tags), or None when there is none yet."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(MODEL_NAMES[task])
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                return None
            raise

    def _aliases(self, task: Task) -> dict[str, str]:
        """alias -> version of the task's model."""
        model = self._model(task)
        if model is None:
            return {}
        raw = model.aliases or {}
        pairs = raw.items() if isinstance(raw, Mapping) else ((a.alias, a.version) for a in raw)
        return {str(alias): str(version) for alias, version in pairs}

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
        self.repair(task)
        self.version(task, version)  # a clear error for an unknown version
        old = self.alias(task, CHAMPION)
        if old is not None and old.version == str(version):
            raise PromotionError(f"{name} version {version} is already the champion")
        self._move(task, "promote", champion=str(version), previous=old.version if old else None)
        return old

    @_guarded
    def rollback(self, task: Task) -> tuple[VersionInfo, VersionInfo | None]:
        """previous_champion becomes champion again; returns (restored, demoted)."""
        name = MODEL_NAMES[task]
        self.repair(task)
        previous = self.alias(task, PREVIOUS)
        if previous is None:
            raise PromotionError(f"nothing to roll back to: {name} has no {PREVIOUS} version")
        demoted = self.alias(task, CHAMPION)
        self._move(task, "rollback", champion=previous.version, previous=None)
        return self.version(task, previous.version), demoted

    def _move(self, task: Task, op: str, *, champion: str, previous: str | None) -> None:
        """Aliases to (champion, previous), written down first so that `repair` can finish or undo the move."""
        name = MODEL_NAMES[task]
        now = self._aliases(task)
        intent = {
            "op": op,
            CHAMPION: [now.get(CHAMPION), champion],
            PREVIOUS: [now.get(PREVIOUS), previous],
        }
        self.client.set_registered_model_tag(name, MOVE_TAG, json.dumps(intent))
        crash_point("move written")
        # Dated first: whenever this version is the champion, its date is this promotion's.
        self.client.set_model_version_tag(name, champion, PROMOTED_AT, _now())
        if now.get(PREVIOUS) == champion:  # never both aliases on one version, even for a moment
            self.client.delete_registered_model_alias(name, PREVIOUS)
            crash_point("previous cleared")
        self.client.set_registered_model_alias(name, CHAMPION, champion)
        crash_point("champion moved")
        self._finish(task, intent)

    def _finish(self, task: Task, intent: Mapping[str, Any]) -> None:
        """The rest of a move whose champion has moved: previous_champion, the tags, then the move's record."""
        name = MODEL_NAMES[task]
        old_champion, champion = intent[CHAMPION]
        previous = intent[PREVIOUS][1]
        if previous is None:
            if PREVIOUS in self._aliases(task):
                self.client.delete_registered_model_alias(name, PREVIOUS)
        else:
            self.client.set_registered_model_alias(name, PREVIOUS, previous)
        crash_point("previous moved")
        if intent["op"] == "rollback" and old_champion is not None:
            self.client.set_model_version_tag(name, old_champion, ROLLED_BACK, "true")
        if self._aliases(task).get(CHALLENGER) == champion:
            self.client.delete_registered_model_alias(name, CHALLENGER)
        self.client.delete_registered_model_tag(name, MOVE_TAG)

    @_guarded
    def repair(self, task: Task) -> str | None:
        """Finish or undo an interrupted promotion or rollback, or clear a previous_champion that is the champion
        itself; returns what was done (also logged as a warning), None when the aliases were in order."""
        name = MODEL_NAMES[task]
        model = self._model(task)
        if model is None:
            return None
        aliases = self._aliases(task)
        raw = (model.tags or {}).get(MOVE_TAG)
        done: str | None = None
        if raw is not None:
            intent = json.loads(raw)
            (before, after), previous_before = intent[CHAMPION], intent[PREVIOUS][0]
            if aliases.get(CHAMPION) == after:
                self._finish(task, intent)
                done = f"finished the interrupted {intent['op']} of {name}: v{after} is the champion"
            else:
                if previous_before is None or previous_before == aliases.get(CHAMPION):
                    if PREVIOUS in aliases:
                        self.client.delete_registered_model_alias(name, PREVIOUS)
                else:
                    self.client.set_registered_model_alias(name, PREVIOUS, previous_before)
                self.client.delete_registered_model_tag(name, MOVE_TAG)
                still = f"v{before}" if before is not None else "no version"
                done = f"undid the interrupted {intent['op']} of {name} to v{after}: {still} is still the champion"
        elif CHAMPION in aliases and aliases.get(PREVIOUS) == aliases[CHAMPION]:
            self.client.delete_registered_model_alias(name, PREVIOUS)
            done = (
                f"{name}'s {PREVIOUS} was the champion itself (v{aliases[CHAMPION]}, left by an interrupted "
                "promotion): removed it, so there is nothing to roll back to"
            )
        if done is not None:
            log.warning("%s", done)
        return done

    @_guarded
    def reap(self) -> list[str]:
        """Runs left RUNNING by a process that died (kill -9, a crash) are marked FAILED; returns their ids."""
        return reap_dead_runs(self.client)

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
            with fluent(self._uri):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{info.name}/{info.version}", dst_path=str(staging), tracking_uri=self._uri
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
