"""What the CLI prints when its output is not a terminal (CI, a pipe): a line per step, no library chatter, and
commands that paste whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_cli, write

pytestmark = pytest.mark.e2e


def test_ingest_prints_a_line_per_step_when_not_on_a_terminal(tmp_path: Path) -> None:
    write(tmp_path / "x.csv", "date,store,item,sales\n2024-01-01,1,1,1\n2024-02-01,1,1,2\n")
    result = run_cli("ingest", "x.csv", "--source", "store-item", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    steps = [line for line in result.stdout.splitlines() if line.startswith("ingest: ")]
    assert "ingest: writing sales 2024-01 (0/2)" in steps, result.stdout


@pytest.mark.slow
def test_demo_says_each_step_keeps_mlflow_quiet_and_prints_commands_whole(tmp_path: Path) -> None:
    workspace = tmp_path / ("a-workspace-with-a-long-name-" * 3)
    args = ("demo", "-w", str(workspace), "--stores", "3", "--items", "5", "--days", "200")
    result = run_cli(*args, cwd=tmp_path, columns=80)
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("demo: ")]
    assert [line.split(" (")[0] for line in steps[:5]] == [
        "demo: simulate",
        "demo: ingest",
        "demo: validate",
        "demo: features",
        "demo: train demand",
    ]
    for chatter in (
        "INFO mlflow",
        "WARNING mlflow",
        "site-packages/mlflow",
        "UserWarning",
        "Successfully registered",
        "Created version",
        "Downloading artifacts",
    ):
        assert chatter not in result.stderr, result.stderr
    mlflow_ui = f"  uv run mlflow ui --backend-store-uri sqlite:///{workspace.resolve()}/mlflow/mlflow.db"
    assert mlflow_ui in result.stdout.splitlines(), result.stdout


def test_a_command_with_a_spinner_says_what_it_is_doing_when_not_on_a_terminal(tmp_path: Path) -> None:
    result = run_cli("simulate", "--stores", "2", "--items", "2", "--days", "30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "simulate ..."
    assert any(line.startswith("simulate: ") for line in lines[1:]), result.stdout
