"""Which Keras backend a run trains on: the measured default per model, and this process's own backend.

Keras picks its backend once per process, when it is first imported: ``KERAS_BACKEND``, else the
``backend`` of ``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``), else TensorFlow. So a run's
backend decides which process may train it: the worker pool keeps one worker process per backend
(spawned with ``KERAS_BACKEND`` set), the headless command sets ``KERAS_BACKEND`` from the config
before Keras is imported, and a server that trains in its own process (``ESLAB_TRAIN_IN=thread``)
refuses a run on any other backend than its own instead of silently training it there.

``fit.backend = "auto"`` is the measured default for the run's model (``DEFAULTS``), replaced by
the backend it resolves to when the run starts: the stored config, the resume and the exported
script then all name the same backend. A leaf: imports nothing that imports Keras.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.config import Problem

ENV = "KERAS_BACKEND"
CONCRETE = ("tensorflow", "jax")  # what "auto" resolves to; what a worker process runs
LABELS = {"auto": "auto", "tensorflow": "TensorFlow", "jax": "JAX"}


@dataclass(frozen=True)
class Measured:
    """The backend ``auto`` picks for a model, and the measurement that says why (shown on the page)."""

    backend: str
    reason: str


# bench/backends.py on this 2-core machine, 2026-12-07 (bench/RESULTS.md, "Backends"): JAX's process
# CPU and wall time per epoch over TensorFlow's, medians of 3 interleaved pairs, first epoch left out.
# Measured with bench/backends.py on an idle machine, the engine feeding TensorFlow its tf.data
# pipeline (core/engine/epoch_order.py); bench/RESULTS.md has the rounds. Models not measured stay
# on TensorFlow.
DEFAULTS: dict[str, Measured] = {
    "mlp": Measured(
        "jax",
        "digits MLP on this 2-core machine: JAX used 0.34x TensorFlow's process CPU per epoch and 0.30x "
        "its wall time in the app's engine (0.19x and 0.13x in a plain fit)",
    ),
    "seed_conv1d": Measured(
        "tensorflow",
        "tutorial Conv1D on 2,000 generated reviews, this 2-core machine: JAX used 1.39x TensorFlow's "
        "process CPU per epoch and 1.40x its wall time in the app's engine (1.27x CPU in a plain fit)",
    ),
}
UNMEASURED = Measured(
    "tensorflow",
    "not measured on JAX yet: TensorFlow, the backend every feature was first verified on",
)


def default_for(model_name: str) -> Measured:
    """What ``auto`` picks for ``model_name``, with the reason."""
    return DEFAULTS.get(model_name, UNMEASURED)


def resolve(backend: str, model_name: str) -> str:
    """The concrete backend of a run: ``auto`` becomes the model's measured default."""
    return default_for(model_name).backend if backend == "auto" else backend


def process_backend() -> str:
    """The backend this process's Keras runs on, or will once imported (Keras' own order of lookup)."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return str(keras.backend.backend())
    if os.environ.get(ENV):
        return os.environ[ENV]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        configured = json.loads((home / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        configured = None
    return configured if isinstance(configured, str) and configured else "tensorflow"


def use_in_this_process(backend: str) -> None:
    """Before Keras is imported (the headless command): this process's Keras will run ``backend``.

    Once Keras is imported this changes nothing; ``thread_problem`` then refuses another backend.
    """
    if "keras" not in sys.modules:
        os.environ[ENV] = backend
    tensorflow_without_jax()


def tensorflow_without_jax() -> None:
    """In a process of ours whose Keras runs on TensorFlow, keeps JAX from being imported.

    ``import tensorflow`` imports ``tensorflow.lite.python.util``, which imports JAX when it is
    installed (``from jax import jit``, in a try), in every TensorFlow worker, headless run and test
    process: ``import keras`` took 4.9-5.8 s with it and 4.2-4.3 s without on an idle machine (2.3 s
    more under load). Only for processes this project starts; never in a user's (``eslab``), where
    JAX may be theirs.
    """
    if process_backend() == "tensorflow" and "jax" not in sys.modules and "tensorflow" not in sys.modules:
        sys.modules["jax"] = None  # type: ignore[assignment]  # makes "import jax" an ImportError


def thread_problem(backend: str, requested: str) -> Problem | None:
    """Why a run on ``backend`` cannot train in this process (``ESLAB_TRAIN_IN=thread``), or None."""
    here = process_backend()
    if backend == here:
        return None
    chosen = f"auto picks {backend} for this model" if requested == "auto" else f"the run asks for {backend}"
    return Problem(
        "fit.backend",
        f"fit.backend: {chosen}, but this server trains in its own process (ESLAB_TRAIN_IN=thread), "
        f"whose Keras runs on {here}: it cannot train on another backend. Choose {here}, or start the "
        f"server with KERAS_BACKEND={backend}, or let runs train in worker processes "
        "(ESLAB_TRAIN_IN=process, the default), which keep one per backend.",
    )
