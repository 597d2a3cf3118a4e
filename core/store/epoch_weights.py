"""Every epoch's weights, when a run keeps them: where they are, what they cost, how to hand one out."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_EPOCH_RE = re.compile(r"^epoch-(\d{5,})\.weights\.h5$")
BYTES_PER_PARAM = 4  # float32
OVERHEAD_PER_FILE = 24_000  # HDF5 headers and names, measured on the digits MLP (see tests)


def epochs_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "epochs"


def architecture_file(run_dir: Path) -> Path:
    return epochs_dir(run_dir) / "architecture.keras"


def epoch_file(run_dir: Path, epoch: int) -> Path:
    """Epochs are 1-based, as Keras prints them."""
    return epochs_dir(run_dir) / f"epoch-{epoch:05d}.weights.h5"


def kept_epochs(run_dir: Path) -> list[int]:
    folder = epochs_dir(run_dir)
    if not folder.is_dir() or not architecture_file(run_dir).is_file():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _EPOCH_RE.match(p.name)))


def estimate_bytes_per_epoch(params: int) -> int:
    return params * BYTES_PER_PARAM + OVERHEAD_PER_FILE


def model_bytes(run_dir: Path, epoch: int) -> bytes:
    """That epoch's model as a standalone ``.keras`` file (architecture + that epoch's weights)."""
    import keras

    arch, weights = architecture_file(run_dir), epoch_file(run_dir, epoch)
    if not weights.is_file():
        raise FileNotFoundError(f"Epoch {epoch}'s weights were not kept.")
    model = keras.models.load_model(arch, safe_mode=True, compile=False)
    model.load_weights(weights)
    fd, tmp = tempfile.mkstemp(suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)
