"""Shared fixtures: a fresh run store per test, and quiet, single-process TensorFlow."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from core.backends import tensorflow_without_jax

# The test processes run Keras on TensorFlow (JAX runs in subprocesses): keep TensorFlow from importing
# JAX, as the app's own TensorFlow processes do (core/backends.py).
tensorflow_without_jax()

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path, monkeypatch):
    """Every test's default runs folder (and so its uploads, ``<runs>/uploads``) is its own."""
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))


@pytest.fixture
def store(tmp_path):
    from core.store.runs import RunStore

    return RunStore(tmp_path / "runs")


@pytest.fixture
def trainer(store):
    from core.engine.queue import Trainer

    return Trainer(store)
