"""The typed, guarded boundary, seen through the pages (AppTest): one click one run, user text as text,
an honest summary, crafted run files."""

from __future__ import annotations

import pytest
import streamlit as st

from tests.test_pages import app


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    from ui.state import get_trainer

    trainer = get_trainer()
    for rid in trainer.store.ids():
        if trainer.snapshot(rid).is_live:
            trainer.stop(rid)
            trainer.wait(rid, timeout=120)
    st.cache_resource.clear()


# ------------------------------------------------------------------------------------------------
# One click, one run


def test_a_double_click_on_start_starts_one_run():
    """The second click of a double-click comes from the page as it was before the first one's rerun:
    the same widget states again (the browser has not redrawn the button yet)."""
    from ui.state import get_trainer

    at = app().run()
    at.number_input(key="fit.max_epochs").set_value(3).run()
    at.button(key="start").click()
    click = at._tree.get_widget_states()  # what the browser sends for a click on this page
    at.run()
    first = at.query_params["run"]
    at._run(widget_state=click)  # the second click, from the page not yet redrawn
    assert not at.exception
    at._run(widget_state=click)  # and a third
    assert get_trainer().store.ids() == [first]
    assert at.query_params["run"] == first
    # A deliberate click on the redrawn button is a new run, as before.
    [start] = [b for b in at.button if b.label == "Start training"]
    assert start.key != "start"
    start.click().run()
    assert len(get_trainer().store.ids()) == 2
