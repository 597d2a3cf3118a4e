"""Test helper: small .npz files and zips of image class folders, written without Pillow."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def blobs(n: int = 60, features: int = 4, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable classes: x (n, features) float32 around one centre per class, y int labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, features)) + 3.0 * y[:, None]
    return x.astype(np.float32), y.astype(np.int64)


def tiny_images(n: int = 60, side: int = 8, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, side, side): class k is brighter in its own band of rows."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 80, size=(n, side, side)).astype(np.uint8)
    band = side // classes
    for i, k in enumerate(y):
        x[i, k * band : (k + 1) * band] += 150
    return x, y.astype(np.int64)


def png(pixels: np.ndarray) -> bytes:
    """A PNG of uint8 pixels, (h, w) grayscale or (h, w, 3) RGB."""
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def image_zip(
    files: dict[str, bytes] | None = None,
    *,
    n: int = 40,
    classes: tuple[str, ...] = ("cats", "dogs"),
    top: str = "",
) -> bytes:
    """A zip of class folders of PNGs (``top``: inside one top folder); ``files``: the entries as given."""
    if files is None:
        x, y = tiny_images(n, classes=len(classes))
        files = {f"{top}{classes[k]}/{i:03d}.png": png(x[i]) for i, k in enumerate(y)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def with_compression(data: bytes, method: int) -> bytes:
    """A stored (uncompressed) zip relabelled as packed with ``method`` (9: deflate64, which Python's
    zipfile cannot unpack), in every local and central header."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = out.find(signature)
        while i >= 0:
            out[i + offset : i + offset + 2] = method.to_bytes(2, "little")
            i = out.find(signature, i + 4)
    return bytes(out)


def stored_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def encrypted(data: bytes) -> bytes:
    """A zip with every member flagged encrypted (bit 0 of its flags), in local and central headers:
    what a password-protected zip looks like to a reader without the password."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = out.find(signature)
        while i >= 0:
            out[i + offset] |= 1
            i = out.find(signature, i + 4)
    return bytes(out)


def directory_moved(data: bytes, by: int = 100) -> bytes:
    """A zip whose end record puts its central directory ``by`` bytes later than it is: every member's
    offset then points before the file's start (zipfile seeks there: OSError, or ValueError in memory)."""
    import struct

    out = bytearray(data)
    i = out.rfind(b"PK\x05\x06")
    (offset,) = struct.unpack("<I", out[i + 16 : i + 20])
    out[i + 16 : i + 20] = struct.pack("<I", offset + by)
    return bytes(out)


def needs_zip_version(data: bytes, version: int = 99) -> bytes:
    """A zip whose members claim to need zip version ``version / 10`` to be unpacked."""
    out = bytearray(data)
    i = out.find(b"PK\x01\x02")
    while i >= 0:
        out[i + 6] = version
        i = out.find(b"PK\x01\x02", i + 4)
    return bytes(out)
