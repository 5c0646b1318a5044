"""The dashboard's entry script (`streamlit run`): the pages, the workspace in the sidebar, the fallback banner.

Settings come from the environment and `shelfcast.toml`, as for every other
command; `shelfcast dashboard -w DIR` passes the workspace as
SHELFCAST_WORKSPACE.
"""

from __future__ import annotations

import streamlit as st

from shelfcast.dashboard import PAGES, ui

st.set_page_config(page_title="shelfcast", page_icon=":material/storefront:", layout="wide")
pages = [
    st.Page(PAGES / "store.py", title="Store", icon=":material/storefront:", url_path="home", default=True),
    # The default page lives at `/` (and reserves `/home`); its hidden twin makes links to `/store?store=S001` work.
    st.Page(PAGES / "store.py", title="Store", url_path="store", visibility="hidden"),
    st.Page(PAGES / "item.py", title="Item", icon=":material/inventory_2:", url_path="item"),
    st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:", url_path="models"),
    st.Page(PAGES / "monitoring.py", title="Monitoring", icon=":material/monitoring:", url_path="monitoring"),
    st.Page(PAGES / "data.py", title="Data", icon=":material/database:", url_path="data"),
]
page = st.navigation(pages)
settings = ui.settings_or_stop()
ui.sidebar(settings)
ui.fallback_banner(settings)
page.run()
