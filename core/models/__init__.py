"""Model registry: name -> builder(dataset, configs) -> compiled keras.Model.

The output layer, loss and metrics follow the dataset's task, so every preset works on every
dataset of the input kind it accepts. Keras is imported inside the builders: listing the models
(for the UI and for config validation) must not pay for importing TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import FitConfig, ModelConfig
from core.metrics import TASK_METRICS

if TYPE_CHECKING:
    import keras

    from core.data.datasets import Dataset


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    description: str
    input_kinds: tuple[str, ...]
    knobs: tuple[str, ...]  # which ModelConfig fields this preset uses
    build_layers: Callable[[Any, ModelConfig, Dataset], list]


def _mlp_layers(keras_mod, cfg: ModelConfig, ds: Dataset) -> list:
    layers = keras_mod.layers
    out = [layers.Input(shape=ds.input_shape)]
    if len(ds.input_shape) > 1:
        out.append(layers.Flatten())
    for _ in range(cfg.depth):
        out.append(layers.Dense(cfg.units, activation="relu"))
        if cfg.dropout > 0:
            out.append(layers.Dropout(cfg.dropout))
    return out


def _cnn_layers(keras_mod, cfg: ModelConfig, ds: Dataset) -> list:
    layers = keras_mod.layers
    out = [layers.Input(shape=ds.input_shape)]
    size = min(ds.input_shape[:2])
    filters = cfg.filters
    # Two conv blocks; pool only while the feature map stays at least 2x2 (digits are 8x8).
    for _ in range(2):
        out.append(layers.Conv2D(filters, 3, padding="same", activation="relu"))
        if size >= 4:
            out.append(layers.MaxPooling2D(2))
            size //= 2
        filters *= 2
    out.append(layers.Flatten())
    if cfg.dropout > 0:
        out.append(layers.Dropout(cfg.dropout))
    out.append(layers.Dense(cfg.units, activation="relu"))
    return out


def _seed_conv1d_layers(keras_mod, cfg: ModelConfig, ds: Dataset) -> list:
    """The Keras IMDB Conv1D example exactly as the seed tutorial trains it."""
    layers = keras_mod.layers
    del cfg  # the seed's architecture is fixed on purpose
    return [
        layers.Input(shape=ds.input_shape, dtype="int32"),
        layers.Embedding(ds.vocab_size, 50),
        layers.Dropout(0.2),
        layers.Conv1D(250, 3, padding="valid", activation="relu", strides=1),
        layers.GlobalMaxPooling1D(),
        layers.Dense(250),
        layers.Dropout(0.2),
        layers.Activation("relu"),
    ]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "mlp",
            "MLP",
            "Dense layers with ReLU and optional dropout: tabular data or flattened images.",
            ("tabular", "image"),
            ("units", "depth", "dropout"),
            _mlp_layers,
        ),
        ModelSpec(
            "cnn",
            "small CNN",
            "Two Conv2D blocks and a dense layer: images (MNIST, Fashion-MNIST, digits 8x8).",
            ("image",),
            ("filters", "units", "dropout"),
            _cnn_layers,
        ),
        ModelSpec(
            "seed_conv1d",
            "seed IMDB Conv1D",
            "The tutorial's model: Embedding 50, Conv1D 250x3, global max pooling, Dense 250.",
            ("sequence",),
            (),
            _seed_conv1d_layers,
        ),
    )
}


def suggest(input_kind: str) -> str:
    """The label of the first preset that takes this kind of input."""
    for spec in MODELS.values():
        if input_kind in spec.input_kinds:
            return f"the {spec.label}"
    return "another model"


def output_layers(keras_mod, ds: Dataset) -> tuple[list, str]:
    """Output layer(s) and loss for the task."""
    layers = keras_mod.layers
    if ds.task == "binary":
        return [layers.Dense(1), layers.Activation("sigmoid")], "binary_crossentropy"
    if ds.task == "multiclass":
        return [layers.Dense(len(ds.classes), activation="softmax")], "sparse_categorical_crossentropy"
    return [layers.Dense(1)], "mse"


def make_optimizer(keras_mod, fit: FitConfig):
    classes = {
        "adam": keras_mod.optimizers.Adam,
        "adamw": keras_mod.optimizers.AdamW,
        "sgd": keras_mod.optimizers.SGD,
        "rmsprop": keras_mod.optimizers.RMSprop,
        "nadam": keras_mod.optimizers.Nadam,
        "adagrad": keras_mod.optimizers.Adagrad,
    }
    return classes[fit.optimizer](learning_rate=fit.learning_rate)


def build(ds: Dataset, cfg: ModelConfig, fit: FitConfig) -> keras.Model:
    """A compiled Sequential model for this dataset."""
    import keras

    spec = MODELS[cfg.name]
    if ds.input_kind not in spec.input_kinds:
        raise ValueError(f"The {spec.label} does not take {ds.input_kind} data.")
    head, loss = output_layers(keras, ds)
    model = keras.Sequential(spec.build_layers(keras, cfg, ds) + head, name=cfg.name)
    model.compile(optimizer=make_optimizer(keras, fit), loss=loss, metrics=list(TASK_METRICS[ds.task]))
    return model


def estimate_params(cfg: ModelConfig, input_shape: tuple[int, ...], task: str, n_classes: int | None,
                    vocab_size: int | None = None) -> int:  # fmt: skip
    """The parameter count ``build`` will produce, without TensorFlow (for disk-cost estimates)."""
    outputs = n_classes if task == "multiclass" and n_classes else 1
    if cfg.name == "seed_conv1d":
        width = 250
        params = (vocab_size or 5000) * 50 + (3 * 50 * 250 + 250) + (250 * 250 + 250)
    elif cfg.name == "cnn":
        h, w, c = input_shape
        size, filters, params = min(h, w), cfg.filters, 0
        for _ in range(2):
            params += 3 * 3 * c * filters + filters
            c = filters
            if size >= 4:
                h, w, size = h // 2, w // 2, size // 2
            filters *= 2
        params += h * w * c * cfg.units + cfg.units
        width = cfg.units
    else:
        width = 1
        for d in input_shape:
            width *= d
        params = 0
        for _ in range(cfg.depth):
            params += width * cfg.units + cfg.units
            width = cfg.units
    return params + width * outputs + outputs


def estimate_activations(cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
    """Floats one sample's forward pass keeps for the backward pass (for the memory estimate)."""
    if cfg.name == "seed_conv1d":
        return input_shape[0] * (50 + 250) + 2 * 250
    if cfg.name == "cnn":
        h, w = input_shape[:2]
        return 2 * h * w * cfg.filters + h * w * cfg.filters + 2 * cfg.units
    return 2 * cfg.units * cfg.depth + math.prod(input_shape)
