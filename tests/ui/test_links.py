"""Query parameters are untrusted: malformed, huge or hostile links open nothing and break nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


HOSTILE = [
    "../../etc/passwd",
    "a" * 100_000,
    ",".join(["0123456789abcdef0123456789abcdef"] * 5000),
    "0123456789abcdef0123456789abcdef\n",
    "<img src=x onerror=alert(1)>",
    "![x](http://127.0.0.1:9/p.png)",
    "%00%2e%2e",
]


@pytest.mark.parametrize("page", ["pages/1_Train.py", "pages/3_Compare.py", "pages/4_What_if.py"])
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:20]))
def test_a_hostile_link_opens_nothing_and_raises_nothing(page, value):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(page)
    at.query_params["run"] = value
    at.query_params["runs"] = value
    at.run()
    assert not at.exception, at.exception
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.error, *at.warning, *at.info])
    assert "passwd" not in shown and "onerror" not in shown and "127.0.0.1:9" not in shown


def test_linked_run_ids_are_bounded_and_well_formed(monkeypatch):
    from ui import state

    good = [f"{i:032x}" for i in range(30)]
    monkeypatch.setattr(st, "query_params", {"runs": ",".join(["nope", good[0], good[0], *good[1:]])})
    ids = state.linked_run_ids("runs")
    assert ids == good[: state.MAX_LINKED_RUNS]
    monkeypatch.setattr(st, "query_params", {"runs": ["a list"]})
    assert state.linked_run_ids("runs") == []
