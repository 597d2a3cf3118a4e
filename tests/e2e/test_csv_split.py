"""A CSV whose split column names each row's part, uploaded in a real browser: the page counts the
parts, sets the test share aside, and the run trains and tests on exactly those parts."""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from core.store.runs import RunStore
from tests.e2e.conftest import early_stopping_off, run_id_of, set_number, wait_connected

pytestmark = pytest.mark.e2e


def test_a_split_column_is_chosen_counted_and_trained_on(server, page: Page, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    y = np.where(x[:, 0] - x[:, 2] > 0, "up", "down")
    part = np.where(np.arange(200) % 4 == 0, "test", "train")
    path = tmp_path / "with-split.csv"
    lines = ["a,b,c,split,label"] + [
        f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{p},{t}" for r, p, t in zip(x, part, y, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")

    page.goto(f"{server.url}/Train")
    wait_connected(page)
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    page.get_by_label("Dataset", exact=True).click()
    page.get_by_role("option", name="Your CSV (table)").click()
    wait_connected(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(1).set_input_files(str(path))
    wait_connected(page)
    expect(page.get_by_text("with-split.csv: 200 rows, 5 columns")).to_be_visible()

    page.get_by_text("a column names each row's part", exact=True).click()
    wait_connected(page)
    expect(page.get_by_role("combobox", name="Split column")).to_have_value("split")
    expect(page.get_by_text("split: train 150 rows, test 50 rows.")).to_be_visible()
    expect(page.get_by_text("Not used: the split column names the test rows.")).to_be_visible()

    set_number(page, "Max epochs", 3)
    early_stopping_off(page)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)
    run_id = run_id_of(page.url)
    expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_be_visible()

    run = RunStore(server.runs_dir).load(run_id)
    assert (run.config.data.split_column, run.config.data.test_upload) == ("split", None)
    # 150 train rows give 120 train / 30 validation (the share drawn from them), and the 50 test rows.
    assert any(
        line.startswith("with-split.csv (target 'label'): 120 train / 30 val / 50 test, 3 features")
        for line in run.log_lines
    ), run.log_lines[:5]


def test_a_second_file_is_the_test_set(server, page: Page, tmp_path):
    rng = np.random.default_rng(2)
    header = "a,b,label"
    paths = {}
    for name, n in (("train-part.csv", 120), ("official-test.csv", 40)):
        x = rng.normal(size=(n, 2))
        rows = [f"{r[0]:.4f},{r[1]:.4f},{'up' if r[0] > r[1] else 'down'}" for r in x]
        paths[name] = tmp_path / name
        paths[name].write_text("\n".join([header, *rows]) + "\n")

    page.goto(f"{server.url}/Train")
    wait_connected(page)
    page.get_by_label("Dataset", exact=True).click()
    page.get_by_role("option", name="Your CSV (table)").click()
    wait_connected(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(1).set_input_files(str(paths["train-part.csv"]))
    wait_connected(page)
    expect(page.get_by_text("train-part.csv: 120 rows, 3 columns")).to_be_visible()
    page.get_by_text("a second file is the test set", exact=True).click()
    wait_connected(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(2).set_input_files(str(paths["official-test.csv"]))
    wait_connected(page)
    expect(page.get_by_text("official-test.csv: 40 test rows, read like the training file.")).to_be_visible()
    expect(page.get_by_text("Not used: the test file names the test rows.")).to_be_visible()

    set_number(page, "Max epochs", 2)
    early_stopping_off(page)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=60_000)
    run_id = run_id_of(page.url)
    expect(page.get_by_text("Epochs trained", exact=True)).to_be_visible(timeout=120_000)
    run = RunStore(server.runs_dir).load(run_id)
    assert run.config.data.test_file_name == "official-test.csv" and run.config.data.split_column is None
    assert any(
        line.startswith("train-part.csv (target 'label'): 96 train / 24 val / 40 test")
        for line in run.log_lines
    ), run.log_lines[:5]
