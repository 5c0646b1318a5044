"""Writing files safely next to other writers: unique temporary names, atomic renames, no leftovers on failure."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.errors import ConfigError, LakeError

_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def is_disk_full(exc: BaseException) -> bool:
    """A write refused for lack of space (or a file-size limit), from Python's I/O or from Polars' own."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return True
    found = _OS_ERROR.search(str(exc)) if isinstance(exc, pl.exceptions.PolarsError) else None
    return bool(found and int(found.group(1)) in _DISK_FULL)


def disk_full_message(where: Path | str) -> str:
    return f"cannot write {where}: no space left (disk full, or a file size limit); free some space and run it again"


def atomic_write(path: Path, write: Callable[[Path], object], *, error: Callable[[str], Exception] = LakeError) -> None:
    """`write(tmp)` to a temporary name unique to this writer, renamed onto `path`; no temporary file is left.

    Unique names let two writers of one folder never remove or rename each other's half-written files. A full
    disk becomes `error(message)`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid in the name: `remove_orphans` tells a dead writer's file from a live one's.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise error(disk_full_message(path)) from None
        raise


def _strict(value: Any) -> Any:
    """NaN and infinities (a metric with nothing to score) as null: strict JSON, which every reader takes."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def write_json(payload: Mapping[str, Any], path: Path) -> Path:
    """`payload` as a strict JSON file, written atomically (a pipeline reading it never sees half of it).

    A path that cannot be written (a folder, no permission, a full disk) is a one-line `ConfigError` naming it.
    """
    text = json.dumps(_strict(payload), indent=2, default=str) + "\n"
    try:
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), error=ConfigError)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(f"cannot write {path} ({reason})") from None
    return path


def remove_temporaries(folder: Path) -> int:
    """Delete the temporary files writers that died left under `folder` (call only while no writer can run)."""
    found = list(folder.rglob("*.tmp")) if folder.is_dir() else []
    for tmp in found:
        tmp.unlink(missing_ok=True)
    return len(found)


def process_alive(pid: int) -> bool:
    """A process with this pid runs on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_orphans(folder: Path) -> int:
    """Delete the temporary files in `folder` whose writer (the pid in the name `atomic_write` gives) has died;
    safe while other writers run, as a live writer's file is kept."""
    removed = 0
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        pid = tmp.name.removesuffix(".tmp").rsplit(".", 2)[-2]
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
