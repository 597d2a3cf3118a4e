"""Where the runs folder is: one setting that the store, the uploads and the CLI share (a leaf)."""

from __future__ import annotations

import os
from pathlib import Path

RUNS_DIR_ENV = "ESLAB_RUNS_DIR"


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV, "runs")).resolve()
