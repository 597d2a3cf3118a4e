"""The tutorial's model: Keras' IMDB Conv1D example exactly as the seed trains it (fixed on purpose)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.codegen import ScriptContext
from core.config import ModelConfig
from core.data.contract import Dataset
from core.models.contract import ModelSpec

EMBEDDING, FILTERS, KERNEL, HIDDEN = 50, 250, 3, 250


@dataclass(frozen=True)
class SeedConv1d(ModelSpec):
    def layers(self, keras: Any, cfg: ModelConfig, ds: Dataset) -> list:
        layers = keras.layers
        return [
            layers.Input(shape=ds.input_shape, dtype="int32"),
            layers.Embedding(ds.vocab_size, EMBEDDING),
            layers.Dropout(0.2),
            layers.Conv1D(FILTERS, KERNEL, padding="valid", activation="relu", strides=1),
            layers.GlobalMaxPooling1D(),
            layers.Dense(HIDDEN),
            layers.Dropout(0.2),
            layers.Activation("relu"),
        ]

    def hidden_params(self, cfg: ModelConfig, input_shape: tuple[int, ...], vocab_size: int | None):
        embedding = (vocab_size or 5000) * EMBEDDING
        conv = KERNEL * EMBEDDING * FILTERS + FILTERS
        return embedding + conv + FILTERS * HIDDEN + HIDDEN, HIDDEN

    def activations(self, cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
        return input_shape[0] * (EMBEDDING + FILTERS) + 2 * HIDDEN

    def script_layers(self, ctx: ScriptContext) -> list[str]:
        return [
            f"layers.Embedding(NUM_WORDS, {EMBEDDING})",
            "layers.Dropout(0.2)",
            f'layers.Conv1D({FILTERS}, {KERNEL}, padding="valid", activation="relu", strides=1)',
            "layers.GlobalMaxPooling1D()",
            f"layers.Dense({HIDDEN})",
            "layers.Dropout(0.2)",
            'layers.Activation("relu")',
        ]


SEED_CONV1D = SeedConv1d(
    "seed_conv1d",
    "seed IMDB Conv1D",
    "The tutorial's model: Embedding 50, Conv1D 250x3, global max pooling, Dense 250.",
    ("sequence",),
    (),
    "The Keras IMDB Conv1D example, as the seed tutorial trains it.",
)
