"""Your arrays (.npz): every malformed file is refused with a message naming what is wrong, a good
one trains (tabular and images, with and without its own test part) and its checkpoint loads back."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig
from core.data import datasets
from core.data.sources import uploaded_npz
from core.engine.fit_one import load_checkpoint
from core.store.runs import FINISHED
from tests.data.array_files import blobs, npz_bytes, stored_zip, tiny_images, with_compression
from tests.uploads import upload


def npz_config(data: bytes, name: str = "npz", **data_fields) -> DataConfig:
    return DataConfig(name=name, **upload(data, "arrays.npz", suffix=".npz"), **data_fields)


def refused(data: bytes, name: str = "npz", **data_fields) -> str:
    with pytest.raises(datasets.DatasetError) as exc:
        datasets.describe(npz_config(data, name, **data_fields))
    return str(exc.value)


X, Y = blobs(60)


def test_x_and_y_describe_and_load_as_a_split_table():
    cfg = npz_config(npz_bytes(x=X, y=Y))
    info = datasets.describe(cfg)
    assert (info.task, info.input_kind, info.n_classes, info.n_samples) == ("multiclass", "tabular", 3, 60)
    assert info.input_shape == (4,)
    ds = datasets.load(cfg, validation_split=0.2, seed=0)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 60
    assert len(ds.x_test) == 12  # test_fraction 0.2 of 60, split off first
    # Standardized with the training part's statistics only.
    assert np.allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    assert ds.classes == ["0", "1", "2"]
    # The page's cache keeps the labels, not the features: x is a stand-in of the same shape.
    cached = uploaded_npz.read_upload(cfg.upload)
    assert cached.x.shape == (60, 4) and cached.x.strides == (0, 0)


def test_own_test_part_is_the_test_split_and_test_fraction_is_unused():
    arrays = {"x_train": X[:40], "y_train": Y[:40], "x_test": X[40:], "y_test": Y[40:]}
    a = datasets.load(npz_config(npz_bytes(**arrays)), validation_split=0.25, seed=0)
    b = datasets.load(npz_config(npz_bytes(**arrays), test_fraction=0.5), validation_split=0.25, seed=0)
    assert len(a.x_test) == 20 and len(a.x_train) == 30 and len(a.x_val) == 10
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_test, Y[40:].astype(np.int32))
    assert "own test part" in a.description
    # describe() counts what load() keeps, with max_samples too; the test part is the file's.
    for cap in (None, 30, 45):
        cfg = npz_config(npz_bytes(**arrays), max_samples=cap)
        info = datasets.describe(cfg)
        ds = datasets.load(cfg, validation_split=0.25, seed=0)
        assert info.n_samples == len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
        assert info.test_samples == len(ds.x_test)
        assert datasets.split_sizes(cfg, info, 0.25) == (len(ds.x_train), len(ds.x_val), len(ds.x_test))


def test_text_labels_and_float_targets_infer_their_task_and_the_task_can_be_set():
    labels = np.array(["cat", "dog"])[Y % 2]
    info = datasets.describe(npz_config(npz_bytes(x=X, y=labels)))
    assert (info.task, info.n_classes) == ("binary", 2)
    ds = datasets.load(npz_config(npz_bytes(x=X, y=labels)), validation_split=0.2, seed=0)
    assert ds.classes == ["cat", "dog"]
    target = X.sum(axis=1) * 1.37
    assert datasets.describe(npz_config(npz_bytes(x=X, y=target))).task == "regression"
    assert datasets.describe(npz_config(npz_bytes(x=X, y=Y), task="regression")).task == "regression"
    assert "exactly 2 classes" in refused(npz_bytes(x=X, y=Y), task="binary")
    assert "numeric targets" in refused(npz_bytes(x=X, y=labels), task="regression")


def test_labels_of_shape_n_by_1_are_labels():
    info = datasets.describe(npz_config(npz_bytes(x=X, y=Y[:, None])))
    assert info.n_classes == 3


def test_image_arrays_are_images_for_the_cnn():
    x, y = tiny_images(40)
    cfg = npz_config(npz_bytes(x=x, y=y), "npz_images")
    info = datasets.describe(cfg)
    assert (info.input_kind, info.input_shape) == ("image", (8, 8, 1))
    ds = datasets.load(cfg, validation_split=0.2, seed=0)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1.0  # uint8 / 255
    rgb = np.repeat(x[..., None], 3, axis=-1)
    assert datasets.describe(npz_config(npz_bytes(x=rgb, y=y), "npz_images")).input_shape == (8, 8, 3)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": X}, "it has no 'y'"),
        ({"y": Y}, "it has no 'x'"),
        ({"features": X, "labels": Y}, "'features', 'labels'"),
        ({"x": X, "y": Y, "weights": Y}, "'weights'"),
        ({"x_train": X, "y_train": Y, "x_test": X}, "it has no 'y_test'"),
        ({"x_test": X, "y_test": Y}, "it has no 'x_train'"),
        ({"x": X, "y": Y, "x_train": X, "y_train": Y}, "mixes x / y with x_train / y_train"),
        ({"x": X, "y": Y[:59]}, "x has 60 samples but y has 59"),
        (
            {"x_train": X, "y_train": Y, "x_test": X[:5], "y_test": Y[:4]},
            "x_test has 5 samples but y_test has 4",
        ),
        (
            {"x_train": X, "y_train": Y, "x_test": X[:5, :3], "y_test": Y[:5]},
            "x_test's samples have shape (3,)",
        ),
        ({"x": X[:5], "y": Y[:5]}, "only 5 samples"),
        ({"x": X, "y": np.zeros(60)}, "only one value"),
        ({"x": np.float32(1.0), "y": Y}, "'x' is a single number"),
        ({"x": X[:, 0], "y": Y}, "x.reshape(-1, 1)"),
        ({"x": X.astype(np.complex64), "y": Y}, "'x' has dtype complex64"),
        ({"x": np.array(["a"] * 60)[:, None], "y": Y}, "'x' has dtype <U1"),
        ({"x": np.where(np.arange(60)[:, None] == 7, np.nan, X), "y": Y}, "first sample 7"),
        ({"x": np.where(np.arange(60)[:, None] == 3, np.inf, X), "y": Y}, "NaN or infinite"),
        ({"x": X, "y": np.where(np.arange(60) == 2, np.nan, Y)}, "y has 1 NaN or infinite values"),
        ({"x": X, "y": np.eye(3)[Y]}, "one-hot"),
        ({"x_train": X[:40], "y_train": Y[:40] % 2, "x_test": X[40:], "y_test": Y[40:]}, "label '2'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_malformed_npz_is_refused_naming_what_is_wrong(arrays, message):
    assert message in refused(npz_bytes(**arrays))


def test_object_arrays_are_refused_before_anything_is_unpickled():
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}] * 60, dtype=object), y=Y)  # savez pickles object arrays
    assert "holds Python objects" in refused(buf.getvalue())


def test_images_and_features_point_to_each_other():
    x, y = tiny_images(40)
    with pytest.raises(datasets.DatasetError) as exc:
        datasets.describe(npz_config(npz_bytes(x=x, y=y), "npz"))
    assert "Your image arrays (.npz)" in str(exc.value)
    assert exc.value.fixes == (("Use image arrays", {"data.name": "npz_images"}),)
    assert "Your arrays (.npz)" in refused(npz_bytes(x=X, y=Y), "npz_images")
    assert "(samples, features)" in refused(npz_bytes(x=x[:, None, None], y=y), "npz_images")  # 5-D


def test_not_an_npz_is_refused():
    assert "not an .npz file" in refused(b"x,y\n1,2\n")
    buf = io.BytesIO()
    np.save(buf, X)  # a single .npy, renamed
    assert "not an .npz file" in refused(buf.getvalue())
    assert "not a NumPy array" in refused(_zip({"x.npy": npz_member(X), "notes.txt": b"hello"}))


def npz_member(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_from_its_declared_sizes_before_loading(monkeypatch):
    monkeypatch.setattr(uploaded_npz, "MAX_ARRAY_BYTES", 10_000)
    big = np.zeros((2000, 4))  # 64 kB of zeros: a few hundred bytes packed
    data = _zip({"x.npy": npz_member(big), "y.npy": npz_member(np.arange(2000) % 2)})
    assert len(data) < 2000
    assert "take 0 MB unpacked; the limit is 0 MB" in refused(data)


def test_a_header_claiming_more_data_than_the_member_holds_is_damaged():
    member = npz_member(np.zeros((60, 4)))
    forged = member.replace(b"(60, 4)", b"(60, 9)")  # the header claims more than the data
    assert "damaged" in refused(_zip({"x.npy": forged, "y.npy": npz_member(Y)}))


def test_a_file_over_the_upload_cap_is_refused(monkeypatch):
    monkeypatch.setattr(uploaded_npz, "MAX_NPZ_BYTES", 100)
    assert "upload limit" in refused(npz_bytes(x=X, y=Y))


def test_a_missing_upload_says_to_upload_it_again(tmp_path):
    cfg = DataConfig(name="npz", upload="0" * 32, file_name="gone.npz")
    with pytest.raises(datasets.DatasetError, match="upload it again"):
        datasets.describe(cfg)
    with pytest.raises(datasets.DatasetError, match="Upload an .npz file first"):
        datasets.describe(DataConfig(name="npz"))


def run_config(data: DataConfig, model: str) -> RunConfig:
    return RunConfig(
        name="npz-test",
        data=data,
        model=ModelConfig(name=model, units=16, depth=1, filters=4),
        fit=FitConfig(max_epochs=6, learning_rate=0.01),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=2),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
    )


@pytest.mark.parametrize("kind", ["tabular", "image"])
def test_an_uploaded_npz_trains_and_its_checkpoint_loads_back(trainer, kind):
    if kind == "tabular":
        x, y = blobs(120)
        cfg = run_config(npz_config(npz_bytes(x=x, y=y)), "mlp")
    else:
        x, y = tiny_images(120)
        arrays = {"x_train": x[:90], "y_train": y[:90], "x_test": x[90:], "y_test": y[90:]}
        cfg = run_config(npz_config(npz_bytes(**arrays), "npz_images"), "cnn")
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED, snap.message
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    model = load_checkpoint(snap.checkpoint_path)
    test = model.evaluate(ds.x_test, ds.y_test, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert test["loss"] == pytest.approx(snap.test_metrics["loss"], abs=1e-6)
    best = snap.history_frame().set_index("epoch").loc[snap.checkpoint_epoch, "val_loss"]
    val = model.evaluate(ds.x_val, ds.y_val, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert val["loss"] == pytest.approx(best, abs=1e-5)
    assert snap.test_metrics["accuracy"] > 0.8  # separable data: it learned something real


def test_headless_data_file_is_stored_as_an_npz(tmp_path, capsys):
    from core.__main__ import main

    config = tmp_path / "run.json"
    config.write_text(RunConfig(data=DataConfig(name="npz")).to_json())
    arrays = tmp_path / "mine.npz"
    arrays.write_bytes(npz_bytes(x=X, y=Y))
    assert main(["validate", str(config), "--data-file", str(arrays), "--runs-dir", str(tmp_path)]) == 0
    assert "valid" in capsys.readouterr().out
    assert [p.suffix for p in (tmp_path / "uploads").iterdir()] == [".npz"]


def test_describing_an_npz_does_not_import_tensorflow(tmp_path):
    script = (
        "import sys\n"
        "from core.config import DataConfig\n"
        "from core.data import datasets\n"
        "from tests.uploads import upload\n"
        "from tests.data.array_files import blobs, npz_bytes\n"
        "f = upload(npz_bytes(x=blobs()[0], y=blobs()[1]), 'a.npz', suffix='.npz')\n"
        "print(datasets.describe(DataConfig(name='npz', **f)).n_samples)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"ESLAB_RUNS_DIR": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin"},
        cwd=str(Path(__file__).parents[2]),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "60"


def test_a_damaged_or_strangely_packed_npz_is_refused():
    members = {"x.npy": npz_member(X), "y.npy": npz_member(Y)}
    assert "damaged or packed in a way" in refused(with_compression(stored_zip(members), 9))
    packed = bytearray(_zip(members))
    start = packed.find(b"x.npy") + 40  # inside x's deflate stream
    packed[start : start + 200] = bytes(200)
    message = refused(bytes(packed))
    assert "damaged" in message or "not an .npz file" in message, message


def test_big_endian_labels_and_empty_samples_are_refused_naming_the_array():
    """Found by the audit: big-endian labels raised pandas' ValueError; samples of no values
    (x of shape (n, 0)) passed describe and raised sklearn's ValueError in load."""
    assert "'y' is stored big-endian (dtype >i8): save it as y.astype('<i8')" in refused(
        npz_bytes(x=X, y=Y.astype(">i8"))
    )
    assert "'x' has shape (60, 0): its samples hold no values" in refused(npz_bytes(x=np.zeros((60, 0)), y=Y))
    images = np.zeros((60, 0, 8), np.uint8)
    assert "'x' has shape (60, 0, 8)" in refused(npz_bytes(x=images, y=Y), "npz_images")
    cfg = npz_config(npz_bytes(x=X.astype(">f8"), y=Y))  # big-endian features are read as they are
    assert datasets.describe(cfg).n_samples == 60


def test_a_password_protected_npz_is_refused():
    """Found by the audit: zipfile's RuntimeError ("password required") reached the page."""
    from tests.data.array_files import encrypted

    assert "member 'x.npy' is encrypted (password-protected)" in refused(encrypted(npz_bytes(x=X, y=Y)))


def test_a_zip_directory_pointing_outside_the_file_is_damaged():
    """Found by the audit: zipfile's OSError (a seek before the file's start) reached the page."""
    from tests.data.array_files import directory_moved, needs_zip_version

    assert "damaged" in refused(directory_moved(npz_bytes(x=X, y=Y)))
    assert "damaged" in refused(needs_zip_version(npz_bytes(x=X, y=Y)))
