"""The Item page's explanation: the models package's contributions for one series, cached per champion and day."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from shelfcast.errors import DataValidationError, ModelNotFoundError, ShelfcastError
from shelfcast.settings import Settings


def explanation_or_reason(
    settings: Settings, store_id: str, item_id: str, *, scored_on: dt.date, version: str | None
) -> Any:
    """The series' explanation (see `shelfcast.jobs.explain`), or a sentence saying why there is none."""
    try:
        return _explain(settings, str(settings.workspace.resolve()), scored_on, version, store_id, item_id)
    except ModelNotFoundError as exc:
        return f"No stockout model to explain (the rule baseline answers): {exc}"
    except DataValidationError as exc:
        return f"Nothing to explain: {exc}"
    except ShelfcastError as exc:
        return f"The explanation could not be computed: {exc}"


@st.cache_data(max_entries=256, show_spinner="Explaining the risk...")
def _explain(
    _settings: Settings, workspace: str, day: dt.date, version: str | None, store_id: str, item_id: str
) -> Any:
    # The key: the workspace, the scoring day and the stockout model's version (a new champion explains anew).
    from shelfcast.jobs.explain import explain_series

    return explain_series(_settings, store_id, item_id)
