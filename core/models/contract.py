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

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import FitConfig, ModelConfig, Problem

if TYPE_CHECKING:
    from core.codegen import ScriptContext
    from core.data.contract import Dataset, DatasetInfo
    from core.models.keras_file import KerasFileFacts

Uploads = str | os.PathLike | None  # where uploaded files are (None: the default runs folder's)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    description: str  # one line for the UI
    input_kinds: tuple[str, ...]  # "tabular" / "image" / "sequence"
    knobs: tuple[str, ...]  # the ModelConfig fields this model uses (core/models/knobs.py)
    script_doc: str  # the exported build_model's docstring
    upload: str | None = None  # a model that comes whole from an uploaded file: that file's suffix

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

    # A model that comes whole from a file (``upload`` set) is not made of ``layers`` and the shared
    # head: it builds and compiles itself, its facts replace the estimates, it checks the data against
    # the file, and its exported script loads the file. Layer-built models keep these defaults.

    def file_facts(self, cfg: ModelConfig, uploads_dir: Uploads) -> KerasFileFacts | None:
        """The model file's facts (parameters, layers), read without TensorFlow; None: no file."""
        del cfg, uploads_dir
        return None

    def check(self, cfg: ModelConfig, info: DatasetInfo | None, uploads_dir: Uploads) -> list[Problem]:
        """What only this model can tell about the config and the data (core.validate shows it)."""
        del cfg, info, uploads_dir
        return []

    def build_model(
        self, keras: Any, cfg: ModelConfig, ds: Dataset, fit: FitConfig, uploads_dir: Uploads
    ) -> Any:
        """The compiled model when it is not ``layers`` under the head (a file's model); else None."""
        del keras, cfg, ds, fit, uploads_dir
        return None

    def script_model(self, ctx: ScriptContext) -> list[str] | None:
        """Source lines making ``model`` in the exported build_model (None: ``script_layers``)."""
        del ctx
        return None

    def script_settings(self, ctx: ScriptContext) -> list[tuple[str, object, str]]:
        """Named constants the exported script needs for this model (beyond its knobs)."""
        del ctx
        return []
