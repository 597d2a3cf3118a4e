"""examples/tutorial_with_lab.py: the tutorial's own script with eslab.LabCallback added, run as a user runs
it, is recorded as Keras ran it (its own file, so that the parallel suite can run it beside the others)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.store.runs import RunStore
from tests.subprocesses import pythonpath

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": pythonpath(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.mark.slow
def test_the_tutorials_own_script_with_the_callback_added_is_recorded(tmp_path):
    """examples/tutorial_with_lab.py as a user runs it (on a small fake IMDB in Keras' cache: no internet)."""
    from tests.keras_cache import LAUNCHER, fake_imdb_cache

    home = tmp_path / "keras"
    fake_imdb_cache(home / "datasets")
    env = {**ENV, "KERAS_HOME": str(home), "ESLAB_RUNS_DIR": str(tmp_path / "runs")}
    script = ROOT / "examples" / "tutorial_with_lab.py"
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Test accuracy:" in out.stdout
    keras_history = json.loads((tmp_path / "history.json").read_text())  # written by the launcher
    store = RunStore(tmp_path / "runs")
    snap = store.load(store.ids()[0])
    assert snap.config.name == "tutorial IMDB Conv1D" and snap.status == "finished"
    assert [r.logs["val_loss"] for r in snap.history] == keras_history["val_loss"]
    es = snap.config.early_stopping
    assert (es.patience, es.min_delta, es.mode) == (30, 1e-4, "min")
    assert snap.stop_reason == "early_stopping" and snap.stopped_epoch == len(keras_history["val_loss"])
    assert Path(snap.checkpoint_path).read_bytes() == (tmp_path / "testmodel.keras").read_bytes()
