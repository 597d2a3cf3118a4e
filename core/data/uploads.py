"""Uploaded files: stored once by content, named by a content id, never by a path a user wrote.

A config names an uploaded file only by its upload id (``data.upload``, ``model.upload``: the first
32 hex digits of the file's sha256). The file lives at ``<runs>/uploads/<id><suffix>``, the suffix
one of ``SUFFIXES`` chosen by the code that reads it (never by a user); only ids of exactly that
shape ever become a path, so no config, link or form value can make the server read any other file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from core.config import NOT_IN_A_NAME
from core.paths import default_runs_dir

_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_NAME = 255
SUFFIXES = (".csv", ".npz", ".zip", ".keras")  # what the app stores: tables, arrays, image folders, models


class UploadError(ValueError):
    """A message for the user: the upload is missing, unreadable, or the id is not one."""


def default_dir() -> Path:
    """``<runs>/uploads`` of the default runs folder ($ESLAB_RUNS_DIR, else ./runs)."""
    return default_runs_dir() / "uploads"


def is_upload_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))  # fullmatch: "$" allows a "\n"


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def path_of(upload_id: str, uploads_dir: str | os.PathLike | None = None, suffix: str = ".csv") -> Path:
    """Where an upload lives; only an id of the exact shape becomes a path."""
    if not is_upload_id(upload_id):
        raise UploadError(f"{upload_id!r} is not an upload id (32 lowercase hex digits).")
    if suffix not in SUFFIXES:
        raise ValueError(f"uploads are kept as {', '.join(SUFFIXES)}, not {suffix!r}")  # a programming error
    return Path(uploads_dir if uploads_dir is not None else default_dir()) / f"{upload_id}{suffix}"


def store(data: bytes, uploads_dir: str | os.PathLike | None = None, suffix: str = ".csv") -> str:
    """Keeps the bytes as an upload (temp file + rename, so never a torn one); returns its id."""
    upload_id = content_id(data)
    path = path_of(upload_id, uploads_dir, suffix)
    if path.is_file() and path.stat().st_size == len(data):
        return upload_id  # content-addressed: the same bytes are already there
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{upload_id}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return upload_id


def read(upload_id: str, uploads_dir: str | os.PathLike | None = None, suffix: str = ".csv") -> bytes:
    path = path_of(upload_id, uploads_dir, suffix)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UploadError(
            f"The uploaded {suffix.lstrip('.')} file is not on this server (any more): upload it again."
        ) from None


def display_name(name: str | None) -> str | None:
    """A file name as the browser or the command line gave it, made safe to show and to declare:
    its last path part, without control, format (a direction override) or line-break characters, at
    most 255 characters; None when nothing of a name is left ('..')."""
    if not name:
        return None
    base = re.split(r"[/\\]", name)[-1]
    clean = "".join(ch for ch in base if unicodedata.category(ch) not in NOT_IN_A_NAME)[:MAX_NAME]
    return None if clean.strip() in ("", ".", "..") else clean
