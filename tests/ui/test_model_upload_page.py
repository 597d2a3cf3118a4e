"""Your model on the Train page (AppTest): the upload's facts, the compile choice, a file that does not
fit the data refused with both shapes before Start, and a run trained on the uploaded model.

AppTest cannot drive a file uploader, so the tests store the file as the uploader does
(``uploads.store`` by content id) and set the widgets' keys; tests/e2e/test_model_upload.py uploads
through a real browser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from core.data import uploads
from core.store.runs import FINISHED
from tests.models.keras_files import write_model
from tests.models.test_uploaded_model import REFUSED
from tests.ui.test_pages import app, shown, tick_until_done


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def with_model(path: Path, data: str = "digits"):
    """The Train page with ``path`` uploaded as Your model (stored where the page keeps uploads)."""
    at = app().run()
    at.session_state["data.name"] = data
    at.session_state["model.name"] = "uploaded"
    at.session_state["model.upload"] = uploads.store(path.read_bytes(), None, ".keras")
    at.session_state["model.file_name"] = path.name
    at.run()
    assert not at.exception, at.exception
    return at


def test_without_a_file_the_page_asks_for_one_and_start_waits():
    at = app().run()
    at.selectbox(key="model.name").set_value("uploaded").run()
    assert not at.exception
    assert any("Upload a Keras 3 model" in i.value for i in at.info)
    assert any("upload a .keras model file" in shown(e) for e in at.error)
    assert at.button(key="start").disabled
    assert not [n for n in at.number_input if n.key and n.key.startswith("model.")]  # no layer knobs


def test_the_upload_is_described_and_trains_with_the_forms_settings(tmp_path):
    import keras

    from ui.state import get_trainer

    path = write_model(tmp_path / "my model.keras", (64,), "multiclass", 10, units=16)
    at = with_model(path)
    expected = (
        "my model.keras: input (64,), output 10 softmax units, 1,210 parameters, 3 layers (Dense, "
        f"Dropout), not compiled, saved with Keras {keras.__version__}. Its saved weights are the "
        "starting point."
    )
    assert any(shown(c) == expected for c in at.caption), [shown(c) for c in at.caption]
    assert not at.error
    assert at.radio(key="model.compile").value == "form"
    # The file has no compile settings of its own: choosing them is refused, naming the field.
    at.radio(key="model.compile").set_value("own").run()
    assert any(shown(e).startswith("model.compile: 'own' trains with the optimizer") for e in at.error)
    assert at.button(key="start").disabled
    at.radio(key="model.compile").set_value("form").run()
    at.number_input(key="fit.max_epochs").set_value(3).run()
    assert not at.button(key="start").disabled
    at.button(key="start").click().run()
    run_id = at.query_params["run"]
    tick_until_done(at)
    snap = get_trainer().snapshot(run_id)
    assert snap.status == FINISHED, snap.message
    assert snap.config.model.name == "uploaded" and snap.config.model.file_name == "my model.keras"
    assert [r.epoch for r in snap.history] == [1, 2, 3]


def test_a_model_that_does_not_fit_the_data_names_both_shapes_before_start(tmp_path):
    path = write_model(tmp_path / "wine.keras", (13,), "multiclass", 3)
    at = with_model(path)
    messages = [shown(e) for e in at.error]
    assert any("samples of shape (13,)" in m and "samples have shape (64,)" in m for m in messages), messages
    assert any("output is 3 softmax units" in m and "10 classes" in m for m in messages), messages
    assert at.button(key="start").disabled
    at.selectbox(key="data.name").set_value("wine").run()  # the data it was made for
    assert not at.error and not at.button(key="start").disabled


def test_a_lambda_model_is_refused_with_why_and_what_to_do(tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Lambda(lambda t: t + 1),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp_path / "lambda <b>.keras")
    at = with_model(tmp_path / "lambda <b>.keras")
    messages = [shown(e) for e in at.error]
    assert any(m.startswith("lambda <b>.keras: The model has a Lambda layer") for m in messages), messages
    assert all("<b>" not in e.value for e in at.error)  # the file name is escaped text, never HTML
    assert at.button(key="start").disabled


@pytest.mark.parametrize(("make", "words"), REFUSED)
def test_every_refused_file_is_named_on_the_page_and_start_waits(make, words, tmp_path):
    """Each malformed or unfit file of tests/models/test_uploaded_model.py, on the page: the message
    saying why (and what to do) is shown as text, and Start is disabled."""
    at = with_model(make(tmp_path))
    messages = [shown(e) for e in at.error]
    hits = [m for m in messages if all(w in m for w in words)]
    assert hits, messages
    assert not any("Traceback" in m for m in messages)
    assert at.button(key="start").disabled
