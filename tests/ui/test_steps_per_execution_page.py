"""The Train page's "Batches per step" (fit.steps_per_execution): drawn from the declaration, says what it
does to Stop, and the run trains with what it shows."""

from __future__ import annotations

import re

import pytest
import streamlit as st

from core.config import limits
from tests.ui.test_pages import app, shown, tick_until_done
from ui.form import group_sizes


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    """Each test gets its own runs folder and its own process-wide trainer."""
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_the_choices_come_from_the_declaration_and_keep_any_count():
    b = limits("fit.steps_per_execution")
    choices = group_sizes()
    assert choices[0] == "auto"
    assert choices[1] == b.low == 1 and choices[-1] == b.high == 1024
    assert group_sizes(3) == ["auto", 1, 2, 3, 4, *choices[4:]]  # an imported 3 is shown as it is


def test_batches_per_step_says_what_stop_waits_for_and_the_run_uses_it():
    at = app().run()
    box = at.selectbox(key="fit.steps_per_execution")
    assert box.value == 1  # today's behaviour by default
    assert box.options[0].startswith("auto") and box.options[1] == "1" and box.options[-1] == "1024"
    assert "k times one batch's time" in unescaped(box.help)
    assert any("Stop ends training after the batch in flight" in shown(c) for c in at.caption)

    box.set_value(8).run()
    assert any("up to 8 batches" in shown(c) for c in at.caption)

    at.selectbox(key="fit.steps_per_execution").set_value("auto").run()
    assert any("under about 50 ms" in shown(c) for c in at.caption)
    at.number_input(key="fit.max_epochs").set_value(3)
    at.text_input(key="name").set_value("apptest-groups")
    at.run()
    assert not at.exception and not at.button(key="start").disabled
    at.button(key="start").click().run()
    run_id = at.query_params["run"]
    at = tick_until_done(at)
    console = "\n".join(c.value for c in at.code)
    assert "steps_per_execution auto: " in console

    from ui.state import get_trainer

    snap = get_trainer().snapshot(run_id)
    assert snap.config.fit.steps_per_execution == "auto"
    assert snap.steps_per_execution is not None and snap.steps_per_execution >= 1


def unescaped(text: str | None) -> str:
    """A help text as the browser shows it (ui.text.md escapes punctuation; see test_pages.shown)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text or "").replace("\u2060", "")
