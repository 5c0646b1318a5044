"""The Streamlit dashboard for store managers and the people who run the models (`shelfcast dashboard`).

An interface like the CLI and the service: it reads through the same
adapters (the prediction store, the registry, the lake, the monitoring
outputs, the online store) and holds no modelling logic. `app.py` is the
script Streamlit runs; each page is a file under `views/` (a folder named
`pages/` would be listed a second time by Streamlit); `reads.py` holds the
cached reads every page shares, `models_data.py`, `monitor_data.py` and
`lake_data.py` those of the operators' pages; `ui.py` the pieces every page
shows (guides, the fallback banner, the store and item pickers); `charts.py`
and `item_chart.py` the Altair charts.
"""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).with_name("app.py")
PAGES = Path(__file__).with_name("views")
