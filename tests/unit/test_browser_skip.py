"""The browser tests' one skip rule: no Chromium skips them with the way to install it, except on CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import chromium


def test_a_missing_chromium_skips_with_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"`apt-get install chromium`"):
        chromium(tmp_path / "chromium")


def test_a_missing_chromium_fails_on_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="on CI the browser tests must run"):
        chromium(tmp_path / "chromium")


def test_chromium_is_found_at_its_path_or_on_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    installed = tmp_path / "bin" / "chromium"
    installed.parent.mkdir()
    installed.write_text("#!/bin/sh\n")
    installed.chmod(0o755)
    assert chromium(installed) == str(installed)
    monkeypatch.setenv("PATH", str(installed.parent))
    assert chromium(tmp_path / "nowhere") == str(installed)
