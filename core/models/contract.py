"""The model contract: what every model plugin is.

A model plugin is one ``ModelSpec`` instance (usually of its own subclass) that owns everything
about its architecture: the hidden layers it builds, its parameter and activation estimates (no
TensorFlow: they run on every page draw), and the same layers as the exported script's source. The
output layer, loss and metrics follow the dataset's task (``core/models/head.py``), so every model
works on every dataset of an input kind it takes.

>>> from core.config import ModelConfig
>>> from core.models.registry import MODELS
>>> mlp = MODELS["mlp"]
>>> mlp.hidden_params(ModelConfig(units=8, depth=2), (4,), None)  # (4*8+8) + (8*8+8), width 8
(112, 8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import ModelConfig

if TYPE_CHECKING:
    from core.codegen import ScriptContext
    from core.data.contract import Dataset


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    description: str  # one line for the UI
    input_kinds: tuple[str, ...]  # "tabular" / "image" / "sequence"
    knobs: tuple[str, ...]  # the ModelConfig fields this model uses (core/models/knobs.py)
    script_doc: str  # the exported build_model's docstring

    def layers(self, keras: Any, cfg: ModelConfig, ds: Dataset) -> list:
        """The model's layers from its Input to the last hidden layer, created in this order."""
        raise NotImplementedError

    def hidden_params(
        self, cfg: ModelConfig, input_shape: tuple[int, ...], vocab_size: int | None
    ) -> tuple[int, int]:
        """(parameters up to the last hidden layer, that layer's width): what ``layers`` builds."""
        raise NotImplementedError

    def activations(self, cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
        """Floats one sample's forward pass keeps for the backward pass (for the memory estimate)."""
        raise NotImplementedError

    def script_layers(self, ctx: ScriptContext) -> list[str]:
        """``layers`` as source lines of the exported script, after its ``keras.Input``."""
        raise NotImplementedError

    def summary(self, cfg: ModelConfig) -> str:
        """A few words on this model with these knobs (the exported script's docstring)."""
        del cfg
        return self.label
