"""An LSTM over word embeddings: the recurrent alternative to the tutorial's Conv1D, for text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.codegen import ScriptContext
from core.config import ModelConfig
from core.data.contract import Dataset
from core.models.contract import ModelSpec

EMBEDDING = 64


@dataclass(frozen=True)
class Lstm(ModelSpec):
    def layers(self, keras: Any, cfg: ModelConfig, ds: Dataset) -> list:
        layers = keras.layers
        out = [
            layers.Input(shape=ds.input_shape, dtype="int32"),
            layers.Embedding(ds.vocab_size, EMBEDDING),
            layers.LSTM(cfg.units),
        ]
        if cfg.dropout > 0:
            out.append(layers.Dropout(cfg.dropout))
        return out

    def hidden_params(self, cfg: ModelConfig, input_shape: tuple[int, ...], vocab_size: int | None):
        embedding = (vocab_size or 5000) * EMBEDDING
        gates = 4 * (cfg.units * (EMBEDDING + cfg.units) + cfg.units)  # input, forget, cell, output
        return embedding + gates, cfg.units

    def activations(self, cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
        # Per time step: the embedding, the four gates, the cell and hidden states.
        return input_shape[0] * (EMBEDDING + 6 * cfg.units)

    def script_layers(self, ctx: ScriptContext) -> list[str]:
        out = [f"layers.Embedding(NUM_WORDS, {EMBEDDING})", "layers.LSTM(UNITS)"]
        if ctx.config.model.dropout > 0:
            out.append("layers.Dropout(DROPOUT)")
        return out

    def summary(self, cfg: ModelConfig) -> str:
        dropout = f", dropout {cfg.dropout:g}" if cfg.dropout > 0 else ""
        return f"LSTM of {cfg.units} units over {EMBEDDING}-wide word embeddings{dropout}"


LSTM = Lstm(
    "lstm",
    "LSTM",
    "Word embeddings (64) and one LSTM layer: text, read in order rather than by local patterns.",
    ("sequence",),
    ("units", "dropout"),
    "Word embeddings and one LSTM layer (and dropout when DROPOUT > 0).",
)
