"""Checks on the model files of a run before the page offers them: a damaged or crafted file is named,
not handed out, and never loaded in a way that runs code.

The runs folder belongs to the server, but a file in it can still be torn by a crash outside our atomic
writes, restored from a backup, or edited by hand. These checks are cheap (a zip directory, a file
signature, one small JSON file); the real load, at download time, is Keras' with ``safe_mode=True``.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

from core.store import epoch_weights

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_CONFIG_BYTES = 8 << 20


def file_problem(file: Path, folder: Path) -> str | None:
    """None when ``file`` is a regular file of ours inside ``folder`` in the format its name says."""
    try:
        info = os.lstat(file)
    except FileNotFoundError:
        return f"{file.name} is missing."
    except OSError as exc:
        return f"{file.name} cannot be read ({exc.strerror})."
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        return f"{file.name} is not a plain file (a link or a folder); it is not offered."
    if Path(os.path.realpath(file)).parent != Path(os.path.realpath(folder)):
        return f"{file.name} is not inside the run's folder; it is not offered."
    name = file.name
    try:
        if name.endswith(".keras"):
            return _keras_problem(file)
        if name.endswith(".h5"):
            with open(file, "rb") as fh:
                if fh.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                    return f"{name} is damaged: it is not an HDF5 file."
            return None
    except OSError as exc:
        return f"{name} cannot be read ({exc.strerror or exc})."
    return f"{name} is not a model file this app writes."


def _keras_problem(file: Path) -> str | None:
    if not zipfile.is_zipfile(file):
        return f"{file.name} is damaged: it is not a .keras archive."
    try:
        with zipfile.ZipFile(file) as zf:
            info = zf.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                return f"{file.name} is damaged: its model description is implausibly large."
            config = json.loads(zf.read(info))
    except (KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError):
        return f"{file.name} is damaged: its model description cannot be read."
    for layer in _class_names(config):
        if layer == "Lambda":
            return f"{file.name} holds a Lambda layer (code), which this app never writes or loads."
    return None


def _class_names(node, depth: int = 0):
    if depth > 200:
        return
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str):
            yield node["class_name"]
        for value in node.values():
            yield from _class_names(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _class_names(value, depth + 1)


def checkpoint_problem(checkpoint_path: str | None, run_dir: Path) -> str | None:
    if not checkpoint_path:
        return "This run kept no checkpoint."
    problem = file_problem(Path(checkpoint_path), run_dir)
    return None if problem is None else f"The checkpoint cannot be downloaded: {problem}"


def epoch_model_problem(run_dir: Path, epoch: int) -> str | None:
    folder = epoch_weights.epochs_dir(run_dir)
    for file in (epoch_weights.architecture_file(run_dir), epoch_weights.epoch_file(run_dir, epoch)):
        if (problem := file_problem(file, folder)) is not None:
            return f"Epoch {epoch}'s model cannot be built: {problem}"
    return None
