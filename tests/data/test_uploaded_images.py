"""Your images (.zip of class folders): every malformed or unsafe zip is refused with a message
naming what is wrong, before anything is unpacked; a good one is unpacked once, read by Keras in
its sorted order, trains with the CNN and its checkpoint loads back."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.config import CheckpointConfig, DataConfig, EarlyStoppingConfig, FitConfig, ModelConfig, RunConfig
from core.data import datasets, uploads
from core.data.sources import uploaded_images
from core.engine.fit_one import load_checkpoint
from core.store.runs import FINISHED
from tests.data.array_files import image_zip, png, stored_zip, tiny_images, with_compression
from tests.uploads import upload

X, Y = tiny_images(20)
PNG = png(X[0])


def zip_config(data: bytes, **data_fields) -> DataConfig:
    data_fields.setdefault("image_size", 8)
    return DataConfig(name="images", **upload(data, "pets.zip", suffix=".zip"), **data_fields)


def refused(data: bytes, **data_fields) -> str:
    with pytest.raises(datasets.DatasetError) as exc:
        datasets.describe(zip_config(data, **data_fields))
    return str(exc.value)


def classes_zip(**extra: bytes) -> bytes:
    files = {f"{'cats' if i % 2 else 'dogs'}/{i:03d}.png": png(X[i]) for i in range(20)}
    return image_zip({**files, **extra})


def test_class_folders_at_the_top_or_inside_one_folder_describe_the_same():
    for data in (image_zip(top=""), image_zip(top="pets/")):
        info = datasets.describe(zip_config(data))
        assert (info.task, info.input_kind, info.n_classes, info.n_samples) == ("binary", "image", 2, 40)
        assert info.columns == ("cats", "dogs") and info.input_shape == (8, 8, 3)
    gray = datasets.describe(zip_config(image_zip(), color_mode="grayscale", image_size=16))
    assert gray.input_shape == (16, 16, 1)
    three = datasets.describe(zip_config(image_zip(classes=("a", "b", "c"), n=30)))
    assert (three.task, three.n_classes) == ("multiclass", 3)


def test_describe_does_not_unpack_or_import_tensorflow(tmp_path):
    script = (
        "import sys\n"
        "from core.config import DataConfig\n"
        "from core.data import datasets\n"
        "from tests.uploads import upload\n"
        "from tests.data.array_files import image_zip\n"
        "f = upload(image_zip(), 'p.zip', suffix='.zip')\n"
        "print(datasets.describe(DataConfig(name='images', **f)).n_samples)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    env_dir = tmp_path / "runs"
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"ESLAB_RUNS_DIR": str(env_dir), "PATH": "/usr/bin:/bin"},
        cwd=str(Path(__file__).parents[2]),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "40"
    assert not list((env_dir / "uploads").glob("*.images"))


def test_mac_metadata_is_skipped():
    data = classes_zip(**{"__MACOSX/cats/._000.png": b"junk", "cats/.DS_Store": b"junk"})
    info = datasets.describe(zip_config(data))
    assert info.n_samples == 20 and info.columns == ("cats", "dogs")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({f"cats/{i}.png": PNG for i in range(12)}, "only one class folder ('cats')"),
        ({"pets/cats/1.png": PNG, "pets/cats/2.png": PNG}, "only one class folder ('cats')"),
        ({"readme.txt": b"hello"}, "'readme.txt' is not inside a class folder"),
        ({"cats/notes.txt": b"hello", "dogs/1.png": PNG}, "'cats/notes.txt' is not an image"),
        ({"cats/fake.png": b"not really a png", "dogs/1.png": PNG}, "'cats/fake.png' is not an image"),
        ({"cats/1.png": PNG, "dogs/": b"", "birds/1.png": PNG}, "The class folder 'dogs' holds no images"),
        ({"cats/1.png": PNG, "dogs/1.png": PNG}, "only 2 images"),
        ({}, "holds no files"),
        ({"cats/": b"", "dogs/": b""}, "holds no files"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_malformed_zip_is_refused_naming_what_is_wrong(files, message):
    assert message in refused(image_zip(files))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.png", "points outside its folder"),
        ("cats/../../evil.png", "points outside its folder"),
        ("/etc/evil.png", "has an absolute path"),
        ("C:/evil.png", "has an absolute path"),
        ("cats\\..\\evil.png", "points outside its folder"),
        ("cats\\evil.png", "backslash"),
    ],
)
def test_a_zip_that_unpacks_outside_its_folder_is_refused(name, message):
    data = classes_zip(**{name: PNG})
    assert message in refused(data)


def test_a_symlink_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(12):
            zf.writestr(f"{'cats' if i % 2 else 'dogs'}/{i}.png", PNG)
        link = zipfile.ZipInfo("cats/link.png")
        link.external_attr = 0o120777 << 16  # a symlink, as `zip --symlinks` stores one
        zf.writestr(link, "/etc/passwd")
    assert "'cats/link.png' is a symbolic link" in refused(buf.getvalue())


def test_a_zip_bomb_and_a_too_large_zip_are_refused(monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cats/big.bmp", b"BM" + bytes(20 * 2**20))  # 20 MB of zeros: ~20 kB packed
        zf.writestr("dogs/1.png", PNG)
    assert "times its packed size" in refused(buf.getvalue())
    # Each check on a zip of its own content: a listing is checked once per content.
    monkeypatch.setattr(uploaded_images, "MAX_UNPACKED_BYTES", 1000)
    assert "the limit is 0 MB" in refused(classes_zip(**{"cats/a.png": PNG}))
    monkeypatch.setattr(uploaded_images, "MAX_MEMBERS", 10)
    assert "at most 10 are read" in refused(classes_zip(**{"cats/b.png": PNG}))
    monkeypatch.setattr(uploaded_images, "MAX_ZIP_BYTES", 100)
    assert "upload limit" in refused(classes_zip(**{"cats/c.png": PNG}))


def test_a_huge_image_and_too_large_arrays_are_refused(monkeypatch):
    header = png(np.zeros((2, 2), np.uint8))
    huge = header[:16] + (50_000).to_bytes(4, "big") + (50_000).to_bytes(4, "big") + header[24:]
    assert "50,000 x 50,000 pixels" in refused(classes_zip(**{"cats/huge.png": huge}))
    monkeypatch.setattr(uploaded_images, "MAX_ARRAY_BYTES", 1000)
    assert "Lower the image size (data.image_size)" in refused(classes_zip())


def test_not_a_zip_and_a_task_that_cannot_be_are_refused():
    assert "not a zip file" in refused(b"\x89PNG not a zip")
    assert "set the task to binary or multiclass" in refused(classes_zip(), task="regression")
    three = image_zip(classes=("a", "b", "c"), n=30)
    assert "exactly 2 class folders" in refused(three, task="binary")


def test_loads_in_sorted_order_unpacked_once_into_the_uploads_folder():
    cfg = zip_config(image_zip(top="pets/"), color_mode="grayscale")
    ds = datasets.load(cfg, validation_split=0.2, seed=0)
    assert ds.classes == ["cats", "dogs"] and ds.input_shape == (8, 8, 1)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 40
    folder = uploads.path_of(cfg.upload, None, ".zip").with_name(f"{cfg.upload}.images")
    assert sorted(p.name for p in folder.iterdir()) == ["cats", "dogs"]
    assert len(list((folder / "cats").iterdir())) == 20
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    again = datasets.load(cfg, validation_split=0.2, seed=0)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    # The pixels are the PNGs' own: class 0 (cats) is brighter in the top band of rows.
    bright_top = ds.x_train[:, :4].mean(axis=(1, 2, 3)) > ds.x_train[:, 4:].mean(axis=(1, 2, 3))
    assert (bright_top == (ds.y_train == 0)).all()


def test_an_uploaded_image_zip_trains_with_the_cnn_and_its_checkpoint_loads_back(trainer):
    cfg = RunConfig(
        name="images-test",
        data=zip_config(image_zip(n=80), image_size=8),
        model=ModelConfig(name="cnn", units=16, filters=4),
        fit=FitConfig(max_epochs=6, learning_rate=0.01),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=2),
        checkpoint=CheckpointConfig(monitor="val_loss", mode="min", save_best_only=True),
    )
    snap = trainer.wait(trainer.start(cfg).id, timeout=300)
    assert snap.status == FINISHED, snap.message
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    model = load_checkpoint(snap.checkpoint_path)
    test = model.evaluate(ds.x_test, ds.y_test, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert test["loss"] == pytest.approx(snap.test_metrics["loss"], abs=1e-6)
    best = snap.history_frame().set_index("epoch").loc[snap.checkpoint_epoch, "val_loss"]
    val = model.evaluate(ds.x_val, ds.y_val, batch_size=cfg.fit.batch_size, verbose=0, return_dict=True)
    assert val["loss"] == pytest.approx(best, abs=1e-5)
    assert snap.test_metrics["accuracy"] > 0.8


def test_headless_data_file_is_stored_as_a_zip(tmp_path, capsys):
    from core.__main__ import main

    config = tmp_path / "run.json"
    config.write_text(RunConfig(data=DataConfig(name="images"), model=ModelConfig(name="cnn")).to_json())
    pets = tmp_path / "pets.zip"
    pets.write_bytes(image_zip())
    assert main(["validate", str(config), "--data-file", str(pets), "--runs-dir", str(tmp_path)]) == 0
    assert "valid" in capsys.readouterr().out
    assert [p.suffix for p in (tmp_path / "uploads").iterdir()] == [".zip"]


def test_an_image_cut_short_is_named_when_loading():
    cut = PNG[: len(PNG) // 2]  # a PNG's signature and header, half its data
    cfg = zip_config(classes_zip(**{"cats/cut.png": cut}))
    assert datasets.describe(cfg).n_samples == 21  # its first bytes are a PNG's
    with pytest.raises(datasets.DatasetError, match="The image 'cats/cut.png' cannot be decoded"):
        datasets.load(cfg, validation_split=0.2, seed=0)


def test_a_zip_packed_in_a_way_python_cannot_unpack_is_refused():
    files = {f"{'cats' if i % 2 else 'dogs'}/{i}.png": PNG for i in range(12)}
    assert "damaged or packed in a way" in refused(with_compression(stored_zip(files), 9))


def _zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)  # a name twice, as zipfile allows (with a warning)
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "extra, message",
    [
        ([("cats/001.png", PNG)], "holds 'cats/001.png' twice"),
        ([("cats//001.png", PNG)], "holds 'cats//001.png' twice"),  # one path once unpacked
        ([("cats/x.png", PNG), ("cats/x.png/y.png", PNG)], "as a file and a folder"),
        ([("cats/" + "x" * 252 + ".png", PNG)], "longer than 255 bytes"),
    ],
)
def test_entries_that_cannot_all_be_unpacked_are_refused_before_unpacking(extra, message):
    """Found by the audit: these passed the listing, then unpacking raised FileExistsError / OSError."""
    files = [(f"{'cats' if i % 2 else 'dogs'}/{i:03d}.png", png(X[i])) for i in range(20)]
    assert message in refused(_zip_of(files + extra))


def _jpeg_header(width: int, height: int, metadata: int) -> bytes:
    """A JPEG's start: an APP1 (EXIF) segment of ``metadata`` bytes, then its frame header (SOF0)."""
    import struct

    app1 = b"\xff\xe1" + struct.pack(">H", metadata + 2) + b"\0" * metadata
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app1 + sof + b"\xff\xd9"


def test_a_huge_jpeg_behind_large_metadata_is_refused(monkeypatch):
    """Found by the audit: a JPEG whose frame header came after the first 64 kB (a full-size EXIF
    segment) skipped the pixel cap, and TensorFlow would have decoded 60,000 x 60,000 pixels."""
    import PIL.Image

    behind = _jpeg_header(60_000, 60_000, 65_531)
    assert "'cats/big.jpg' is 60,000 x 60,000 pixels" in refused(classes_zip(**{"cats/big.jpg": behind}))
    monkeypatch.setattr(uploaded_images, "MAX_JPEG_HEAD", 70_000)
    far = _jpeg_header(60_000, 60_000, 65_531).replace(
        b"\xff\xc0", b"\xff\xe2\x00\x10" + b"\0" * 14 + b"\xff\xc0"
    )
    far = far[:2] + b"\xff\xe1\xff\xff" + b"\0" * 65_533 + far[2:]  # two full segments before it
    assert "is a JPEG whose size is not in its first" in refused(classes_zip(**{"cats/far.jpg": far}))
    buf = io.BytesIO()
    PIL.Image.fromarray(X[0]).save(buf, "JPEG", exif=b"Exif\0\0" + b"\0" * 65_000)  # a real one
    assert datasets.describe(zip_config(classes_zip(**{"cats/real.jpg": buf.getvalue()}))).n_samples == 21


def test_a_password_protected_zip_is_refused():
    """Found by the audit: zipfile's RuntimeError ("password required") reached the page."""
    from tests.data.array_files import encrypted

    assert "is encrypted (password-protected)" in refused(encrypted(classes_zip()))


def test_a_zip_directory_pointing_outside_the_file_is_damaged():
    """Found by the audit: zipfile's OSError (a seek before the file's start) reached the page."""
    from tests.data.array_files import directory_moved, needs_zip_version

    assert "damaged" in refused(directory_moved(classes_zip()))
    assert "damaged" in refused(needs_zip_version(classes_zip()))


def test_a_jpeg_with_fill_bytes_before_its_markers_has_its_size_read():
    """JPEG allows any number of 0xFF fill bytes before a marker (ITU T.81, B.1.1.2); the size reader
    stopped at them, so such a file was refused as one whose size could not be found."""
    plain = _jpeg_header(60_000, 60_000, 100)
    filled = plain.replace(b"\xff\xc0", b"\xff\xff\xff\xc0").replace(b"\xff\xe1", b"\xff\xff\xe1")
    assert uploaded_images._size_of(filled) == uploaded_images._size_of(plain) == (60_000, 60_000)
    assert "'cats/big.jpg' is 60,000 x 60,000 pixels" in refused(classes_zip(**{"cats/big.jpg": filled}))
