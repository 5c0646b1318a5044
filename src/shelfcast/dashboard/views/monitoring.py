"""Monitoring: being built (issue 17)."""

from __future__ import annotations

import streamlit as st

st.title("Monitoring")
