"""Where MLflow runs go, and that shelfcast leaves MLflow's process-wide URIs as it found them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shelfcast.io.tracking import connect, fluent, tracking_uri
from shelfcast.settings import Settings


def test_connecting_to_a_workspace_sets_nothing_global(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    uri = connect(settings)
    assert uri == f"sqlite:///{(tmp_path / 'ws' / 'mlflow' / 'mlflow.db').resolve()}"
    assert (tmp_path / "ws" / "mlflow" / "artifacts").is_dir()
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ


def test_a_fluent_block_uses_the_uri_then_puts_back_the_users_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    mine, theirs = f"sqlite:///{tmp_path / 'mine.db'}", f"sqlite:///{tmp_path / 'theirs.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", theirs)
    assert tracking_uri(Settings(workspace=tmp_path / "ws")) == theirs  # the user's variable points shelfcast too
    with fluent(mine):
        assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (mine, mine)
    assert os.environ["MLFLOW_TRACKING_URI"] == theirs and "MLFLOW_REGISTRY_URI" not in os.environ
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (theirs, theirs)


def test_a_fluent_block_restores_a_uri_set_in_code_even_after_an_error(tmp_path: Path) -> None:
    import mlflow

    mine, theirs = f"sqlite:///{tmp_path / 'mine.db'}", f"sqlite:///{tmp_path / 'theirs.db'}"
    mlflow.set_tracking_uri(theirs)  # an application embedding shelfcast chose its own store
    try:
        with pytest.raises(RuntimeError, match="boom"), fluent(mine):
            assert mlflow.get_tracking_uri() == mine
            raise RuntimeError("boom")
        assert mlflow.get_tracking_uri() == theirs and os.environ["MLFLOW_TRACKING_URI"] == theirs
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # unset, and MLFLOW_TRACKING_URI with it
