"""The system Chromium for the browser tests (Playwright cannot download its own browser on these machines)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it where it can
# No sandbox (the tests may run as root, in a container), no GPU, and nothing the browser would fetch for itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SKIP_REASON = "Chromium is not installed: `apt-get install chromium` (make test does it where it can)"


def chromium(where: Path = CHROMIUM) -> str:
    """The system Chromium's path; skips the test with the way to install it when there is none, except on CI
    (CI=true), where the browser tests must run and a missing browser fails them."""
    found = str(where) if where.exists() else shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SKIP_REASON}; on CI the browser tests must run")
        pytest.skip(SKIP_REASON)
    return found
