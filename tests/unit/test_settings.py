from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import write
from pydantic import ValidationError

from shelfcast.settings import Settings, get_settings


def test_defaults() -> None:
    s = Settings()
    assert s.workspace == Path(".shelfcast")
    assert s.duplicates == "sum"
    assert s.lake_dir == Path(".shelfcast/lake")


def test_toml_then_env_then_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write(tmp_path / "shelfcast.toml", 'workspace = "from-toml"\nduplicates = "reject"\nmin_date = "2000-01-01"\n')
    assert Settings().workspace == Path("from-toml")
    monkeypatch.setenv("SHELFCAST_WORKSPACE", "from-env")
    assert Settings().workspace == Path("from-env")
    assert Settings().min_date == dt.date(2000, 1, 1)
    assert Settings(workspace=Path("from-arg")).workspace == Path("from-arg")


def test_config_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHELFCAST_CONFIG", str(write(tmp_path / "conf" / "x.toml", 'workspace = "elsewhere"\n')))
    get_settings.cache_clear()
    assert get_settings().workspace == Path("elsewhere")


@pytest.mark.parametrize(
    "content",
    ['duplicates = "maybe"\n', 'min_date = "2030-01-01"\nmax_date = "2020-01-01"\n', "unknown_key = 1\n"],
)
def test_bad_settings_are_rejected(tmp_path: Path, content: str) -> None:
    write(tmp_path / "shelfcast.toml", content)
    with pytest.raises(ValidationError):
        Settings()
