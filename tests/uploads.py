"""Test helper: a file stored as an upload, as the Train page or ``--data-file`` stores it."""

from __future__ import annotations

import os
from pathlib import Path

from core.data import uploads


def upload(
    content: str | bytes | os.PathLike,
    name: str | None = None,
    uploads_dir: str | os.PathLike | None = None,
    suffix: str = ".csv",
) -> dict[str, str]:
    """Stores ``content`` (text, bytes, or a file's path) under ``uploads_dir`` (default: the test's
    runs folder, see conftest) and returns the DataConfig fields naming it: upload and file_name."""
    if isinstance(content, os.PathLike):
        data = Path(content).read_bytes()
        name = name or Path(content).name
    else:
        data = content.encode("utf-8") if isinstance(content, str) else content
    return {"upload": uploads.store(data, uploads_dir, suffix), "file_name": name or f"data{suffix}"}


def upload_path(
    fields: dict[str, str], uploads_dir: str | os.PathLike | None = None, suffix: str = ".csv"
) -> Path:
    return uploads.path_of(fields["upload"], uploads_dir, suffix)
