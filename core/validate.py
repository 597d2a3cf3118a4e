"""Everything we can tell about a config before a single epoch is trained.

First the declaration (``core.config.check_config``: types, ranges, allowed values); only a config
that passes it is looked at further, so the checks below never meet a string patience. Then what
the declaration cannot know: which datasets and models exist and fit each other, which metrics
the model logs, settings that contradict each other, splits too small to mean anything, and
whether the run fits this server's resource limits.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import replace

from core import metrics, models
from core.config import (
    CHECKPOINT_FORMATS,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    Problem,
    RunConfig,
    check_config,
    errors,
)
from core.data import datasets
from core.stopping.rules.registry import RULES

__all__ = ["validate", "errors", "resource_limits", "ResourceLimits"]

MAX_PARAMS_ENV = "ESLAB_MAX_PARAMS"
MAX_RUN_MEMORY_ENV = "ESLAB_MAX_RUN_MEMORY_MB"
DEFAULT_MAX_PARAMS = 50_000_000
DEFAULT_MAX_RUN_MEMORY_MB = 4096
SMALL_TEST = 30  # fewer test samples: the test metric moves in steps of over 3%
SMALL_VALIDATION = 20  # fewer validation samples: early stopping watches noise


def validate(
    config: RunConfig,
    task: str | None = None,
    input_kind: str | None = None,
    *,
    uploads_dir: str | os.PathLike | None = None,
) -> list[Problem]:
    """Human-readable problems, errors first. ``task``/``input_kind`` come from the dataset.

    When they are not given they are looked up (cheap for built-ins, reads the CSV otherwise).
    ``uploads_dir``: where uploaded CSVs are (default ``<runs>/uploads`` of the default runs folder).
    """
    declared = check_config(config)
    if declared:
        return declared
    if config.recorded:
        how = (
            "by your own script (eslab.LabCallback)"
            if config.origin == "callback"
            else "elsewhere and imported"
        )
        return [
            Problem(
                "origin",
                f"origin: this run was recorded {how}; the app shows, replays and compares it but cannot "
                "train it. Train it again where it was trained, or start a run of the app's own.",
            )
        ]
    problems: list[Problem] = []
    add = problems.append
    d, m, f, es, ck = config.data, config.model, config.fit, config.early_stopping, config.checkpoint

    info = None
    if d.name not in datasets.DATASETS:
        add(
            Problem(
                "data.name",
                f"data.name: unknown dataset {d.name!r}; choose one of {', '.join(datasets.DATASETS)}.",
            )
        )
    else:
        try:
            info = datasets.describe(d, uploads_dir=uploads_dir)
            task = task or info.task
            input_kind = input_kind or info.input_kind
        except datasets.DatasetError as exc:
            add(Problem("data", str(exc)))

    if m.name not in models.MODELS:
        add(
            Problem(
                "model.name",
                f"model.name: unknown model {m.name!r}; choose one of {', '.join(models.MODELS)}.",
            )
        )
    elif input_kind is not None and input_kind not in models.MODELS[m.name].input_kinds:
        spec = models.MODELS[m.name]
        add(
            Problem(
                "model.name",
                f"The {spec.label} takes {' or '.join(spec.input_kinds)} data; "
                f"this dataset is {input_kind}. Pick {models.suggest(input_kind)} instead.",
            )
        )
    model_problems = models.MODELS[m.name].check(m, info, uploads_dir) if m.name in models.MODELS else []
    problems += model_problems
    if m.name in models.MODELS and models.MODELS[m.name].upload is None:
        for path, value in (("model.upload", m.upload), ("model.file_name", m.file_name)):
            if value is not None:
                add(
                    Problem(
                        path,
                        f"{path}: the {models.MODELS[m.name].label} is built by the app, so the uploaded "
                        "model file is not used (choose Your model to train it, or clear the field).",
                        "warning",
                    )
                )

    has_val = f.validation_split > 0
    logged = metrics.logged_metrics(task, has_val) if task in metrics.TASKS else None
    if es.enabled:
        _check_monitor(add, "early_stopping", "EarlyStopping", es.monitor, es.mode, logged)
        if es.patience >= f.max_epochs:
            add(
                Problem(
                    "early_stopping.patience",
                    f"Patience {es.patience} is not below max epochs {f.max_epochs}: "
                    "early stopping can never trigger.",
                    "warning",
                )
            )
        if es.min_delta < 0:
            add(
                Problem(
                    "early_stopping.min_delta",
                    f"Keras uses |min_delta|, so {es.min_delta:g} acts as {abs(es.min_delta):g}.",
                    "warning",
                )
            )
        if es.start_from_epoch >= f.max_epochs:
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

    rl = config.reduce_lr
    if rl.enabled:
        _check_monitor(add, "reduce_lr", "ReduceLROnPlateau", rl.monitor, rl.mode, logged)
        _check_schedule_reaches(add, config)

    if config.stopping_rules:
        if not es.enabled:  # the rules watch EarlyStopping's monitor even when EarlyStopping is off
            _check_monitor(add, "early_stopping", "The stopping rules", es.monitor, es.mode, logged)
        _check_rules(add, config, logged)

    if ck.enabled:
        _check_monitor(add, "checkpoint", "ModelCheckpoint", ck.monitor, ck.mode, logged)
        if ck.format not in CHECKPOINT_FORMATS:  # pragma: no cover - the declaration refuses it first
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

    _check_own_split(add, d, f, info)
    if info is not None:
        _check_split_sizes(add, d, f, info)
        if (
            m.name in models.MODELS
            and input_kind in models.MODELS[m.name].input_kinds
            and not errors(model_problems)
        ):
            _check_resources(add, config, info, uploads_dir)

    problems.sort(key=lambda p: p.severity != "error")
    return problems


# -- monitors and modes -----------------------------------------------------------------------------


def _check_monitor(add, section: str, label: str, monitor: str, mode: str, logged: list[str] | None) -> None:
    if logged is not None and monitor not in logged:
        if monitor.startswith("val_") and monitor.removeprefix("val_") in logged:
            why = "validation split is 0, so no val_ metric is logged. Raise the validation split"
        else:
            why = f"this model logs only {', '.join(logged)}"
        add(Problem(f"{section}.monitor", f"{label} monitors {monitor!r}, but {why}."))
        return
    natural = metrics.resolve_mode(monitor, "auto")
    if mode == "auto" and natural is None:
        add(
            Problem(
                f"{section}.mode",
                f"{label}: Keras cannot tell whether {monitor!r} should go up or down with mode "
                "'auto'. Pick min or max.",
            )
        )
    elif mode != "auto" and natural is not None and mode != natural:
        better = "higher" if natural == "max" else "lower"
        keeps = "lowest" if mode == "min" else "highest"
        add(
            Problem(
                f"{section}.mode",
                f"{label} watches {monitor} with mode '{mode}', but {better} {monitor} is better: it would "
                f"treat the {keeps} value, the worst epoch, as the best. Set mode to '{natural}' (or auto).",
                "warning",
            )
        )


def _check_schedule_reaches(add, config: RunConfig) -> None:
    """EarlyStopping that gives up before ReduceLROnPlateau acts makes the schedule pointless.

    Both count epochs without an improvement on their monitor; Keras lowers the rate once its wait
    reaches ``patience`` and stops once EarlyStopping's does. With the same monitor, an EarlyStopping
    patience not above the schedule's ends the run when the first reduction would come or before
    (unless improvements smaller than the schedule's min_delta keep resetting EarlyStopping alone), so
    the rate is as good as never lowered.
    """
    es, rl, f = config.early_stopping, config.reduce_lr, config.fit
    if rl.patience >= f.max_epochs:
        add(
            Problem(
                "reduce_lr.patience",
                f"ReduceLROnPlateau's patience {rl.patience} is not below max epochs {f.max_epochs}: "
                "the learning rate can never be lowered.",
                "warning",
            )
        )
    elif es.enabled and es.monitor == rl.monitor and es.patience <= rl.patience:
        add(
            Problem(
                "reduce_lr.patience",
                f"EarlyStopping's patience ({es.patience}) is not above ReduceLROnPlateau's ({rl.patience}) "
                "on the same monitor: the run will stop before the learning rate is lowered. Give "
                f"EarlyStopping a longer patience than the schedule's ({2 * rl.patience + 1} leaves time "
                "for two reductions).",
                "warning",
            )
        )


def rule_choices() -> list[str]:
    """The rules a config may add (EarlyStopping is the config's own section)."""
    return [name for name in RULES if name != "early_stopping"]


def _check_rules(add, config: RunConfig, logged: list[str] | None = None) -> None:
    """Each rule against its own declaration (core/stopping/rules/): its name, every parameter."""
    es = config.early_stopping
    mode = metrics.resolve_mode(es.monitor, es.mode)
    seen: set[str] = set()
    for i, r in enumerate(config.stopping_rules):
        where = f"stopping_rules[{i}]"
        if r.name not in rule_choices():
            add(
                Problem(
                    f"{where}.name",
                    f"{where}.name: unknown rule {r.name!r}; choose one of {', '.join(rule_choices())}.",
                )
            )
            continue
        rule = RULES[r.name]
        if r.name in seen:
            add(Problem(f"{where}.name", f"{where}.name: {rule.label} is set twice; keep one."))
        seen.add(r.name)
        names = ", ".join(p.name for p in rule.parameters)
        for p in rule.parameters:
            if p.name not in r.params:  # given in full: a config says what the rule does, not a default
                add(
                    Problem(
                        f"{where}.params.{p.name}",
                        f"{where}.params.{p.name}: missing; {rule.label} needs every parameter ({names}).",
                    )
                )
        for key in sorted(set(r.params) - {p.name for p in rule.parameters}):
            add(
                Problem(
                    f"{where}.params.{key}",
                    f"{where}.params.{key}: {rule.label} has no such parameter ({names}). Remove it.",
                )
            )
        for p in rule.parameters:
            if p.name in r.params:
                try:
                    p.check(r.params[p.name])
                except ValueError as exc:
                    add(Problem(f"{where}.params.{p.name}", f"{where}.params.{exc}"))
        _check_rule_monitors(add, where, rule, r.monitors, logged)
        if rule.loss_only and mode == "max":
            add(
                Problem(
                    f"{where}.name",
                    f"{rule.label} reads a loss (lower is better), but the rules watch EarlyStopping's "
                    f"monitor {es.monitor}, which is higher-is-better. Monitor a loss such as val_loss.",
                )
            )


def _check_rule_monitors(add, where: str, rule, monitors: list[str], logged: list[str] | None) -> None:
    """A rule on several metrics needs two or more that the model logs, each with a known direction;
    any other rule watches EarlyStopping's monitor and takes none."""
    if not rule.several_monitors:
        if monitors:
            add(
                Problem(
                    f"{where}.monitors",
                    f"{where}.monitors: {rule.label} watches EarlyStopping's monitor; remove monitors.",
                )
            )
        return
    if len(monitors) < 2:
        add(
            Problem(
                f"{where}.monitors",
                f"{where}.monitors: {rule.label} needs two or more metrics; got {len(monitors)}.",
            )
        )
    if len(set(monitors)) != len(monitors):
        add(Problem(f"{where}.monitors", f"{where}.monitors: a metric is named twice."))
    for j, m in enumerate(monitors):
        if logged is not None and m not in logged:
            add(
                Problem(
                    f"{where}.monitors[{j}]",
                    f"{where}.monitors[{j}]: this model logs only {', '.join(logged)}; not {m!r}.",
                )
            )
        elif metrics.resolve_mode(m, "auto") is None:
            add(
                Problem(
                    f"{where}.monitors[{j}]",
                    f"{where}.monitors[{j}]: which way {m!r} should go is not known.",
                )
            )


def _check_min_delta_scale(add, es: EarlyStoppingConfig) -> None:
    """A min_delta larger than the metric can move means no epoch ever counts as improving."""
    name = es.monitor.removeprefix("val_")
    bounded = metrics.resolve_mode(es.monitor, "auto") == "max"  # accuracy-like: lives in [0, 1]
    if bounded and abs(es.min_delta) >= 1.0:
        add(
            Problem(
                "early_stopping.min_delta",
                f"min_delta {abs(es.min_delta):g} is larger than {name} can ever change (0 to 1): "
                "no epoch after the first would count as an improvement.",
            )
        )
    elif abs(es.min_delta) > 1e3:
        add(
            Problem(
                "early_stopping.min_delta",
                f"min_delta {abs(es.min_delta):g} is huge: almost no epoch will count as an improvement.",
                "warning",
            )
        )


def _check_baseline_reachable(add, es: EarlyStoppingConfig) -> None:
    if es.baseline is None:
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


# -- split sizes ------------------------------------------------------------------------------------


def _check_own_split(add, d: DataConfig, f: FitConfig, info: datasets.DatasetInfo | None) -> None:
    """A split column or a test file: CSV sets only, one of the two; named validation rows replace
    fit.validation_split (it must be above 0 to have validation at all, and its share is unused)."""
    spec = datasets.DATASETS.get(d.name)
    if spec is not None and spec.source != "csv":
        for path, value in (("data.split_column", d.split_column), ("data.test_upload", d.test_upload)):
            if value is not None:
                add(Problem(path, f"{path}: applies to uploaded CSV files only; {spec.label} is not one."))
    if d.test_upload is not None and d.test_upload == d.upload:
        add(
            Problem(
                "data.test_upload",
                "data.test_upload: the test file is the training file itself (the same content), so the "
                "kept checkpoint would be tested on rows it trained on. Upload the held-out rows as the "
                "second file.",
            )
        )
    if d.test_file_name is not None and d.test_upload is None:
        add(
            Problem(
                "data.test_file_name",
                "data.test_file_name: names a test file, but data.test_upload holds none, so it is not "
                "used: upload the test file, or clear the name.",
                "warning",
            )
        )
    if d.split_column is not None and d.test_upload is not None:
        add(
            Problem(
                "data.split_column",
                "data.split_column and data.test_upload both name the test set: choose a split column "
                "or a second file, not both.",
            )
        )
    if spec is not None and spec.input_kind != "sequence":
        for path, value in (("data.truncating", d.truncating), ("data.padding", d.padding)):
            if value is not None:
                add(Problem(path, f"{path}: applies to text data only; {spec.label} is not text.", "warning"))
    parts = None if info is None else info.given_parts
    if parts is None or parts[1] == 0:
        return
    if f.validation_split == 0:
        add(
            Problem(
                "fit.validation_split",
                f"The split column names {parts[1]:,} validation rows, but the validation split is 0 "
                "(no validation): set it above 0 to validate on those rows, or mark them train.",
            )
        )
    else:
        add(
            Problem(
                "fit.validation_split",
                f"The split column names {parts[1]:,} validation rows: they are the validation data, "
                f"so the validation share ({f.validation_split:g}) is not used.",
                "warning",
            )
        )


def _check_split_sizes(add, d: DataConfig, f: FitConfig, info: datasets.DatasetInfo) -> None:
    """A test split of 3 gives an accuracy of 0, 33, 67 or 100%: say so before training."""
    sizes = datasets.split_sizes(d, info, f.validation_split)
    if sizes is None:
        return
    _, n_val, n_test = sizes
    if 0 < n_test < SMALL_TEST:
        add(
            Problem(
                "data.test_fraction",
                f"The test split will hold about {n_test} samples: its accuracy moves in steps of "
                f"{100 / n_test:.0f}%, too coarse to trust. "
                + (
                    "Put more rows in the test part."
                    if info.given_parts is not None or info.test_samples is not None
                    else "Raise the test share or use more rows."
                ),
                "warning",
            )
        )
    if f.validation_split > 0 and 0 < n_val < SMALL_VALIDATION:
        add(
            Problem(
                "fit.validation_split",
                f"The validation split will hold about {n_val} samples: early stopping would judge each "
                "epoch on noise. Raise the validation split or use more rows.",
                "warning",
            )
        )


# -- resources --------------------------------------------------------------------------------------


class ResourceLimits:
    """What one run may take on this server; the owner sets them with environment variables."""

    def __init__(self, max_params: int, max_memory_mb: int):
        self.max_params = max_params
        self.max_memory_mb = max_memory_mb


def resource_limits() -> ResourceLimits:
    return ResourceLimits(
        _env_int(MAX_PARAMS_ENV, DEFAULT_MAX_PARAMS), _env_int(MAX_RUN_MEMORY_ENV, DEFAULT_MAX_RUN_MEMORY_MB)
    )


_WARNED: set[tuple[str, str]] = set()


def _env_int(name: str, default: int) -> int:
    """The owner's setting, or the default; a setting that is no whole number above 0 is said once
    in the server's log (its owner reads that, not the page), then the default applies."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value > 0:
        return value
    if (name, raw) not in _WARNED:
        _WARNED.add((name, raw))
        print(
            f"warning: {name}={raw[:40]!r} is not a whole number above 0; using the default {default:,}.",
            file=sys.stderr,
        )
    return default


# The settings that make a run big, in the order a message suggests lowering them.
_SIZE_KNOBS = (
    "model.units",
    "model.depth",
    "model.filters",
    "data.num_words",
    "data.maxlen",
    "fit.batch_size",
    "data.max_samples",
)


def _check_resources(add, config: RunConfig, info: datasets.DatasetInfo, uploads_dir=None) -> None:
    limits = resource_limits()
    params, memory = _estimate(config, info, uploads_dir)
    over_params = params > limits.max_params
    over_memory = memory > limits.max_memory_mb * 2**20
    if not (over_params or over_memory):
        return
    knob = _largest_knob(
        config, info, params if over_params else memory, by_params=over_params, uploads_dir=uploads_dir
    )
    value = _get(config, knob) if knob else None
    what = (
        f"{params:,} parameters; this server allows {limits.max_params:,} ({MAX_PARAMS_ENV})"
        if over_params
        else f"{memory / 2**30:,.1f} GB of memory to train; this server allows "
        f"{limits.max_memory_mb / 1024:,.1f} GB per run ({MAX_RUN_MEMORY_ENV})"
    )
    fix = f"{knob} = {value:,} is what makes it this large: lower it." if knob else "Pick a smaller model."
    add(Problem(knob or "model", f"{knob or 'model'}: this run needs an estimated {what}. {fix}"))


def _estimate(config: RunConfig, info: datasets.DatasetInfo, uploads_dir=None) -> tuple[int, int]:
    """(parameters, bytes): weights, gradients and two Adam slots; activations of a batch; the data."""
    shape = info.input_shape or (1,)
    vocab = config.data.num_words
    params = models.estimate_params(
        config.model, shape, info.task, info.n_classes, vocab, uploads_dir=uploads_dir
    )
    per_sample_activations = models.estimate_activations(config.model, shape, uploads_dir=uploads_dir)
    n = info.n_samples or 0
    data_bytes = n * math.prod(shape) * 4 * 2  # float32, plus one working copy
    memory = params * 4 * 4 + config.fit.batch_size * per_sample_activations * 4 * 3 + data_bytes
    return params, memory


def _largest_knob(
    config: RunConfig, info: datasets.DatasetInfo, current: int, *, by_params: bool, uploads_dir=None
) -> str | None:
    """The setting whose default would shrink the estimate most: the one a message should name."""
    best, best_drop = None, 0
    defaults = RunConfig()
    for path in _SIZE_KNOBS:
        value, default = _get(config, path), _get(defaults, path)
        if value is None or value == default:
            continue
        trial = _set(config, path, default if default is not None else min(value, 1000))
        if path.startswith("data.") and path != "data.max_samples":
            trial_info = info
        elif path == "data.max_samples":
            trial_info = replace(info, n_samples=min(info.n_samples or 0, 1000))
        else:
            trial_info = info
        params, memory = _estimate(trial, trial_info, uploads_dir)
        drop = current - (params if by_params else memory)
        if drop > best_drop:
            best, best_drop = path, drop
    return best


def _get(config: RunConfig, path: str):
    section, name = path.split(".")
    return getattr(getattr(config, section), name)


def _set(config: RunConfig, path: str, value) -> RunConfig:
    section, name = path.split(".")
    return replace(config, **{section: replace(getattr(config, section), **{name: value})})
