"""Models: one module per architecture (``mlp.py``, ``cnn.py``, ``seed_conv1d.py``), listed in
``registry.py``; ``build.py`` builds and estimates whichever the config names; ``head.py`` is the
output layer and optimizer every model shares."""

from core.models.build import build, estimate_activations, estimate_params, suggest
from core.models.contract import ModelSpec
from core.models.head import make_optimizer, output_layers
from core.models.registry import MODELS

__all__ = [
    "MODELS",
    "ModelSpec",
    "build",
    "estimate_activations",
    "estimate_params",
    "make_optimizer",
    "output_layers",
    "suggest",
]
