"""Starts ``python -m core train`` in a child process, the way the crash and disk tests need it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from core.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def start_headless(
    tmp_path: Path, cfg: RunConfig, *, prefix: list[str] | None = None, ignore_sigxfsz: bool = False
) -> tuple[subprocess.Popen, Path]:
    """The child's merged output is readable line by line from ``proc.stdout``; runs go to tmp_path/runs.

    It trains in its own process (``ESLAB_TRAIN_IN=thread``), so signals and resource limits aimed at
    ``proc.pid`` reach the training itself. ``prefix`` wraps the command (unshare, setpriv);
    ``ignore_sigxfsz`` turns a file-size limit into EFBIG errors instead of a kill.
    """
    runs_dir = tmp_path / "runs"
    config_path = tmp_path / "config.json"
    config_path.write_text(cfg.to_json())
    train = [sys.executable, "-m", "core", "train", str(config_path), "--runs-dir", str(runs_dir)]
    proc = subprocess.Popen(
        [*(prefix or []), *train],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "ESLAB_TRAIN_IN": "thread"},
        preexec_fn=(lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN)) if ignore_sigxfsz else None,
    )
    return proc, runs_dir
