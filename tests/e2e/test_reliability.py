"""The server under abuse: killed mid-run, and uploads over the limit."""

from __future__ import annotations

import re
import signal
import time

import pytest
from playwright.sync_api import Page, expect

from core.runs import RunStore
from tests.e2e.conftest import wait_connected

pytestmark = pytest.mark.e2e


def _train_page(page: Page, url: str) -> None:
    page.goto(f"{url}/Train")
    wait_connected(page)
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()


def test_kill_9_mid_run_then_restart_shows_it_interrupted_with_its_epochs(fresh_server, page: Page, tmp_path):
    _train_page(page, fresh_server.url)
    page.get_by_text("Use EarlyStopping", exact=True).click()
    wait_connected(page)
    for label, value in (("Max epochs", "300"), ("Batch size", "8")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        wait_connected(page)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)
    run_id = page.url.split("run=")[1][:32]
    history = fresh_server.runs_dir / run_id / "history.jsonl"
    deadline = time.monotonic() + 120
    while not history.exists() or history.read_text().count("\n") < 3:
        assert time.monotonic() < deadline, fresh_server.log_tail()
        page.wait_for_timeout(200)

    fresh_server.proc.send_signal(signal.SIGKILL)  # no clean-up of any kind
    fresh_server.proc.wait(timeout=30)
    fresh_server.start()  # a new server process on the same runs folder

    page.goto(f"{fresh_server.url}/Train?run={run_id}")
    wait_connected(page)
    expect(page.get_by_text(re.compile(r"· interrupted ·"))).to_be_visible(timeout=30_000)
    expect(
        page.get_by_text("The process training this run ended before it finished", exact=False)
    ).to_be_visible()
    snap = RunStore(fresh_server.runs_dir).load(run_id)
    assert snap.status == "interrupted" and len(snap.history) >= 3
    assert [r.epoch for r in snap.history] == list(range(1, len(snap.history) + 1))
    with page.expect_download() as download:
        page.get_by_role("button", name="Best checkpoint").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    import keras

    assert keras.models.load_model(path).count_params() > 0


@pytest.fixture
def small_upload_server(monkeypatch, request):
    """A fresh server whose upload limit is 1 MB (server.maxUploadSize, set through its environment)."""
    monkeypatch.setenv("STREAMLIT_SERVER_MAX_UPLOAD_SIZE", "1")
    return request.getfixturevalue("fresh_server")


def test_a_csv_over_the_upload_limit_is_refused_with_a_message(small_upload_server, page: Page, tmp_path):
    path = tmp_path / "big.csv"
    row = "1.0,2.0,3.0,0\n"
    path.write_text("a,b,c,y\n" + row * (2 * 2**20 // len(row)))  # about 2 MB
    _train_page(page, small_upload_server.url)
    page.get_by_label("Dataset", exact=True).click()
    page.get_by_role("option", name="Your CSV (table)").click()
    wait_connected(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(1).set_input_files(str(path))
    expect(page.get_by_text(re.compile(r"File must be 1(\.0)?\s?MB or smaller"))).to_be_visible(
        timeout=30_000
    )
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
