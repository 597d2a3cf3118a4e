"""A run whose stored config is damaged opens with the reason, and offers nothing made from a stand-in."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.engine.queue import Trainer
from core.presets import PRESETS
from core.store.runs import RunStore
from tests.engine.test_training import digits_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def damaged_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")
    trainer = Trainer(RunStore(runs), train_in="thread")
    run = trainer.start(digits_config(max_epochs=3))
    snap = trainer.wait(run.id, timeout=300)
    assert snap.status == "finished"
    trainer.store.close()
    bad = '{"fit": {"max_epochs": "lots"}}'
    (runs / run.id / "config.json").write_text(bad)
    with sqlite3.connect(runs / "runs.sqlite") as db:
        db.execute("UPDATE runs SET config = ? WHERE id = ?", (bad, run.id))
    st.cache_resource.clear()
    yield run.id
    st.cache_resource.clear()


def test_the_live_view_says_the_config_is_damaged_and_offers_no_config_or_script(damaged_run):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/1_Train.py")
    at.query_params["run"] = damaged_run
    at.run()
    assert not at.exception, at.exception
    shown = " ".join(str(e.value) for e in [*at.error, *at.warning, *at.success, *at.info, *at.caption])
    assert "damaged" in shown and "fit.max_epochs" in shown.replace("\\", "")
    assert "No config JSON or script: this run's stored config is damaged." in shown
    # A finished run whose config is damaged: the message is a warning, not a green success box.
    assert any("config.json is damaged" in w.value.replace("\\", "") for w in at.warning)
    assert not any("damaged" in s.value for s in at.success)
    keys = {b.key for b in at.get("download_button")}
    assert "dl_config" not in keys and "dl_script" not in keys
    assert "dl_checkpoint" in keys  # the checkpoint and history are the run's own, still offered


def test_the_what_if_page_warns_that_the_controls_start_from_defaults(damaged_run):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/4_What_if.py")
    at.query_params["run"] = damaged_run
    at.run()
    assert not at.exception, at.exception
    assert any("controls start from defaults" in w.value for w in at.warning)


def test_the_train_form_opened_from_a_damaged_runs_link_says_its_settings_are_the_defaults(damaged_run):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/1_Train.py")
    at.query_params["run"] = damaged_run
    at.run()
    assert not at.exception, at.exception
    side = [w.value for w in at.sidebar.warning]
    assert any(
        "stored config is damaged: the settings here are the defaults, not the run's" in w for w in side
    )
    assert any("fit.max_epochs" in t.value for t in at.sidebar.text)
    default = PRESETS["quick_digits"].make()
    assert at.sidebar.number_input(key="fit.max_epochs").value == default.fit.max_epochs
