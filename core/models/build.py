"""A registered model on a dataset: built and compiled, or its size estimated without TensorFlow.

Keras is imported inside ``build`` only: listing and estimating models (the UI, config validation)
must not pay for importing TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.config import FitConfig, ModelConfig
from core.metrics import TASK_METRICS
from core.models.contract import Uploads
from core.models.head import compiled_steps_per_execution, make_optimizer, output_layers
from core.models.registry import MODELS

if TYPE_CHECKING:
    import keras

    from core.data.contract import Dataset


def suggest(input_kind: str) -> str:
    """The label of the first model that takes this kind of input."""
    for spec in MODELS.values():
        if input_kind in spec.input_kinds:
            return f"the {spec.label}"
    return "another model"


def build(ds: Dataset, cfg: ModelConfig, fit: FitConfig, *, uploads_dir: Uploads = None) -> keras.Model:
    """A compiled Sequential model for this dataset (or the uploaded model, compiled).

    The output layer is created before the hidden ones: Keras draws a layer's initial weights'
    seed when the layer is created, and the exported script repeats this order.
    """
    import keras

    spec = MODELS[cfg.name]
    if ds.input_kind not in spec.input_kinds:
        raise ValueError(f"The {spec.label} does not take {ds.input_kind} data.")
    if (whole := spec.build_model(keras, cfg, ds, fit, uploads_dir)) is not None:
        return whole
    head, loss = output_layers(keras, ds.task, len(ds.classes))
    model = keras.Sequential(spec.layers(keras, cfg, ds) + head, name=cfg.name)
    model.compile(
        optimizer=make_optimizer(keras, fit),
        loss=loss,
        metrics=list(TASK_METRICS[ds.task]),
        steps_per_execution=compiled_steps_per_execution(fit),
    )
    return model


def estimate_params(cfg: ModelConfig, input_shape: tuple[int, ...], task: str, n_classes: int | None,
                    vocab_size: int | None = None, *, uploads_dir: Uploads = None) -> int:  # fmt: skip
    """The parameter count ``build`` will produce, without TensorFlow (for size and disk estimates)."""
    if (facts := MODELS[cfg.name].file_facts(cfg, uploads_dir)) is not None:
        return facts.params
    outputs = n_classes if task == "multiclass" and n_classes else 1
    params, width = MODELS[cfg.name].hidden_params(cfg, tuple(input_shape), vocab_size)
    return params + width * outputs + outputs


def estimate_activations(
    cfg: ModelConfig, input_shape: tuple[int, ...], *, uploads_dir: Uploads = None
) -> int:
    """Floats one sample's forward pass keeps for the backward pass (for the memory estimate)."""
    if (facts := MODELS[cfg.name].file_facts(cfg, uploads_dir)) is not None:
        return MODELS[cfg.name].activations(cfg, tuple(input_shape)) * max(facts.layers, 1)
    return MODELS[cfg.name].activations(cfg, tuple(input_shape))
