"""`shelfcast train` and `shelfcast models` as a user runs them, with MLflow in the workspace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import run_cli

pytestmark = pytest.mark.e2e


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, drop=("MLFLOW_TRACKING_URI",), columns=200, timeout=900)


def test_train_then_list_show_and_registry_errors(tmp_path: Path) -> None:
    demo = run("demo", "--stores", "2", "--items", "5", "--days", "240", "--no-models", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    trained = run("train", "--task", "demand", "--folds", "2", "--horizon", "7", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    text = " ".join(trained.stdout.split())
    assert "Trained demand model" in text and "demand v1" in text and "gates" in text
    assert (tmp_path / ".shelfcast" / "mlflow" / "mlflow.db").exists()
    listed = run("models", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "shelfcast-demand" in listed.stdout and "sqlite:///" in " ".join(listed.stdout.split())
    shown = run("models", "show", "demand", "--version", "1", cwd=tmp_path)
    assert shown.returncode == 0 and "gate.passed" in shown.stdout
    for args, message in [
        (["models", "show", "demand", "--version", "9"], "shelfcast-demand has no version '9'"),
        (["models", "rollback", "--task", "demand"], "nothing to roll back to"),
        (["models", "show", "pricing"], "unknown model 'pricing'"),
        (["models", "promote", "--task", "demand", "--version", "7"], "has no version '7'"),
    ]:
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 1, result.stdout
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unreachable_tracking_server_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "shelfcast.toml").write_text('mlflow_tracking_uri = "http://127.0.0.1:9"\n')
    result = run("models", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert "MLflow tracking server http://127.0.0.1:9 is unreachable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
