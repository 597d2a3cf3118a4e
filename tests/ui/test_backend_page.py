"""The backend on the Train page: its widget, auto's measured pick per model, and thread mode's refusal."""

from __future__ import annotations

import pytest
import streamlit as st

from core import backends
from tests.ui.test_pages import app, shown, tick_until_done

pytestmark = pytest.mark.xdist_group("backend_page")


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_the_backend_widget_offers_the_declared_backends_and_says_why_auto_picks_one():
    at = app().run()
    radio = at.radio(key="fit.backend")
    assert list(radio.options) == ["auto", "TensorFlow", "JAX"]  # the declaration's values, labelled
    assert radio.value == "tensorflow"  # the presets, like every config written before the setting
    assert "measured default" in radio.help and "mlp: jax" in radio.help
    radio.set_value("auto").run()
    captions = [shown(c) for c in at.caption]
    mlp = backends.DEFAULTS["mlp"]
    assert mlp.backend == "jax"
    assert f"auto picks JAX for this model: {mlp.reason}." in captions, captions

    at.selectbox(key="preset_choice").set_value("seed_offline").run()
    at.button(key="load_preset").click().run()  # generated reviews, the tutorial's Conv1D
    assert at.radio(key="fit.backend").value == "tensorflow"
    at.radio(key="fit.backend").set_value("auto").run()
    captions = [shown(c) for c in at.caption]
    pick = backends.DEFAULTS["seed_conv1d"]
    assert any(c == f"auto picks TensorFlow for this model: {pick.reason}." for c in captions), captions


def test_thread_mode_refuses_another_backend_before_start(monkeypatch):
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")  # training in this (TensorFlow) process
    at = app().run()
    assert not at.button(key="start").disabled
    at.radio(key="fit.backend").set_value("jax").run()
    errors = [shown(e) for e in at.error]
    assert any(
        e.startswith("fit.backend: the run asks for jax, but this server trains in its own") for e in errors
    )
    assert at.button(key="start").disabled


@pytest.mark.slow
def test_a_jax_run_from_the_page_shows_its_backend_in_the_live_view():
    at = app().run()  # trains in a worker process (the default): the pool's JAX worker
    at.radio(key="fit.backend").set_value("jax")
    at.number_input(key="fit.max_epochs").set_value(3)
    at.run()
    at.button(key="start").click().run()
    at = tick_until_done(at, timeout=600)
    console = "\n".join(c.value for c in at.code)
    assert "Backend: jax (Keras 3.15.1)." in console

    from ui.state import get_trainer

    snap = get_trainer().snapshot(at.query_params["run"])
    assert snap.config.fit.backend == "jax" and snap.status == "finished", snap.message


@pytest.mark.slow
def test_choosing_jax_warms_a_jax_worker_before_start():
    """The JAX worker imports Keras while the user sets up the run, as the TensorFlow one does."""
    import time

    from core.engine.worker_process import shared_pool
    from ui import state

    pool = shared_pool()
    jax_worker = pool.workers().get("jax")
    if jax_worker is not None:  # an earlier test of this worker process trained on JAX
        jax_worker.close()
    with state._warm_up_lock:
        state._warm_up_started.discard("jax")
    at = app().run()
    assert "jax" not in pool.workers()
    at.radio(key="fit.backend").set_value("jax").run()
    deadline = time.monotonic() + 120
    while "jax" not in pool.workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    worker = pool.workers().get("jax")
    assert worker is not None, "choosing JAX started no JAX worker"
    while not worker.warmed and time.monotonic() < deadline:  # "ready" says what it did first
        time.sleep(0.1)
    assert worker.warmed.get("fitted"), worker.warmed
