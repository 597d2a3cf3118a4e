"""core.validate: what the declaration cannot know, checked before a single epoch is trained."""

from __future__ import annotations

import pytest

from core.config import (
    CheckpointConfig,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    ModelConfig,
    RunConfig,
    errors,
)
from core.validate import MAX_PARAMS_ENV, MAX_RUN_MEMORY_ENV, validate


def by_field(cfg: RunConfig, field: str):
    return [p for p in validate(cfg) if p.field == field]


@pytest.mark.parametrize("section", ["early_stopping", "checkpoint"])
@pytest.mark.parametrize(
    ("monitor", "mode", "fix"), [("val_accuracy", "min", "max"), ("val_loss", "max", "min")]
)
def test_a_mode_against_the_metrics_direction_is_a_warning_with_the_fix(section, monitor, mode, fix):
    cfg = RunConfig()
    getattr(cfg, section).monitor = monitor
    getattr(cfg, section).mode = mode
    [p] = by_field(cfg, f"{section}.mode")
    assert p.severity == "warning"
    assert f"with mode '{mode}'" in p.message and f"Set mode to '{fix}' (or auto)" in p.message
    assert "worst epoch" in p.message
    getattr(cfg, section).mode = fix
    assert by_field(cfg, f"{section}.mode") == []


def test_a_tiny_test_split_is_a_warning():
    cfg = RunConfig(data=DataConfig(name="wine", test_fraction=0.05))  # 178 wines: 9 test samples
    [p] = by_field(cfg, "data.test_fraction")
    assert p.severity == "warning"
    assert "about 9 samples" in p.message and "steps of 11%" in p.message
    assert by_field(RunConfig(data=DataConfig(name="digits")), "data.test_fraction") == []


def test_a_tiny_validation_split_is_a_warning():
    cfg = RunConfig(data=DataConfig(name="wine", test_fraction=0.2), fit=FitConfig(validation_split=0.1))
    [p] = by_field(cfg, "fit.validation_split")
    assert "about 15 samples" in p.message


def test_a_model_too_large_for_the_server_names_the_knob(monkeypatch):
    cfg = RunConfig(model=ModelConfig(units=4096, depth=32))
    problems = errors(validate(cfg))
    assert [p.field for p in problems] == ["model.units"]
    assert "needs an estimated 520," in problems[0].message  # 64*4096 + 31*4096^2 + ... parameters
    assert f"this server allows 50,000,000 ({MAX_PARAMS_ENV})" in problems[0].message
    assert "model.units = 4,096 is what makes it this large: lower it." in problems[0].message
    monkeypatch.setenv(MAX_PARAMS_ENV, "1000000000")
    monkeypatch.setenv(MAX_RUN_MEMORY_ENV, "100000")
    assert errors(validate(cfg)) == []


def test_the_memory_limit_names_the_knob_too(monkeypatch):
    monkeypatch.setenv(MAX_RUN_MEMORY_ENV, "64")
    data = DataConfig(name="text_sentiment", maxlen=10_000)
    cfg = RunConfig(data=data, model=ModelConfig(name="seed_conv1d"), fit=FitConfig(batch_size=4096))
    [p] = errors(validate(cfg))
    assert p.field in ("fit.batch_size", "data.maxlen")
    assert f"({MAX_RUN_MEMORY_ENV})" in p.message and "GB of memory" in p.message


def test_a_bad_limit_setting_falls_back_to_the_default_and_tells_the_owner_once(monkeypatch, capsys):
    monkeypatch.setenv(MAX_PARAMS_ENV, "lots")
    cfg = RunConfig(model=ModelConfig(units=4096, depth=32))
    assert "allows 50,000,000" in errors(validate(cfg))[0].message
    validate(cfg)
    warned = capsys.readouterr().err
    assert warned.count(f"warning: {MAX_PARAMS_ENV}='lots' is not a whole number above 0") == 1
    assert "using the default 50,000,000" in warned


def test_the_issue_cases_are_refused_by_field_before_anything_else():
    cfg = RunConfig(model=ModelConfig(depth=1_000_000))
    assert [(p.field, p.severity) for p in validate(cfg)] == [("model.depth", "error")]
    cfg = RunConfig(fit=FitConfig(max_epochs=10**30))
    assert [p.field for p in validate(cfg)] == ["fit.max_epochs"]
    cfg = RunConfig(early_stopping=EarlyStoppingConfig(patience="5"), checkpoint=CheckpointConfig(mode=3))
    assert sorted(p.field for p in validate(cfg)) == ["checkpoint.mode", "early_stopping.patience"]


def test_unknown_dataset_names_the_field():
    [p] = validate(RunConfig(data=DataConfig(name="cifar")))
    assert p.field == "data.name" and "unknown dataset 'cifar'" in p.message
