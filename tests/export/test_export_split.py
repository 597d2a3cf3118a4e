"""Your own split, trained for real: the checkpoint is evaluated on exactly the rows the data names
as test, and the exported script (plain Keras) reads the parts the same way and repeats the run's
history epoch by epoch, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig
from core.data import datasets
from core.engine.fit_one import load_checkpoint
from core.export.script import export_script
from core.store.runs import FINISHED
from tests.export.test_export import (
    assert_same_run,
    constants,
    engine_summary,
    run_script,
    write_table_csv,
    write_text_csv,
)
from tests.keras_cache import HISTORY_FILE, LAUNCHER
from tests.uploads import upload, upload_path


def same_history(tmp_path, snap) -> None:
    history = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert {"loss", "val_loss"} <= set(history)
    assert history == {k: [r.logs[k] for r in snap.history] for k in history}


@pytest.mark.slow  # trains, then a fresh interpreter imports TensorFlow and trains again
def test_a_split_column_run_is_tested_on_the_named_rows_and_exports_the_same_run(trainer, tmp_path):
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv(write_table_csv(tmp_path / "base.csv", n=200))
    i = np.arange(len(df))
    df.insert(2, "Split", np.where(i % 4 == 0, "test", np.where(i % 9 == 0, "Validation", "train")))
    df.to_csv(tmp_path / "mine.csv", index=False)
    fields = upload(tmp_path / "mine.csv")
    cfg = RunConfig(
        name="own-split",
        data=DataConfig(name="csv", **fields, target_column="label", split_column="Split"),
        model=ModelConfig(name="mlp", units=16, depth=1),
        fit=FitConfig(max_epochs=12, learning_rate=0.02, validation_split=0.2),
        early_stopping=EarlyStoppingConfig(patience=3),
        checkpoint=CheckpointConfig(save_best_only=True),
    )
    snap = trainer.wait(trainer.start(cfg).id, timeout=600)
    assert snap.status == FINISHED, snap.message

    # The test rows, built here from the file alone: the rows marked test, scaled with the
    # statistics of the rows marked train (the validation rows are named, so none is drawn).
    cols = ["a", "b", "c", "d", "flag"]
    features = df[cols].to_numpy(np.float64)
    y = (df.label == "yes").to_numpy(np.float32)
    test_rows, train_rows = np.flatnonzero(i % 4 == 0), np.flatnonzero((i % 4 != 0) & (i % 9 != 0))
    scaler = StandardScaler().fit(features[train_rows])
    x_test = scaler.transform(features[test_rows]).astype(np.float32)
    model = load_checkpoint(snap.checkpoint_path)
    test = model.evaluate(x_test, y[test_rows], batch_size=32, verbose=0, return_dict=True)
    assert len(test_rows) == 50
    assert snap.test_metrics == {k: pytest.approx(v, abs=1e-7) for k, v in test.items()}

    # The exported script: the split column read the same way, the same history.
    src = export_script(cfg, data_path_hint=cfg.data.file_name)
    assert constants(src)["SPLIT_COLUMN"] == "Split" and "TEST_FRACTION" not in constants(src)
    (tmp_path / "exported.py").write_text(src)
    result = run_script(LAUNCHER, tmp_path, str(tmp_path / "exported.py"), str(upload_path(fields)))
    assert_same_run(result, engine_summary(snap))
    same_history(tmp_path, snap)


@pytest.mark.slow  # trains, then a fresh interpreter imports TensorFlow and trains again
def test_a_test_file_run_with_the_tutorials_padding_exports_the_same_run(trainer, tmp_path):
    write_text_csv(tmp_path / "all.csv", n=200)
    df = pd.read_csv(tmp_path / "all.csv")
    df.iloc[:150].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[150:].to_csv(tmp_path / "held out.csv", index=False)
    fields = upload(tmp_path / "train.csv")
    test_fields = upload(tmp_path / "held out.csv")
    cfg = RunConfig(
        name="test-file",
        data=DataConfig(
            name="text_csv",
            **fields,
            target_column="sentiment",
            text_column="review",
            test_upload=test_fields["upload"],
            test_file_name=test_fields["file_name"],
            num_words=300,
            maxlen=25,
            truncating="pre",
            padding="pre",
        ),
        model=ModelConfig(name="seed_conv1d"),
        fit=FitConfig(max_epochs=3, batch_size=16),
    )
    ds = datasets.load(cfg.data, validation_split=0.2, seed=cfg.fit.seed)
    assert len(ds.x_test) == 50 and (ds.x_test[:, 0] == 0).any()  # padded at the front
    snap = trainer.wait(trainer.start(cfg).id, timeout=600)
    assert snap.status == FINISHED, snap.message
    model = load_checkpoint(snap.checkpoint_path)
    test = model.evaluate(ds.x_test, ds.y_test, batch_size=16, verbose=0, return_dict=True)
    assert snap.test_metrics == {k: pytest.approx(v, abs=1e-7) for k, v in test.items()}

    src = export_script(cfg, data_path_hint=cfg.data.file_name)
    settings = constants(src)
    assert (settings["TEST_CSV_PATH"], settings["TRUNCATING"], settings["PADDING"]) == (
        "held out.csv",
        "pre",
        "pre",
    )
    # The script reads TEST_CSV_PATH from its working folder, where "held out.csv" is.
    (tmp_path / "exported.py").write_text(src)
    result = run_script(LAUNCHER, tmp_path, str(tmp_path / "exported.py"), str(upload_path(fields)))
    assert_same_run(result, engine_summary(snap))
    same_history(tmp_path, snap)


def split_cases(tmp_path) -> dict[str, RunConfig]:
    df = pd.read_csv(write_table_csv(tmp_path / "base.csv"))
    i = np.arange(len(df))
    df["part"] = np.where(i % 5 == 0, " Test", np.where(i % 11 == 0, "VAL", "train"))
    df.to_csv(tmp_path / "parts.csv", index=False)
    texts = pd.read_csv(write_text_csv(tmp_path / "texts.csv", n=160))
    texts["part"] = np.where(np.arange(len(texts)) % 4 == 0, "test", "train")
    texts.to_csv(tmp_path / "text_parts.csv", index=False)
    texts.iloc[:40].drop(columns="part").to_csv(tmp_path / "text_test.csv", index=False)
    text_test = upload(tmp_path / "text_test.csv")
    small = {"num_words": 200, "maxlen": 15}

    def cfg(model="mlp", val=0.2, **data):
        return RunConfig(
            data=DataConfig(**data), model=ModelConfig(name=model), fit=FitConfig(validation_split=val)
        )

    return {
        "csv-column": cfg(
            name="csv", **upload(tmp_path / "parts.csv"), target_column="label", split_column="part"
        ),
        "csv-column-capped": cfg(
            name="csv",
            **upload(tmp_path / "parts.csv"),
            target_column="label",
            split_column="part",
            max_samples=70,
        ),
        "text-column-mixed-padding": cfg(
            "seed_conv1d",
            name="text_csv",
            **upload(tmp_path / "text_parts.csv"),
            target_column="sentiment",
            text_column="review",
            split_column="part",
            truncating="pre",
            padding="post",
            **small,
        ),
        "text-file-no-validation": cfg(
            "seed_conv1d",
            val=0.0,
            name="text_csv",
            **upload(tmp_path / "texts.csv"),
            target_column="sentiment",
            text_column="review",
            test_upload=text_test["upload"],
            test_file_name="text_test.csv",
            truncating="pre",
            padding="pre",
            **small,
        ),
        "text_sentiment-tutorial": cfg(
            "seed_conv1d", name="text_sentiment", max_samples=200, truncating="pre", padding="pre", **small
        ),
        "imdb-post": cfg("seed_conv1d", name="imdb", truncating="post", padding="post", **small),
    }


@pytest.mark.parametrize(
    "case",
    [
        "csv-column",
        "csv-column-capped",
        "text-column-mixed-padding",
        "text-file-no-validation",
        "text_sentiment-tutorial",
        "imdb-post",
    ],
)
def test_the_exported_script_reads_the_parts_and_pads_as_the_app_does(case, tmp_path, monkeypatch):
    from tests.export.test_export import assert_same_data, fake_keras_sets, load_script

    fake_keras_sets(monkeypatch)
    cfg = split_cases(tmp_path)[case]
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    monkeypatch.chdir(tmp_path)  # where TEST_CSV_PATH is
    module = load_script(export_script(cfg), tmp_path)
    data = module.load_data(str(upload_path(cfg.data.__dict__))) if cfg.data.upload else module.load_data()
    assert_same_data(ds, data)


def test_the_split_and_padding_scripts_lint_clean(tmp_path):
    from tests.export.test_export import ruff

    out = tmp_path / "scripts"
    out.mkdir()
    for name, cfg in split_cases(tmp_path).items():
        (out / f"{name.replace('-', '_')}.py").write_text(export_script(cfg))
    lint = ruff("check", "--select", "E,F", "--output-format", "concise", cwd=out)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = ruff("format", "--check", cwd=out)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
