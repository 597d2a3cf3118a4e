"""core.models: every registered model's contract, checked on real Keras models (no training).

The estimates must be the built model's own count for any knob values (they gate the size limits
before anything is built), the knobs must be declared settings with a widget, and the output layers
and optimizers the app builds must be the ones the exported script writes.
"""

from __future__ import annotations

import dataclasses
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from core.config import OPTIMIZERS, FitConfig, ModelConfig
from core.data.contract import Dataset
from core.models import MODELS, build, estimate_activations, estimate_params, suggest
from core.models.head import HEADS, output_layers, output_source
from core.models.head import OPTIMIZERS as OPTIMIZER_CLASSES
from core.models.knobs import KNOBS

SHAPES = {"tabular": [(5,), (37,)], "image": [(8, 8, 1), (28, 28, 1), (3, 5, 2)], "sequence": [(7,), (40,)]}
TASKS = {"binary": ["no", "yes"], "multiclass": ["a", "b", "c", "d"], "regression": []}


def fake_data(kind: str, shape: tuple[int, ...], task: str, vocab: int = 120) -> Dataset:
    """A Dataset with the facts a model reads (shape, task, classes, vocabulary); no rows needed."""
    x = np.zeros((0, *shape), dtype=np.int32 if kind == "sequence" else np.float32)
    y = np.zeros((0,), dtype=np.float32)
    return Dataset(x, y, None, None, x, y, task, kind, TASKS[task], shape, vocab, [], "")


def knob_settings(knobs: tuple[str, ...]) -> list[ModelConfig]:
    values = {"units": (1, 33), "depth": (0, 3), "dropout": (0.0, 0.5), "filters": (3, 16)}
    grids = [values[k] for k in knobs]
    return [ModelConfig(**dict(zip(knobs, combo))) for combo in itertools.product(*grids)]


CASES = [
    pytest.param(name, kind, shape, task, id=f"{name}-{kind}{'x'.join(map(str, shape))}-{task}")
    for name, spec in MODELS.items()
    if spec.upload is None  # a model from a file: tests/models/test_uploaded_model.py, test_every_plugin.py
    for kind in spec.input_kinds
    for shape in SHAPES[kind]
    for task in TASKS
]


@pytest.mark.parametrize(("name", "kind", "shape", "task"), CASES)
def test_estimate_is_the_built_models_count_for_any_knobs(name, kind, shape, task):
    ds = fake_data(kind, shape, task)
    n_classes = len(ds.classes) or None
    for cfg in knob_settings(MODELS[name].knobs):
        cfg = dataclasses.replace(cfg, name=name)
        model = build(ds, cfg, FitConfig())
        assert estimate_params(cfg, shape, task, n_classes, ds.vocab_size) == model.count_params(), cfg
        assert estimate_activations(cfg, shape) > 0


def test_every_knob_is_a_declared_setting_with_a_widget():
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for spec in MODELS.values():
        for knob in spec.knobs:
            assert knob in fields, f"{spec.name}: knob {knob!r} is not a ModelConfig field"
            assert knob in KNOBS, f"{spec.name}: knob {knob!r} has no row in core/models/knobs.py"


def test_every_input_kind_has_a_model_to_suggest():
    for kind in SHAPES:
        assert suggest(kind) != "another model", kind


def test_every_declared_optimizer_is_a_keras_class():
    import keras

    assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS)
    for name, cls in OPTIMIZER_CLASSES.items():
        assert issubclass(getattr(keras.optimizers, cls), keras.optimizers.Optimizer), name


@pytest.mark.parametrize("task", list(HEADS))
def test_the_scripts_output_layers_are_the_apps(task):
    """The source the exported script writes, evaluated, makes the same layers as the app's."""
    import keras

    data = SimpleNamespace(classes=TASKS[task])
    written = eval(output_source(task), {"layers": keras.layers, "data": data})  # our own source text
    built, _ = output_layers(keras, task, len(TASKS[task]))
    assert [type(layer) for layer in written] == [type(layer) for layer in built]

    def config(layer):
        return {k: v for k, v in layer.get_config().items() if k != "name"}

    assert [config(layer) for layer in written] == [config(layer) for layer in built]
