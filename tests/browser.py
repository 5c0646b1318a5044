"""The system Chromium for the browser tests (Playwright cannot download its own browser on these machines)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
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
# Streamlit's own end-to-end tests wait on these attributes of the app's root: `notRunning` is set only once a run
# has finished (`initial` before the first one), so it cannot be mistaken for "not started yet". Elements still
# loading (a dataframe's grid) show as skeletons; the status widget shows while a run is in progress; a chart is
# drawn once Vega has put its canvas (or SVG) in it (a chart in a tab not shown is drawn only when shown).
IDLE = """title => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app !== null
        && app.dataset.testConnectionState === 'CONNECTED'
        && app.dataset.testScriptState === 'notRunning'
        && document.querySelector('[data-testid="stStatusWidget"]') === null
        && document.querySelector('[data-testid="stSkeleton"]') === null
        && [...document.querySelectorAll('[data-testid="stMain"] h1')].some(h => h.textContent.trim() === title)
        && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
            .every(c => !c.checkVisibility() || c.querySelector('canvas, svg'));
}"""

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


def wait_healthy(url: str, process: subprocess.Popen[bytes], *, seconds: float, poll: float) -> str | None:
    """None once the dashboard at `url` answers `/_stcore/health` with ok; else why not (it exited, or time ran
    out), for the caller to raise its own way."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"shelfcast dashboard exited with {process.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
                if answer.read().decode().strip() == "ok":
                    return None
        except OSError:
            pass
        time.sleep(poll)
    return f"the dashboard did not answer /_stcore/health within {seconds:.0f} s"


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the dashboard and anything it started: it runs in its own process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
