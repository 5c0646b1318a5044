"""`shelfcast score` as a user runs it: a summary on success, one line naming the URL when PostgreSQL is down."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import run_cli

pytestmark = pytest.mark.e2e


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=env, columns=200)


def test_score_writes_parquet_and_names_an_unreachable_postgres(tmp_path: Path) -> None:
    assert run("demo", "--stores", "2", "--items", "3", "--days", "200", "--no-models", cwd=tmp_path).returncode == 0
    missing = run("score", cwd=tmp_path)  # no champion yet: the rule baselines score, and the note says why
    assert missing.returncode == 0, missing.stderr
    said = " ".join(missing.stdout.split())
    assert "seasonal_naive, version rule-baseline" in said
    assert "no demand champion in the registry" in said and "`shelfcast score --fit`" in said
    ok = run("score", "--horizon", "3", "--fit", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "18 (3 days from" in ok.stdout
    assert list((tmp_path / ".shelfcast" / "predictions").glob("scored_on=*/part.parquet"))

    down = run(
        "score",
        "--store",
        "postgres",
        "--fit",
        cwd=tmp_path,
        env={"SHELFCAST_POSTGRES_URL": "postgresql://127.0.0.1:1/test"},
    )
    assert down.returncode == 1
    assert down.stderr.strip().startswith("error: PostgreSQL at postgresql://127.0.0.1:1/test is unreachable")
    assert "Traceback" not in down.stderr
