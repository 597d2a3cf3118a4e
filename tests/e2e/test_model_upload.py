"""Your model in a real browser: a .keras file uploaded through the Train page's uploader. A Lambda model
is refused with why and what to do (Start stays off); a good model is described, trains, and its run
names the upload by content id."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.data import uploads
from core.store.runs import FINISHED, RunStore
from tests.e2e.conftest import early_stopping_off, run_id_of, set_number, wait_connected
from tests.models.keras_files import write_model

pytestmark = pytest.mark.e2e


def _upload_model(page: Page, path) -> None:
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Model file (.keras)")
    uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    wait_connected(page)


def _choose_model(page: Page, label: str) -> None:
    """Opens the Model selectbox and picks ``label``; again if a redraw closed the list first (a busy
    machine redraws the sidebar while the click lands)."""
    option = page.get_by_role("option", name=label)
    for _ in range(3):
        page.get_by_label("Model", exact=True).click()
        try:
            option.wait_for(state="visible", timeout=5_000)
        except PlaywrightTimeout:
            wait_connected(page)
            continue
        option.click()
        break
    wait_connected(page)
    expect(page.get_by_label("Model", exact=True)).to_have_value(label)


def test_a_keras_upload_is_checked_described_and_trained(server, page: Page, tmp_path):
    import keras

    lam = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Lambda(lambda t: t * 2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    lam.save(tmp_path / "with_lambda.keras")
    good = write_model(tmp_path / "good.keras", (64,), "multiclass", 10, units=16)
    runs_before = RunStore(server.runs_dir).ids()

    page.goto(f"{server.url}/Train")
    wait_connected(page)
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    _choose_model(page, "Your model (.keras)")
    expect(page.get_by_text("Upload a Keras 3 model")).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()

    _upload_model(page, tmp_path / "with_lambda.keras")
    alerts = page.get_by_test_id("stAlert")
    expect(alerts.filter(has_text="with_lambda.keras: The model has a Lambda layer").first).to_be_visible()
    expect(alerts.filter(has_text="safe_mode refuses to load it").first).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert RunStore(server.runs_dir).ids() == runs_before

    _upload_model(page, good)
    expect(
        page.get_by_text(re.compile(r"good\.keras: input \(64,\), output 10 softmax units, 1,210 parameters"))
    ).to_be_visible()
    expect(page.get_by_text("the form's optimizer and loss")).to_be_visible()
    set_number(page, "Max epochs", 3)
    early_stopping_off(page)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)
    expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)

    snap = RunStore(server.runs_dir).load(run_id_of(page.url))
    assert snap.status == FINISHED, snap.message
    model = snap.config.model
    assert (model.name, model.file_name, model.compile) == ("uploaded", "good.keras", "form")
    assert model.upload == uploads.content_id(good.read_bytes())  # named by content, never a path
    assert (
        uploads.path_of(model.upload, server.runs_dir / "uploads", ".keras").read_bytes() == good.read_bytes()
    )
