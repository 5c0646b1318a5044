"""The thread decision (`shelfcast.threads`): who wins, bad values, the CPUs counted, and what reaches the engines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import write
from pydantic import ValidationError

from shelfcast.errors import ConfigError
from shelfcast.models.forecaster import GBMForecaster
from shelfcast.settings import Settings
from shelfcast.threads import (
    SPIN_COUNT,
    ThreadPlan,
    available_cpus,
    busy_cpus,
    configure,
    decide,
    decided,
    parse_threads,
    thread_env,
    user_setting,
)


@pytest.mark.parametrize(("value", "count"), [("3", 3), (" 2 ", 2), (4, 4), ("auto", None), ("AUTO", None)])
def test_parse_threads(value: object, count: int | None) -> None:
    assert parse_threads(value, source="X") == count


@pytest.mark.parametrize("value", ["0", 0, "-1", "1.5", 1.5, "two", "", True, None])
def test_a_bad_count_is_one_line_naming_its_source(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^SHELFCAST_THREADS: expected a positive number of threads or `auto`, got"):
        parse_threads(value, source="SHELFCAST_THREADS")


def test_the_environment_beats_the_settings_file(tmp_path: Path) -> None:
    write(tmp_path / "shelfcast.toml", "threads = 3\n")
    assert user_setting({}) == (3, "shelfcast.toml")
    assert user_setting({"SHELFCAST_THREADS": "1"}) == (1, "SHELFCAST_THREADS")
    assert user_setting({"SHELFCAST_THREADS": "auto"}) == (None, "SHELFCAST_THREADS")
    other = write(tmp_path / "conf" / "x.toml", 'threads = "auto"\n')
    assert user_setting({"SHELFCAST_CONFIG": str(other)}) == (None, str(other))


def test_a_bad_count_in_the_file_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "shelfcast.toml", "threads = 0\n")
    with pytest.raises(ConfigError, match=r"^shelfcast.toml: `threads`: expected a positive number"):
        user_setting({})


@pytest.mark.parametrize("text", [None, "workspace = 'x'\n", "not [ toml", b"\xff\xfe"])
def test_no_or_a_broken_file_is_auto(tmp_path: Path, text: str | bytes | None) -> None:
    # A broken file is reported by the settings, with their own message, when the command reads them.
    if text is not None:
        write(tmp_path / "shelfcast.toml", text)
    assert user_setting({}) == (None, "auto")


def test_the_settings_accept_and_check_threads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().threads == "auto"
    write(tmp_path / "shelfcast.toml", "threads = 2\n")
    assert Settings().threads == 2
    monkeypatch.setenv("SHELFCAST_THREADS", "1")
    assert Settings().threads == 1
    monkeypatch.setenv("SHELFCAST_THREADS", "many")
    with pytest.raises(ValidationError, match=r"threads\n.*expected a positive number of threads or `auto`"):
        Settings()


@pytest.mark.parametrize(
    ("cpu_max", "cpus", "count"),
    [(None, 2, 2), ("max 100000", 4, 4), ("150000 100000", 4, 2), ("50000 100000", 4, 1), ("400000 100000", 2, 2)],
)
def test_available_cpus_follow_affinity_and_the_cgroup_quota(
    tmp_path: Path, cpu_max: str | None, cpus: int, count: int
) -> None:
    if cpu_max is not None:
        write(tmp_path / "cpu.max", cpu_max + "\n")
    assert available_cpus(set(range(cpus)), cgroup_root=tmp_path) == count


def test_available_cpus_read_a_cgroup_v1_quota(tmp_path: Path) -> None:
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "100000\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert available_cpus({0, 1, 2}, cgroup_root=tmp_path) == 1
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1\n")
    assert available_cpus({0, 1, 2}, cgroup_root=tmp_path) == 3


def _stat(*cpus: tuple[int, int]) -> str:
    """`/proc/stat` text with (busy, idle) ticks per CPU."""
    lines = [f"cpu  {sum(b for b, _ in cpus)} 0 0 {sum(i for _, i in cpus)} 0 0 0 0 0 0"]
    lines += [f"cpu{n} {busy} 0 0 {idle} 0 0 0 0 0 0" for n, (busy, idle) in enumerate(cpus)]
    return "\n".join([*lines, "intr 1 2 3", "procs_running 2"]) + "\n"


def test_busy_cpus_counts_the_ticks_others_used_on_our_cpus() -> None:
    # Over the sample CPU 0 was busy 10 of 10 ticks, CPU 1 idle, CPU 2 (not ours) busy.
    texts = iter([_stat((100, 50), (10, 200), (0, 0)), _stat((110, 50), (10, 210), (10, 0))])
    assert busy_cpus({0, 1}, read=lambda: next(texts), sleep=lambda _: None) == pytest.approx(1.0)

    def unreadable() -> str:
        raise OSError("no /proc here")

    assert busy_cpus({0, 1}, read=unreadable, sleep=lambda _: None) == 0.0
    same = iter([_stat((1, 1)), _stat((1, 1))])
    assert busy_cpus({0}, read=lambda: next(same), sleep=lambda _: None) == 0.0


@pytest.mark.parametrize(
    ("setting", "available", "busy", "threads"),
    [(3, 2, 2.0, 3), (None, 2, 0.0, 2), (None, 2, 0.4, 2), (None, 2, 1.0, 1), (None, 2, 5.0, 1), (None, 4, 1.6, 2)],
)
def test_decide(setting: int | None, available: int, busy: float, threads: int) -> None:
    assert decide(setting, available=available, busy=busy) == threads


def test_the_users_own_variables_win() -> None:
    assert thread_env(2, {}) == {"OMP_NUM_THREADS": "2", "POLARS_MAX_THREADS": "2", "GOMP_SPINCOUNT": str(SPIN_COUNT)}
    assert thread_env(2, {"OMP_NUM_THREADS": "4", "POLARS_MAX_THREADS": "3"}) == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}
    # A wait policy of the user's says how long to spin: no spin count of ours beside it.
    assert thread_env(1, {"OMP_WAIT_POLICY": "PASSIVE"}) == {"OMP_NUM_THREADS": "1", "POLARS_MAX_THREADS": "1"}
    assert "GOMP_SPINCOUNT" not in thread_env(1, {"GOMP_SPINCOUNT": "0"})


def test_configure_sets_the_variables_of_the_users_count() -> None:
    environ = {"SHELFCAST_THREADS": "1", "POLARS_MAX_THREADS": "2"}
    plan = configure(environ)
    assert (plan.threads, plan.source, plan.busy) == (1, "SHELFCAST_THREADS", 0.0)
    assert decided() == plan and plan.describe() == "threads: 1 (SHELFCAST_THREADS)"  # what `-v` logs
    assert ThreadPlan(2, "auto", 4, 1.6).describe() == "threads: 2 (4 CPUs, 1.6 busy with other work)"
    assert environ == {
        "SHELFCAST_THREADS": "1",
        "POLARS_MAX_THREADS": "2",
        "OMP_NUM_THREADS": "1",
        "GOMP_SPINCOUNT": str(SPIN_COUNT),
    }


def test_a_bad_setting_stops_the_command_with_one_line(tmp_path: Path) -> None:
    env = {"SHELFCAST_THREADS": "0", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "shelfcast", "info"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stderr == "error: SHELFCAST_THREADS: expected a positive number of threads or `auto`, got '0'\n"


def _fit(engine: str, n_jobs: int | None) -> GBMForecaster:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"store_id": ["a", "b"] * 50, "x": rng.normal(size=100)})
    return GBMForecaster(engine=engine, n_estimators=3, n_jobs=n_jobs).fit(frame, rng.normal(size=100))  # type: ignore[arg-type]


def test_n_jobs_reaches_the_engines() -> None:
    assert _fit("lightgbm", 3).model_.params["num_threads"] == 3
    assert _fit("lightgbm", None).model_.params["num_threads"] == 0  # OpenMP's default: the entry point's count
    config = json.loads(_fit("xgboost", 3).model_.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "3"
    with pytest.raises(ValueError, match=r"`n_jobs` must be a positive integer or None, got 0"):
        GBMForecaster(n_jobs=0)


SCRIPT = """
import json, sys
from shelfcast.threads import configure
configure()
import numpy as np, polars as pl
from threadpoolctl import threadpool_info
from shelfcast.models.forecaster import GBMForecaster
rng = np.random.default_rng(0)
frame = pl.DataFrame({"store_id": ["a", "b"] * 50, "x": rng.normal(size=100)})
for engine in ("lightgbm", "xgboost"):
    GBMForecaster(engine=engine, n_estimators=3).fit(frame, rng.normal(size=100))
openmp = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}
print(json.dumps({"polars": pl.thread_pool_size(), "openmp": openmp}))
"""


@pytest.mark.parametrize("threads", ["3"])  # not the default (the CPUs here), so it came from the setting
def test_the_count_reaches_openmp_and_polars(tmp_path: Path, threads: str) -> None:
    # A process of its own: OpenMP and Polars read their variables once, as they load.
    env = {"SHELFCAST_THREADS": threads, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["polars"] == int(threads)
    assert seen["openmp"] and set(seen["openmp"].values()) == {int(threads)}, seen


@pytest.mark.parametrize("engine", ["lightgbm", "xgboost"])
def test_the_model_does_not_depend_on_the_thread_count(engine: str) -> None:
    # So a count chosen from the load of the moment never changes a forecast (nor the golden metrics).
    rng = np.random.default_rng(1)
    n = 3000
    frame = pl.DataFrame(
        {"store_id": rng.choice(["a", "b", "c"], n), "item_id": rng.choice([f"i{k}" for k in range(20)], n)}
    ).with_columns(*(pl.Series(f"x{k}", rng.normal(size=n)) for k in range(8)))
    y = frame["x0"].to_numpy() * 2 + (frame["store_id"] == "a").to_numpy() + rng.normal(size=n)
    fits = [
        GBMForecaster(engine=engine, n_estimators=40, monotone={"x1": 1}, n_jobs=t).fit(frame, y)  # type: ignore[arg-type]
        for t in (1, 2, 3)
    ]
    one, *others = (f.predict(frame) for f in fits)
    for pred in others:
        assert np.array_equal(one, pred)
