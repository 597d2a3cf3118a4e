"""What goes on top of every model, and what it is compiled with: one table each, from which both
the app's model and the exported script's source are made (so the two cannot differ)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.codegen import lit
from core.config import FitConfig

N_CLASSES = object()  # stands for the number of classes of the data


@dataclass(frozen=True)
class LayerCall:
    """``layers.<cls>(*args, **kwargs)``, to create or to write out."""

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def create(self, layers: Any, n_classes: int) -> Any:
        args = [n_classes if a is N_CLASSES else a for a in self.args]
        return getattr(layers, self.cls)(*args, **dict(self.kwargs))

    def source(self) -> str:
        args = ["len(data.classes)" if a is N_CLASSES else lit(a) for a in self.args]
        args += [f"{k}={lit(v)}" for k, v in self.kwargs]
        return f"layers.{self.cls}({', '.join(args)})"


@dataclass(frozen=True)
class Head:
    layers: tuple[LayerCall, ...]
    loss: str


HEADS: dict[str, Head] = {
    "binary": Head((LayerCall("Dense", (1,)), LayerCall("Activation", ("sigmoid",))), "binary_crossentropy"),
    "multiclass": Head(
        (LayerCall("Dense", (N_CLASSES,), (("activation", "softmax"),)),), "sparse_categorical_crossentropy"
    ),
    "regression": Head((LayerCall("Dense", (1,)),), "mse"),
}

# config.Optimizer's names -> keras.optimizers classes.
OPTIMIZERS: dict[str, str] = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "nadam": "Nadam",
    "adagrad": "Adagrad",
}


def output_layers(keras: Any, task: str, n_classes: int) -> tuple[list, str]:
    """Output layer(s) and loss for the task."""
    head = HEADS[task]
    return [call.create(keras.layers, n_classes) for call in head.layers], head.loss


def output_source(task: str) -> str:
    """The same output layers as a source list, e.g. ``[layers.Dense(1)]``."""
    return "[" + ", ".join(call.source() for call in HEADS[task].layers) + "]"


def make_optimizer(keras: Any, fit: FitConfig) -> Any:
    return getattr(keras.optimizers, OPTIMIZERS[fit.optimizer])(learning_rate=fit.learning_rate)


def optimizer_source(fit: FitConfig) -> str:
    return f"keras.optimizers.{OPTIMIZERS[fit.optimizer]}(learning_rate=LEARNING_RATE)"


def compiled_steps_per_execution(fit: FitConfig) -> int:
    """The ``steps_per_execution`` a model is compiled with: the config's count, or 1 for "auto" until
    the engine has measured a batch and chosen (core/engine/batch_groups.py)."""
    return fit.steps_per_execution if isinstance(fit.steps_per_execution, int) else 1
