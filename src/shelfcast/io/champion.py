"""The champions as scoring and serving load them: the local copy in the workspace, kept in step with the registry."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from shelfcast.errors import ModelNotFoundError, TrackingError
from shelfcast.io.registry import CHAMPION, Registry
from shelfcast.settings import Settings
from shelfcast.types import Task

log = logging.getLogger(__name__)
# Inside a downloaded pyfunc folder: the native model logged as the `native` artifact.
NATIVE = Path("artifacts") / "native"


def champions_root(settings: Settings) -> Path:
    """`<workspace>/models/`: the local copies of the champions, one folder per task."""
    return settings.workspace / "models"


def champion_dir(settings: Settings, task: Task) -> Path:
    return champions_root(settings) / task / "champion"


def fetch_champion(settings: Settings, task: Task) -> Path:
    """The champion's pyfunc folder in `<workspace>/models/<task>/champion/` (native model in artifacts/native)."""
    return Registry(settings).download(task, CHAMPION, champion_dir(settings, task))


@dataclass(frozen=True)
class Champion:
    """A champion model loaded for scoring, and where it came from."""

    task: Task
    name: str
    version: str
    run_id: str | None
    folder: Path  # the native model folder (booster file + model.json)
    from_registry: bool  # False: the registry did not answer and the local copy was used


def _local_copy(settings: Settings, task: Task) -> dict[str, str] | None:
    path = champion_dir(settings, task) / "version.json"
    if not path.exists():
        return None
    stored: dict[str, str] = json.loads(path.read_text())
    return stored


def load_champion(settings: Settings, task: Task, *, registry: Registry | None = None) -> Champion:
    """The task's champion, from the local copy when it is the registry's current one, else downloaded first.

    If the registry cannot be reached, the last local copy is used (with a
    warning) so scoring goes on; with neither, a clear error says what to run.
    """
    cache = champion_dir(settings, task)
    local = _local_copy(settings, task)
    try:
        registry = registry or Registry(settings)
        current = registry.alias(task, CHAMPION)
    except TrackingError as exc:  # an unreachable server or a broken store: the local copy is the fallback
        if local is None:
            raise ModelNotFoundError(
                f"the model registry did not answer ({exc}) and there is no local copy of the {task} champion"
            ) from exc
        log.warning("registry unreachable (%s): using the local copy of %s v%s", exc, local["name"], local["version"])
        return Champion(task, local["name"], local["version"], local.get("run_id"), cache / NATIVE, False)
    if current is None:
        raise ModelNotFoundError(
            f"no {task} champion in the registry ({registry.uri}): run `shelfcast train --task {task}` "
            "(or `shelfcast score --fit` to train at the cutoff without the registry)"
        )
    if local is None or (local.get("name"), local.get("version")) != (current.name, current.version):
        registry.download(task, CHAMPION, cache)
    return Champion(task, current.name, current.version, current.run_id or None, cache / NATIVE, True)
