"""Every registered dataset with every model that takes its input kind: the data loads with the
shapes describe() promised and the parameter estimate is the built model's count (every pair). The
engine trains two epochs and the exported script, run as ``python script.py`` (in the test process's
warm interpreter, tests/warm_interpreter.py), repeats the engine's run (the same RESULT and the same
history, epoch by epoch and metric by metric) for a covering set of pairs: every dataset with its first
model, and every model on the first dataset of each input kind it takes and on the first whose task is
inferred from a file. The full product (~50 pairs) cost four minutes of the suite (in fresh
interpreters) for no path the covering set leaves out.

The cases come from the registries when the tests are collected, so a new dataset or model is
covered without editing this file; a dataset this file cannot provide data for (a new source, or a
Keras set without a fake cache in tests/keras_cache.py) fails, saying so, rather than being skipped.
Everything is offline and small: 100 samples, two epochs, 8 units, 4 filters, 100 words of 20 tokens;
a model that comes from an uploaded file gets a small .keras file fitting each dataset (prepared_model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import models
from core.config import DataConfig, FitConfig, ModelConfig, RunConfig
from core.data import datasets, uploads
from core.export.script import export_script
from core.store.runs import FINISHED
from tests.data.array_files import blobs, image_zip, npz_bytes, tiny_images
from tests.data.test_datasets import accept_any_hash, keras_home  # noqa: F401 (fixtures, by name below)
from tests.export.test_export import (
    assert_same_run,
    engine_summary,
    run_script,
    write_table_csv,
    write_text_csv,
)
from tests.keras_cache import FAKE_KERAS_CACHES, HISTORY_FILE, LAUNCHER
from tests.models.keras_files import write_model
from tests.uploads import upload, upload_path

MAX_SAMPLES = 100  # the config's minimum is 20; 100 leaves every digit class in each part
EPOCHS = 2
TEXT = {"num_words": 100, "maxlen": 20}  # num_words: the config's minimum
KNOBS = {"units": 8, "depth": 1, "filters": 4, "dropout": 0.1}


def pairs() -> list[tuple[str, str | None]]:
    """(dataset, model) for every registered dataset and every model taking its input kind; a
    dataset no model takes is a pair of its own (model None) that fails."""
    out: list[tuple[str, str | None]] = []
    for name, spec in datasets.DATASETS.items():
        takers = [m for m, mspec in models.MODELS.items() if spec.input_kind in mspec.input_kinds]
        out += [(name, m) for m in takers] or [(name, None)]
    return out


def covering() -> list[tuple[str, str | None]]:
    """The pairs that are trained and exported: each dataset's first pair, and for each model the first
    dataset of every input kind it takes, and the first whose task is inferred from the file (the
    exported script then picks the loss itself), in registry order."""
    chosen: list[tuple[str, str | None]] = []
    seen: set[tuple] = set()
    for name, model in pairs():
        spec = datasets.DATASETS[name]
        for key in (
            ("dataset", name),
            ("kind", model, spec.input_kind),
            ("inferred task", model, spec.task is None),
        ):
            if key not in seen:
                seen.add(key)
                if (name, model) not in chosen:
                    chosen.append((name, model))
    return chosen


def cases(chosen: list[tuple[str, str | None]]) -> list:
    return [pytest.param(d, m, id=f"{d}-{m or 'no-model'}") for d, m in chosen]


def prepared_data(name: str, tmp_path: Path, request) -> tuple[DataConfig, list[str]]:
    """The DataConfig of the case, its data made available offline, and the exported script's
    command-line arguments (the CSV file for CSV sets)."""
    spec = datasets.DATASETS[name]
    text = TEXT if spec.input_kind == "sequence" else {}
    if spec.source in ("builtin", "synthetic"):
        return DataConfig(name=name, max_samples=MAX_SAMPLES, **text), []
    if spec.source == "keras":
        if name not in FAKE_KERAS_CACHES:
            pytest.fail(
                f"Keras dataset {name!r} has no fake cache: add a writer to FAKE_KERAS_CACHES in "
                "tests/keras_cache.py (it cannot be downloaded here)."
            )
        home = request.getfixturevalue("keras_home")  # this test's own, empty Keras home
        request.getfixturevalue("accept_any_hash")  # in this process; LAUNCHER does it in the script's
        FAKE_KERAS_CACHES[name](home / "datasets")
        return DataConfig(name=name, max_samples=MAX_SAMPLES, **text), []
    if spec.source == "csv" and spec.input_kind == "tabular":
        fields = upload(write_table_csv(tmp_path / "table.csv"))
        cfg = DataConfig(name=name, **fields, target_column="label", max_samples=MAX_SAMPLES)
        return cfg, [str(upload_path(fields))]
    if spec.source == "csv" and spec.input_kind == "sequence":
        fields = upload(write_text_csv(tmp_path / "texts.csv"))
        cfg = DataConfig(
            name=name,
            **fields,
            target_column="sentiment",
            text_column="review",
            max_samples=MAX_SAMPLES,
            **text,
        )
        return cfg, [str(upload_path(fields))]
    if spec.source == "npz" and spec.input_kind == "tabular":
        x, y = blobs(120)
        fields = upload(npz_bytes(x=x, y=y), "arrays.npz", suffix=".npz")
        cfg = DataConfig(name=name, **fields, max_samples=MAX_SAMPLES)
        return cfg, [str(upload_path(fields, suffix=".npz"))]
    if spec.source == "npz" and spec.input_kind == "image":  # with the file's own test part
        x, y = tiny_images(120)
        arrays = {"x_train": x[:90], "y_train": y[:90], "x_test": x[90:], "y_test": y[90:]}
        fields = upload(npz_bytes(**arrays), "images.npz", suffix=".npz")
        cfg = DataConfig(name=name, **fields, max_samples=MAX_SAMPLES)
        return cfg, [str(upload_path(fields, suffix=".npz"))]
    if spec.source == "images":
        fields = upload(image_zip(n=60, top="pets/"), "pets.zip", suffix=".zip")
        cfg = DataConfig(name=name, **fields, image_size=12, color_mode="rgb", max_samples=MAX_SAMPLES)
        return cfg, [str(upload_path(fields, suffix=".zip"))]
    pytest.fail(
        f"No test data for dataset {name!r} (source {spec.source!r}, input kind {spec.input_kind!r}): "
        "teach prepared_data() in tests/test_every_plugin.py to provide it."
    )


def prepared_model(name: str, data: DataConfig, tmp_path: Path) -> dict[str, str]:
    """The ModelConfig fields a model needs beyond its knobs: for a model that comes from an uploaded
    file, a real .keras file that fits the data (written by Keras beside the exported script, which
    loads it as MODEL_PATH), stored as an upload."""
    spec = models.MODELS[name]
    if spec.upload is None:
        return {}
    if spec.upload != ".keras":
        pytest.fail(
            f"No test file for model {name!r} ({spec.upload} uploads): teach prepared_model() to write one."
        )
    info = datasets.describe(data)
    vocab = data.num_words if info.input_kind == "sequence" else None
    path = write_model(tmp_path / "my_model.keras", info.input_shape, info.task, info.n_classes, vocab=vocab)
    return {"upload": uploads.store(path.read_bytes(), None, ".keras"), "file_name": path.name}


def assert_shapes_as_described(ds: datasets.Dataset, info: datasets.DatasetInfo, spec) -> None:
    assert (ds.task, ds.input_kind) == (info.task, info.input_kind)
    assert ds.input_kind == spec.input_kind
    if spec.task is not None:
        assert ds.task == spec.task
    assert tuple(ds.input_shape) == tuple(info.input_shape)
    if ds.task == "regression":
        assert info.n_classes is None and ds.classes == []
    else:
        assert len(ds.classes) == info.n_classes
    total = 0
    for part in ("train", "val", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        assert x is not None and y is not None, part  # validation_split 0.2: every part is there
        assert x.shape[1:] == tuple(info.input_shape), part
        assert y.shape == (len(x),), part
        if ds.task != "regression":
            assert set(np.unique(y).tolist()) <= set(range(info.n_classes)), part
        total += len(x)
    assert total == info.n_samples


@pytest.mark.parametrize(("dataset", "model"), cases(pairs()))
def test_dataset_with_model_loads_as_described_and_is_estimated_exactly(dataset, model, tmp_path, request):
    cfg = _config(dataset, model, tmp_path, request)[0]
    spec = datasets.DATASETS[dataset]
    info = datasets.describe(cfg.data)
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    assert_shapes_as_described(ds, info, spec)
    # The estimate (no TensorFlow, from describe()) is the built model's count.
    vocab = cfg.data.num_words if spec.input_kind == "sequence" else None
    estimate = models.estimate_params(cfg.model, info.input_shape, info.task, info.n_classes, vocab)
    assert estimate == models.build(ds, cfg.model, cfg.fit).count_params()


def test_the_covering_set_has_every_dataset_and_every_model_on_each_kind_it_takes():
    chosen = covering()
    assert {d for d, _ in chosen} == set(datasets.DATASETS)
    for name, mspec in models.MODELS.items():
        kinds = {datasets.DATASETS[d].input_kind for d, m in chosen if m == name}
        takes = {s.input_kind for s in datasets.DATASETS.values()} & set(mspec.input_kinds)
        assert kinds == takes, name


@pytest.mark.slow  # trains, then the exported script trains again: ~5 s a case
@pytest.mark.parametrize(("dataset", "model"), cases(covering()))
def test_dataset_with_model_trains_and_exports_the_same_run(dataset, model, trainer, tmp_path, request):
    cfg, script_args = _config(dataset, model, tmp_path, request)

    # The engine trains it.
    snap = trainer.wait(trainer.start(cfg).id, timeout=600)
    assert snap.status == FINISHED, snap.message
    assert [r.epoch for r in snap.history] == list(range(1, EPOCHS + 1))

    # The exported script repeats it: the same RESULT and, exactly, the same history.
    script = tmp_path / "exported_script.py"
    script.write_text(export_script(cfg, data_path_hint=cfg.data.file_name))
    result = run_script(LAUNCHER, tmp_path, str(script), *script_args)
    assert_same_run(result, engine_summary(snap))
    history = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert set(history) <= set(snap.history[0].logs), (sorted(history), sorted(snap.history[0].logs))
    assert {"loss", "val_loss"} <= set(history)
    engine = {k: [r.logs[k] for r in snap.history] for k in history}
    assert history == engine


def _config(dataset: str, model: str | None, tmp_path: Path, request) -> tuple[RunConfig, list[str]]:
    if model is None:
        pytest.fail(
            f"No registered model takes {dataset!r}'s input kind "
            f"{datasets.DATASETS[dataset].input_kind!r}; models: {', '.join(models.MODELS)}."
        )
    data, script_args = prepared_data(dataset, tmp_path, request)
    cfg = RunConfig(
        name=f"{dataset}-{model}",
        data=data,
        model=ModelConfig(name=model, **KNOBS, **prepared_model(model, data, tmp_path)),
        fit=FitConfig(max_epochs=EPOCHS),
    )
    return cfg, script_args
