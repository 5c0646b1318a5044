"""One writer of a workspace's lake at a time.

An advisory `flock` on `<workspace>/lake/.writer.lock`: the kernel releases it
when its holder exits, however it exits (kill -9 included), so a crashed
ingest never blocks the next one. The file also says who holds the lock (pid,
host, since when), for the line the waiting process prints.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shelfcast.errors import LakeError

LOCK_FILE = ".writer.lock"
_POLL = 0.2


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the lock."""

    pid: int | None
    host: str | None
    since: str | None

    def line(self, who: str = "another ingest") -> str:
        on = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"{who} is running in this workspace since {self.since or 'an unknown time'} (pid {self.pid}{on})"


def lock_path(workspace: Path) -> Path:
    return Path(workspace) / "lake" / LOCK_FILE


def _read_holder(path: Path) -> Holder:
    try:
        data = json.loads(path.read_text())
        return Holder(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):  # written this instant, or by hand
        return Holder(None, None, None)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder(workspace: Path) -> Holder | None:
    """The process writing the workspace's lake now, or None (a read: never creates the lock file)."""
    path = lock_path(workspace)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return _read_holder(path)
    finally:
        os.close(fd)


@contextlib.contextmanager
def workspace_lock(workspace: Path, *, timeout: float, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the workspace's writer lock; wait up to `timeout` seconds for another holder, then give up (LakeError).

    Polls instead of blocking in the kernel so that SIGINT/SIGTERM stop a waiting process at once.
    """
    path = lock_path(workspace)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only folder, a workspace path that is a file
        raise LakeError(
            f"cannot write the workspace {workspace} ({exc.strerror or exc}); give a writable folder with -w"
        ) from None
    try:
        deadline = time.monotonic() + timeout
        attempts = 0
        while not _try_lock(fd):
            busy = _read_holder(path).line()
            if time.monotonic() >= deadline:
                raise LakeError(f"{busy}; gave up after {timeout:g} s (setting `lock_timeout`): try again when it ends")
            attempts += 1
            # Said on the second attempt: `holder()` takes the lock for an instant to test it, which is no writer.
            if attempts == 2 and on_wait is not None:
                on_wait(f"{busy}; waiting up to {timeout:g} s")
            time.sleep(_POLL)
        since = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
