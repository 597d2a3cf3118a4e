"""Test helper: small fake Keras dataset caches, in the files' own formats, so the real
``keras.datasets.<name>.load_data`` reads them offline, in the test process and in a subprocess.

``FAKE_KERAS_CACHES`` maps a Keras set's name to a writer ``(datasets folder of a Keras home) -> None``;
a Keras set added to the registry without a writer here is not covered (tests/test_every_plugin.py
fails on it, saying so). imdb.npz and mnist.npz are hash-checked by Keras: ``LAUNCHER`` runs a script
with that check off (the only thing it changes) and records the training history it produced.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.data.test_datasets import fake_imdb


def fake_mnist(folder: Path, n_train: int = 150, n_test: int = 40) -> None:
    """mnist.npz: uint8 28x28 images, every one of the 10 classes in both parts."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "mnist.npz",
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=(np.arange(n_train) % 10).astype(np.uint8),
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=(np.arange(n_test) % 10).astype(np.uint8),
    )


def fake_fashion_mnist(datasets_folder: Path, n_train: int = 150, n_test: int = 40) -> None:
    """The four gzipped idx files of datasets/fashion-mnist (not hash-checked by Keras)."""
    folder = datasets_folder / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        # mtime=0: the same bytes on every run (and on every xdist worker).
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(bytes(8) + labels.tobytes(), mtime=0)
        )
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(bytes(16) + images.tobytes(), mtime=0)
        )


def fake_imdb_cache(folder: Path) -> None:
    """imdb.npz as tests/data writes it (raw word ids below 200, 0/1 labels)."""
    fake_imdb(folder, n_train=70, n_test=40)


FAKE_KERAS_CACHES: dict[str, Callable[[Path], None]] = {
    "imdb": fake_imdb_cache,
    "mnist": fake_mnist,
    "fashion_mnist": fake_fashion_mnist,
}

HISTORY_FILE = "history.json"

# Runs the exported script (its path the first argument, the script's own arguments after it) as
# __main__, as `python script.py` would. Two additions, neither touching the training: Keras'
# sha256 check of cached dataset files is off (the caches above are fakes), and the History of
# the run is written to history.json when training ends, so the test can compare every epoch.
LAUNCHER = """\
import json
import runpy
import sys

import keras
from keras.src.utils import file_utils

file_utils.validate_file = lambda *args, **kwargs: True


def on_train_end(self, logs=None):
    with open("history.json", "w") as f:
        json.dump({k: [float(x) for x in v] for k, v in self.history.items()}, f)


keras.callbacks.History.on_train_end = on_train_end
runpy.run_path(sys.argv.pop(1), run_name="__main__")
"""
