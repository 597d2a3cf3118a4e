"""Loaded by the Python subprocesses the tests start (exported scripts, ``python -c`` probes, a
user's script): their PYTHONPATH is this folder alone, so ``core`` stays out of their reach.

One job: ``import tensorflow`` imports JAX when it is installed (``tensorflow.lite`` does
``from jax import jit`` in a try), about 1 s of CPU per process measured here, for nothing on the
TensorFlow backend. This finder refuses ``jax`` unless ``KERAS_BACKEND`` is ``jax`` at the moment
of the import, so a script that chooses JAX itself (an exported JAX run sets the variable before
``import keras``) still gets it. The app's own processes do the same with
``core.backends.tensorflow_without_jax``; a user's own processes are never touched.
"""

import os
import sys


class _NoJaxUnderTensorFlow:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "jax" and os.environ.get("KERAS_BACKEND", "tensorflow") != "jax":
            raise ModuleNotFoundError("jax is kept out of TensorFlow subprocesses of the tests", name="jax")
        return None


sys.meta_path.insert(0, _NoJaxUnderTensorFlow())
