"""Fixtures the AppTest modules share."""

from __future__ import annotations

import pytest
import streamlit as st


@pytest.fixture
def thread_server(tmp_path, monkeypatch):
    """A fresh server state for one test: its own runs folder, runs trained in the test process
    (``ESLAB_TRAIN_IN=thread``: no training process to start), no trainer left from another test."""
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
