"""Runs the app did not train, in a real browser against a real server: a user's own script with
eslab.LabCallback (seen live, stopped from the page, its checkpoint downloaded), and an import."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core.store.runs import RunStore
from tests.e2e.conftest import ROOT, wait_connected

pytestmark = pytest.mark.e2e

SCRIPT = ROOT / "tests" / "recorded" / "user_script.py"


def _wait_for_run(runs: Path, proc: subprocess.Popen, epochs: int, timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        ids = RunStore(runs).ids() if (runs / "runs.sqlite").exists() else []
        if ids and len(RunStore(runs).load(ids[0]).history) >= epochs:
            return ids[0]
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"the script's run never reached {epochs} epochs")


def test_a_users_script_is_seen_live_stopped_from_the_page_and_its_checkpoint_downloads(
    fresh_server_no_worker, page: Page, tmp_path
):
    fresh_server = fresh_server_no_worker  # the user's script trains, not the app
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(fresh_server.runs_dir), str(tmp_path), "slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        run_id = _wait_for_run(fresh_server.runs_dir, proc, 2)
        page.goto(f"{fresh_server.url}/Train?run={run_id}")
        wait_connected(page)
        expect(page.get_by_text("my script run").first).to_be_visible(timeout=30_000)
        console = page.get_by_test_id("stCode").filter(has_text="val_loss improved from")
        expect(console).to_be_visible(timeout=30_000)
        # Live: an epoch the page had not seen when it opened appears in the console.
        seen = len(RunStore(fresh_server.runs_dir).load(run_id).history)
        expect(console).to_contain_text(f"Epoch {seen + 2}/400", timeout=60_000)
        expect(page.get_by_text(re.compile(r"Epoch \d+ \(max 400\) · batch \d+/19"))).to_be_visible()
        page.get_by_role("button", name="Stop", exact=True).click()
        asked = time.time()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    result = json.loads(
        next(line for line in out.splitlines() if line.startswith("RESULT ")).split(" ", 1)[1]
    )
    assert result["returned_at"] - asked < 5, "the fit did not end soon after Stop"
    assert result["epochs"] < 400
    expect(page.get_by_test_id("stAlert").filter(has_text="Stopped from the app after")).to_be_visible(
        timeout=30_000
    )
    button = page.get_by_role("button", name="Best checkpoint")
    with page.expect_download(timeout=30_000) as info:
        button.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.read_bytes() == (tmp_path / "best.keras").read_bytes()
    import keras

    assert keras.models.load_model(path, safe_mode=True).count_params() == 321


def test_a_history_json_imported_in_the_browser_shows_in_runs_and_what_if(
    fresh_server_no_worker, page: Page, tmp_path
):
    fresh_server = fresh_server_no_worker  # an import trains nothing
    val = [1.0 - 0.1 * i for i in range(6)] + [0.5 + 0.05 * i for i in range(1, 9)]
    history = {"loss": [1.0 / (i + 1) for i in range(14)], "val_loss": val}
    path = tmp_path / "my_history.json"
    path.write_text(json.dumps(history))
    page.goto(f"{fresh_server.url}/Runs")
    wait_connected(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    wait_connected(page)
    expect(page.get_by_text("Keras History (JSON): 14 epochs.")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Import").click()
    wait_connected(page)
    expect(
        page.get_by_test_id("stAlert").filter(has_text="Imported my_history.json (14 epochs)")
    ).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    run_id = RunStore(fresh_server.runs_dir).ids()[0]
    snap = RunStore(fresh_server.runs_dir).load(run_id)
    assert [r.logs["val_loss"] for r in snap.history] == val and snap.best_epoch == 6
    page.goto(f"{fresh_server.url}/What_if?run={run_id}")
    wait_connected(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("stops at", exact=False).first).to_be_visible(timeout=30_000)
