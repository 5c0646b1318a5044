"""Local server processes: each in a session of its own, its output in a log file, stopped as a whole.

`shelfcast stack up` supervises its servers with these. A server started in a new session (its own process
group, with whatever workers it forks) does not receive the terminal's Ctrl-C: the supervisor does, and stops the
servers in order. A session is found and stopped whole even after its leader died, by its id (the leader's pid)
and the leader's start time, so that a pid the system reused is never taken for a server: a supervisor killed
with SIGKILL leaves nothing a later `shelfcast stack down` cannot find.

Finding a session's members reads `/proc` (Linux); elsewhere only the leader's process group is signalled.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shelfcast.io.files import process_alive

PROC = Path("/proc")


@dataclass(frozen=True)
class Launched:
    """A server started in a session of its own: `pid` is also the session's id; `started` is the leader's start
    time in clock ticks since boot (None where /proc is absent)."""

    name: str
    pid: int
    started: int | None


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22); None if it is gone, a zombie
    (exited, not yet reaped by its parent) or unknown."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: the fields after the last ')' are fixed.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 and fields[0] != "Z" else None


def session_members(sid: int, started: int | None) -> list[int]:
    """Processes of session `sid` that started no earlier than its leader did (`started`): the leader, if alive,
    and what it forked. Without /proc: the leader alone, if alive."""
    if not PROC.is_dir() or started is None:
        return [sid] if process_alive(sid) else []
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        fields = stat.rpartition(")")[2].split()
        # fields[0] is field 3 (state): session is field 6, start time field 22.
        if len(fields) > 19 and fields[0] != "Z" and int(fields[3]) == sid and int(fields[19]) >= started:
            members.append(int(entry.name))
    return members


def launch(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> tuple[Launched, subprocess.Popen[bytes]]:
    """Start `argv` in a new session, stdout and stderr appended to `log` (a header line first)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        sink.write(f"=== {stamp} {name}: {' '.join(argv)}\n".encode())
        sink.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return Launched(name, proc.pid, start_ticks(proc.pid)), proc


def _signal(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_session(server: Launched, *, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM to every process of the server's session, then SIGKILL to what is left after `timeout` seconds.
    Returns True if it had to kill. `proc` (when this process started it) is reaped so it leaves no zombie."""
    members = session_members(server.pid, server.started)
    if not members:
        _reap(proc)
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGTERM)  # the leader's group: what it forked without a session of its own
    _signal(members, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(proc)
        if not session_members(server.pid, server.started):
            return False
        time.sleep(0.1)
    left = session_members(server.pid, server.started)
    _signal(left, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while session_members(server.pid, server.started) and time.monotonic() < deadline:
        _reap(proc)
        time.sleep(0.05)
    _reap(proc)
    return bool(left)


def _reap(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.poll()


def port_in_use(host: str, port: int) -> bool:
    """Something listens on `host:port` (or the address cannot be bound for another reason)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def http_ok(url: str, *, timeout: float = 3.0) -> bool:
    """`GET url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log file ('' if it cannot be read)."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 64 * 1024))
            text = stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
