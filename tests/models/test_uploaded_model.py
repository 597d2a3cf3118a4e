"""Your model (.keras): every refusal with a real file, before training and while loading; a good
model trains with the app's callbacks from its own weights, repeatably, resumes, and exports.

Every file here is written by Keras itself (tests/models/keras_files.py), then renamed, trimmed or
repacked for the malformed cases.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import models
from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig
from core.data import datasets, uploads
from core.engine.fit_one import load_checkpoint
from core.export.script import export_script
from core.models.keras_file import ModelFileError, read_facts
from core.store.runs import FAILED, FINISHED, STOPPED
from core.validate import errors, validate
from tests.export.test_export import assert_same_run, engine_summary, run_script
from tests.keras_cache import HISTORY_FILE, LAUNCHER
from tests.models.keras_files import write_model


def stored(path: Path) -> dict[str, str]:
    """The ModelConfig fields naming ``path`` as an upload in the test's runs folder."""
    return {"upload": uploads.store(path.read_bytes(), None, ".keras"), "file_name": path.name}


def config(path: Path, data: str = "digits", *, compile: str = "form", **fit) -> RunConfig:
    return RunConfig(
        name="your-model",
        data=DataConfig(name=data),
        model=ModelConfig(name="uploaded", compile=compile, **stored(path)),
        fit=FitConfig(max_epochs=fit.pop("max_epochs", 40), learning_rate=0.01, **fit),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=3),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
    )


def refusals(cfg: RunConfig) -> list[str]:
    return [p.message for p in errors(validate(cfg)) if p.field.startswith("model")]


# ------------------------------------------------------------------------------------------------
# Files the app refuses before training, each with why and what to do.


def lambda_model(tmp: Path) -> Path:
    import keras

    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Lambda(lambda t: t * 2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp / "lambda.keras")
    return tmp / "lambda.keras"


def custom_layer_model(tmp: Path) -> Path:
    import keras

    @keras.saving.register_keras_serializable(package="MyLab")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2

    keras.Sequential([keras.Input((64,)), Twice(), keras.layers.Dense(10, activation="softmax")]).save(
        tmp / "custom.keras"
    )
    return tmp / "custom.keras"


def h5_renamed(tmp: Path) -> Path:
    import keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.save(tmp / "legacy.h5")
    (tmp / "legacy.h5").rename(tmp / "legacy.keras")
    return tmp / "legacy.keras"


def text_renamed(tmp: Path) -> Path:
    (tmp / "notes.keras").write_text("my model: 64 inputs, 10 outputs\n")
    return tmp / "notes.keras"


def empty_file(tmp: Path) -> Path:
    (tmp / "empty.keras").write_bytes(b"")
    return tmp / "empty.keras"


def zip_without_config(tmp: Path) -> Path:
    with zipfile.ZipFile(tmp / "other.keras", "w") as z:
        z.writestr("readme.txt", "not a model")
    return tmp / "other.keras"


def zip_bomb(tmp: Path) -> Path:
    good = write_model(tmp / "good.keras", (64,), "multiclass", 10)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["config.json"] = members["config.json"] + b" " * (40 * 2**20)  # 40 MB of spaces
    with zipfile.ZipFile(tmp / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return tmp / "bomb.keras"


def two_outputs(tmp: Path) -> Path:
    import keras

    i = keras.Input((64,))
    keras.Model(i, [keras.layers.Dense(10, activation="softmax")(i), keras.layers.Dense(1)(i)]).save(
        tmp / "two.keras"
    )
    return tmp / "two.keras"


def wrong_input(tmp: Path) -> Path:
    return write_model(tmp / "wine_shaped.keras", (13,), "multiclass", 10)


def wrong_output(tmp: Path) -> Path:
    return write_model(tmp / "three_classes.keras", (64,), "multiclass", 3)


def sigmoid_for_ten_classes(tmp: Path) -> Path:
    return write_model(tmp / "binary_head.keras", (64,), "binary", None)


REFUSED = [
    pytest.param(lambda_model, ["Lambda layer", "safe_mode refuses", "Rebuild the model without it",
                                "register_keras_serializable"], id="lambda"),
    pytest.param(custom_layer_model, ["'MyLab>Twice'", "not part of Keras", "only Keras' built-in layers"],
                 id="custom-layer"),
    pytest.param(h5_renamed, ["not a .keras file", "HDF5 file", 'save("model.keras")'], id="h5-renamed"),
    pytest.param(text_renamed, ["not a .keras file", "zip archive"], id="text-renamed"),
    pytest.param(empty_file, ["not a .keras file", "empty"], id="empty"),
    pytest.param(zip_without_config, ["no config.json"], id="zip-without-config"),
    pytest.param(zip_bomb, ["zip bomb"], id="zip-bomb"),
    pytest.param(two_outputs, ["2 outputs", "one output"], id="two-outputs"),
    pytest.param(wrong_input, ["samples of shape (13,)", "samples have shape (64,)",
                               "keras.Input(shape=(64,))"], id="wrong-input-shape"),
    pytest.param(wrong_output, ["output is 3 softmax units (shape (3,))", "10 classes",
                                "10 softmax units"], id="wrong-output"),
    pytest.param(sigmoid_for_ten_classes, ["1 sigmoid unit (shape (1,))", "10 classes", "10 softmax units"],
                 id="sigmoid-for-ten-classes"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "words"), REFUSED)
def test_a_file_that_cannot_train_here_is_refused_before_training_saying_why(make, words, tmp_path, trainer):
    cfg = config(make(tmp_path))
    [message] = refusals(cfg)
    assert message.startswith("model.upload")
    for word in words:
        assert word in message, message
    assert "Traceback" not in message
    with pytest.raises(Exception, match="model.upload"):
        trainer.start(cfg)  # the queue validates too
    assert trainer.store.ids() == []


def test_a_binary_task_needs_one_sigmoid_unit_with_the_forms_loss_and_two_may_do_with_its_own(tmp_path):
    two = write_model(
        tmp_path / "two.keras",
        (30,),
        "multiclass",
        2,
        compile_with=("adam", "sparse_categorical_crossentropy"),
    )
    [message] = refusals(config(two, "breast_cancer"))
    assert (
        "2 softmax units (shape (2,))" in message
        and '1 sigmoid unit (keras.layers.Dense(1, activation="sigmoid"))' in message
    )
    assert refusals(config(two, "breast_cancer", compile="own")) == []


def test_own_compile_settings_need_a_compiled_file(tmp_path):
    path = write_model(tmp_path / "plain.keras", (64,), "multiclass", 10)
    [problem] = [p for p in errors(validate(config(path, compile="own")))]
    assert problem.field == "model.compile"
    assert "saved without them" in problem.message and "use the form's optimizer and loss" in problem.message
    assert refusals(config(path)) == []


def test_no_file_yet_is_a_message(tmp_path):
    cfg = RunConfig(model=ModelConfig(name="uploaded"))
    assert refusals(cfg) == ["model.upload: upload a .keras model file (Your model needs one)."]


def test_the_declaration_refuses_a_path_or_a_bad_compile_choice():
    from core.config import check

    _, problems = check({"model": {"name": "uploaded", "upload": "../../etc/passwd"}})
    assert [p.field for p in problems] == ["model.upload"]
    assert "upload id" in problems[0].message
    _, problems = check({"model": {"name": "uploaded", "compile": "mine"}})
    assert [p.field for p in problems] == ["model.compile"]
    _, problems = check({"model": {"file_name": "a/b.keras"}})
    assert [p.field for p in problems] == ["model.file_name"]


def test_a_file_keras_cannot_load_fails_the_run_with_a_message(tmp_path, trainer):
    """Its config.json reads fine, but its weights belong to another model: only Keras can tell."""
    good = write_model(tmp_path / "good.keras", (64,), "multiclass", 10)
    other = write_model(tmp_path / "other.keras", (64,), "multiclass", 10, units=16)
    with zipfile.ZipFile(good) as a, zipfile.ZipFile(other) as b:
        members = {n: a.read(n) for n in a.namelist()}
        members["model.weights.h5"] = b.read("model.weights.h5")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    (tmp_path / "mixed.keras").write_bytes(buffer.getvalue())
    cfg = config(tmp_path / "mixed.keras", max_epochs=2)
    assert refusals(cfg) == []
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FAILED
    assert snap.message.startswith("Keras could not load the model file (")
    assert "safe_mode=True" in snap.message and "Traceback" not in snap.message


def test_the_facts_are_read_without_tensorflow(tmp_path):
    """The page's caption: read in a process that never imports TensorFlow or Keras."""
    import subprocess
    import sys

    path = write_model(tmp_path / "good.keras", (8, 8, 1), "multiclass", 10, compile_with=("sgd", "mse"))
    code = (
        "import sys, json\n"
        "from core.models.keras_file import read_facts\n"
        f"f = read_facts(open({str(path)!r}, 'rb').read())\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n"
        "print(json.dumps([f.input_shape, f.output_units, f.output_activation, f.params, f.layers,\n"
        "                  f.layer_classes, f.compiled]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import keras

    model = keras.saving.load_model(path)
    layers = ["Flatten", "Dense", "Dropout"]
    assert json.loads(out.stdout) == [[8, 8, 1], 10, "softmax", model.count_params(), 4, layers, True]


# ------------------------------------------------------------------------------------------------
# A good model trains, from its own weights, repeatably; its checkpoint is its best epoch.


def good_digits_model(tmp_path: Path) -> Path:
    return write_model(tmp_path / "my digits model.keras", (64,), "multiclass", 10, units=64)


def test_its_own_weights_are_the_starting_point(tmp_path):
    import keras

    path = good_digits_model(tmp_path)
    cfg = config(path)
    ds = datasets.load(cfg.data, validation_split=0.2, seed=cfg.fit.seed)
    built = models.build(ds, cfg.model, cfg.fit)
    saved = keras.saving.load_model(path)
    for a, b in zip(built.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert built.optimizer.__class__.__name__ == "Adam"
    assert models.estimate_params(cfg.model, (64,), "multiclass", 10) == built.count_params()


def test_a_good_model_trains_with_the_apps_callbacks_and_repeats_itself(tmp_path, trainer):
    cfg = config(good_digits_model(tmp_path))
    first, second = (trainer.wait(trainer.start(cfg).id, timeout=300) for _ in range(2))
    assert first.status == FINISHED and first.stop_reason == "early_stopping", first.message
    assert [r.logs for r in first.history] == [r.logs for r in second.history]  # same seed, same history
    assert first.test_metrics == second.test_metrics
    hist = first.history_frame()
    best = hist.loc[hist["val_loss"].idxmin()]
    assert first.best_epoch == first.checkpoint_epoch == int(best["epoch"]) < len(hist)

    # The checkpoint loads back and predicts as the best epoch did: that epoch's val_loss again.
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    model = load_checkpoint(first.checkpoint_path)
    val = model.evaluate(ds.x_val, ds.y_val, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert val["loss"] == pytest.approx(best["val_loss"], abs=1e-6)
    assert abs(val["loss"] - hist["val_loss"].iloc[-1]) > 1e-4
    assert model.predict(ds.x_test[:5], verbose=0).shape == (5, 10)


def test_a_stopped_run_resumes_and_ends_like_the_uninterrupted_one(tmp_path, trainer):
    cfg = config(good_digits_model(tmp_path))
    reference = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert reference.stopped_epoch >= 6, reference.message
    run = trainer.start(cfg)
    deadline = time.monotonic() + 120
    while run.snapshot().epoch < 3:
        assert time.monotonic() < deadline and run.snapshot().is_live, run.snapshot().message
        time.sleep(0.02)
    trainer.stop(run.id)
    assert trainer.wait(run.id).status == STOPPED
    trainer.resume(run.id)
    resumed = trainer.wait(run.id, timeout=300)
    assert resumed.status == FINISHED, resumed.message
    assert any("Resuming after epoch" in line for line in resumed.log_lines)
    assert [r.logs for r in resumed.history] == [r.logs for r in reference.history]
    assert resumed.test_metrics == reference.test_metrics


def test_own_compile_settings_train_and_the_exported_script_repeats_the_run(tmp_path, trainer):
    """The file's SGD and loss, not the form's Adam; the script loads MODEL_PATH the same way."""
    path = write_model(
        tmp_path / "compiled.keras", (64,), "multiclass", 10, units=32,
        compile_with=("sgd", "sparse_categorical_crossentropy"),
    )  # fmt: skip
    cfg = config(path, compile="own", max_epochs=4)
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED, snap.message
    form = trainer.wait(trainer.start(config(path, max_epochs=4)).id, timeout=300)
    assert [r.logs["loss"] for r in snap.history] != [r.logs["loss"] for r in form.history]

    src = export_script(cfg)
    assert 'MODEL_PATH = "compiled.keras"' in src
    assert "keras.saving.load_model(MODEL_PATH, safe_mode=True, compile=True)" in src
    assert "optimizer=model.optimizer" in src and "LEARNING_RATE" not in src
    script_dir = tmp_path / "script"
    script_dir.mkdir()
    (script_dir / "compiled.keras").write_bytes(path.read_bytes())  # beside the script, as MODEL_PATH says
    (script_dir / "run.py").write_text(src)
    result = run_script(LAUNCHER, script_dir, str(script_dir / "run.py"))
    assert_same_run(result, engine_summary(snap))
    history = json.loads((script_dir / HISTORY_FILE).read_text())
    assert history == {k: [r.logs[k] for r in snap.history] for k in history}


def test_a_bad_file_is_refused_by_read_facts_too(tmp_path):
    with pytest.raises(ModelFileError, match="Lambda layer"):
        read_facts(lambda_model(tmp_path).read_bytes())


def test_the_headless_command_takes_the_model_file(tmp_path, capsys):
    from core import __main__ as cli
    from core.store.runs import RunStore

    path = write_model(tmp_path / "cli model.keras", (64,), "multiclass", 10)
    cfg = RunConfig(name="cli", model=ModelConfig(name="uploaded"), fit=FitConfig(max_epochs=2))
    (tmp_path / "config.json").write_text(cfg.to_json())
    runs = tmp_path / "cli-runs"
    assert cli.main(["validate", str(tmp_path / "config.json"), "--runs-dir", str(runs)]) == 2
    assert "error: model.upload: upload a .keras model file" in capsys.readouterr().err
    assert (
        cli.main(["train", str(tmp_path / "config.json"), "--runs-dir", str(runs), "--model-file", str(path)])
        == 0
    )
    [run_id] = RunStore(runs).ids()
    snap = RunStore(runs).load(run_id)
    assert snap.status == FINISHED and len(snap.history) == 2
    assert (snap.config.model.upload, snap.config.model.file_name) == (
        uploads.content_id(path.read_bytes()),
        "cli model.keras",
    )


def _repacked(good: bytes, config: object) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buffer, "w") as out:
        for name in src.namelist():
            data = src.read(name)
            out.writestr(name, json.dumps(config).encode() if name == "config.json" else data)
    return buffer.getvalue()


def test_any_damage_to_config_json_is_a_message_never_a_crash(tmp_path):
    """Hypothesis replaces any value in a real model's config.json with arbitrary JSON."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as hs

    good = write_model(tmp_path / "good.keras", (8, 8, 1), "multiclass", 10).read_bytes()
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        original = json.loads(z.read("config.json"))
    paths: list[tuple] = []

    def collect(node, path=()):
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                collect(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                collect(v, (*path, i))

    collect(original)
    values = hs.recursive(
        hs.one_of(hs.none(), hs.booleans(), hs.integers(), hs.floats(), hs.text(max_size=8)),
        lambda inner: hs.one_of(
            hs.lists(inner, max_size=3), hs.dictionaries(hs.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=6,
    )

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(hs.sampled_from(paths), values)
    def check(path, value):
        config = json.loads(json.dumps(original))
        if not path:
            config = value
        else:
            node = config
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        try:
            facts = read_facts(_repacked(good, config))
        except ModelFileError as exc:
            assert str(exc) and "Traceback" not in str(exc)
        else:
            assert facts.params > 0

    check()


def test_a_loss_and_metric_given_as_keras_functions_are_keras_own(tmp_path):
    """Found by the audit: Keras saves loss=keras.losses.sparse_categorical_crossentropy as
    {"module": "builtins", "class_name": "function", ...}, which was refused as "not part of Keras"
    though Keras' safe_mode loads it (it looks the name up only among its own functions)."""
    import keras

    path = good_digits_model(tmp_path)
    model = keras.saving.load_model(path)
    model.compile(
        optimizer="adam",
        loss=keras.losses.sparse_categorical_crossentropy,
        metrics=[keras.metrics.sparse_categorical_accuracy],
    )
    model.save(tmp_path / "functions.keras")
    data = (tmp_path / "functions.keras").read_bytes()
    assert '"module": "builtins"' in zipfile.ZipFile(io.BytesIO(data)).read("config.json").decode()
    assert read_facts(data).compiled
    assert keras.saving.load_model(tmp_path / "functions.keras", safe_mode=True).loss is not None
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        custom = json.loads(z.read("config.json"))
    custom["compile_config"]["loss"]["config"] = "my_package>my_loss"  # a registered custom function
    with pytest.raises(ModelFileError, match="'my_package>my_loss', which is not part of Keras"):
        read_facts(_repacked(data, custom))


def test_a_password_protected_keras_file_is_refused(tmp_path):
    """Found by the audit: zipfile's RuntimeError ("password required") reached the page."""
    from tests.data.array_files import encrypted

    data = encrypted(good_digits_model(tmp_path).read_bytes())
    with pytest.raises(ModelFileError, match="is encrypted"):
        read_facts(data)


@pytest.mark.parametrize("damage", ["directory_moved", "needs_zip_version", "renamed_in_its_header"])
def test_a_damaged_archive_is_a_message_never_a_crash(tmp_path, damage):
    """Found by the audit: zipfile's ValueError (a seek before the start), NotImplementedError (a zip
    version it cannot unpack) and BadZipFile (a member's two names differ) reached the page."""
    from tests.data import array_files

    good = good_digits_model(tmp_path).read_bytes()
    if damage == "renamed_in_its_header":
        i = good.find(b"PK\x03\x04")  # the first member's local header: its name at offset 30
        data = good[: i + 30] + b"X" + good[i + 31 :]
    else:
        data = getattr(array_files, damage)(good)
    with pytest.raises(ModelFileError, match="damaged or packed in a way Python cannot unpack"):
        read_facts(data)


def test_the_weights_file_is_read_once_however_it_is_packed(tmp_path, monkeypatch):
    """Found by the audit: h5py seeking inside the zip member made zipfile re-read (re-inflate) it
    from its start on each backward seek: 11 s for a deflated 40 MB weights file, minutes for 200 MB."""
    good = write_model(tmp_path / "wide.keras", (64,), "multiclass", 10, units=512).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name in src.namelist():
            out.writestr(name, src.read(name))  # as a zip tool would repack it
    size = zipfile.ZipFile(io.BytesIO(good)).getinfo("model.weights.h5").file_size
    read = 0
    original = zipfile.ZipExtFile.read

    def counted(self, n=-1):
        nonlocal read
        data = original(self, n)
        if self.name == "model.weights.h5":
            read += len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counted)
    for data in (good, buffer.getvalue()):
        read = 0
        assert read_facts(data).params == 64 * 512 + 512 + 512 * 10 + 10
        assert read <= size  # read once, not once per seek


def test_a_model_taking_whole_numbers_is_refused_for_fractional_samples(tmp_path):
    """Found by the audit: a model whose Input is int32 (token ids, for an Embedding) was taken for
    digits' standardized features; Keras cut every value to a whole number (0.4 -> 0) and trained."""
    path = write_model(tmp_path / "token ids.keras", (64,), "multiclass", 10, vocab=20)
    cfg = config(path)
    assert any("takes int32 inputs (whole numbers, such as token ids)" in m for m in refusals(cfg))
    ds = datasets.load(cfg.data, validation_split=0.2, seed=cfg.fit.seed)
    with pytest.raises(ModelFileError, match="Keras would cut them to whole numbers"):
        models.build(ds, cfg.model, cfg.fit)  # the training process checks the loaded model too


def test_a_model_file_named_for_a_model_the_app_builds_is_said_not_used(tmp_path):
    """A config JSON with model.upload and the MLP: the file is not used, and the page says so."""
    cfg = config(good_digits_model(tmp_path))
    cfg.model.name = "mlp"
    problems = validate(cfg)
    assert {(p.field, p.severity) for p in problems if p.field.startswith("model.")} == {
        ("model.upload", "warning"),
        ("model.file_name", "warning"),
    }


@pytest.mark.parametrize("compile", ["form", "own"])
def test_an_uploaded_model_trains_in_groups_of_batches_with_the_same_numbers(tmp_path, trainer, compile):
    """steps_per_execution is the run's setting, also for a file compiled with its own optimizer and loss
    ("own" is recompiled with them and the run's count); the numbers are those of k=1, bit for bit."""
    path = write_model(
        tmp_path / "compiled.keras", (64,), "multiclass", 10, units=32,
        compile_with=("sgd", "sparse_categorical_crossentropy"),
    )  # fmt: skip
    grouped = config(path, compile=compile, max_epochs=3, steps_per_execution=4)
    ds = datasets.load(grouped.data, validation_split=0.2, seed=grouped.fit.seed)
    model = models.build(ds, grouped.model, grouped.fit, uploads_dir=None)
    assert model.steps_per_execution == 4
    if compile == "own":
        assert type(model.optimizer).__name__ == "SGD"
    snaps = [
        trainer.wait(trainer.start(c).id, timeout=300)
        for c in (grouped, config(path, compile=compile, max_epochs=3))
    ]
    assert all(s.status == FINISHED for s in snaps), [s.message for s in snaps]
    assert any("run 4 per step" in line for line in snaps[0].log_lines)
    assert [r.logs for r in snaps[0].history] == [r.logs for r in snaps[1].history]
    assert snaps[0].test_metrics == snaps[1].test_metrics
