"""Every page's set-up: its browser title, and the navigation in the sidebar.

Streamlit names the home page after the entry file ("app" for ``app.py``) in the navigation it draws
for a ``pages/`` folder, and ``st.navigation`` cannot rename it while the folder is there (deep links
fall back to the folder's navigation: docs/keras-streamlit-facts.md). So the app hides Streamlit's
navigation (``client.showSidebarNavigation = false``) and draws its own with ``st.page_link``, the
same on every page and whichever page a link opened first.
"""

from __future__ import annotations

import streamlit as st

APP = "Early Stopping Lab"
ICON = ":material/timer:"

# (script, label, icon), in the order of the navigation.
PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/1_Train.py", "Train", ":material/play_arrow:"),
    ("pages/2_Runs.py", "Runs", ":material/list:"),
    ("pages/3_Compare.py", "Compare", ":material/compare_arrows:"),
    ("pages/4_What_if.py", "What if", ":material/alt_route:"),
    ("pages/5_Rule_benchmark.py", "Rule benchmark", ":material/leaderboard:"),
)


def page_setup(title: str | None = None) -> None:
    """The page's config (``title`` in the browser tab before the app's name) and the navigation."""
    st.set_page_config(page_title=f"{title} · {APP}" if title else APP, page_icon=ICON, layout="wide")
    with st.sidebar:
        for script, label, icon in PAGES:
            st.page_link(script, label=label, icon=icon)
        st.divider()
