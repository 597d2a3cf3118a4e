"""Your images, uploaded as a .zip of class folders (``cats/001.png``, ``dogs/002.jpg``, ...), for the CNN.

The zip is checked from its listing before anything is unpacked (``describe`` never unpacks it and
never imports TensorFlow): no absolute paths, no ``..``, no symlinks, a bounded number of members,
a bounded unpacked size and compression ratio, only image files (by extension and by their first
bytes) inside class folders, at least two classes, no empty class. ``load`` unpacks the images once
into ``<uploads>/<id>.images/`` (a temporary folder renamed into place) and reads it with
``keras.utils.image_dataset_from_directory``, in its sorted order, into arrays scaled to 0..1.
The class folders may be at the top of the zip or inside one single top folder; macOS' ``__MACOSX``
folder and hidden files (``.DS_Store``) are skipped.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.codegen import Piece, ScriptContext, code
from core.config import DataConfig
from core.data import uploads
from core.data.checked_cache import CheckedCache
from core.data.contract import MIN_ROWS, Dataset, DatasetError, DatasetInfo, DatasetSpec, Setting, Uploads
from core.data.csv_table import MAX_UPLOAD_BYTES
from core.data.split import DATA_TUPLE, SPLIT, split_for, to_dataset

MAX_ZIP_BYTES = MAX_UPLOAD_BYTES  # the file itself (the app's upload limit)
MAX_MEMBERS = 50_000  # files and folders in the zip
MAX_UNPACKED_BYTES = 2**30  # all images together, unpacked
MAX_RATIO = 200  # unpacked / packed size of one member larger than 1 MB: beyond it, a zip bomb
MAX_PIXELS = 40_000_000  # one image's width x height (a small file can decode to gigabytes)
MAX_ARRAY_BYTES = 512 * 2**20  # the decoded, resized images as float32
MAX_JPEG_HEAD = 2**21  # a JPEG's size comes after its metadata (EXIF, ICC, XMP): read this far for it
MAX_NAME_BYTES = 255  # one file or folder name, as a file system stores it
EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what image_dataset_from_directory reads
READ_BATCH = 64  # images per batch while reading the folder (the arrays do not depend on it)
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
_CACHE_SIZE = 4
# A damaged member: a deflate stream cut short or corrupt, or a compression Python cannot unpack.
UNREADABLE = (zlib.error, EOFError, NotImplementedError)
_DAMAGED = (
    "The zip is damaged or packed in a way Python cannot unpack: zip the folders again and upload that."
)


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def skipped(parts: tuple[str, ...]) -> bool:
    """macOS' resource forks and hidden files, which are not images of any class."""
    return any(p == "__MACOSX" or p.startswith(".") for p in parts)


@dataclass(frozen=True)
class ImageListing:
    """The images of an uploaded zip, from its listing: the class folders and their files."""

    root: str  # the prefix of the class folders inside the zip ("" or "top/")
    classes: tuple[str, ...]  # sorted, as Keras sorts them
    counts: tuple[int, ...]  # images per class
    members: tuple[str, ...]  # the image members, full names in the zip
    hidden: int  # skipped hidden files and __MACOSX entries

    def summary(self) -> str:
        per = ", ".join(f"{c} {n:,}" for c, n in zip(self.classes, self.counts))
        skipped_note = f" ({self.hidden:,} hidden files skipped)" if self.hidden else ""
        return f"{sum(self.counts):,} images in {len(self.classes)} class folders: {per}.{skipped_note}"


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "points outside its folder (..)"
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted (password-protected)"
    if "\\" in name or "\x00" in name:
        return "has a backslash or a NUL in its name"
    return None


def _size_of(head: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's first bytes, when its format puts them there."""
    if head.startswith(b"\x89PNG") and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"GIF") and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])
    if head.startswith(b"BM") and len(head) >= 26:
        w, h = struct.unpack("<ii", head[18:26])
        return abs(w), abs(h)
    if head.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 <= len(head):
            if head[i] != 0xFF:
                return None
            marker = head[i + 1]
            if marker == 0xFF:  # a fill byte: any number may come before a marker (JPEG, B.1.1.2)
                i += 1
                continue
            if marker == 0x01 or 0xD0 <= marker <= 0xD9:  # TEM, RSTn, SOI, EOI: no length follows
                i += 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", head[i + 5 : i + 9])
                return w, h
            i += 2 + struct.unpack(">H", head[i + 2 : i + 4])[0]
    return None


def list_zip(path: os.PathLike | str) -> ImageListing:
    """The checked listing of an uploaded zip of class folders, or a DatasetError naming the problem."""
    if os.path.getsize(path) > MAX_ZIP_BYTES:
        raise DatasetError(f"The zip is larger than the {_mb(MAX_ZIP_BYTES)} upload limit.")
    try:
        with zipfile.ZipFile(path) as zf:
            return _listing(zf)
    except zipfile.BadZipFile:
        raise DatasetError(
            "This is not a zip file: zip the folder of class folders and upload that."
        ) from None
    except (OSError, *UNREADABLE):  # OSError: an offset in the zip's directory points before the file
        raise DatasetError(_DAMAGED) from None


def _listing(zf: zipfile.ZipFile) -> ImageListing:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise DatasetError(f"The zip holds {len(infos):,} entries; at most {MAX_MEMBERS:,} are read.")
    total, hidden = 0, 0
    files: list[zipfile.ZipInfo] = []
    folders: set[tuple[str, ...]] = set()
    for info in infos:
        problem = _unsafe(info)
        if problem:
            raise DatasetError(f"The zip's entry {info.filename!r} {problem}: the app does not unpack it.")
        parts = tuple(p for p in info.filename.split("/") if p)
        if not parts:
            continue
        if skipped(parts):
            hidden += 1
            continue
        if any(len(p.encode("utf-8")) > MAX_NAME_BYTES for p in parts):
            raise DatasetError(
                f"The zip's entry {info.filename!r} has a name longer than {MAX_NAME_BYTES} bytes: "
                "shorten it."
            )
        folders.update(parts[:i] for i in range(1, len(parts) if not info.is_dir() else len(parts) + 1))
        if info.is_dir():
            continue
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 2**20 and ratio > MAX_RATIO:
            raise DatasetError(
                f"The zip's entry {info.filename!r} unpacks to {ratio:,.0f} "
                "times its packed size: the app does not unpack it."
            )
        files.append(info)
    seen: set[tuple[str, ...]] = set()
    for info in files:  # unpacked, two of these would be one file (or a file where a folder is)
        parts = _parts(info)
        if parts in seen or parts in folders:
            raise DatasetError(
                f"The zip holds {info.filename!r} twice (or as a file and a folder): rename one and "
                "zip again."
            )
        seen.add(parts)
    if total > MAX_UNPACKED_BYTES:
        raise DatasetError(f"The zip unpacks to {_mb(total)}; the limit is {_mb(MAX_UNPACKED_BYTES)}.")
    if not files:
        raise DatasetError("The zip holds no files: put the images in one folder per class, then zip them.")
    tops = {f[0] for f in folders} | {i.filename.split("/")[0] for i in files}
    depth = 0
    if len(tops) == 1 and (next(iter(tops)),) in folders and all(len(_parts(i)) > 2 for i in files):
        depth = 1  # the class folders are inside one single top folder
    root = "".join(p + "/" for p in _parts(files[0])[:depth])
    per_class: dict[str, list[str]] = {f[depth]: [] for f in folders if len(f) == depth + 1}
    for info in files:
        rel = _parts(info)[depth:]
        if len(rel) < 2:
            raise DatasetError(
                f"{info.filename!r} is not inside a class folder: put each image in the folder of its class."
            )
        if not rel[-1].lower().endswith(EXTENSIONS):
            raise DatasetError(
                f"{info.filename!r} is not an image: the class folders may hold only .png, .jpg, .jpeg, .gif "
                "or .bmp files."
            )
        with zf.open(info) as fh:
            head = fh.read(65_536)
            size = _size_of(head)
            if size is None and head.startswith(b"\xff\xd8"):  # its size follows its metadata segments
                head += fh.read(MAX_JPEG_HEAD - len(head))
                size = _size_of(head)
        if not head.startswith(_MAGIC):
            raise DatasetError(
                f"{info.filename!r} is not an image: its content is not PNG, JPEG, GIF or BMP."
            )
        if size is None and head.startswith(b"\xff\xd8"):
            raise DatasetError(
                f"{info.filename!r} is a JPEG whose size is not in its first {_mb(MAX_JPEG_HEAD)} (or is "
                "damaged): the app does not decode it blind. Re-save it without large metadata."
            )
        if size is not None and size[0] * size[1] > MAX_PIXELS:
            raise DatasetError(
                f"{info.filename!r} is {size[0]:,} x {size[1]:,} pixels; at most {MAX_PIXELS:,} pixels per "
                "image are read."
            )
        per_class.setdefault(rel[0], []).append(info.filename)
    classes = tuple(sorted(per_class))
    empty = [c for c in classes if not per_class[c]]
    if empty:
        raise DatasetError(f"The class folder {empty[0]!r} holds no images: add images or remove it.")
    if len(classes) < 2:
        raise DatasetError(
            f"The zip has only one class folder ({classes[0]!r}): there is nothing to learn. Add a folder "
            "for each other class."
        )
    counts = tuple(len(per_class[c]) for c in classes)
    if sum(counts) < MIN_ROWS:
        raise DatasetError(
            f"The zip holds only {sum(counts)} images; at least {MIN_ROWS} are needed to split off "
            "training, validation and test data."
        )
    members = tuple(m for c in classes for m in per_class[c])
    return ImageListing(root, classes, counts, members, hidden)


def _parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    return tuple(p for p in info.filename.split("/") if p)


_listed: CheckedCache[ImageListing] = CheckedCache(_CACHE_SIZE)


def zip_path(upload_id: str | None, uploads_dir: Uploads) -> Path:
    if not upload_id:
        raise DatasetError("Upload a .zip of image folders first.")
    try:
        return uploads.path_of(upload_id, uploads_dir, ".zip")
    except uploads.UploadError as exc:
        raise DatasetError(str(exc)) from None


def read_upload(upload_id: str | None, uploads_dir: Uploads = None) -> ImageListing:
    """An uploaded zip's listing, checked once per content (the page asks on every rerun)."""
    path = zip_path(upload_id, uploads_dir)
    try:
        st = path.stat()
    except OSError:
        raise DatasetError("The uploaded zip is not on this server (any more): upload it again.") from None
    key = (upload_id, str(path.parent), st.st_size, st.st_mtime_ns)
    return _listed.get(key, lambda: list_zip(path))


def unpacked(upload_id: str, uploads_dir: Uploads) -> Path:
    """``<uploads>/<id>.images/``: the listed images, their class folders at its top, unpacked once."""
    listing = read_upload(upload_id, uploads_dir)
    path = zip_path(upload_id, uploads_dir)
    folder = path.with_name(f"{upload_id}.images")
    if folder.is_dir():
        return folder
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{upload_id}.images."))
    try:
        with zipfile.ZipFile(path) as zf:
            for name in listing.members:
                rel = name[len(listing.root) :].split("/")
                target = tmp.joinpath(*[p for p in rel if p])
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(target, "xb") as dst:
                    shutil.copyfileobj(src, dst)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process unpacked it meanwhile
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, (zipfile.BadZipFile, *UNREADABLE)):
            raise DatasetError(_DAMAGED) from None
        raise
    return folder


def _task(cfg: DataConfig, classes: tuple[str, ...]) -> str:
    if cfg.task == "regression":
        raise DatasetError("Image folders are classes: set the task to binary or multiclass (or infer it).")
    if cfg.task == "binary" and len(classes) != 2:
        raise DatasetError(
            f"Binary classification needs exactly 2 class folders; the zip has {len(classes)}. "
            "Set the task to multiclass."
        )
    return cfg.task or ("binary" if len(classes) == 2 else "multiclass")


@dataclass(frozen=True)
class UploadedImages(DatasetSpec):
    """A zip of one folder of images per class, resized to data.image_size squares."""

    def shape_for(self, cfg: DataConfig) -> tuple[int, ...]:
        return (cfg.image_size, cfg.image_size, 1 if cfg.color_mode == "grayscale" else 3)

    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        listing = read_upload(cfg.upload, uploads_dir)
        task = _task(cfg, listing.classes)
        n = sum(listing.counts)
        shape = self.shape_for(cfg)
        size = n * int(np.prod(shape)) * 4
        if size > MAX_ARRAY_BYTES:
            raise DatasetError(
                f"{n:,} images of {shape[0]}x{shape[1]}x{shape[2]} take {_mb(size)} as arrays; the limit is "
                f"{_mb(MAX_ARRAY_BYTES)}. Lower the image size (data.image_size) or use grayscale."
            )
        n = n if cfg.max_samples is None else min(n, cfg.max_samples)
        return DatasetInfo(task, self.input_kind, len(listing.classes), n, listing.classes, shape)

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        self.describe(cfg, uploads_dir)  # every check, before unpacking
        listing = read_upload(cfg.upload, uploads_dir)
        folder = unpacked(cfg.upload, uploads_dir)
        x, y, classes = read_folder(folder, cfg)
        if tuple(classes) != listing.classes or len(y) != sum(listing.counts):
            raise DatasetError("The unpacked images do not match the zip: upload it again.")
        task = _task(cfg, listing.classes)
        parts = split_for(cfg, y, task, validation_split, seed)
        shape = self.shape_for(cfg)

        def prep(rows: np.ndarray) -> np.ndarray:
            return x[rows].astype(np.float32)

        return to_dataset(
            parts,
            prep,
            y,
            task=task,
            kind="image",
            classes=list(classes),
            shape=shape,
            vocab=None,
            names=[],
            label=cfg.file_name or "uploaded images",
            what=f"{shape[0]}x{shape[1]} {cfg.color_mode} images",
        )

    def upload_summary(self, cfg: DataConfig, uploads_dir: Uploads) -> str:
        return read_upload(cfg.upload, uploads_dir).summary()

    def script_settings(self, ctx: ScriptContext) -> list[Setting]:
        d = ctx.config.data
        return [
            ("DATA_PATH", ctx.data_path, "the zip of class folders the run was trained on"),
            ("IMAGE_SIZE", d.image_size, "every image is resized to this square"),
            ("COLOR_MODE", d.color_mode, '"grayscale" or "rgb"'),
        ]

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        source = code(
            f'''
            def load_data(path) -> Data:
                """Your images: one folder per class in a zip, read as the app reads them."""
                with tempfile.TemporaryDirectory() as folder:
                    images = keras.utils.image_dataset_from_directory(
                        unpack(path, folder),
                        labels="inferred",
                        label_mode="int",
                        color_mode=COLOR_MODE,
                        image_size=(IMAGE_SIZE, IMAGE_SIZE),
                        batch_size={READ_BATCH},
                        shuffle=False,  # sorted by class folder, then by file name
                        verbose=False,
                    )
                    classes = list(images.class_names)
                    batches = list(images.as_numpy_iterator())
                x = np.concatenate([b[0] for b in batches]) / 255.0  # pixels 0..255 -> 0..1
                y = np.concatenate([b[1] for b in batches]).astype(np.int64)
                task = TASK or ("binary" if len(classes) == 2 else "multiclass")
                train, val, test = split_indices(y, classify=True)

                def prep(rows):
                    return x[rows].astype(np.float32)

                return to_data(prep, y, train, val, test, task, classes)


            def unpack(path, folder):
                """The zip's images into folder, hidden files and __MACOSX skipped; returns the
                folder holding the class folders (the zip's single top folder, if it has one)."""
                with zipfile.ZipFile(path) as zf:
                    for info in zf.infolist():
                        parts = [p for p in info.filename.split("/") if p]
                        hidden = any(p == "__MACOSX" or p.startswith(".") for p in parts)
                        if not info.is_dir() and not hidden:
                            zf.extract(info, folder)
                entries = os.listdir(folder)
                if len(entries) == 1 and os.path.isdir(os.path.join(folder, entries[0])):
                    top = os.path.join(folder, entries[0])
                    if not any(os.path.isfile(os.path.join(top, e)) for e in os.listdir(top)):
                        return top
                return folder
            '''
        )
        return [DATA_TUPLE, SPLIT, Piece(source, ("import os", "import tempfile", "import zipfile"))]


def read_folder(folder: Path, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The images of a folder of class folders as Keras reads them, scaled to 0..1; labels; classes."""
    import keras
    import tensorflow as tf

    images = keras.utils.image_dataset_from_directory(
        str(folder),
        labels="inferred",
        label_mode="int",
        color_mode=cfg.color_mode,
        image_size=(cfg.image_size, cfg.image_size),
        batch_size=READ_BATCH,
        shuffle=False,
        verbose=False,
    )
    classes = list(images.class_names)
    try:
        batches = list(images.as_numpy_iterator())
    except tf.errors.OpError:
        bad = _undecodable(folder)
        raise DatasetError(
            f"The image {bad!r} cannot be decoded (damaged or cut short): re-save it, or remove it, "
            "and upload the zip again."
        ) from None
    x = np.concatenate([b[0] for b in batches]) / 255.0
    y = np.concatenate([b[1] for b in batches]).astype(np.int64)
    return x, y, classes


def _undecodable(folder: Path) -> str:
    """The first image (in Keras' order) TensorFlow cannot decode, as a path inside the zip's folders."""
    import tensorflow as tf

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            tf.io.decode_image(path.read_bytes(), expand_animations=False)
        except tf.errors.OpError:
            return path.relative_to(folder).as_posix()
    return "?"


IMAGES = UploadedImages(
    "images",
    "Your images (.zip of class folders)",
    "Upload a zip with one folder of images per class (.png, .jpg, .gif, .bmp), for the CNN.",
    "images",
    None,
    "image",
    True,
)
