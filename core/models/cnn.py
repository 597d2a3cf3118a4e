"""A small CNN: two Conv2D blocks and a dense layer, for images from 8x8 digits to 28x28 MNIST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.codegen import ScriptContext
from core.config import ModelConfig
from core.data.contract import Dataset
from core.models.contract import ModelSpec

BLOCKS = 2


def _pools(input_shape: tuple[int, ...]) -> list[bool]:
    """Whether each block pools: only while the feature map stays at least 2x2 (digits are 8x8)."""
    size, out = min(input_shape[:2]), []
    for _ in range(BLOCKS):
        out.append(size >= 4)
        if size >= 4:
            size //= 2
    return out


@dataclass(frozen=True)
class Cnn(ModelSpec):
    def layers(self, keras: Any, cfg: ModelConfig, ds: Dataset) -> list:
        layers = keras.layers
        out = [layers.Input(shape=ds.input_shape)]
        for block, pool in enumerate(_pools(ds.input_shape)):
            out.append(layers.Conv2D(cfg.filters * 2**block, 3, padding="same", activation="relu"))
            if pool:
                out.append(layers.MaxPooling2D(2))
        out.append(layers.Flatten())
        if cfg.dropout > 0:
            out.append(layers.Dropout(cfg.dropout))
        out.append(layers.Dense(cfg.units, activation="relu"))
        return out

    def hidden_params(self, cfg: ModelConfig, input_shape: tuple[int, ...], vocab_size: int | None):
        h, w, c = input_shape
        params = 0
        for block, pool in enumerate(_pools(input_shape)):
            filters = cfg.filters * 2**block
            params += 3 * 3 * c * filters + filters
            c = filters
            if pool:
                h, w = h // 2, w // 2
        return params + h * w * c * cfg.units + cfg.units, cfg.units

    def activations(self, cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
        h, w = input_shape[:2]
        return 2 * h * w * cfg.filters + h * w * cfg.filters + 2 * cfg.units

    def script_layers(self, ctx: ScriptContext) -> list[str]:
        out = []
        for block, pool in enumerate(_pools(ctx.input_shape)):  # pool only while the map stays >= 2x2
            filters = "FILTERS" if block == 0 else f"FILTERS * {2**block}"
            out.append(f'layers.Conv2D({filters}, 3, padding="same", activation="relu")')
            if pool:
                out.append("layers.MaxPooling2D(2)")
        out.append("layers.Flatten()")
        if ctx.config.model.dropout > 0:
            out.append("layers.Dropout(DROPOUT)")
        out.append('layers.Dense(UNITS, activation="relu")')
        return out

    def summary(self, cfg: ModelConfig) -> str:
        dropout = f", dropout {cfg.dropout:g}" if cfg.dropout > 0 else ""
        return f"small CNN, {cfg.filters} and {cfg.filters * 2} filters, dense {cfg.units}{dropout}"


CNN = Cnn(
    "cnn",
    "small CNN",
    "Two Conv2D blocks and a dense layer: images (MNIST, Fashion-MNIST, digits 8x8).",
    ("image",),
    ("filters", "units", "dropout"),
    "Two Conv2D blocks and a dense layer.",
)
