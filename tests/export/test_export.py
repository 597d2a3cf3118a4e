"""The exported script: every combination renders lint-clean with exactly the run's settings, its
data and model are the engine's, it runs on its own, and it repeats the engine's run.

Reproduction tolerance. On this CPU build (TensorFlow 2.21 CPU kernels, Keras 3.15.1) the engine is
bit-exact run to run: the digits MLP below gave val_loss 0.20907944440841675 at best epoch 4 in two
engine runs in one process, in runs in two further processes and in the exported script, with
identical test metrics (the test asserts the engine-vs-engine agreement too). Same seed, same op
sequence and the same thread pools give the same reductions, so neither
``tf.config.experimental.enable_op_determinism()`` nor TF_DETERMINISTIC_OPS is needed on either
side. ``REPRO_TOL`` still allows a few dozen float32 ulps (float32 spacing near 0.2 is ~1.5e-8) so a
machine whose kernels pick a different blocking or thread split does not fail on the last bits,
while any real divergence (another split, scaler, layer order or seed call order) moves val_loss by
1e-3 or more and changes the epochs.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets.data as sklearn_data

from core import models
from core.config import (
    CHECKPOINT_FORMATS,
    OPTIMIZERS,
    CheckpointConfig,
    CsvFormat,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    ModelConfig,
    RunConfig,
)
from core.data import datasets
from core.data.sources.reviews import generate_reviews
from core.export.script import export_config_json, export_script, script_file_name
from core.store.runs import FINISHED
from tests.data.array_files import blobs, npz_bytes, tiny_images
from tests.subprocesses import pythonpath
from tests.uploads import upload, upload_path
from tests.warm_interpreter import run_python

REPRO_TOL = 1e-6  # see the module docstring: measured difference is 0.0

# --------------------------------------------------------------------------------------------
# Helpers.


def ruff_cmd() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe:
        return [exe]
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    pytest.skip("ruff is not installed")


def ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # --isolated: the user's defaults (line length 88), not this project's settings.
    return subprocess.run([*ruff_cmd(), *args, "--isolated", "."], cwd=cwd, capture_output=True, text=True)


def load_script(src: str, tmp_path: Path):
    """The exported script as a module (main() is not run on import)."""
    name = f"exported_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = pythonpath()  # no way to reach `core`; no JAX under TensorFlow
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def run_script(src: str, tmp_path: Path, *args: str, timeout: float = 600, fresh: bool = False) -> dict:
    """Runs the script as ``python script.py *args`` in tmp_path; the parsed RESULT line.

    In this test process's warm interpreter (tests/warm_interpreter.py: TensorFlow imported once, not
    per script), or in a fresh one with ``fresh=True`` or when the script chooses its backend."""
    path = tmp_path / "exported_run.py"
    path.write_text(src)
    proc = run_python([str(path), *args], cwd=tmp_path, env=script_env(), timeout=timeout, fresh=fresh)
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and results, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(results[-1].removeprefix("RESULT "))


@functools.lru_cache(maxsize=8)
def parsed(src: str) -> ast.Module:
    """The script's syntax tree, parsed once per script (the checks below read it many times)."""
    return ast.parse(src)


@functools.lru_cache(maxsize=8)
def calls(src: str) -> tuple[tuple[str, ast.Call], ...]:
    """(``.`` + the callee's source, the call) for every call in src, in tree order."""
    return tuple(
        (f".{ast.unparse(node.func)}", node) for node in ast.walk(parsed(src)) if isinstance(node, ast.Call)
    )


def keyword_literals(src: str, callee: str) -> list[dict]:
    """The keyword arguments of every call to ``[...].callee(...)`` in src: literals as values,
    anything else (a name, an expression) as its source text."""

    def value(node: ast.expr):
        try:
            return ast.literal_eval(node)
        except ValueError:
            return ast.unparse(node)

    return [
        {kw.arg: value(kw.value) for kw in node.keywords}
        for name, node in calls(src)
        if name.endswith(f".{callee}")
    ]


def constants(src: str) -> dict:
    """Module-level UPPER_CASE = literal assignments."""
    out = {}
    for node in parsed(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper():
                try:
                    out[name] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    return out


def write_table_csv(path: Path, n: int = 150, seed: int = 0) -> Path:
    """Numeric and boolean features; a string label that depends on two of them."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    df["flag"] = rng.random(n) < 0.5
    df["label"] = np.where(df.a + 0.5 * df.b + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    df.to_csv(path, index=False)
    return path


def write_text_csv(path: Path, n: int = 120) -> Path:
    texts, labels = generate_reviews(n)
    names = np.array(["neg", "pos"])[labels]
    pd.DataFrame({"id": range(n), "review": texts, "sentiment": names}).to_csv(path, index=False)
    return path


PAIRS = [
    (d, m)
    for d, spec in datasets.DATASETS.items()
    for m, mspec in models.MODELS.items()
    if spec.input_kind in mspec.input_kinds
]
# (dataset, model, task): CSV sets also with the task given instead of inferred.
COMBOS = [(d, m, None) for d, m in PAIRS] + [
    ("csv", "mlp", "binary"),
    ("csv", "mlp", "multiclass"),
    ("csv", "mlp", "regression"),
    ("text_csv", "seed_conv1d", "binary"),
    ("text_csv", "seed_conv1d", "multiclass"),
]


def base_config(dataset: str, model: str, task: str | None = None) -> RunConfig:
    regression = task == "regression"
    source = datasets.DATASETS[dataset].source
    uploaded = {"csv": ("0" * 32, "data.csv"), "images": ("0" * 32, "images.zip")}.get(source, (None, None))
    if source == "npz":  # an image .npz's shape (the CNN's layers) is read from the file itself
        x, y = tiny_images(40) if datasets.DATASETS[dataset].input_kind == "image" else blobs(40)
        fields = upload(npz_bytes(x=x, y=y), "data.npz", suffix=".npz")
        uploaded = (fields["upload"], fields["file_name"])
    return RunConfig(
        name=f"{dataset}-{model}",
        data=DataConfig(
            name=dataset,
            upload=uploaded[0],
            file_name=uploaded[1],
            target_column="label" if datasets.DATASETS[dataset].source == "csv" else None,
            text_column="review" if dataset == "text_csv" else None,
            task=task,
        ),
        model=ModelConfig(name=model),
        early_stopping=EarlyStoppingConfig(monitor="val_mae" if regression else "val_loss"),
        checkpoint=CheckpointConfig(monitor="val_mae" if regression else "val_loss"),
    )


def callback_variants(cfg: RunConfig):
    """ES on/off x checkpoint formats x restore_best_weights x baseline x start_from_epoch, and more."""
    for es_on, fmt in itertools.product((True, False), CHECKPOINT_FORMATS):
        ck = replace(cfg.checkpoint, format=fmt, save_weights_only=fmt == ".weights.h5")
        options = itertools.product((False, True), (None, 0.25), (0, 3)) if es_on else [(False, None, 0)]
        for restore, baseline, start in options:
            es = replace(
                cfg.early_stopping,
                enabled=es_on,
                restore_best_weights=restore,
                baseline=baseline,
                start_from_epoch=start,
                min_delta=1e-4 if restore else 0.0,
                mode="min" if baseline else "auto",
            )
            yield replace(cfg, early_stopping=es, checkpoint=ck)
    # Checkpoint off, keeping the last model, a threshold, no validation part, every optimizer.
    yield replace(cfg, checkpoint=replace(cfg.checkpoint, enabled=False))
    yield replace(cfg, checkpoint=replace(cfg.checkpoint, save_best_only=False, initial_value_threshold=0.9))
    yield replace(
        cfg,
        fit=replace(cfg.fit, validation_split=0.0),
        early_stopping=replace(cfg.early_stopping, monitor="loss"),
        checkpoint=replace(cfg.checkpoint, monitor="loss"),
    )
    for i, opt in enumerate(OPTIMIZERS):
        model = replace(cfg.model, dropout=0.25 * (i % 2), depth=i % 4, units=16 + i)
        data = replace(cfg.data, max_samples=200 + i if i % 2 else None, num_words=800, maxlen=77)
        group = (1, 8, "auto")[i % 3]  # "auto" that never chose: the script compiles with 1
        fit = replace(cfg.fit, optimizer=opt, seed=i, learning_rate=3e-4, steps_per_execution=group)
        yield replace(cfg, model=model, data=data, fit=fit)


# --------------------------------------------------------------------------------------------
# Every combination renders, compiles, lints, and says exactly what the config says. (Fast.)


@pytest.mark.parametrize(("dataset", "model", "task"), COMBOS, ids=lambda v: str(v))
def test_every_combination_compiles_lints_and_matches_the_config(dataset, model, task, tmp_path):
    configs = list(callback_variants(base_config(dataset, model, task)))
    assert len(configs) >= 30
    for i, cfg in enumerate(configs):
        src = export_script(cfg)
        compile(src, f"variant_{i}.py", "exec")
        (tmp_path / f"variant_{i}.py").write_text(src)
        check_matches_config(src, cfg)
    lint = ruff("check", "--select", "E,F", "--output-format", "concise", cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = ruff("format", "--check", cwd=tmp_path)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def check_matches_config(src: str, cfg: RunConfig) -> None:
    tree = parsed(src)
    imported = [
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [m for m in imported if m == "core" or m.startswith("core.")], imported

    const = constants(src)
    d, f, m = cfg.data, cfg.fit, cfg.model
    assert const["SEED"] == f.seed
    assert const["MAX_EPOCHS"] == f.max_epochs
    assert const["BATCH_SIZE"] == f.batch_size
    assert const["LEARNING_RATE"] == f.learning_rate
    assert const["VALIDATION_SPLIT"] == f.validation_split
    group = f.steps_per_execution if isinstance(f.steps_per_execution, int) else 1
    assert const.get("STEPS_PER_EXECUTION", 1) == group
    assert ("steps_per_execution=STEPS_PER_EXECUTION," in src) == (group != 1)
    assert const["MAX_SAMPLES"] == d.max_samples
    for knob in models.MODELS[m.name].knobs:
        assert const[knob.upper()] == getattr(m, knob)
    if datasets.DATASETS[d.name].input_kind == "sequence":
        assert (const["NUM_WORDS"], const["MAXLEN"]) == (d.num_words, d.maxlen)
    if datasets.DATASETS[d.name].source != "keras":
        assert const["TEST_FRACTION"] == d.test_fraction

    es = keyword_literals(src, "EarlyStopping")
    if cfg.early_stopping.enabled:
        e = cfg.early_stopping
        assert es == [
            {
                "monitor": e.monitor,
                "mode": e.mode,
                "patience": e.patience,
                "min_delta": e.min_delta,
                "baseline": e.baseline,
                "restore_best_weights": e.restore_best_weights,
                "start_from_epoch": e.start_from_epoch,
                "verbose": 1,
            }
        ]
    else:
        assert es == []
    ck = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "ModelCheckpoint"
    ]
    if cfg.checkpoint.enabled:
        c = cfg.checkpoint
        assert keyword_literals(src, "ModelCheckpoint") == [
            {
                "monitor": c.monitor,
                "mode": c.mode,
                "save_best_only": c.save_best_only,
                "save_weights_only": c.save_weights_only,
                "initial_value_threshold": c.initial_value_threshold,
                "verbose": 1,
            }
        ]
        assert ast.unparse(ck[0].args[0]) == "args.checkpoint"
        assert const["CHECKPOINT_PATH"].endswith(c.format)
        assert ("model.load_weights(args.checkpoint)" in src) == c.save_weights_only
        assert ("keras.models.load_model(args.checkpoint)" in src) == (not c.save_weights_only)
    else:
        assert ck == [] and "CHECKPOINT_PATH" not in const

    fit = keyword_literals(src, "model.fit")
    assert len(fit) == 1
    assert (fit[0]["epochs"], fit[0]["shuffle"], fit[0]["verbose"]) == ("MAX_EPOCHS", False, 2)
    # The batches are shuffled per (seed, epoch), as core/epoch_order.py does for the app's runs.
    batches = [node for name, node in calls(src) if name == ".epoch_batches"]
    assert [ast.unparse(a) for a in batches[0].args] == ["data.x_train", "data.y_train", "BATCH_SIZE", "SEED"]
    assert fit[0].get("validation_data") == ("(data.x_val, data.y_val)" if f.validation_split > 0 else None)
    optimizers = [node.func.attr for name, node in calls(src) if name.startswith(".keras.optimizers.")]
    assert [o.lower() for o in optimizers] == [f.optimizer]
    assert keyword_literals(src, optimizers[0]) == [{"learning_rate": "LEARNING_RATE"}]
    # The seed is set before the data is loaded and the model built, as core/training.py does.
    main = src[src.index("def main()") :]
    assert (
        main.index("keras.utils.set_random_seed(SEED)")
        < main.index("load_data(")
        < main.index("build_model(")
    )


def test_csv_paths_and_column_names_are_safe_literals(tmp_path):
    cfg = base_config("text_csv", "seed_conv1d")
    hint = "/srv/" + "very-long-directory-name/" * 5 + 'it\'s "data"\\.csv'
    cfg.data.text_column = 'the "review"'
    cfg.data.target_column = "label's\tcolumn"
    cfg.name = 'a """ tricky\\ name\x00 that is much longer than any docstring line should ever be, ok'
    src = export_script(cfg, data_path_hint=hint)
    const = constants(src)
    assert const["CSV_PATH"] == hint
    assert const["TEXT_COLUMN"] == cfg.data.text_column
    assert const["TARGET_COLUMN"] == cfg.data.target_column
    assert ast.get_docstring(ast.parse(src)).startswith("An Early Stopping Lab run")
    (tmp_path / "tricky.py").write_text(src)
    assert ruff("check", "--select", "E,F", cwd=tmp_path).returncode == 0
    assert ruff("format", "--check", cwd=tmp_path).returncode == 0


def test_data_path_hint_is_the_default_csv_path():
    cfg = base_config("csv", "mlp")
    assert constants(export_script(cfg))["CSV_PATH"] == "data.csv"  # the file's own name, not its upload id
    cfg.data.file_name = 'iris "2024".csv'
    assert constants(export_script(cfg))["CSV_PATH"] == 'iris "2024".csv'
    cfg.data.file_name = None
    assert constants(export_script(cfg))["CSV_PATH"] == "data.csv"
    assert constants(export_script(cfg, data_path_hint="my data.csv"))["CSV_PATH"] == "my data.csv"
    assert "CSV_PATH" not in constants(export_script(base_config("digits", "mlp"), data_path_hint="x.csv"))


def test_incompatible_or_unknown_choices_are_refused():
    with pytest.raises(ValueError, match="does not take"):
        export_script(base_config("digits", "cnn"))
    with pytest.raises(ValueError, match="dataset"):
        export_script(replace(base_config("digits", "mlp"), data=DataConfig(name="nope")))
    with pytest.raises(ValueError, match="model"):
        export_script(replace(base_config("digits", "mlp"), model=ModelConfig(name="nope")))


def test_exporting_does_not_import_tensorflow():
    """The Train page renders the script on demand: that must not pay for importing TensorFlow."""
    code = (
        "import sys\n"
        "from core.config import RunConfig\n"
        "from core.export.script import export_script\n"
        "export_script(RunConfig())\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported TF'\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_config_json_and_file_name():
    cfg = base_config("wine", "mlp")
    assert RunConfig.from_json(export_config_json(cfg)) == cfg
    assert script_file_name(replace(cfg, name="Digits MLP (fast)")) == "digits_mlp_fast.py"
    assert script_file_name(replace(cfg, name="2nd try")) == "train_2nd_try.py"
    assert script_file_name(replace(cfg, name="---")) == "train_run.py"
    assert script_file_name(replace(cfg, name="Ölmodell")) == "train_run.py"


# --------------------------------------------------------------------------------------------
# The script's data and model are the engine's (imported in-process, compared array by array).


def fake_keras_sets(monkeypatch) -> None:
    """Small stand-ins for keras.datasets (no download): both core and the script call them."""
    import keras

    rng = np.random.default_rng(3)

    def sequences(n):
        out = np.empty(n, dtype=object)
        out[:] = [list(rng.integers(1, 300, size=int(rng.integers(3, 40)))) for _ in range(n)]
        return out

    imdb = (sequences(160), rng.integers(0, 2, 160)), (sequences(90), rng.integers(0, 2, 90))
    images = {
        name: (
            (rng.integers(0, 256, (150, 28, 28), dtype=np.uint8), rng.integers(0, 10, 150).astype(np.uint8)),
            (rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 10, 40).astype(np.uint8)),
        )
        for name in ("mnist", "fashion_mnist")
    }
    monkeypatch.setattr(keras.datasets.imdb, "load_data", lambda num_words=None, **kw: imdb)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: images["mnist"])
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: images["fashion_mnist"])


DATA_CASES = [
    "digits",
    "digits-seed7-capped",
    "digits_images",
    "breast_cancer",
    "wine-no-validation",
    "overfit",
    "overfit-capped",
    "text_sentiment",
    "csv",
    "csv-semicolon-bom",
    "csv-regression",
    "csv-unstratifiable",
    "csv-ints-inferred",
    "csv-ints-as-regression",
    "csv-float-labels",
    "csv-sklearn-wine-raw",
    "csv-decimal-comma-no-header",
    "text_csv",
    "imdb",
    "imdb-capped",
    "mnist-capped",
    "fashion_mnist",
]


def data_cases(tmp: Path) -> dict[str, RunConfig]:
    """The configs of DATA_CASES, their CSV files written into tmp."""
    table = write_table_csv(tmp / "table.csv")
    semicolon = tmp / "semicolon.csv"
    df = pd.read_csv(table)
    df.to_csv(semicolon, sep=";", index=False, encoding="utf-8-sig")
    regression = tmp / "regression.csv"
    df.assign(label=df.a * 3 + df.c).to_csv(regression, index=False)
    lonely = tmp / "lonely.csv"  # one class with a single row: the app splits unstratified
    df.assign(label=["solo"] + list(df.label[1:])).to_csv(lonely, index=False)
    ints = tmp / "ints.csv"
    df.assign(label=np.arange(len(df)) % 4).to_csv(ints, index=False)
    floats = tmp / "floats.csv"
    df.assign(label=(np.arange(len(df)) % 3).astype(float)).to_csv(floats, index=False)
    texts = write_text_csv(tmp / "texts.csv")
    wine = Path(sklearn_data.__file__).parent / "wine_data.csv"  # a metadata line, no header row
    european = tmp / "european.csv"
    df.drop(columns=["flag"]).to_csv(european, sep=";", decimal=",", index=False, header=False)

    def cfg(model="mlp", seed=42, val=0.2, **data):
        return RunConfig(
            data=DataConfig(**data),
            model=ModelConfig(name=model),
            fit=FitConfig(seed=seed, validation_split=val),
        )

    text = {"num_words": 400, "maxlen": 30}
    cases = dict(
        [
            ("digits", cfg(name="digits")),
            ("digits-seed7-capped", cfg(name="digits", seed=7, val=0.3, max_samples=300, test_fraction=0.25)),
            ("digits_images", cfg("cnn", name="digits_images")),
            ("breast_cancer", cfg(name="breast_cancer", seed=3)),
            ("wine-no-validation", cfg(name="wine", val=0.0)),
            ("overfit", cfg(name="overfit")),
            ("overfit-capped", cfg(name="overfit", max_samples=100)),
            ("text_sentiment", cfg("seed_conv1d", name="text_sentiment", max_samples=300, **text)),
            ("csv", cfg(name="csv", **upload(table), target_column="label")),
            (
                "csv-semicolon-bom",
                cfg(name="csv", **upload(semicolon), target_column="label", max_samples=90),
            ),
            ("csv-regression", cfg(name="csv", **upload(regression), target_column="label")),
            ("csv-unstratifiable", cfg(name="csv", **upload(lonely), target_column="label")),
            ("csv-ints-inferred", cfg(name="csv", **upload(ints), target_column="label")),
            (
                "csv-ints-as-regression",
                cfg(name="csv", **upload(ints), target_column="label", task="regression"),
            ),
            ("csv-float-labels", cfg(name="csv", **upload(floats), target_column="label")),
            (
                "csv-sklearn-wine-raw",
                cfg(name="csv", **upload(wine), target_column="column 14", csv=CsvFormat(1, False)),
            ),
            (
                "csv-decimal-comma-no-header",
                cfg(
                    name="csv",
                    **upload(european),
                    target_column="column 5",
                    csv=CsvFormat(header=False, delimiter=";", decimal=","),
                ),
            ),
            (
                "text_csv",
                cfg(
                    "seed_conv1d",
                    name="text_csv",
                    **upload(texts),
                    target_column="sentiment",
                    text_column="review",
                    **text,
                ),
            ),
            ("imdb", cfg("seed_conv1d", name="imdb", **text)),
            ("imdb-capped", cfg("seed_conv1d", name="imdb", max_samples=100, **text)),
            ("mnist-capped", cfg(name="mnist", max_samples=120)),
            ("fashion_mnist", cfg("cnn", name="fashion_mnist", val=0.25)),
        ]
    )
    assert list(cases) == DATA_CASES
    return cases


@pytest.mark.parametrize("case", DATA_CASES)
def test_exported_data_is_the_engines(case, tmp_path, monkeypatch):
    fake_keras_sets(monkeypatch)
    cfg = data_cases(tmp_path)[case]
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    module = load_script(export_script(cfg), tmp_path)
    data = module.load_data(str(upload_path(cfg.data.__dict__))) if cfg.data.upload else module.load_data()
    assert_same_data(ds, data)
    if case == "csv-unstratifiable":
        assert "unstratified" in ds.description  # the fallback really was exercised


def assert_same_data(ds: datasets.Dataset, data) -> None:
    assert data.task == ds.task
    assert data.classes == ds.classes
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        ours, theirs = getattr(data, part), getattr(ds, part)
        if theirs is None:
            assert ours is None, part
            continue
        assert ours.dtype == theirs.dtype, part
        np.testing.assert_array_equal(ours, theirs, err_msg=part)


MODEL_CASES = [
    ("digits", "mlp", {"dropout": 0.3, "depth": 3, "units": 20}),
    ("digits", "mlp", {"depth": 0}),
    ("digits_images", "mlp", {}),
    ("digits_images", "cnn", {"dropout": 0.2, "filters": 4, "units": 16}),
    ("breast_cancer", "mlp", {"dropout": 0.1}),
    ("text_sentiment", "seed_conv1d", {}),
    ("csv", "mlp", {"dropout": 0.5}),  # inferred binary task: output layers chosen at run time
    ("csv-regression", "mlp", {}),
    ("csv-ints-inferred", "mlp", {}),
]


@pytest.mark.parametrize(("case", "model", "knobs"), MODEL_CASES, ids=lambda v: str(v))
def test_exported_model_is_the_engines_with_the_same_initial_weights(case, model, knobs, tmp_path):
    import keras

    base = data_cases(tmp_path).get(case) or RunConfig(data=DataConfig(name=case))
    if case == "text_sentiment":
        base.data.max_samples = 200
    cfg = replace(
        base,
        model=ModelConfig(name=model, **knobs),
        fit=replace(base.fit, optimizer="nadam", learning_rate=0.02),
    )
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    module = load_script(export_script(cfg), tmp_path)
    data = module.load_data(str(upload_path(cfg.data.__dict__))) if cfg.data.upload else module.load_data()

    keras.utils.set_random_seed(11)
    ours = module.build_model(data)
    keras.utils.set_random_seed(11)
    theirs = models.build(ds, cfg.model, cfg.fit)

    def layer_configs(m):
        return [
            (type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
            for layer in m.layers
        ]

    assert layer_configs(ours) == layer_configs(theirs)
    assert ours.name == theirs.name
    compiled = [m.get_compile_config() for m in (ours, theirs)]
    for c in compiled:
        del c["optimizer"]["config"]["name"]  # nadam vs nadam_1: only the name counter differs
    assert compiled[0] == compiled[1]
    assert len(ours.get_weights()) == len(theirs.get_weights())
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # same layers created in the same order: same seeds


# --------------------------------------------------------------------------------------------
# The script runs on its own, to its RESULT line (``run_script``: in a warm interpreter unless fresh=True).


@pytest.mark.slow
def test_digits_mlp_script_runs_with_weights_only_checkpoint(tmp_path):
    cfg = RunConfig(
        name="digits small",
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=32, depth=1),
        fit=FitConfig(max_epochs=8, learning_rate=0.01),
        early_stopping=EarlyStoppingConfig(patience=2, restore_best_weights=True, min_delta=1e-3),
        checkpoint=CheckpointConfig(format=".weights.h5", save_weights_only=True),
    )
    result = run_script(export_script(cfg), tmp_path)
    assert result["monitor"] == "val_loss"
    assert 1 <= result["best_epoch"] <= result["epochs_run"] <= 8
    assert set(result["test"]) == {"loss", "accuracy"} and result["test"]["accuracy"] > 0.8
    assert (tmp_path / "checkpoint.weights.h5").is_file()


@pytest.mark.slow
def test_digits_images_cnn_script_runs_two_epochs_without_early_stopping(tmp_path):
    cfg = RunConfig(
        name="cnn",
        data=DataConfig(name="digits_images"),
        model=ModelConfig(name="cnn", filters=8, units=32, dropout=0.2),
        fit=FitConfig(max_epochs=2),
        early_stopping=EarlyStoppingConfig(enabled=False),
        checkpoint=CheckpointConfig(format=".h5"),
    )
    result = run_script(export_script(cfg), tmp_path, "--checkpoint", "best.h5")
    assert result["epochs_run"] == 2 and result["stopped_epoch"] is None
    assert result["best_epoch"] in (1, 2)
    assert (tmp_path / "best.h5").is_file()


@pytest.mark.slow
def test_csv_script_reads_the_file_given_as_argument(tmp_path):
    data_file = write_table_csv(tmp_path / "mine.csv")
    cfg = RunConfig(
        name="csv",
        data=DataConfig(name="csv", upload="0" * 32, file_name="gone.csv", target_column="label"),
        model=ModelConfig(name="mlp", units=16, depth=1),
        fit=FitConfig(max_epochs=5, validation_split=0.0),
        early_stopping=EarlyStoppingConfig(monitor="loss", patience=1, start_from_epoch=1, baseline=5.0),
        checkpoint=CheckpointConfig(enabled=False),
    )
    src = export_script(cfg, data_path_hint="upload.csv")
    result = run_script(
        src, tmp_path, str(data_file), fresh=True
    )  # `python script.py FILE`, as a user runs it
    assert result["monitor"] == "loss" and result["epochs_run"] <= 5
    assert set(result["test"]) == {"loss", "accuracy"}
    assert not list(tmp_path.glob("checkpoint*"))


@pytest.mark.slow
def test_text_sentiment_conv1d_script_runs(tmp_path):
    cfg = RunConfig(
        name="reviews",
        data=DataConfig(name="text_sentiment", max_samples=200, maxlen=40, num_words=500),
        model=ModelConfig(name="seed_conv1d"),
        fit=FitConfig(max_epochs=2, batch_size=32),
        checkpoint=CheckpointConfig(save_best_only=False),
    )
    result = run_script(export_script(cfg), tmp_path)
    assert result["epochs_run"] == 2
    assert result["best_epoch"] in (1, 2)  # save_best_only off: EarlyStopping's best
    assert (tmp_path / "checkpoint.keras").is_file()


# --------------------------------------------------------------------------------------------
# The point of the export: the same run, engine and script.


def key_config() -> RunConfig:
    """The engine test's digits MLP (tests/test_training.py): stops early around epoch 7."""
    return RunConfig(
        name="digits-test",
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=128, depth=2),
        fit=FitConfig(max_epochs=200, learning_rate=0.01, batch_size=32),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=3),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
    )


def engine_summary(snap) -> dict:
    return {
        "best_epoch": snap.best_epoch,
        "best_value": snap.best_value,
        "stopped_epoch": snap.stopped_epoch,
        "epochs_run": len(snap.history),
        "test": snap.test_metrics,
    }


def assert_same_run(a: dict, b: dict) -> None:
    assert a["best_epoch"] == b["best_epoch"]
    assert a["stopped_epoch"] == b["stopped_epoch"]
    assert a["epochs_run"] == b["epochs_run"]
    assert a["best_value"] == pytest.approx(b["best_value"], abs=REPRO_TOL)
    assert set(a["test"]) == set(b["test"])
    for name, value in a["test"].items():
        assert value == pytest.approx(b["test"][name], abs=REPRO_TOL), name


@pytest.mark.slow
def test_script_reproduces_the_engine_run(trainer, tmp_path):
    cfg = key_config()
    snaps = [trainer.wait(trainer.start(cfg).id, timeout=600) for _ in range(2)]
    for snap in snaps:
        assert snap.status == FINISHED and snap.stop_reason == "early_stopping", snap.message
    first, second = (engine_summary(s) for s in snaps)
    assert_same_run(first, second)  # the engine is deterministic for a seed in the first place
    assert (
        np.abs(snaps[0].history_frame()["val_loss"] - snaps[1].history_frame()["val_loss"]).max() <= REPRO_TOL
    )

    # In a fresh interpreter: the proof that nothing of a test process's state makes the agreement.
    result = run_script(export_script(cfg), tmp_path, fresh=True)
    assert result["monitor"] == "val_loss"
    assert_same_run(result, first)
    assert first["best_epoch"] < first["epochs_run"]  # stopped early, after the best epoch


@pytest.mark.slow
@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(
            name="cnn-dropout",
            data=DataConfig(name="digits_images"),
            model=ModelConfig(name="cnn", dropout=0.3, filters=8, units=32),
            fit=FitConfig(max_epochs=4),
            checkpoint=CheckpointConfig(format=".h5"),
        ),
        RunConfig(
            name="reviews",
            data=DataConfig(name="text_sentiment", max_samples=300, maxlen=60),
            model=ModelConfig(name="seed_conv1d"),
            fit=FitConfig(max_epochs=3, batch_size=16),
            checkpoint=CheckpointConfig(format=".weights.h5", save_weights_only=True),
        ),
        RunConfig(
            name="csv-restore",
            data=DataConfig(name="csv", target_column="label"),
            model=ModelConfig(name="mlp", dropout=0.2),
            fit=FitConfig(max_epochs=40, optimizer="rmsprop", learning_rate=0.01),
            early_stopping=EarlyStoppingConfig(monitor="val_accuracy", patience=2, restore_best_weights=True),
            checkpoint=CheckpointConfig(enabled=False),
        ),
    ],
    ids=lambda c: c.name,
)
def test_script_reproduces_the_engine_with_dropout_text_and_csv(cfg, trainer, tmp_path):
    args = []
    if cfg.data.name == "csv":
        cfg = replace(cfg, data=replace(cfg.data, **upload(write_table_csv(tmp_path / "t.csv"))))
        args = [str(upload_path(cfg.data.__dict__))]  # the script's CSV_FILE argument
    snap = trainer.wait(trainer.start(cfg).id, timeout=600)
    assert snap.status == FINISHED, snap.message
    result = run_script(export_script(cfg), tmp_path, *args)
    assert_same_run(result, engine_summary(snap))


@pytest.mark.slow
@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(
            name="mlp-auto",
            data=DataConfig(name="digits"),
            model=ModelConfig(name="mlp", units=64, depth=2, dropout=0.2),
            fit=FitConfig(max_epochs=6, learning_rate=0.005, steps_per_execution="auto"),
            early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=2),
        ),
        RunConfig(
            name="reviews-k4",
            data=DataConfig(name="text_sentiment", max_samples=300, maxlen=60),
            model=ModelConfig(name="seed_conv1d"),
            fit=FitConfig(max_epochs=3, batch_size=16, steps_per_execution=4),
        ),
    ],
    ids=lambda c: c.name,
)
def test_script_passes_the_runs_steps_per_execution_and_repeats_it_exactly(cfg, trainer, tmp_path):
    """The script compiles with the count the run used ("auto": the one it chose, read from its log)
    and its numbers are the engine's to the last bit, not within a tolerance."""
    snap = trainer.wait(trainer.start(cfg).id, timeout=600)
    assert snap.status == FINISHED, snap.message
    k = snap.steps_per_execution
    assert k is not None and k > 1
    src = export_script(snap.config, steps_per_execution=k)
    assert constants(src)["STEPS_PER_EXECUTION"] == k
    assert "steps_per_execution=STEPS_PER_EXECUTION," in src
    result = run_script(src, tmp_path)
    engine = engine_summary(snap)
    for key in ("best_epoch", "best_value", "stopped_epoch", "epochs_run", "test"):
        assert result[key] == engine[key], key
