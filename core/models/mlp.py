"""A multilayer perceptron: dense ReLU layers with optional dropout, for tables or flattened images."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.codegen import ScriptContext
from core.config import ModelConfig
from core.data.contract import Dataset
from core.models.contract import ModelSpec


@dataclass(frozen=True)
class Mlp(ModelSpec):
    def layers(self, keras: Any, cfg: ModelConfig, ds: Dataset) -> list:
        layers = keras.layers
        out = [layers.Input(shape=ds.input_shape)]
        if len(ds.input_shape) > 1:
            out.append(layers.Flatten())
        for _ in range(cfg.depth):
            out.append(layers.Dense(cfg.units, activation="relu"))
            if cfg.dropout > 0:
                out.append(layers.Dropout(cfg.dropout))
        return out

    def hidden_params(self, cfg: ModelConfig, input_shape: tuple[int, ...], vocab_size: int | None):
        width, params = math.prod(input_shape), 0
        for _ in range(cfg.depth):
            params += width * cfg.units + cfg.units
            width = cfg.units
        return params, width

    def activations(self, cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
        return 2 * cfg.units * cfg.depth + math.prod(input_shape)

    def script_layers(self, ctx: ScriptContext) -> list[str]:
        m = ctx.config.model
        out = ["layers.Flatten()"] if ctx.input_kind == "image" else []
        for _ in range(m.depth):
            out.append('layers.Dense(UNITS, activation="relu")')
            if m.dropout > 0:
                out.append("layers.Dropout(DROPOUT)")
        return out

    def summary(self, cfg: ModelConfig) -> str:
        dropout = f", dropout {cfg.dropout:g}" if cfg.dropout > 0 else ""
        return f"MLP, {cfg.depth} dense layer{'s' if cfg.depth != 1 else ''} of {cfg.units} units{dropout}"


MLP = Mlp(
    "mlp",
    "MLP",
    "Dense layers with ReLU and optional dropout: tabular data or flattened images.",
    ("tabular", "image"),
    ("units", "depth", "dropout"),
    "Dense layers with ReLU (and dropout when DROPOUT > 0).",
)
