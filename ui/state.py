"""Process-wide and per-session state for the pages.

The trainer (queue, worker, store) is one per server process: ``st.cache_resource``. Which run a tab
is looking at lives in the URL (``?run=<id>``), so a reload or a shared link re-attaches to it.
"""

from __future__ import annotations

import streamlit as st

from core.runs import RunStore, is_run_id
from core.training import Trainer


@st.cache_resource(show_spinner=False)
def get_trainer() -> Trainer:
    return Trainer(RunStore())


def url_run_id() -> str | None:
    """The run in the URL, if it is a well-formed id of a run that exists."""
    rid = st.query_params.get("run")
    if rid and is_run_id(rid) and get_trainer().exists(rid):
        return rid
    return None


def open_run(run_id: str) -> None:
    st.query_params["run"] = run_id
