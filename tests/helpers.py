"""Small helpers for tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def write(path: Path, text: str | bytes) -> Path:
    """Write a fixture file (bytes kept exactly), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
