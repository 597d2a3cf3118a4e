"""The one config object a run is made from: collected by a page, validated, trained, stored, exported.

Every field is plain data (JSON round trip), so the UI, the headless command and the exported
script all consume the same thing. Defaults follow Keras' own where they are useful, and the seed
tutorial's where Keras' are not (a high epoch cap, so runs train "until it no longer improves").
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Literal

Mode = Literal["auto", "min", "max"]
CHECKPOINT_FORMATS = (".keras", ".h5", ".weights.h5")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad")


@dataclass
class DataConfig:
    """Which data, and how to read it (see core.datasets for the names)."""

    name: str = "digits"
    path: str | None = None  # CSV file for "csv" and "text_csv"
    target_column: str | None = None
    text_column: str | None = None  # "text_csv" only
    task: str | None = None  # None: inferred; else binary / multiclass / regression
    test_fraction: float = 0.2  # share held out for the final test (built-in splits excepted)
    max_samples: int | None = None  # cap on rows (synthetic size, or a subset of a big set)
    num_words: int = 5000  # text: vocabulary size, as in the seed
    maxlen: int = 400  # text: sequence length, as in the seed


@dataclass
class ModelConfig:
    """Which model preset and its knobs (see core.models)."""

    name: str = "mlp"
    units: int = 64  # MLP width
    depth: int = 2  # MLP hidden layers
    dropout: float = 0.0
    filters: int = 32  # CNN filters in its first block


@dataclass
class FitConfig:
    max_epochs: int = 200_000  # the seed's "train until it no longer improves"
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    validation_split: float = 0.2  # share of the training data held out for validation
    seed: int = 42


@dataclass
class EarlyStoppingConfig:
    """Every parameter of keras.callbacks.EarlyStopping (Keras 3)."""

    enabled: bool = True
    monitor: str = "val_loss"
    mode: Mode = "auto"
    patience: int = 10
    min_delta: float = 0.0
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: int = 0


@dataclass
class CheckpointConfig:
    """The parameters of keras.callbacks.ModelCheckpoint that decide what is kept."""

    enabled: bool = True
    monitor: str = "val_loss"
    mode: Mode = "auto"
    save_best_only: bool = True
    save_weights_only: bool = False
    format: str = ".keras"
    initial_value_threshold: float | None = None
    keep_every_epoch: bool = (
        False  # also keep each epoch's weights, so any replayed setting can be downloaded
    )


@dataclass
class RunConfig:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return _build(cls, data, "")

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"The config is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("The config must be a JSON object.")
        return cls.from_dict(data)


class ConfigError(ValueError):
    """A config that cannot even be read (unknown keys, wrong types)."""


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"Unknown setting(s) {', '.join(prefix + k for k in unknown)}.")
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for name, value in data.items():
        default = getattr(defaults, name)
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{name} must be an object.")
            kwargs[name] = _build(type(default), value, f"{prefix}{name}.")
        else:
            kwargs[name] = value
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Validation: everything we can tell before a single epoch is trained.


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config; ``field`` is the dotted setting it belongs to."""

    field: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return self.message


def validate(config: RunConfig, task: str | None = None, input_kind: str | None = None) -> list[Problem]:
    """Human-readable problems, errors first. ``task``/``input_kind`` come from the dataset.

    When they are not given they are looked up (cheap for built-ins, reads the CSV otherwise).
    """
    from core import datasets, metrics, models

    problems: list[Problem] = []
    add = problems.append
    d, m, f, es, ck = config.data, config.model, config.fit, config.early_stopping, config.checkpoint

    if task is None or input_kind is None:
        try:
            info = datasets.describe(d)
            task = task or info.task
            input_kind = input_kind or info.input_kind
        except datasets.DatasetError as exc:
            add(Problem("data", str(exc)))
    if d.task is not None and d.task not in metrics.TASKS:
        add(Problem("data.task", f"Task must be one of {', '.join(metrics.TASKS)}, not {d.task!r}."))
    if not 0.0 < d.test_fraction < 0.9:
        add(Problem("data.test_fraction", "The test share must be above 0 and below 0.9."))
    if d.max_samples is not None and d.max_samples < 20:
        add(Problem("data.max_samples", "Keep at least 20 samples."))
    if d.num_words < 10:
        add(Problem("data.num_words", "The vocabulary needs at least 10 words."))
    if d.maxlen < 1:
        add(Problem("data.maxlen", "The sequence length must be at least 1."))

    if m.name not in models.MODELS:
        add(Problem("model.name", f"Unknown model {m.name!r}; choose one of {', '.join(models.MODELS)}."))
    elif input_kind is not None and input_kind not in models.MODELS[m.name].input_kinds:
        spec = models.MODELS[m.name]
        add(
            Problem(
                "model.name",
                f"The {spec.label} takes {' or '.join(spec.input_kinds)} data; "
                f"this dataset is {input_kind}. Pick {models.suggest(input_kind)} instead.",
            )
        )
    if m.units < 1 or m.depth < 0 or m.filters < 1:
        add(Problem("model", "Units and filters must be at least 1, depth at least 0."))
    if not 0.0 <= m.dropout < 1.0:
        add(Problem("model.dropout", "Dropout must be at least 0 and below 1."))

    if f.max_epochs < 1:
        add(Problem("fit.max_epochs", "Train at least one epoch."))
    if f.batch_size < 1:
        add(Problem("fit.batch_size", "The batch size must be at least 1."))
    if f.optimizer not in OPTIMIZERS:
        add(Problem("fit.optimizer", f"Optimizer must be one of {', '.join(OPTIMIZERS)}."))
    if not (f.learning_rate > 0 and math.isfinite(f.learning_rate)) or f.learning_rate > 10:
        add(Problem("fit.learning_rate", "The learning rate must be above 0 and at most 10."))
    if not 0.0 <= f.validation_split < 0.9:
        add(Problem("fit.validation_split", "The validation split must be at least 0 and below 0.9."))

    has_val = f.validation_split > 0
    logged = metrics.logged_metrics(task, has_val) if task in metrics.TASKS else None
    if es.enabled:
        _check_monitor(add, "early_stopping", "EarlyStopping", es.monitor, es.mode, logged)
        if es.patience < 0:
            add(Problem("early_stopping.patience", "Patience cannot be negative."))
        elif es.patience >= f.max_epochs:
            add(
                Problem(
                    "early_stopping.patience",
                    f"Patience {es.patience} is not below max epochs {f.max_epochs}: "
                    "early stopping can never trigger.",
                    "warning",
                )
            )
        if not math.isfinite(es.min_delta):
            add(Problem("early_stopping.min_delta", "min_delta must be a finite number."))
        elif es.min_delta < 0:
            add(
                Problem(
                    "early_stopping.min_delta",
                    f"Keras uses |min_delta|, so {es.min_delta:g} acts as {abs(es.min_delta):g}.",
                    "warning",
                )
            )
        if es.baseline is not None and not math.isfinite(es.baseline):
            add(Problem("early_stopping.baseline", "The baseline must be a finite number or empty."))
        if es.start_from_epoch < 0:
            add(Problem("early_stopping.start_from_epoch", "start_from_epoch cannot be negative."))
        elif es.start_from_epoch >= f.max_epochs:
            add(
                Problem(
                    "early_stopping.start_from_epoch",
                    f"start_from_epoch {es.start_from_epoch} is not below max epochs "
                    f"{f.max_epochs}: early stopping would never look at a single epoch.",
                )
            )
        _check_min_delta_scale(add, es)
        _check_baseline_reachable(add, es)
    elif f.max_epochs > 10_000:
        add(
            Problem(
                "early_stopping.enabled",
                f"Early stopping is off: this run will train all {f.max_epochs:,} epochs unless you stop it.",
                "warning",
            )
        )

    if ck.enabled:
        _check_monitor(add, "checkpoint", "ModelCheckpoint", ck.monitor, ck.mode, logged)
        if ck.format not in CHECKPOINT_FORMATS:
            add(Problem("checkpoint.format", f"Format must be one of {', '.join(CHECKPOINT_FORMATS)}."))
        elif ck.save_weights_only and ck.format != ".weights.h5":
            add(
                Problem(
                    "checkpoint.format",
                    f"Weights only needs the .weights.h5 format; {ck.format} stores the whole model. "
                    "Pick .weights.h5 or turn weights only off.",
                )
            )
        elif not ck.save_weights_only and ck.format == ".weights.h5":
            add(
                Problem(
                    "checkpoint.format",
                    ".weights.h5 stores weights only: turn weights only on, or pick .keras.",
                )
            )
        if ck.initial_value_threshold is not None and not math.isfinite(ck.initial_value_threshold):
            add(
                Problem(
                    "checkpoint.initial_value_threshold", "The threshold must be a finite number or empty."
                )
            )

    problems.sort(key=lambda p: p.severity != "error")
    return problems


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def _check_monitor(add, section: str, label: str, monitor: str, mode: str, logged: list[str] | None) -> None:
    from core import metrics

    if mode not in ("auto", "min", "max"):
        add(Problem(f"{section}.mode", f"{label} mode must be auto, min or max, not {mode!r}."))
        return
    if logged is not None and monitor not in logged:
        if monitor.startswith("val_") and monitor.removeprefix("val_") in logged:
            why = "validation split is 0, so no val_ metric is logged. Raise the validation split"
        else:
            why = f"this model logs only {', '.join(logged)}"
        add(Problem(f"{section}.monitor", f"{label} monitors {monitor!r}, but {why}."))
    elif mode == "auto" and metrics.resolve_mode(monitor, "auto") is None:
        add(
            Problem(
                f"{section}.mode",
                f"{label}: Keras cannot tell whether {monitor!r} should go up or down with mode "
                "'auto'. Pick min or max.",
            )
        )


def _check_min_delta_scale(add, es: EarlyStoppingConfig) -> None:
    """A min_delta larger than the metric can move means no epoch ever counts as improving."""
    from core import metrics

    name = es.monitor.removeprefix("val_")
    bounded = metrics.resolve_mode(es.monitor, "auto") == "max"  # accuracy-like: lives in [0, 1]
    if math.isfinite(es.min_delta) and bounded and abs(es.min_delta) >= 1.0:
        add(
            Problem(
                "early_stopping.min_delta",
                f"min_delta {abs(es.min_delta):g} is larger than {name} can ever change (0 to 1): "
                "no epoch after the first would count as an improvement.",
            )
        )
    elif math.isfinite(es.min_delta) and abs(es.min_delta) > 1e3:
        add(
            Problem(
                "early_stopping.min_delta",
                f"min_delta {abs(es.min_delta):g} is huge: almost no epoch will count as an improvement.",
                "warning",
            )
        )


def _check_baseline_reachable(add, es: EarlyStoppingConfig) -> None:
    from core import metrics

    if es.baseline is None or not math.isfinite(es.baseline):
        return
    name = es.monitor.removeprefix("val_")
    mode = metrics.resolve_mode(es.monitor, es.mode)
    if name == "accuracy" and mode == "max" and es.baseline >= 1.0:
        add(
            Problem(
                "early_stopping.baseline",
                f"Accuracy can never beat the baseline {es.baseline:g}: the wait is never reset, so "
                "training stops as soon as patience runs out, whatever the model learns.",
            )
        )
    elif mode == "min" and es.baseline <= 0 and name in ("loss", "mae", "mse"):
        add(
            Problem(
                "early_stopping.baseline",
                f"{name} is never below {es.baseline:g}: the baseline can never be beaten, so "
                "training stops as soon as patience runs out.",
                "warning",
            )
        )
