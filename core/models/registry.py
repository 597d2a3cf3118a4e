"""Every model, by name: one line per plugin. The UI, validation, the engine and the exporter find
models here and nowhere else; tests/test_every_plugin.py tests each one with every dataset it takes."""

from __future__ import annotations

from core.models.cnn import CNN
from core.models.contract import ModelSpec
from core.models.lstm import LSTM
from core.models.mlp import MLP
from core.models.seed_conv1d import SEED_CONV1D
from core.models.uploaded import UPLOADED

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        MLP,
        CNN,
        SEED_CONV1D,
        LSTM,
        UPLOADED,
    )
}
