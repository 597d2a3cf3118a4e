"""What a user can type or upload never reaches a path, a pickle or unsafe deserialization."""

from __future__ import annotations

import numpy as np
import pytest

from core.store.runs import RunStore, is_run_id, new_run_id


@pytest.mark.parametrize(
    "bad",
    ["../../etc", "..", "/etc/passwd", "a" * 31, "A" * 32, "0" * 31 + "/", "0" * 32 + "\n", None, 42],
)
def test_only_well_formed_ids_become_paths(tmp_path, bad):
    store = RunStore(tmp_path / "runs")
    assert not is_run_id(bad)
    with pytest.raises(ValueError, match="Not a run id"):
        store.run_dir(bad)
    assert not store.exists(bad)
    with pytest.raises(KeyError):
        store.load(bad)


def test_run_ids_are_random_uuid4_hex():
    ids = {new_run_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_run_id(i) and i[12] == "4" for i in ids)


def test_checkpoints_load_in_safe_mode(tmp_path):
    """A .keras file carrying a Lambda layer (arbitrary code) is refused, as Keras' safe_mode promises."""
    import keras

    from core.engine.fit_one import load_checkpoint

    model = keras.Sequential([keras.layers.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    path = tmp_path / "evil.keras"
    model.save(path)
    with pytest.raises(ValueError, match="unsafe"):
        load_checkpoint(path)
    safe = keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(1)])
    safe.save(tmp_path / "ok.keras")
    assert load_checkpoint(tmp_path / "ok.keras").predict(np.zeros((1, 2)), verbose=0).shape == (1, 1)


def test_streamlit_config_binds_loopback_and_keeps_xsrf():
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["showErrorDetails"] != "full"


class _Payload:
    """Unpickling this would create a file: the proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_resume_point_carrying_a_pickle_is_refused_unexecuted(tmp_path):
    from core.engine import resume_point

    marker = tmp_path / "pwned"
    header = np.array('{"epoch": 3, "counts": [1, 0, -1]}')
    evil = np.array([_Payload(marker)], dtype=object)
    with open(resume_point.path(tmp_path), "wb") as fh:
        np.savez(fh, header=header, m0=evil)
    with pytest.raises(resume_point.ResumeError, match="cannot be read"):
        resume_point.read(tmp_path)
    assert not marker.exists()


def test_no_loader_of_ours_unpickles():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = {p: p.read_text() for p in [*(root / "core").rglob("*.py"), *(root / "ui").rglob("*.py")]}
    for path, text in sources.items():
        for unsafe in ("allow_pickle=True", "pickle.load", "safe_mode=False", "joblib.load"):
            assert unsafe not in text, f"{path.name} uses {unsafe}"
