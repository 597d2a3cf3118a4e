"""The Train page's split choices for an uploaded CSV and the text padding choice, through AppTest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import streamlit as st

from tests.export.test_export import write_table_csv, write_text_csv
from tests.ui.test_pages import app, shown
from tests.uploads import upload


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def split_csv(tmp_path, parts) -> dict[str, str]:
    df = pd.read_csv(write_table_csv(tmp_path / "table.csv"))
    df.insert(0, "Part", parts(np.arange(len(df))))
    df.to_csv(tmp_path / "split.csv", index=False)
    return upload(tmp_path / "split.csv", uploads_dir=tmp_path / "runs" / "uploads")


def open_csv(fields: dict[str, str], name: str = "csv"):
    at = app()
    at.run()
    at.session_state["data.name"] = name
    at.session_state["data.upload"] = fields["upload"]
    at.session_state["data.file_name"] = fields["file_name"]
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_split_column_is_chosen_its_parts_counted_and_the_test_share_set_aside(tmp_path):
    fields = split_csv(tmp_path, lambda i: np.where(i % 5 == 0, "TEST", np.where(i % 7 == 0, "val", "train")))
    at = open_csv(fields)
    # A new file whose column already names train and test rows: offered as the split, the target
    # the last other column (both shown, to change).
    assert at.radio(key="csv_split_mode").value == "column"
    assert at.selectbox(key="data.split_column").value == "Part"
    assert at.selectbox(key="data.target_column").value == "label"
    at.radio(key="csv_split_mode").set_value("random").run()
    assert not at.slider(key="data.test_fraction").disabled
    at.radio(key="csv_split_mode").set_value("column").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="data.split_column").value == "Part"  # guessed by its name
    assert "label" not in at.selectbox(key="data.split_column").options  # the target is no split column
    assert any(shown(c) == "Part: train 103 rows, validation 17 rows, test 30 rows." for c in at.caption)
    assert at.slider(key="data.test_fraction").disabled
    assert any(c.value == "Not used: the split column names the test rows." for c in at.caption)
    # Named validation rows replace the validation share: said next to it.
    assert any("17 validation rows: they are the validation data" in shown(w) for w in at.warning)
    assert not at.button(key="start").disabled

    # Back to random: the column is no longer a setting.
    at.radio(key="csv_split_mode").set_value("random").run()
    assert at.session_state["data.split_column"] is None
    assert not at.slider(key="data.test_fraction").disabled


def test_an_unknown_part_is_refused_naming_the_value(tmp_path):
    fields = split_csv(tmp_path, lambda i: np.where(i % 5 == 0, "dev", "train"))
    at = open_csv(fields)
    at.radio(key="csv_split_mode").set_value("column").run()
    assert any("'dev' (30 rows, first on data row 1)" in shown(e) for e in at.error), [
        shown(e) for e in at.error
    ]
    assert at.button(key="start").disabled


def test_a_test_file_set_in_the_config_shows_its_rows(tmp_path):
    fields = upload(write_table_csv(tmp_path / "table.csv"), uploads_dir=tmp_path / "runs" / "uploads")
    test = upload(tmp_path / "table.csv", "held-out.csv", uploads_dir=tmp_path / "runs" / "uploads")
    at = open_csv(fields)
    at.session_state["data.test_upload"] = test["upload"]
    at.session_state["data.test_file_name"] = test["file_name"]
    at.run()
    assert at.radio(key="csv_split_mode").value == "file"
    assert any(shown(c) == "held-out.csv: 150 test rows, read like the training file." for c in at.caption)
    assert at.slider(key="data.test_fraction").disabled


def test_the_padding_choice_maps_to_truncating_and_padding(tmp_path):
    fields = upload(write_text_csv(tmp_path / "texts.csv"), uploads_dir=tmp_path / "runs" / "uploads")
    at = open_csv(fields, "text_csv")
    radio = at.radio(key="data_pad_way")
    assert radio.value == "post"  # today's way for texts: the first tokens, zeros at the end
    assert "pad at the front (as the tutorial / pad_sequences)" in radio.format_func("pre")
    radio.set_value("pre").run()
    assert (at.session_state["data.truncating"], at.session_state["data.padding"]) == ("pre", "pre")
    # The tutorial's preset pads like the tutorial.
    at.session_state["data.name"] = "text_sentiment"
    at.session_state["data.truncating"] = at.session_state["data.padding"] = None
    at.run()
    assert at.radio(key="data_pad_way").value == "post"
    at.session_state["data.name"] = "imdb"
    at.run()
    assert at.radio(key="data_pad_way").value == "pre"  # Keras' imdb is padded by pad_sequences


@pytest.mark.parametrize("preset", ["seed_imdb", "seed_offline"])
def test_the_seed_presets_pad_like_the_tutorial(preset):
    at = app().run()
    at.selectbox(key="preset_choice").set_value(preset).run()
    at.button(key="load_preset").click().run()
    assert not at.exception, at.exception
    assert at.radio(key="data_pad_way").value == "pre"
    assert (at.session_state["data.truncating"], at.session_state["data.padding"]) == ("pre", "pre")


def test_a_split_column_last_in_the_file_is_offered_as_the_split_not_as_the_target(tmp_path):
    """The target defaults to the last column; a last column saying train / test is the split."""
    df = pd.read_csv(write_table_csv(tmp_path / "table.csv"))
    df["subset"] = np.where(np.arange(len(df)) % 4 == 0, "test", "train")
    df.to_csv(tmp_path / "last.csv", index=False)
    at = open_csv(upload(tmp_path / "last.csv", uploads_dir=tmp_path / "runs" / "uploads"))
    assert at.radio(key="csv_split_mode").value == "column"
    assert at.selectbox(key="data.split_column").value == "subset"
    assert at.selectbox(key="data.target_column").value == "label"
    assert not at.error and not at.button(key="start").disabled
    # A column with any other value is not a split: the plain default stays.
    df["subset"] = np.where(np.arange(len(df)) % 4 == 0, "test", "holdout")
    df.to_csv(tmp_path / "other.csv", index=False)
    at = open_csv(upload(tmp_path / "other.csv", uploads_dir=tmp_path / "runs" / "uploads"))
    assert at.radio(key="csv_split_mode").value == "random"
    assert at.selectbox(key="data.target_column").value == "subset"
