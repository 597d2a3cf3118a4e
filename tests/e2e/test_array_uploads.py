"""Your arrays (.npz) and your images (.zip of class folders) in a real browser: upload, see what
was found, see a malformed file named, train, and get the exported script."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core.store.runs import RunStore
from tests.data.array_files import blobs, image_zip, npz_bytes, png, tiny_images
from tests.e2e.conftest import choose, run_id_of, set_number, wait_connected

pytestmark = pytest.mark.e2e


def _open_train(page: Page, url: str) -> None:
    page.goto(f"{url}/Train")
    wait_connected(page)
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()


def _upload(page: Page, path) -> None:
    """The data's uploader: the second on the page (the first takes a config JSON)."""
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(1).set_input_files(str(path))
    wait_connected(page)


def _train_to_the_end(page: Page, server) -> str:
    set_number(page, "Max epochs", 3)
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    start.click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)
    expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=180_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    return run_id_of(page.url)


def test_npz_upload_names_a_bad_file_then_trains_a_good_one(server, page: Page, tmp_path):
    x, y = blobs(120)
    bad = tmp_path / "ragged.npz"
    bad.write_bytes(npz_bytes(x=x, y=y[:100]))
    good = tmp_path / "my arrays.npz"
    good.write_bytes(npz_bytes(x=x, y=y))
    _open_train(page, server.url)
    choose(page, "Dataset", "Your arrays (.npz)")
    _upload(page, bad)
    expect(page.get_by_text("x has 120 samples but y has 100: they must match.").first).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    _upload(page, good)
    expect(page.get_by_text("x 120 samples of shape (4,), labels of dtype int64.")).to_be_visible()
    run_id = _train_to_the_end(page, server)
    cfg = RunStore(server.runs_dir).load(run_id).config
    assert (cfg.data.name, cfg.data.file_name) == ("npz", "my arrays.npz")
    expect(page.get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_be_visible()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Keras script").click()
    script = download.value.path().read_text()
    assert 'DATA_PATH = "my arrays.npz"' in script and "allow_pickle=False" in script


def test_image_zip_upload_names_a_bad_zip_then_trains_the_cnn(server, page: Page, tmp_path):
    one_class = tmp_path / "cats only.zip"
    one_class.write_bytes(image_zip({f"cats/{i}.png": png(tiny_images(1)[0][0]) for i in range(12)}))
    good = tmp_path / "pets.zip"
    good.write_bytes(image_zip(n=60, top="pets/"))
    _open_train(page, server.url)
    choose(page, "Dataset", "Your images (.zip of class folders)")
    _upload(page, one_class)
    expect(page.get_by_text("The zip has only one class folder ('cats')").first).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    _upload(page, good)
    expect(page.get_by_text("60 images in 2 class folders: cats 30, dogs 30.")).to_be_visible()
    set_number(page, "Image size (pixels)", 8)
    choose(page, "Model", "small CNN")
    run_id = _train_to_the_end(page, server)
    cfg = RunStore(server.runs_dir).load(run_id).config
    assert (cfg.data.name, cfg.data.image_size, cfg.model.name) == ("images", 8, "cnn")
    expect(page.get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_be_visible()
