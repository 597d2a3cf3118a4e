"""Config: JSON round trip, and every problem validate() reports before training."""

from __future__ import annotations

import json

import pytest

from core.config import (
    CheckpointConfig,
    ConfigError,
    CsvFormat,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    ModelConfig,
    RunConfig,
    check,
    errors,
    load_stored,
)
from core.validate import validate


def messages(cfg: RunConfig, **kw) -> list[str]:
    return [p.message for p in validate(cfg, **kw)]


def problem(cfg: RunConfig, field: str, **kw):
    found = [p for p in validate(cfg, **kw) if p.field == field]
    assert found, f"no problem on {field}: {validate(cfg, **kw)}"
    return found[0]


def test_json_round_trip_keeps_every_field():
    cfg = RunConfig(
        name="x",
        data=DataConfig(
            name="csv", upload="0123456789abcdef" * 2, file_name="a.csv", target_column="y", task="binary",
            max_samples=100, csv=CsvFormat(skip_rows=2, header=False, delimiter="\t", decimal=","),
        ),
        model=ModelConfig(name="mlp", units=7, depth=3, dropout=0.25),
        fit=FitConfig(max_epochs=12, batch_size=5, optimizer="sgd", learning_rate=0.5, validation_split=0.1),
        early_stopping=EarlyStoppingConfig(
            monitor="val_accuracy", mode="max", patience=4, min_delta=1e-4, baseline=0.8,
            restore_best_weights=True, start_from_epoch=2,
        ),
        checkpoint=CheckpointConfig(
            format=".weights.h5", save_weights_only=True, initial_value_threshold=0.5,
        ),
    )  # fmt: skip
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_unknown_keys_and_bad_json_are_reported():
    with pytest.raises(
        ConfigError,
        match=r"early_stopping.patiense: is not a setting \(did you mean early_stopping.patience\?\)",
    ):
        RunConfig.from_dict({"early_stopping": {"patiense": 3}})
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{nope")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        RunConfig.from_json("[1, 2]")


def test_default_config_is_valid():
    assert validate(RunConfig()) == []


def test_val_monitor_without_validation_split():
    cfg = RunConfig(fit=FitConfig(validation_split=0.0))
    p = problem(cfg, "early_stopping.monitor")
    assert p.message == (
        "EarlyStopping monitors 'val_loss', but validation split is 0, so no val_ metric is logged. "
        "Raise the validation split."
    )
    assert problem(cfg, "checkpoint.monitor").severity == "error"
    cfg.early_stopping.monitor = cfg.checkpoint.monitor = "loss"
    assert errors(validate(cfg)) == []


def test_val_accuracy_on_a_regression_is_not_logged():
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(monitor="val_accuracy"))
    p = problem(cfg, "early_stopping.monitor", task="regression", input_kind="tabular")
    assert "this model logs only loss, mae, val_loss, val_mae" in p.message


def test_monitor_typo_lists_what_is_logged():
    cfg = RunConfig(checkpoint=CheckpointConfig(monitor="val_acc"))
    p = problem(cfg, "checkpoint.monitor")
    assert p.message == (
        "ModelCheckpoint monitors 'val_acc', but this model logs only loss, accuracy, val_loss, val_accuracy."
    )


def test_mode_auto_needs_a_known_direction(monkeypatch):
    from core import metrics

    # A logged metric with no declared direction, as a custom metric would be.
    monkeypatch.setitem(metrics.TASK_METRICS, "binary", ("accuracy", "hinge_score"))
    cfg = RunConfig(
        data=DataConfig(name="breast_cancer"), early_stopping=EarlyStoppingConfig(monitor="val_hinge_score")
    )
    p = problem(cfg, "early_stopping.mode")
    assert "Keras cannot tell whether 'val_hinge_score' should go up or down" in p.message
    cfg.early_stopping.mode = "max"
    assert not [p for p in validate(cfg) if p.field == "early_stopping.mode"]


def test_weights_only_with_full_model_format_and_the_reverse():
    cfg = RunConfig(checkpoint=CheckpointConfig(save_weights_only=True, format=".keras"))
    assert problem(cfg, "checkpoint.format").message.startswith(
        "Weights only needs the .weights.h5 format; .keras stores the whole model."
    )
    cfg = RunConfig(checkpoint=CheckpointConfig(save_weights_only=False, format=".weights.h5"))
    assert "turn weights only on, or pick .keras" in problem(cfg, "checkpoint.format").message
    cfg = RunConfig(checkpoint=CheckpointConfig(format=".pt"))
    assert problem(cfg, "checkpoint.format").message == (
        "checkpoint.format: must be one of '.keras', '.h5' or '.weights.h5'; got \".pt\"."
    )


def test_patience_not_below_max_epochs_is_a_warning():
    cfg = RunConfig(fit=FitConfig(max_epochs=10), early_stopping=EarlyStoppingConfig(patience=10))
    p = problem(cfg, "early_stopping.patience")
    assert p.severity == "warning"
    assert p.message == "Patience 10 is not below max epochs 10: early stopping can never trigger."
    assert errors(validate(cfg)) == []


def test_start_from_epoch_not_below_max_epochs():
    cfg = RunConfig(fit=FitConfig(max_epochs=5), early_stopping=EarlyStoppingConfig(start_from_epoch=5))
    assert "would never look at a single epoch" in problem(cfg, "early_stopping.start_from_epoch").message


def test_negative_and_huge_min_delta():
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(min_delta=-0.01))
    p = problem(cfg, "early_stopping.min_delta")
    assert (p.severity, p.message) == ("warning", "Keras uses |min_delta|, so -0.01 acts as 0.01.")
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(monitor="val_accuracy", min_delta=1.5))
    p = problem(cfg, "early_stopping.min_delta")
    assert p.severity == "error"
    assert "larger than accuracy can ever change" in p.message
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(min_delta=5e3))
    assert "is huge" in problem(cfg, "early_stopping.min_delta").message
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(min_delta=float("nan")))
    assert problem(cfg, "early_stopping.min_delta").message == (
        "early_stopping.min_delta: must be a finite number (JSON has no NaN or Infinity); got NaN."
    )


def test_unreachable_baseline():
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(monitor="val_accuracy", baseline=1.2))
    p = problem(cfg, "early_stopping.baseline")
    assert p.severity == "error"
    assert p.message.startswith("Accuracy can never beat the baseline 1.2")
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(monitor="val_loss", baseline=0.0))
    p = problem(cfg, "early_stopping.baseline")
    assert p.severity == "warning"
    assert "loss is never below 0" in p.message


def test_model_must_fit_the_data():
    cfg = RunConfig(model=ModelConfig(name="seed_conv1d"))
    p = problem(cfg, "model.name")
    assert p.message == (
        "The seed IMDB Conv1D takes sequence data; this dataset is tabular. Pick the MLP instead."
    )
    cfg = RunConfig(model=ModelConfig(name="transformer"))
    assert (
        "model.name: unknown model 'transformer'; choose one of mlp, cnn"
        in problem(cfg, "model.name").message
    )


@pytest.mark.parametrize(
    ("section", "field_name", "value", "text"),
    [
        ("fit", "max_epochs", 0, "fit.max_epochs: must be a whole number from 1 to 1,000,000 epochs; got 0."),
        ("fit", "batch_size", 0, "fit.batch_size: must be a whole number from 1 to 65,536 samples; got 0."),
        ("fit", "optimizer", "lbfgs", "fit.optimizer: must be one of 'adam', 'adamw', 'sgd', 'rmsprop'"),
        ("fit", "learning_rate", 0.0, "fit.learning_rate: must be a number above 0 and at most 10; got 0.0."),
        ("fit", "validation_split", 0.95, "fit.validation_split: must be a number from 0 to 0.8; got 0.95."),
        (
            "fit",
            "steps_per_execution",
            0,
            'fit.steps_per_execution: must be a whole number from 1 to 1,024 batches or "auto"; got 0.',
        ),
        (
            "fit",
            "steps_per_execution",
            "fast",
            'fit.steps_per_execution: must be a whole number from 1 to 1,024 batches or "auto"; got "fast".',
        ),
        (
            "early_stopping",
            "patience",
            -1,
            "early_stopping.patience: must be a whole number from 0 to 1,000,000",
        ),
        ("early_stopping", "mode", "down", "early_stopping.mode: must be one of 'auto', 'min' or 'max'"),
        ("early_stopping", "baseline", float("inf"), "early_stopping.baseline: must be a finite number"),
        ("model", "dropout", 1.0, "model.dropout: must be a number from 0 to 0.9; got 1.0."),
        ("data", "test_fraction", 0.0, "data.test_fraction: must be a number from 0.05 to 0.5; got 0.0."),
    ],
)
def test_impossible_values(section, field_name, value, text):
    cfg = RunConfig()
    setattr(getattr(cfg, section), field_name, value)
    found = messages(cfg)
    assert any(m.startswith(text) for m in found), found
    assert all(p.field == f"{section}.{field_name}" for p in validate(cfg))


def test_early_stopping_off_with_a_huge_cap_warns():
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(enabled=False))
    p = problem(cfg, "early_stopping.enabled")
    assert p.severity == "warning"
    assert "this run will train all 200,000 epochs" in p.message


def test_dataset_problems_are_reported_not_raised(tmp_path):
    cfg = RunConfig(data=DataConfig(name="csv", upload="0" * 32, target_column="y"))
    p = problem(cfg, "data")
    assert p.severity == "error"


def test_a_config_cannot_name_a_server_file():
    from core.config import parse_json

    config, problems = parse_json(b'{"data": {"name": "text_csv", "path": "/etc/passwd"}}')
    assert config is None and [p.field for p in problems] == ["data.path"]
    assert problems[0].message.startswith("data.path: a config cannot name a file on the server. Upload")
    assert "--data-file" in problems[0].message and "/etc/passwd" not in problems[0].message
    bad = {
        "upload": "../../etc/passwd", "file_name": "../secret.csv",
        "csv": {"skip_rows": -1, "header": "yes", "delimiter": ",,", "decimal": ";"},
    }  # fmt: skip
    config, problems = parse_json(json.dumps({"data": bad}))
    assert config is None
    assert [p.field for p in problems] == [
        "data.upload", "data.file_name", "data.csv.skip_rows", "data.csv.header", "data.csv.delimiter",
        "data.csv.decimal",
    ]  # fmt: skip
    assert problems[0].message.startswith("data.upload: must be an upload id: 32 lowercase hex digits")
    assert "without / or \\ or control characters" in problems[1].message
    for sneaky in ("0" * 32 + "\n", "0" * 33, "A" * 32):
        assert parse_json(json.dumps({"data": {"upload": sneaky}}))[0] is None


def test_stored_configs_of_earlier_versions_are_migrated_and_nothing_else():
    from core.config import load_stored, migrate_stored

    hex_id = "0123456789abcdef" * 2
    old = {
        "name": "r",
        "data": {"name": "csv", "path": f"/srv/runs/uploads/{hex_id}.csv", "target_column": "y"},
    }
    assert migrate_stored(old)["data"] == {"name": "csv", "upload": hex_id, "target_column": "y"}
    assert load_stored(json.dumps(old)).data == DataConfig(name="csv", upload=hex_id, target_column="y")
    for other in ("/etc/passwd", f"/srv/runs/uploads/{hex_id}.csv/../../x", f"/tmp/{hex_id}.csv"):
        with pytest.raises(ConfigError, match="data.path: a config cannot name a file on the server"):
            load_stored(json.dumps({"data": {"name": "csv", "path": other}}))


@pytest.mark.parametrize(
    "name", ["..", ".", "   ", "abc\u202egnp.csv", "a\u200bb.csv", "a\u2028b.csv", "a\u2066b.csv"]
)
def test_a_file_name_that_is_no_file_name_or_reorders_text_is_refused_by_name(name):
    from core.config import parse_json

    config, problems = parse_json(json.dumps({"data": {"name": "csv", "file_name": name}}))
    assert config is None and [p.field for p in problems] == ["data.file_name"], problems


def test_uploaded_file_names_are_cleaned_to_what_the_declaration_accepts():
    from core.config import DataConfig, parse_json
    from core.data.uploads import display_name

    assert display_name("abc\u202egnp.csv") == "abcgnp.csv"
    assert display_name("iris\u200b.csv") == "iris.csv"
    assert display_name("..") is None and display_name("/tmp/.") is None and display_name("a/ ") is None
    for raw in ("abc\u202egnp.csv", "x\\..\\iris.csv", "C:\\data\\wine\u2028.csv", "é.csv"):
        clean = display_name(raw)
        config, problems = parse_json(json.dumps({"data": {"name": "csv", "file_name": clean}}))
        assert problems == [] and config.data == DataConfig(name="csv", file_name=clean), raw


def test_steps_per_execution_takes_a_count_or_auto_and_old_configs_load_with_1():
    """Added after runs were stored: a config without it is the run it always was (1, Keras' default)."""
    from core.config import check, load_stored

    old = RunConfig().to_dict()
    del old["fit"]["steps_per_execution"]
    assert load_stored(json.dumps(old)).fit.steps_per_execution == 1
    for value in (1, 8, 1024, "auto"):
        cfg = RunConfig(fit=FitConfig(steps_per_execution=value))
        assert RunConfig.from_json(cfg.to_json()).fit.steps_per_execution == value
    for value in (1025, 2.0, True, "AUTO", None):
        data = RunConfig().to_dict()
        data["fit"]["steps_per_execution"] = value
        config, problems = check(data)
        assert config is None
        assert [p.field for p in problems] == ["fit.steps_per_execution"]  # one problem, not one per form
        assert '1 to 1,024 batches or "auto"' in problems[0].message


def test_the_backend_setting_defaults_to_tensorflow_for_configs_written_before_it():
    old = RunConfig().to_dict()
    del old["fit"]["backend"]
    assert RunConfig.from_dict(old).fit.backend == "tensorflow"  # trained as before
    assert load_stored(json.dumps(old)).fit.backend == "tensorflow"
    for backend in ("auto", "tensorflow", "jax"):
        data = RunConfig().to_dict()
        data["fit"]["backend"] = backend
        assert RunConfig.from_dict(data).fit.backend == backend


@pytest.mark.parametrize("value", ["torch", "JAX", "", 1, None, True])
def test_an_unknown_backend_is_refused_naming_the_field(value):
    data = RunConfig().to_dict()
    data["fit"]["backend"] = value
    config, problems = check(data)
    assert config is None
    [problem] = problems
    assert problem.field == "fit.backend"
    assert problem.message.startswith("fit.backend: must be one of 'auto', 'tensorflow' or 'jax'"), problem
