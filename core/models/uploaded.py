"""Your own model: a ``.keras`` file uploaded on the Train page, trained with the app's callbacks.

It comes whole from the file, so it fills the contract's file hooks rather than ``layers``: its facts
(shapes, parameters, whether it was compiled) are read from the archive without TensorFlow
(``keras_file.py``); the training process loads it with ``safe_mode=True``, and its saved weights are
the starting point (no seed draws them: the seed still decides the split, the batch order and
dropout). It is compiled with the form's optimizer and learning rate and the task's loss
(``model.compile`` "form"), or with the optimizer and loss saved in the file ("own"); the metrics are
always the task's, so the page's charts and monitors know what is logged.

Memory estimate: rough. The file does not say how large each layer's output is, so every layer is
taken to keep twice the input's size per sample for the backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.codegen import ScriptContext
from core.config import FitConfig, ModelConfig, Problem
from core.data import uploads
from core.metrics import TASK_METRICS
from core.models.contract import ModelSpec, Uploads
from core.models.head import HEADS, compiled_steps_per_execution, make_optimizer
from core.models.keras_file import SUFFIX, KerasFileFacts, ModelFileError, facts_of_upload, shape_text

if TYPE_CHECKING:
    from core.data.contract import Dataset, DatasetInfo

NO_FILE = "model.upload: upload a .keras model file (Your model needs one)."


def _fits(model_shape: tuple[int | None, ...], data_shape: tuple[int, ...]) -> bool:
    return len(model_shape) == len(data_shape) and all(
        m is None or m == d for m, d in zip(model_shape, data_shape)
    )


def _needs(task: str, n_classes: int | None, own: bool) -> tuple[tuple[int, ...], str | None, str]:
    """(widths the output may have, the activation it must end in, how the message says it)."""
    if task == "multiclass":
        n = n_classes or 0
        return (
            (n,),
            None if own else "softmax",
            f'{n} softmax units (keras.layers.Dense({n}, activation="softmax"))',
        )
    if task == "binary":
        if own:
            return (1, 2), None, "1 unit (or 2 with your own loss)"
        return (1,), "sigmoid", '1 sigmoid unit (keras.layers.Dense(1, activation="sigmoid"))'
    return (1,), None, "1 unit (keras.layers.Dense(1))"


def _what(task: str, n_classes: int | None) -> str:
    if task == "multiclass":
        return f"this dataset has {n_classes} classes"
    return "this dataset is a binary task" if task == "binary" else "this dataset is a regression task"


def output_problem(units: int | None, activation: str | None, task: str, n_classes: int | None,
                   own: bool, shown: str) -> str | None:  # fmt: skip
    """Why an output of ``units`` ending in ``activation`` does not fit the task, or None."""
    widths, act, need = _needs(task, n_classes, own)
    if units is None or (units in widths and (act is None or activation == act)):
        return None
    return (
        f"model.upload: the model's output is {shown} (shape ({units},)), but {_what(task, n_classes)}: "
        f"it needs {need}. Change the model's last layer and save it again, or pick a dataset that fits it."
    )


def input_problem(model_shape: tuple[int | None, ...], data_shape: tuple[int, ...]) -> str | None:
    if _fits(tuple(model_shape), tuple(data_shape)):
        return None
    return (
        f"model.upload: the model takes samples of shape {shape_text(model_shape)}, but this dataset's "
        f"samples have shape {shape_text(data_shape)}. Start the model with "
        f"keras.Input(shape={tuple(data_shape)}) and save it again, or pick a dataset of that shape."
    )


def dtype_problem(model_dtype: str, input_kind: str) -> str | None:
    """Integer inputs (token ids, for an Embedding) fed features or pixels: Keras would cast them to
    whole numbers without a word (0.4 -> 0, -2.2 -> -2), and train on that."""
    if input_kind == "sequence" or not model_dtype.startswith(("int", "uint")):
        return None
    return (
        f"model.upload: the model takes {model_dtype} inputs (whole numbers, such as token ids), but this "
        f"dataset's samples are {input_kind} values (fractions): Keras would cut them to whole numbers. "
        'Start the model with keras.Input(shape=..., dtype="float32") and save it again, or pick a text '
        "dataset."
    )


@dataclass(frozen=True)
class Uploaded(ModelSpec):
    def file_facts(self, cfg: ModelConfig, uploads_dir: Uploads) -> KerasFileFacts | None:
        if cfg.upload is None:
            raise ModelFileError(NO_FILE)
        return facts_of_upload(cfg.upload, uploads_dir)

    def check(self, cfg: ModelConfig, info: DatasetInfo | None, uploads_dir: Uploads) -> list[Problem]:
        if cfg.upload is None:
            return [Problem("model.upload", NO_FILE)]
        try:
            facts = facts_of_upload(cfg.upload, uploads_dir)
        except ModelFileError as exc:
            return [Problem("model.upload", f"model.upload ({cfg.file_name or 'your .keras file'}): {exc}")]
        out = []
        if cfg.compile == "own" and not facts.compiled:
            out.append(
                Problem(
                    "model.compile",
                    "model.compile: 'own' trains with the optimizer and loss saved in the file, but this "
                    "model was saved without them (never compiled). Compile it (model.compile(optimizer=..., "
                    "loss=...)) before saving, or use the form's optimizer and loss.",
                )
            )
        shape = info.input_shape if info is not None else None
        if shape is not None and (message := input_problem(facts.input_shape, shape)) is not None:
            out.append(Problem("model.upload", message))
        if info is not None and (message := dtype_problem(facts.input_dtype, info.input_kind)) is not None:
            out.append(Problem("model.upload", message))
        if info is not None:
            message = output_problem(
                facts.output_units, facts.output_activation, info.task, info.n_classes, cfg.compile == "own",
                facts.output_text(),
            )  # fmt: skip
            if message is not None:
                out.append(Problem("model.upload", message))
        return out

    def build_model(
        self, keras: Any, cfg: ModelConfig, ds: Dataset, fit: FitConfig, uploads_dir: Uploads
    ) -> Any:
        # The same checks as before training (Lambda layers, custom classes) before Keras reads it.
        self.file_facts(cfg, uploads_dir)
        path = uploads.path_of(cfg.upload or "", uploads_dir, SUFFIX)
        own = cfg.compile == "own"
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=own)
        except Exception as exc:  # noqa: BLE001 - whatever Keras says becomes the run's message
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ModelFileError(
                f"Keras could not load the model file ({type(exc).__name__}: {first}). Check that it loads "
                "with keras.saving.load_model(path, safe_mode=True) where it was made, and save it again."
            ) from None
        _check_loaded(model, ds, own)
        if own:
            if model.optimizer is None or getattr(model, "loss", None) is None:
                raise ModelFileError(
                    "model.compile: the file holds no optimizer and loss to train with: use the form's."
                )
            optimizer, loss = model.optimizer, model.loss
        else:
            optimizer, loss = make_optimizer(keras, fit), HEADS[ds.task].loss
        # "own" too: the batches per step are the run's setting, not something the file decides.
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=list(TASK_METRICS[ds.task]),
            steps_per_execution=compiled_steps_per_execution(fit),
        )
        return model

    def hidden_params(self, cfg: ModelConfig, input_shape: tuple[int, ...], vocab_size: int | None):
        raise NotImplementedError("the uploaded model's parameters come from its file (file_facts)")

    def activations(self, cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
        """Per layer (``estimate_activations`` multiplies by the file's layer count): rough, see above."""
        return 2 * math.prod(d or 1 for d in input_shape)

    def layers(self, keras: Any, cfg: ModelConfig, ds: Dataset) -> list:
        raise NotImplementedError("the uploaded model is built whole (build_model)")

    def script_layers(self, ctx: ScriptContext) -> list[str]:
        raise NotImplementedError("the uploaded model's script loads the file (script_model)")

    def script_model(self, ctx: ScriptContext) -> list[str]:
        own = ctx.config.model.compile == "own"
        return [
            "# Your model, with the weights it was saved with as the starting point. safe_mode:",
            "# Keras refuses a file holding Python code (a Lambda layer).",
            f"model = keras.saving.load_model(MODEL_PATH, safe_mode=True, compile={own})",
        ]

    def script_settings(self, ctx: ScriptContext) -> list[tuple[str, object, str]]:
        return [("MODEL_PATH", ctx.config.model.file_name or "model.keras", "your .keras model file")]

    def summary(self, cfg: ModelConfig) -> str:
        how = "its own optimizer and loss" if cfg.compile == "own" else "the run's optimizer and loss"
        return f"your own model (the .keras file MODEL_PATH), trained with {how}"


def _check_loaded(model: Any, ds: Dataset, own: bool) -> None:
    """The real model against the data, in case the file's config did not tell (a nested model)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(
            f"The model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; the app trains "
            "models with one of each."
        )
    in_shape = tuple(model.inputs[0].shape[1:])
    if (message := input_problem(in_shape, ds.input_shape)) is not None:
        raise ModelFileError(message)
    if (message := dtype_problem(str(model.inputs[0].dtype), ds.input_kind)) is not None:
        raise ModelFileError(message)
    out_shape = tuple(model.outputs[0].shape[1:])
    units = out_shape[0] if len(out_shape) == 1 and out_shape[0] is not None else None
    if units is None:
        raise ModelFileError(
            f"model.upload: the model's output has shape {shape_text(out_shape)} per sample; the app needs "
            "one vector of units (end the model with a Dense layer)."
        )
    n_classes = len(ds.classes) or None
    widths, _, need = _needs(ds.task, n_classes, own)
    if units not in widths:
        raise ModelFileError(
            f"model.upload: the model's output has shape ({units},), but {_what(ds.task, n_classes)}: "
            f"it needs {need}. Change the model's last layer and save it again, or pick a dataset that "
            "fits it."
        )


UPLOADED = Uploaded(
    "uploaded",
    "Your model (.keras)",
    "A Keras model you saved with model.save('model.keras'): its own layers and starting weights.",
    ("tabular", "image", "sequence"),
    (),
    "Your model, loaded from its .keras file (MODEL_PATH).",
    SUFFIX,
)
