"""How many threads LightGBM, XGBoost and Polars use: decided once per process, at the entry point.

With a fixed count of threads, one per core, and another busy process on
the machine, OpenMP's threads spin waiting for the one that shares its core
with the other process: training measured 13.8x slower beside one busy loop
on 2 cores. Passive waiting avoids that but doubles the idle time (LightGBM
runs many short parallel regions and each wake-up costs). So the count
follows the CPUs that are free when the process starts: those it may use
(its affinity, capped by a cgroup CPU quota) less those other processes keep
busy (a short sample of `/proc/stat`). A user who shares a machine can set
the count instead (`SHELFCAST_THREADS`, or `threads` in the settings file).

The count reaches the engines through the environment, set before anything
loads them: `OMP_NUM_THREADS` (LightGBM and XGBoost take OpenMP's default
when `GBMForecaster.n_jobs` is None) and `POLARS_MAX_THREADS` (read as Polars
is imported). A variable the user set is left alone, so their own
`OMP_NUM_THREADS`, `OMP_WAIT_POLICY`, `GOMP_SPINCOUNT` or `POLARS_MAX_THREADS`
wins. Child processes inherit the variables.

Standard library only (and `errors`): it runs before Polars is imported.
"""

from __future__ import annotations

import math
import os
import time
import tomllib
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from shelfcast.errors import ConfigError

THREADS_ENV = "SHELFCAST_THREADS"
# The settings file (`shelfcast.settings` imports these: that module imports Polars, so it cannot be used here).
CONFIG_ENV = "SHELFCAST_CONFIG"
DEFAULT_CONFIG_FILE = "shelfcast.toml"
AUTO: Final = "auto"
EXPECTED = "expected a positive number of threads or `auto`"
# How long the load of the other processes is sampled: 10 clock ticks per CPU, 0.1 s added to each command.
SAMPLE_SECONDS = 0.1
# A thread waiting for work spins this many times before it sleeps. libgomp's default (300,000) keeps a thread
# spinning for milliseconds on a core another process wants; passive waiting (0) doubles LightGBM's idle time.
SPIN_COUNT = 10_000


@dataclass(frozen=True)
class ThreadPlan:
    """The decision: the count, where it came from, and the environment variables set for it."""

    threads: int
    source: str  # `SHELFCAST_THREADS`, the settings file's name, or "auto"
    available: int  # CPUs this process may use
    busy: float  # CPUs other processes kept busy during the sample (auto only, else 0)
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the log: the count and why."""
        why = f"{self.available} CPUs, {self.busy:.1f} busy with other work" if self.source == AUTO else self.source
        return f"threads: {self.threads} ({why})"


# The process's decision, for the log of a command that is verbose (the entry point decides before logging is set).
_decided: list[ThreadPlan] = []


def decided() -> ThreadPlan | None:
    """The plan `configure` set in this process, if it ran."""
    return _decided[-1] if _decided else None


def parse_threads(value: object, *, source: str) -> int | None:
    """A positive count of threads, or None for `auto`; anything else is a one-line error naming `source`."""
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.strip().lower() == AUTO:
        return None
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    else:
        raise ConfigError(f"{source}: {EXPECTED}, got {value!r}")
    if count < 1:
        raise ConfigError(f"{source}: {EXPECTED}, got {value!r}")
    return count


def _settings_file(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)


def user_setting(environ: Mapping[str, str] = os.environ) -> tuple[int | None, str]:
    """The user's count (None: auto) and where it was given: `SHELFCAST_THREADS`, else the settings file."""
    if THREADS_ENV in environ:
        return parse_threads(environ[THREADS_ENV], source=THREADS_ENV), THREADS_ENV
    path = _settings_file(environ)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        # A missing or broken file is reported by the settings, with their message, when a command reads them.
        return None, AUTO
    if "threads" not in data:
        return None, AUTO
    where = f"{path}: `threads`"
    return parse_threads(data["threads"], source=where), str(path)


def _quota(cgroup_root: Path) -> float | None:
    """CPUs the cgroup quota allows (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None without a quota."""
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def usable_cpus() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


def available_cpus(cpus: set[int], *, cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """How many CPUs the process may use: its affinity, capped by a cgroup quota (rounded up, at least 1)."""
    quota = _quota(cgroup_root)
    count = len(cpus) if quota is None else min(len(cpus), math.ceil(quota))
    return max(1, count)


def _cpu_times(stat: str, cpus: set[int]) -> tuple[int, int]:
    """(total, idle) clock ticks of `cpus` in the text of `/proc/stat`."""
    total = idle = 0
    for line in stat.splitlines():
        name, *values = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(ticks)
        idle += ticks[3] + ticks[4]
    return total, idle


def busy_cpus(
    cpus: set[int],
    *,
    seconds: float = SAMPLE_SECONDS,
    read: Callable[[], str] = lambda: Path("/proc/stat").read_text(),
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """How many of `cpus` other processes kept busy over `seconds` (this one sleeps meanwhile); 0 if unknown."""
    try:
        total0, idle0 = _cpu_times(read(), cpus)
        sleep(seconds)
        total1, idle1 = _cpu_times(read(), cpus)
    except (OSError, ValueError):
        return 0.0
    if total1 <= total0:
        return 0.0
    return len(cpus) * (1.0 - (idle1 - idle0) / (total1 - total0))


def decide(setting: int | None, *, available: int, busy: float) -> int:
    """The user's count if given; else the available CPUs not kept busy by others, rounded, at least 1."""
    if setting is not None:
        return setting
    return max(1, min(available, math.floor(available - busy + 0.5)))


def thread_env(threads: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set for `threads`: those the user has not set themselves."""
    wanted = {"OMP_NUM_THREADS": str(threads), "POLARS_MAX_THREADS": str(threads)}
    # A user's wait policy says how long to spin: a spin count of ours would override it.
    if "OMP_WAIT_POLICY" not in environ:
        wanted["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return {k: v for k, v in wanted.items() if k not in environ}


def configure(environ: MutableMapping[str, str] = os.environ) -> ThreadPlan:
    """Decide the count for this process and set its variables in `environ`; call it before Polars is imported."""
    setting, source = user_setting(environ)
    cpus = usable_cpus()
    available = available_cpus(cpus)
    busy = busy_cpus(cpus) if setting is None and available > 1 else 0.0
    threads = decide(setting, available=available, busy=busy)
    env = thread_env(threads, environ)
    environ.update(env)
    plan = ThreadPlan(threads=threads, source=source, available=available, busy=busy, env=env)
    _decided.append(plan)
    return plan
