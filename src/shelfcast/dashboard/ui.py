"""What every page shows: the workspace in the sidebar, the fallback banner, guides for a half-built workspace,
and the store and item pickers that follow the URL's query parameters (`?store=S001&item=I0001`)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from pydantic import ValidationError

from shelfcast.dashboard import reads
from shelfcast.errors import ShelfcastError
from shelfcast.io.policy_log import read_state
from shelfcast.io.stores.day import ScoringDay
from shelfcast.settings import Settings

STORE_PARAM, ITEM_PARAM = "store", "item"


def settings_or_stop() -> Settings:
    """The settings from the environment and shelfcast.toml, or a clear error and nothing else on the page."""
    try:
        return Settings()
    except (ShelfcastError, ValidationError) as exc:
        st.error(f"shelfcast's settings are not valid: {exc}")
        st.stop()
        raise  # st.stop() raises; this line is for type checkers


def sidebar(settings: Settings) -> None:
    with st.sidebar:
        st.caption(f"Workspace `{settings.workspace}`")
        st.caption(f"Predictions: {settings.prediction_store}")


def fallback_banner(settings: Settings) -> None:
    """A banner on every page while the monitoring policy has a task in fallback (the rule baseline answers)."""
    for task, held in sorted(read_state(settings).fallback.items()):
        st.error(
            f"**{task} is in fallback** since {held.since}: {held.reason}. Its predictions come from the rule "
            "baseline until a healthy model is promoted (`shelfcast retrain`, or `shelfcast models promote`).",
            icon=":material/warning:",
        )


def guide(what: str, command: str) -> None:
    """A half-built workspace: what is missing and the command that makes it."""
    st.info(f"{what}: run `{command}`.", icon=":material/lightbulb:")


def problem(message: str) -> None:
    """A store or lake that cannot be read: the reason, on the page, never a traceback."""
    st.error(message, icon=":material/error:")


def pick(label: str, options: Sequence[str], *, param: str, key: str) -> str | None:
    """A searchable choice that starts at the URL's `param` and writes the choice back to the URL.

    An id in the URL that is not among `options` gets a clear message (and the first option is shown).
    """
    if not options:
        return None
    wanted = st.query_params.get(param)
    index = 0
    if wanted is not None:
        if wanted in options:
            index = list(options).index(wanted)
        else:
            st.warning(f"Unknown {label.lower()} `{wanted}` in the link: it is not in the latest scoring.")
    chosen = st.selectbox(label, options, index=index, key=key)
    if chosen is not None and st.query_params.get(param) != chosen:
        st.query_params[param] = chosen
    return chosen


def scoring_or_stop(settings: Settings) -> ScoringDay:
    """The prediction store's latest scoring day, or the reason there is none on the page and nothing else."""
    try:
        day = reads.scoring(settings)
    except reads.READ_ERRORS as exc:
        problem(f"Cannot read the prediction store: {exc}")
        st.stop()
        raise  # st.stop() raises; this line is for type checkers
    if day is None:
        guide("No predictions yet", "shelfcast score")
        st.stop()
        raise AssertionError("unreachable: st.stop() raises")
    return day


def stores_of(day: ScoringDay) -> list[str]:
    return list(day.series["store_id"].unique().sort().to_list())
