"""A run as a standalone Keras script: the copy of a run users take home.

The script does with plain Keras, scikit-learn and pandas what the app did (no import of ``core``):
the same data split and scaling, the same layers created in the same order, the same callbacks
with the same parameters, the same seed set at the same point and the same fit and test
evaluation (core/engine/fit_one.py). With the library versions named in its docstring it repeats
the run's numbers on a CPU.

It is composed from small templates, in the spirit of jrieke/traingenerator. This module owns the
frame: a header, the imports the pieces ask for, the settings, ``build_model`` around the model's
layers and ``main`` (callbacks, fit, evaluation, the RESULT line). The pieces that differ by
dataset or model belong to their plugins (``DatasetSpec.script_pieces``,
``ModelSpec.script_layers``), beside the code they repeat. Every template is already in
``ruff format`` style (line length 88), so the output lints clean as is.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import textwrap
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from core import backends, metrics, models
from core.codegen import MAX_LINE as _MAX_LINE
from core.codegen import Piece as _Piece
from core.codegen import ScriptContext
from core.codegen import code as _code
from core.codegen import lit as _lit
from core.config import RunConfig
from core.data import datasets
from core.models.head import HEADS, OPTIMIZERS, optimizer_source, output_source
from core.models.knobs import KNOBS
from core.stopping import arguments
from core.stopping.rules.registry import RULES

_PREPARED = {
    "tabular": "split and standardized",
    "image": "split and scaled to 0..1",
    "sequence": "split and tokenized",
}
_USES_LAYERS = re.compile(r"(?<![\w.])layers\.")  # `layers.Dense(...)`, not `keras.layers.Dense(...)`
_STDLIB = {"argparse", "io", "json", "math", "os", "re", "tempfile", "time", "typing", "zipfile"}
# Uploaded files the script reads (by source): the default name, and the argument's name in --help.
_UPLOADED = {
    "csv": ("data.csv", "CSV_FILE"),
    "npz": ("data.npz", "NPZ_FILE"),
    "images": ("images.zip", "ZIP_FILE"),
}


def export_script(
    config: RunConfig,
    *,
    data_path_hint: str | None = None,
    uploads_dir: datasets.Uploads = None,
    steps_per_execution: int | None = None,
) -> str:
    """The run as a Python script. ``data_path_hint``: the uploaded file's path to default to (CSV,
    .npz or zip sets). ``uploads_dir``: where an upload whose shape the script needs is (image
    arrays: the CNN's layers depend on the image size); default ``<runs>/uploads``.
    ``steps_per_execution``: the count the run used (``RunSnapshot.steps_per_execution``: what "auto"
    chose); without it the config's count, and 1 for an "auto" that never chose (no number depends on it).

    Raises ValueError for a dataset or model the exporter does not know, or a model that does not
    take the dataset's kind of input (configs the app would not train either).
    """
    config = _with_group(config, steps_per_execution)
    ctx = _Context.of(config, data_path_hint, uploads_dir)
    pieces = [
        *ctx.spec.script_pieces(ctx.script),
        *_model_pieces(ctx),
        _epoch_order_piece(),
        *_rule_pieces(ctx),
        _main(ctx),
    ]
    imports = {line for piece in pieces for line in piece.imports}
    helpers = [p.code for p in pieces if p.code]
    if any(_USES_LAYERS.search(text) for text in helpers):  # not so in a model file's script
        imports.add("from keras import layers")
    backend = _backend_lines(config)
    if backend:
        imports.add("import os")
    parts = [
        _header(ctx),
        _imports(imports | {"import keras", "import numpy as np"}, before_third_party=backend),
        _settings(ctx),
    ]
    body = "\n\n\n".join(helpers)
    tail = 'if __name__ == "__main__":\n    main()\n'
    return "\n\n".join(parts) + "\n\n\n" + body + "\n\n\n" + tail


def _with_group(config: RunConfig, steps_per_execution: int | None) -> RunConfig:
    """The config with the count of batches per step the script passes to ``model.compile``."""
    k = config.fit.steps_per_execution if steps_per_execution is None else steps_per_execution
    k = k if isinstance(k, int) else 1
    if k == config.fit.steps_per_execution:
        return config
    return dataclasses.replace(config, fit=dataclasses.replace(config.fit, steps_per_execution=k))


def _group_argument(ctx: _Context) -> str:
    """The compile argument after ``metrics=`` (nothing for 1, Keras' default)."""
    if ctx.config.fit.steps_per_execution == 1:
        return ""
    return "\n        steps_per_execution=STEPS_PER_EXECUTION,"


def export_config_json(config: RunConfig) -> str:
    """The config as the app stores it (``python -m core train`` reads it back)."""
    return config.to_json()


def script_file_name(config: RunConfig) -> str:
    """``<run name>.py`` as an importable module name (``train_run.py`` for a name without letters)."""
    stem = re.sub(r"\W+", "_", config.name.strip().lower()).strip("_")[:40].rstrip("_")
    if not stem or not (stem[0].isalpha() or stem[0] == "_") or not stem.isascii():
        stem = f"train_{stem}" if stem.isascii() and stem else "train_run"
    return f"{stem}.py"


# The history of a run as CSV is RunSnapshot.history_csv() (core/runs.py); no second copy here.


# --------------------------------------------------------------------------------------------
# Building blocks.


@dataclass(frozen=True)
class _Context:
    """The config plus what follows from it, computed once for all templates; ``script`` is the
    part the plugins' templates see."""

    script: ScriptContext
    spec: datasets.DatasetSpec
    model: models.ModelSpec
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, config: RunConfig, data_path_hint: str | None, uploads_dir: datasets.Uploads = None
    ) -> _Context:
        if config.data.name not in datasets.DATASETS:
            raise ValueError(f"Cannot export dataset {config.data.name!r}.")
        if config.model.name not in models.MODELS:
            raise ValueError(f"Cannot export model {config.model.name!r}.")
        spec = datasets.DATASETS[config.data.name]
        model = models.MODELS[config.model.name]
        if spec.input_kind not in model.input_kinds:
            raise ValueError(f"The {model.label} does not take {spec.input_kind} data ({spec.label}).")
        task = spec.task if spec.task is not None else config.data.task
        data_path = None
        if spec.source in _UPLOADED:
            data_path = data_path_hint or config.data.file_name or _UPLOADED[spec.source][0]
        csv_path = data_path if spec.source == "csv" else None
        shape = spec.shape_for(config.data)
        if shape is None and data_path is not None and spec.input_kind == "image":
            try:  # the shape is the uploaded file's
                shape = datasets.describe(config.data, uploads_dir=uploads_dir).input_shape
            except datasets.DatasetError as exc:
                raise ValueError(f"Cannot export this run: {exc}") from None
        script = ScriptContext(config, task, spec.input_kind, spec.label, shape, csv_path, data_path)
        backend = backends.resolve(config.fit.backend, config.model.name)
        return cls(script, spec, model, dict(_versions(backend)))

    @property
    def config(self) -> RunConfig:
        return self.script.config

    @property
    def task(self) -> str | None:
        return self.script.task

    @property
    def csv_path(self) -> str | None:
        return self.script.csv_path

    @property
    def has_val(self) -> bool:
        return self.script.has_val

    @property
    def is_csv(self) -> bool:
        return self.script.is_csv


@functools.cache
def _versions(backend: str = "tensorflow") -> dict[str, str]:
    out = {}
    jax = (("JAX", "jax"), ("jaxlib", "jaxlib")) if backend == "jax" else ()
    for label, dist in (
        ("Keras", "keras"),
        *jax,
        ("TensorFlow", "tensorflow"),
        ("scikit-learn", "scikit-learn"),
        ("pandas", "pandas"),
        ("NumPy", "numpy"),
    ):
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _docstring_safe(text: str, limit: int = 60) -> str:
    """User text (a run name) that cannot end or break a docstring."""
    text = "".join(ch for ch in " ".join(text.split()) if ch.isprintable())
    text = re.sub(r'["\\]', "'", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _line(text: str) -> str:
    """One source line; a long literal (a file path) gets a noqa rather than a broken string."""
    return text if len(text) <= _MAX_LINE else f"{text}  # noqa: E501"


# --------------------------------------------------------------------------------------------
# Header, imports, settings.


def _header(ctx: _Context) -> str:
    cfg = ctx.config
    es, ck = cfg.early_stopping, cfg.checkpoint
    reads = ctx.script.reads_file
    usage = f"python {script_file_name(cfg)}" + (f" [{_UPLOADED[ctx.spec.source][1]}]" if reads else "")
    usage += " [--checkpoint PATH]" if ck.enabled else ""
    if es.enabled:
        stops = f"Stops: EarlyStopping on {_docstring_safe(es.monitor)}, patience {es.patience}."
    else:
        stops = f"Stops: no early stopping; up to {cfg.fit.max_epochs:,} epochs."
    if cfg.stopping_rules:
        stops += (
            " Also stops on "
            + ", ".join(
                RULES[r.name].short_title(RULES[r.name].checked(r.params)) for r in cfg.stopping_rules
            )
            + "."
        )
    if ck.enabled:
        kept = f"the best model by {_docstring_safe(ck.monitor)}" if ck.save_best_only else "the last model"
        stops += f" ModelCheckpoint keeps {kept}."
    paragraphs = [
        '"""An Early Stopping Lab run, exported as a plain Keras script.',
        f'Run "{_docstring_safe(cfg.name)}". '
        f"Data: {ctx.spec.label}, {_PREPARED[ctx.spec.input_kind]} as the app did it "
        f"(seed {cfg.fit.seed}). "
        f"Model: {ctx.model.summary(ctx.config.model)}. {stops}",
        f"Run it with:\n\n    {usage}",
        "It prints Keras' log of each epoch and, last, a line RESULT {...} with the best epoch, "
        "the epoch training stopped at and the test metrics of the kept model, as JSON."
        + (" The CSV file defaults to the one the run was trained on (CSV_PATH)." if ctx.is_csv else "")
        + (
            " The test set is the second file, TEST_CSV_PATH."
            if ctx.is_csv and cfg.data.test_upload is not None
            else ""
        )
        + (
            " The file defaults to the one the run was trained on (DATA_PATH)."
            if reads and not ctx.is_csv
            else ""
        )
        + (" It loads your model from MODEL_PATH." if ctx.model.upload is not None else ""),
    ]
    if ctx.versions:
        paragraphs.append(
            "Exported with "
            + ", ".join(f"{k} {v}" for k, v in ctx.versions.items())
            + ". With these versions, on a CPU, it repeats the run's numbers; other versions may "
            "differ in the last digits, and then sometimes in which epoch is the best."
        )
    text = "\n\n".join(
        p if "\n" in p else textwrap.fill(p, _MAX_LINE, break_long_words=False, break_on_hyphens=False)
        for p in paragraphs
    )
    return text + '\n"""'


def _backend_lines(config: RunConfig) -> str:
    """A JAX run's script picks JAX before Keras is imported (Keras reads KERAS_BACKEND once, at its
    import); a TensorFlow run's script is as before this setting, on Keras' default backend."""
    backend = backends.resolve(config.fit.backend, config.model.name)
    if backend == "tensorflow":
        return ""
    return (
        f"# The run trained on {backends.LABELS[backend]}; Keras reads KERAS_BACKEND once, at import.\n"
        f'os.environ["KERAS_BACKEND"] = "{backend}"'
    )


def _imports(lines: set[str], before_third_party: str = "") -> str:
    def key(line: str) -> tuple[bool, bool, str]:
        module = line.split()[1]
        return (module.split(".")[0] not in _STDLIB, line.startswith("from "), module.lower())

    ordered = sorted(lines, key=key)
    out: list[str] = []
    for i, line in enumerate(ordered):
        if i and key(ordered[i - 1])[0] != key(line)[0]:
            out.append("")
            if before_third_party:
                out += [before_third_party, ""]
        out.append(line)
    return "\n".join(out)


def _settings(ctx: _Context) -> str:
    cfg = ctx.config
    d, m, f = cfg.data, cfg.model, cfg.fit
    rows: list[tuple[str, object, str]] = [("SEED", f.seed, "Python, NumPy and TensorFlow; also the splits")]
    task_note = "None: inferred from the target, as the app does" if ctx.script.reads_file else ""
    rows += [("TASK", ctx.task, task_note)]
    given = d.split_column is not None or d.test_upload is not None  # the data names the test rows
    if not ctx.spec.own_test_split and not given:
        rows += [("TEST_FRACTION", d.test_fraction, "share held out for the final test, first")]
    rows += [("VALIDATION_SPLIT", f.validation_split, "share of the rest for validation")]
    rows += [("MAX_SAMPLES", d.max_samples, "cap on the number of samples (None: all)")]
    if ctx.spec.input_kind == "sequence":
        rows += [("NUM_WORDS", d.num_words, "vocabulary size"), ("MAXLEN", d.maxlen, "tokens per text")]
        if d.truncating is not None or d.padding is not None:
            rows += [
                ("TRUNCATING", d.truncating or ctx.spec.default_pad, "pre: keep the last MAXLEN tokens"),
                ("PADDING", d.padding or ctx.spec.default_pad, "pre: zeros at the front"),
            ]
    rows += ctx.spec.script_settings(ctx.script)
    rows += ctx.model.script_settings(ctx.script)
    for knob, facts in KNOBS.items():
        if knob in ctx.model.knobs:
            rows.append((knob.upper(), getattr(m, knob), facts.comment))
    rows += [("MAX_EPOCHS", f.max_epochs, ""), ("BATCH_SIZE", f.batch_size, "")]
    if f.steps_per_execution != 1:
        rows += [("STEPS_PER_EXECUTION", f.steps_per_execution, "batches per train step; same numbers")]
    if not _own_compile(ctx):
        rows += [("LEARNING_RATE", f.learning_rate, f"of the {OPTIMIZERS[f.optimizer]} optimizer")]
    if cfg.checkpoint.enabled:
        rows += [("CHECKPOINT_PATH", f"checkpoint{cfg.checkpoint.format}", "where ModelCheckpoint saves")]
    out = ["# The run's settings (its config JSON has them all)."]
    for name, value, comment in rows:
        text = f"{name} = {_lit(value)}"
        if comment and len(text) + 2 + 2 + len(comment) <= _MAX_LINE:
            text += f"  # {comment}"
        out.append(_line(text))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Shared by every script: the per-epoch batch order.


@functools.cache  # the source does not change while the process runs; parsing it is ~15 ms
def _epoch_order_piece() -> _Piece:
    """core/engine/epoch_order.py's classes and ``epoch_batches``, copied from its source: one
    definition, no drift."""
    source = (Path(__file__).parents[1] / "engine" / "epoch_order.py").read_text()
    tree = ast.parse(source)
    kinds = (ast.ClassDef, ast.FunctionDef)
    parts = [ast.get_source_segment(source, n) for n in tree.body if isinstance(n, kinds)]
    return _Piece("\n\n\n".join(parts), ("import math",))


# --------------------------------------------------------------------------------------------
# build_model: the model's layers (its plugin's source) under the task's output layer.


def _own_compile(ctx: _Context) -> bool:
    """A model file trained with the optimizer and loss saved in it (model.compile "own")."""
    return ctx.model.upload is not None and ctx.config.model.compile == "own"


def _model_pieces(ctx: _Context) -> list[_Piece]:
    if (made := ctx.model.script_model(ctx.script)) is not None:
        return _file_model_pieces(ctx, made)
    cfg = ctx.config
    dtype = ', dtype="int32"' if ctx.spec.input_kind == "sequence" else ""
    layers = ctx.model.script_layers(ctx.script)
    hidden = [f"keras.Input(shape=data.x_train.shape[1:]{dtype})", *layers, "*output"]
    stack = "\n".join(f"            {line}," for line in hidden)
    if ctx.task is None:  # a CSV whose task is inferred when the script runs
        head = "output, loss, metrics = output_layers(data)"
        metric_list, loss = "metrics", "loss"
    else:
        head = f"output = {output_source(ctx.task)}"
        metric_list = _metric_list(ctx.task)
        loss = _lit(HEADS[ctx.task].loss)
    code = _code(
        '''
        def build_model(data: Data) -> keras.Model:
            """<<doc>>"""
            # The output layer is created before the others, as in the app: Keras draws the
            # seed of a layer's initial weights when the layer is created, so this order
            # gives the same initial weights.
            <<head>>
            model = keras.Sequential(
                [
        <<stack>>
                ],
                name=<<name>>,
            )
            model.compile(
                optimizer=<<optimizer>>,
                loss=<<loss>>,
                metrics=<<metrics>>,<<group>>
            )
            return model
        ''',
        doc=ctx.model.script_doc,
        group=_group_argument(ctx),
        head=head,
        stack=stack,
        name=_lit(cfg.model.name),
        optimizer=optimizer_source(cfg.fit),
        loss=loss,
        metrics=metric_list,
    )
    pieces = [_Piece(code)]
    if ctx.task is None:
        pieces.insert(0, _output_layers_piece())
    return pieces


def _file_model_pieces(ctx: _Context, made: list[str]) -> list[_Piece]:
    """build_model for a model that comes whole from a file: the plugin's lines make ``model``, then
    it is compiled as the app compiles it (no output layer is added: the file has its own)."""
    if ctx.task is None:  # a CSV whose task is inferred when the script runs
        head, loss, metric_list = ["loss, metrics = loss_and_metrics(data)"], "loss", "metrics"
    else:
        head, loss, metric_list = [], _lit(HEADS[ctx.task].loss), _metric_list(ctx.task)
    optimizer = optimizer_source(ctx.config.fit)
    if _own_compile(ctx):
        head, optimizer, loss = [], "model.optimizer", "model.loss"
        made = [*made, "# Its own optimizer and loss, as saved in the file; the task's metrics."]
    code = _code(
        '''
        def build_model(data: Data) -> keras.Model:
            """<<doc>>"""
        <<made>>
            model.compile(
                optimizer=<<optimizer>>,
                loss=<<loss>>,
                metrics=<<metrics>>,<<group>>
            )
            return model
        ''',
        doc=ctx.model.script_doc,
        group=_group_argument(ctx),
        made="\n".join(f"    {line}" for line in [*head, *made]),
        optimizer=optimizer,
        loss=loss,
        metrics=metric_list,
    )
    pieces = [_Piece(code)]
    if ctx.task is None:
        pieces.insert(0, _loss_and_metrics_piece())
    return pieces


def _loss_and_metrics_piece() -> _Piece:
    """The task's loss and metrics, for a CSV whose task is only known when the script reads it."""
    lines = [
        "def loss_and_metrics(data):",
        '    """The loss and metrics for the task, as the app picks them."""',
    ]
    for task in ("binary", "multiclass"):
        lines += [
            f"    if data.task == {_lit(task)}:",
            f"        return {_lit(HEADS[task].loss)}, {_metric_list(task)}",
        ]
    lines.append(f"    return {_lit(HEADS['regression'].loss)}, {_metric_list('regression')}")
    return _Piece("\n".join(lines))


def _metric_list(task: str) -> str:
    return "[" + ", ".join(_lit(x) for x in metrics.TASK_METRICS[task]) + "]"


def _output_layers_piece() -> _Piece:
    """The task chooser, for a CSV whose task is only known when the script reads it."""
    lines = [
        "def output_layers(data):",
        '    """Output layer(s), loss and metrics for the task, as core/models.py picks them."""',
    ]
    for task in ("binary", "multiclass"):
        lines += [
            f"    if data.task == {_lit(task)}:",
            f"        output = {output_source(task)}",
            f"        return output, {_lit(HEADS[task].loss)}, {_metric_list(task)}",
        ]
    regression = HEADS["regression"]
    lines.append(
        f"    return {output_source('regression')}, {_lit(regression.loss)}, {_metric_list('regression')}"
    )
    return _Piece("\n".join(lines))


# --------------------------------------------------------------------------------------------
# main: seed, data, model, callbacks, fit, the kept checkpoint on the test part, RESULT.


def _kwargs(call: str, kwargs: list[tuple[str, str]], indent: str = "    ") -> str:
    inner = "\n".join(f"{indent}    {k}={v}," if k else f"{indent}    {v}," for k, v in kwargs)
    return f"{indent}{call}(\n{inner}\n{indent})"


def _callbacks(ctx: _Context) -> tuple[str, list[str]]:
    """The callback lines of main and the names that go into fit's callbacks list."""
    cfg = ctx.config
    blocks, names = [], []
    if cfg.reduce_lr.enabled:  # first, as in the app: the epoch's rate goes into the logs the others see
        call = _kwargs(
            "reduce_lr = keras.callbacks.ReduceLROnPlateau",
            [
                *((k, _lit(v)) for k, v in arguments.reduce_lr_arguments(cfg.reduce_lr).items()),
                ("verbose", "1"),
            ],
        )
        blocks.append("    # Lowers the learning rate when the monitored value stops improving.\n" + call)
        names.append("reduce_lr")
    if cfg.early_stopping.enabled:
        e = cfg.early_stopping
        call = _kwargs(
            "early_stopping = keras.callbacks.EarlyStopping",
            [
                *((k, _lit(v)) for k, v in arguments.keras_arguments(e).items()),
                ("verbose", "1"),
            ],
        )
        blocks.append("    # Stops when the monitored value has not improved for `patience` epochs.\n" + call)
        names.append("early_stopping")
    if cfg.checkpoint.enabled:
        c = cfg.checkpoint
        call = _kwargs(
            "checkpoint = keras.callbacks.ModelCheckpoint",
            [
                ("", "args.checkpoint"),
                *((k, _lit(v)) for k, v in arguments.checkpoint_arguments(c).items()),
                ("verbose", "1"),
            ],
        )
        what = "the best model so far" if c.save_best_only else "the model after every epoch"
        blocks.append(
            "    # Saves "
            + what
            + ". A file left by an earlier run\n"
            + "    # must not pass for this run's, so it goes first.\n"
            + "    if os.path.exists(args.checkpoint):\n"
            + "        os.remove(args.checkpoint)\n"
            + call
        )
        names.append("checkpoint")
    for variable, comment, call in _rule_calls(ctx):
        lines = textwrap.wrap(comment, _MAX_LINE - 6, break_long_words=False, break_on_hyphens=False)
        blocks.append("".join(f"    # {line}\n" for line in lines) + f"    {call}")
        names.append(variable)
    blocks.append(
        "    # The app also stops a run whose loss becomes NaN (NaN never counts as best)."
        "\n    stop_on_nan = keras.callbacks.TerminateOnNaN()"
    )
    names.append("stop_on_nan")
    return "\n".join(blocks), names


def _best_lines(ctx: _Context) -> str:
    """How the engine decides the headline best epoch (core/live.py _best_fields), in plain Keras."""
    cfg = ctx.config
    ck, es = cfg.checkpoint, cfg.early_stopping
    if ck.enabled and ck.save_best_only:
        return _code(
            f"""
                # The best epoch is the one ModelCheckpoint last saved: the first epoch that
                # logged its `best` value (none if no epoch beat the initial threshold).
                monitor = {_lit(ck.monitor)}
                best_epoch = best_value = None
                if os.path.exists(args.checkpoint):
                    best_value = checkpoint.best
                    best_epoch = history.history[monitor].index(best_value) + 1
            """
        )
    if es.enabled:
        return _code(
            f"""
                # The best epoch is EarlyStopping's (it counts from 0; Keras prints from 1).
                monitor = {_lit(es.monitor)}
                best_epoch = best_value = None
                if early_stopping.best is not None:
                    best_epoch, best_value = early_stopping.best_epoch + 1, early_stopping.best
            """
        )
    return "monitor = best_epoch = best_value = None  # nothing tracks a best epoch"


def _evaluate_lines(ctx: _Context) -> str:
    ck = ctx.config.checkpoint
    if not ck.enabled:
        return "    # No checkpoint: the test part is evaluated with the final weights."
    load = (
        "# Weights only: the same model again, then the weights (Keras may warn that it\n"
        "        # skips the optimizer's state, which evaluation does not use).\n"
        "        model = build_model(data)\n"
        "        model.load_weights(args.checkpoint)"
        if ck.save_weights_only
        else "model = keras.models.load_model(args.checkpoint)"
    )
    return (
        "    # The kept checkpoint, not the last weights, is evaluated on the test part.\n"
        "    if os.path.exists(args.checkpoint):\n"
        f"        {load}\n"
        "    else:\n"
        '        print("No checkpoint was saved; evaluating the final weights instead.")'
    )


def _rule_pieces(ctx: _Context) -> list[_Piece]:
    """The config's stopping rules as the small Keras callback classes their plugins write (once each)."""
    pieces: dict[str, _Piece] = {}
    for r in ctx.config.stopping_rules:
        rule = RULES[r.name]
        text = rule.script_class.strip()
        pieces.setdefault(text, _Piece(text, rule.script_imports))
    return list(pieces.values())


def _rule_calls(ctx: _Context) -> list[tuple[str, str, str]]:
    """(variable, comment, call) of each stopping rule, watching EarlyStopping's monitor and mode."""
    es = ctx.config.early_stopping
    mode = metrics.resolve_mode(es.monitor, es.mode) or "min"
    out = []
    for r in ctx.config.stopping_rules:
        rule = RULES[r.name]
        params = rule.checked(r.params)
        cls, kwargs = rule.script_call(params, es.monitor, mode)
        if rule.several_monitors:  # each metric with the direction Keras' "auto" gives it
            kwargs = {"monitors": {m: metrics.resolve_mode(m, "auto") or "min" for m in r.monitors}, **kwargs}
        call = _kwargs(f"{r.name} = {cls}", [(k, _lit(v)) for k, v in kwargs.items()]).strip()
        out.append((r.name, rule.description, call))
    return out


def _name_list(names: list[str], line: str, indent: str) -> str:
    """``[a, b]`` in ``line`` (at ``<<names>>``), or one name a line as ruff formats it when too long."""
    one_line = "[" + ", ".join(names) + "]"
    if len(indent + line.replace("<<names>>", one_line)) <= _MAX_LINE:
        return one_line
    return "[\n" + "".join(f"{indent}    {name},\n" for name in names) + f"{indent}]"


def _main(ctx: _Context) -> _Piece:
    cfg = ctx.config
    callback_lines, names = _callbacks(ctx)
    args_lines = []
    if ctx.is_csv:
        args_lines.append('    parser.add_argument("csv", nargs="?", default=CSV_PATH, help="the CSV file")')
    elif ctx.script.reads_file:
        args_lines.append(
            '    parser.add_argument("data", nargs="?", default=DATA_PATH, help="the uploaded file")'
        )
    if cfg.checkpoint.enabled:
        args_lines.append(
            '    parser.add_argument("--checkpoint", default=CHECKPOINT_PATH, help="where to save")'
        )
    validation = "        validation_data=(data.x_val, data.y_val),\n" if ctx.has_val else ""
    stopped = (
        "stopped_epoch = None  # None: not stopped early\n"
        "    if early_stopping.stopped_epoch > 0:  # it counts from 0 too\n"
        "        stopped_epoch = early_stopping.stopped_epoch + 1"
        if cfg.early_stopping.enabled
        else "stopped_epoch = None  # no early stopping"
    )
    if cfg.stopping_rules:
        rules = _name_list(
            [variable for variable, _, _ in _rule_calls(ctx)], "for rule in <<names>>:", "    "
        )
        stopped += (
            f"\n    for rule in {rules}:\n"
            "        if rule.stopped_epoch is not None:  # a stopping rule stopped it (from 0 too)\n"
            "            stopped_epoch = rule.stopped_epoch + 1"
        )
    code = _code(
        """
        def main() -> None:
            parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        <<args>>
            <<parse>>

            # Seed Python, NumPy and TensorFlow before the data is loaded, as the app does: the
            # initial weights and dropout follow from it. The order of the samples in each
            # epoch follows from SEED and the epoch alone (epoch_batches), so a run
            # resumed from a saved state sees the same batches as one never interrupted.
            keras.utils.set_random_seed(SEED)
            data = load_data(<<data_arg>>)
            n_train, n_test = len(data.x_train), len(data.x_test)
            n_val = 0 if data.x_val is None else len(data.x_val)
            print(f"{n_train} training, {n_val} validation and {n_test} test samples.")
            model = build_model(data)

        <<callbacks>>
            batches, shuffler = epoch_batches(data.x_train, data.y_train, BATCH_SIZE, SEED)
            history = model.fit(
                batches,
        <<validation>>        epochs=MAX_EPOCHS,
                shuffle=False,  # the batches shuffle themselves (see epoch_batches)
                callbacks=<<names>>,
                verbose=2,
            )

        <<best>>
            <<stopped>>

        <<evaluate>>
            test = model.evaluate(
                data.x_test, data.y_test, batch_size=BATCH_SIZE, verbose=0, return_dict=True
            )
            result = {
                "monitor": monitor,
                "best_epoch": best_epoch,  # 1-based, as Keras prints epochs
                "best_value": best_value,
                "stopped_epoch": stopped_epoch,
                "epochs_run": len(history.epoch),
                "test": {name: float(value) for name, value in test.items()},
            }
            print("RESULT " + json.dumps(result))
        """,
        args="\n".join(args_lines),
        parse="args = parser.parse_args()" if args_lines else "parser.parse_args()  # only --help",
        data_arg="args.csv" if ctx.is_csv else ("args.data" if ctx.script.reads_file else ""),
        callbacks=callback_lines,
        validation=validation,
        names=_name_list(["shuffler", *names], "callbacks=<<names>>,", "        "),
        best=textwrap.indent(_best_lines(ctx), "    "),
        stopped=stopped,
        evaluate=_evaluate_lines(ctx),
    )
    imports = ("import argparse", "import json") + (("import os",) if cfg.checkpoint.enabled else ())
    return _Piece(code, imports)
