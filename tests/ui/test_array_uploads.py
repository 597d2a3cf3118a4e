"""The Train page with your arrays (.npz) and your images (.zip of class folders), through AppTest:
the upload is stored by content, what was found is shown, every malformed file is named in an error
that blocks Start, and a good one trains."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit as st

from core.data import uploads
from core.store.runs import FINISHED
from tests.data.array_files import blobs, image_zip, npz_bytes, png, tiny_images
from tests.ui.test_pages import app, shown


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


def page_with(dataset: str):
    at = app().run()
    at.selectbox(key="data.name").set_value(dataset).run()
    assert not at.exception
    return at


def upload(at, key: str, name: str, data: bytes):
    at.file_uploader(key=key).set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def errors(at) -> list[str]:
    return [shown(e) for e in at.error]


def test_an_npz_upload_is_stored_described_and_trains(tmp_path):
    from ui.state import get_trainer

    at = page_with("npz")
    assert any("Upload an .npz" in shown(i) for i in at.info)
    x, y = blobs(120)
    data = npz_bytes(x=x, y=y)
    upload(at, "npz_upload", "my arrays.npz", data)
    upload_id = uploads.content_id(data)
    assert at.session_state["data.upload"] == upload_id
    assert at.session_state["data.file_name"] == "my arrays.npz"
    assert uploads.path_of(upload_id, tmp_path / "runs" / "uploads", ".npz").read_bytes() == data
    assert any(
        shown(c) == "my arrays.npz: x 120 samples of shape (4,), labels of dtype int64." for c in at.caption
    )
    assert not errors(at)
    at.number_input(key="fit.max_epochs").set_value(3).run()
    assert not at.button(key="start").disabled
    at.button(key="start").click().run()
    run_id = at.query_params["run"]
    snap = get_trainer().wait(run_id, timeout=180)
    assert snap.status == FINISHED, snap.message
    assert snap.config.data.name == "npz" and snap.config.data.upload == upload_id


def test_an_npz_with_its_own_test_part_says_the_test_share_is_unused():
    x, y = blobs(60)
    at = page_with("npz")
    upload(
        at, "npz_upload", "split.npz", npz_bytes(x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    )
    captions = [shown(c) for c in at.caption]
    assert any("x_test 20 (your own test part)" in c for c in captions), captions
    assert any("the test share is unused" in c for c in captions)


def test_image_arrays_in_the_tabular_set_offer_the_switch():
    x, y = tiny_images(40)
    at = page_with("npz")
    upload(at, "npz_upload", "pics.npz", npz_bytes(x=x, y=y))
    assert any("x holds images (shape (40, 8, 8))" in e for e in errors(at))
    assert at.button(key="start").disabled
    at.button(key="array_fix.Use image arrays").click().run()
    assert at.session_state["data.name"] == "npz_images"
    assert not errors(at)
    assert any(
        shown(c) == "pics.npz: x 40 samples of shape (8, 8), labels of dtype int64." for c in at.caption
    )


X, Y = blobs(60)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"features": X, "y": Y}, "may hold only x and y"),
        ({"x": X, "y": Y[:50]}, "x has 60 samples but y has 50"),
        ({"x": X, "y": np.ones(60)}, "only one value"),
        ({"x": np.where(np.arange(60)[:, None] == 4, np.nan, X), "y": Y}, "NaN or infinite"),
        (
            {"x_train": X, "y_train": Y, "x_test": X[:5, :2], "y_test": Y[:5]},
            "x_test's samples have shape (2,)",
        ),
        ({"x": X[:4], "y": Y[:4]}, "only 4 samples"),
    ],
    ids=["wrong-keys", "ragged", "one-class", "nan", "test-shape", "too-few"],
)
def test_a_malformed_npz_is_named_and_blocks_start(arrays, message):
    at = page_with("npz")
    upload(at, "npz_upload", "bad.npz", npz_bytes(**arrays))
    assert any(e.startswith("bad.npz: ") and message in e for e in errors(at)), errors(at)
    assert at.button(key="start").disabled


def test_an_image_zip_is_stored_described_with_its_settings_and_trains():
    from ui.state import get_trainer

    at = page_with("images")
    assert any("one folder of images per class" in shown(i) for i in at.info)
    upload(at, "images_upload", "pets.zip", image_zip(n=60, top="pets/"))
    assert any(shown(c) == "pets.zip: 60 images in 2 class folders: cats 30, dogs 30." for c in at.caption)
    at.number_input(key="data.image_size").set_value(8).run()
    at.radio(key="data.color_mode").set_value("grayscale").run()
    at.selectbox(key="model.name").set_value("cnn").run()
    at.number_input(key="fit.max_epochs").set_value(2).run()
    assert not errors(at)
    at.button(key="start").click().run()
    snap = get_trainer().wait(at.query_params["run"], timeout=180)
    assert snap.status == FINISHED, snap.message
    d = snap.config.data
    assert (d.name, d.image_size, d.color_mode, d.file_name) == ("images", 8, "grayscale", "pets.zip")


PNG = png(tiny_images(2)[0][0])


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({f"cats/{i}.png": PNG for i in range(12)}, "only one class folder ('cats')"),
        ({"cats/a.txt": b"text", "dogs/1.png": PNG}, "'cats/a.txt' is not an image"),
        ({"cats/a.png": b"not a png", "dogs/1.png": PNG}, "'cats/a.png' is not an image"),
        ({"cats/1.png": PNG, "dogs/": b"", "owls/1.png": PNG}, "The class folder 'dogs' holds no images"),
        ({"../escape.png": PNG, "cats/1.png": PNG}, "'../escape.png' points outside its folder"),
        ({}, "holds no files"),
    ],
    ids=["one-class", "not-image-ext", "not-image-bytes", "empty-class", "outside", "empty"],
)
def test_a_malformed_image_zip_is_named_and_blocks_start(files, message):
    at = page_with("images")
    upload(at, "images_upload", "bad.zip", image_zip(files))
    assert any(e.startswith("bad.zip: ") and message in e for e in errors(at)), errors(at)
    assert at.button(key="start").disabled


def test_a_zip_that_is_not_one_and_a_csv_id_left_over_are_handled():
    at = page_with("images")
    upload(at, "images_upload", "fake.zip", b"PK not really")
    assert any("not a zip file" in e for e in errors(at))
    # The upload of another kind (a CSV, by its id) is not this set's file: the page asks for one.
    at = app().run()
    at.session_state["data.upload"] = uploads.store(b"a,b\n1,2\n", None, ".csv")
    at.selectbox(key="data.name").set_value("npz").run()
    assert any("Upload an .npz" in shown(i) for i in at.info)
    assert not at.exception


def test_a_task_that_does_not_fit_can_be_set_back():
    x, y = blobs(60)
    at = page_with("npz")
    upload(at, "npz_upload", "three.npz", npz_bytes(x=x, y=y))
    at.selectbox(key="data.task").set_value("binary").run()
    assert any("Binary classification needs exactly 2 classes" in e for e in errors(at))
    assert at.button(key="start").disabled
    at.selectbox(key="data.task").set_value(None).run()
    assert not errors(at)
    assert not at.button(key="start").disabled
