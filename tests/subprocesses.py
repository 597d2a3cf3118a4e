"""The environment of the Python subprocesses the tests start (scripts, probes, headless runs)."""

from __future__ import annotations

import os
from pathlib import Path

SITE = Path(__file__).resolve().parent / "subprocess_site"  # its sitecustomize.py says why


def pythonpath(*folders: Path | str) -> str:
    """PYTHONPATH for a test's subprocess: the given folders, then the folder whose sitecustomize
    keeps JAX out of a TensorFlow process (about 1 s of CPU a process)."""
    return os.pathsep.join([*(str(f) for f in folders), str(SITE)])
