"""What an uploaded ``.keras`` file holds, read without TensorFlow, with limits, for the pages.

A ``.keras`` file is a zip archive: ``config.json`` (the architecture, and the compile settings),
``metadata.json`` (the Keras version) and ``model.weights.h5`` (the weights). The page and
``core.validate`` need its input and output shapes, its size and whether it holds code or classes
Keras' safe mode would refuse; this module reads them from ``config.json`` and the weights file's
dataset shapes (h5py reads the HDF5 headers only, never the weights), so listing and checking a model
never imports TensorFlow. The training process loads the real model (``core/models/uploaded.py``).

Everything is untrusted: the archive's size, member count and compression ratio are capped (a zip
bomb is refused before it is inflated), ``config.json`` is read with a byte cap and walked without
recursion, and the weights file's object count is capped.

>>> read_facts(b"\\x89HDF\\r\\n\\x1a\\n")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
core.models.keras_file.ModelFileError: This file is not a .keras file: it is an HDF5 file...
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any

from core.data import uploads

SUFFIX = ".keras"
MAX_FILE_BYTES = 200 * 2**20  # Streamlit's upload limit (.streamlit/config.toml maxUploadSize)
MAX_MEMBERS = 256  # a .keras file holds three, plus assets of a few preprocessing layers
MAX_UNPACKED_BYTES = 2 * 2**30  # the members' declared sizes, all together
MAX_RATIO = 100  # a member inflating more than this is a zip bomb, not weights
MAX_CONFIG_BYTES = 8 * 2**20  # config.json of a 1,000-layer model is about 2 MB
MAX_CONFIG_NODES = 2_000_000  # JSON values walked in config.json
MAX_H5_OBJECTS = 200_000  # groups and datasets in model.weights.h5
MAX_LAYERS = 10_000

# Layers an output may end in after its last layer with units: they keep the width.
_PASS_THROUGH = {
    "Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU", "Dropout", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "BatchNormalization",
    "LayerNormalization",
}  # fmt: skip
_ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu"}
_MODELS = ("Sequential", "Functional", "Model")


class ModelFileError(ValueError):
    """A message for the user: why this model file cannot be used, and what to do."""


@dataclass(frozen=True)
class KerasFileFacts:
    """What the pages and validation need to know about a model file."""

    input_shape: tuple[int | None, ...]  # per sample; None: any size on that axis
    input_dtype: str
    output_units: int | None  # the width of the last layer with units (None: not told by the config)
    output_activation: str | None  # what that output goes through last ("softmax", "sigmoid", "linear")
    params: int  # every weight in the file (trainable or not), as count_params() counts them
    layers: int  # layers, not counting the Input
    layer_classes: tuple[str, ...]  # their Keras classes, in order of first use, each once
    compiled: bool  # the file holds compile settings (an optimizer and a loss)
    keras_version: str | None

    def shape_text(self) -> str:
        return _shape(self.input_shape)

    def layers_text(self, most: int = 6) -> str:
        """``4 layers (Flatten, Dense, Dropout)``: what the model is made of, briefly."""
        kinds = list(self.layer_classes[:most]) + (["..."] if len(self.layer_classes) > most else [])
        inner = f" ({', '.join(kinds)})" if kinds else ""
        return f"{self.layers:,} layer{'s' if self.layers != 1 else ''}{inner}"

    def output_text(self) -> str:
        if self.output_units is None:
            return "an output this page cannot read from the file"
        act = f" {self.output_activation}" if self.output_activation else ""
        return f"{self.output_units:,}{act} unit{'s' if self.output_units != 1 else ''}"


def _shape(shape: tuple[int | None, ...]) -> str:
    inner = ", ".join("any" if d is None else str(d) for d in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"


def shape_text(shape: tuple[int | None, ...]) -> str:
    """A per-sample shape as the messages write it: ``(64,)``, ``(8, 8, 1)``, ``(any, 3)``."""
    return _shape(tuple(shape))


@functools.lru_cache(maxsize=32)
def _cached_facts(path: str, size: int, mtime: float) -> KerasFileFacts | str:
    """The facts, or why there are none: a refused file is not read again on every page run."""
    del size, mtime  # part of the cache key only: a file is named by its content, but be safe
    with open(path, "rb") as fh:
        try:
            return read_facts(fh.read(MAX_FILE_BYTES + 1))
        except ModelFileError as exc:
            return str(exc)


def facts_of_upload(upload_id: str, uploads_dir: str | os.PathLike | None = None) -> KerasFileFacts:
    """The facts of an uploaded model (cached: an upload id names one content)."""
    try:
        path = uploads.path_of(upload_id, uploads_dir, SUFFIX)
        stat = path.stat()
    except uploads.UploadError as exc:
        raise ModelFileError(str(exc)) from None
    except OSError:
        raise ModelFileError(
            "The uploaded .keras file is not on this server (any more): upload it again."
        ) from None
    facts = _cached_facts(str(path), stat.st_size, stat.st_mtime)
    if isinstance(facts, str):
        raise ModelFileError(facts)
    return facts


def read_facts(data: bytes) -> KerasFileFacts:
    """The facts of a ``.keras`` file's bytes, or ModelFileError saying why it cannot be used."""
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(
            f"The file is over {MAX_FILE_BYTES // 2**20} MB, the largest model the app takes."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ModelFileError(_not_a_zip(data)) from None
    except _UNREADABLE:
        raise ModelFileError(_DAMAGED) from None
    try:
        return _facts(archive)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, *_UNREADABLE):
        raise ModelFileError(_DAMAGED) from None


# A member's header or data damaged, a zip version or compression Python cannot unpack, an offset
# outside the file.
_UNREADABLE = (OSError, EOFError, NotImplementedError, ValueError, zlib.error)
_DAMAGED = (
    "This .keras file is damaged or packed in a way Python cannot unpack: save the model again with "
    'model.save("model.keras").'
)


def _facts(archive: zipfile.ZipFile) -> KerasFileFacts:
    with archive:
        infos = archive.infolist()
        _check_members(infos)
        names = {i.filename for i in infos}
        if "config.json" not in names:
            raise ModelFileError(
                "This zip is not a .keras file: it has no config.json. Save the model with Keras 3: "
                'model.save("model.keras").'
            )
        if "model.weights.h5" not in names:
            raise ModelFileError(
                "This .keras file has no model.weights.h5: it holds no weights. Save the whole model with "
                'model.save("model.keras").'
            )
        config = _json_member(archive, "config.json", MAX_CONFIG_BYTES)
        metadata = _json_member(archive, "metadata.json", 64 * 1024) if "metadata.json" in names else {}
        if not isinstance(config, dict):
            raise ModelFileError(
                "config.json of this file is not a Keras model's config (not a JSON object)."
            )
        try:
            _refuse_code_and_custom_classes(config)
            facts = _architecture(config)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                "config.json of this file is not a Keras model's config the app can read: save the model "
                'again with Keras 3, model.save("model.keras").'
            ) from None
        params = _count_params(archive)
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return KerasFileFacts(
        **facts,
        params=params,
        compiled=_compiled(config),
        keras_version=version if isinstance(version, str) else None,
    )


# -- the archive ------------------------------------------------------------------------------------


def _not_a_zip(data: bytes) -> str:
    if data.startswith(b"\x89HDF\r\n\x1a\n"):
        what = (
            "it is an HDF5 file (a Keras 2 .h5 model, renamed). Load it in Keras and save it again as "
            '.keras: keras.models.load_model("model.h5").save("model.keras")'
        )
    elif not data:
        what = "it is empty"
    else:
        what = (
            "a .keras file is a zip archive, and this is none. Save the model with Keras 3: "
            'model.save("model.keras")'
        )
    return f"This file is not a .keras file: {what}."


def _check_members(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"The archive holds {len(infos):,} files; a .keras file holds a handful.")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(
                f"{info.filename!r} in the archive is encrypted (password-protected): save the model again "
                'with model.save("model.keras").'
            )
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > MAX_RATIO and info.file_size > 2**20:
            raise ModelFileError(
                f"{info.filename!r} in the archive would inflate {ratio:,.0f}-fold: a zip bomb, not a model."
            )
    if total > MAX_UNPACKED_BYTES:
        raise ModelFileError(
            f"The archive unpacks to {total / 2**30:,.1f} GB; the app takes at most "
            f"{MAX_UNPACKED_BYTES / 2**30:g} GB."
        )


def _json_member(archive: zipfile.ZipFile, name: str, cap: int) -> Any:
    with archive.open(name) as fh:
        raw = fh.read(cap + 1)  # the declared size may lie: never read past the cap
    if len(raw) > cap:
        raise ModelFileError(
            f"{name} in this file is over {cap // 2**20 or 1} MB; the app reads at most that."
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelFileError(
            f"{name} in this file is not valid JSON: the file is damaged or no .keras."
        ) from None


def _seekable(archive: zipfile.ZipFile, name: str) -> IO[bytes]:
    """The member, for h5py's many seeks, copied once into a temporary file: zipfile (Python 3.11)
    re-reads, and re-inflates, a member from its start on every backward seek (seconds for a 40 MB
    weights file, minutes for a crafted 200 MB one)."""
    copy = tempfile.TemporaryFile()  # noqa: SIM115 - returned open: the caller closes it
    try:
        with archive.open(name) as src:
            shutil.copyfileobj(src, copy)  # at most its declared size (capped by _check_members)
        copy.seek(0)
    except BaseException:
        copy.close()
        raise
    return copy


def _count_params(archive: zipfile.ZipFile) -> int:
    """Every layer variable's size, from the HDF5 headers (the optimizer's variables are not counted)."""
    import h5py

    params, seen = 0, 0

    def visit(name: str, obj: Any) -> bool | None:
        nonlocal params, seen
        seen += 1
        if seen > MAX_H5_OBJECTS:
            return True  # stops the visit
        if isinstance(obj, h5py.Dataset) and name.startswith("layers/") and "/vars/" in name:
            params += math.prod(obj.shape or ())
        return None

    try:
        with _seekable(archive, "model.weights.h5") as fh, h5py.File(fh, "r") as h5:
            h5.visititems(visit)
    except Exception:  # noqa: BLE001 - a damaged or crafted HDF5 file: any error means unreadable
        raise ModelFileError("model.weights.h5 in this file is not a readable weights file.") from None
    if seen > MAX_H5_OBJECTS:
        raise ModelFileError(f"model.weights.h5 holds over {MAX_H5_OBJECTS:,} objects; the app reads fewer.")
    return params


# -- config.json ------------------------------------------------------------------------------------


def _walk(config: Any):
    """Every JSON object in ``config``, without recursion, at most MAX_CONFIG_NODES values."""
    stack, seen = [config], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_NODES:
            raise ModelFileError("config.json of this file is too large a structure for the app to read.")
        if isinstance(node, dict):
            yield node
            stack.extend(reversed(list(node.values())))  # in the file's order: the first found is named
        elif isinstance(node, list):
            stack.extend(reversed(node))


def _refuse_code_and_custom_classes(config: dict) -> None:
    for node in _walk(config):
        cls = node.get("class_name")
        if not isinstance(cls, str):
            continue
        name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
        if cls == "Lambda":
            raise ModelFileError(
                f"The model has a Lambda layer{f' ({name!r})' if isinstance(name, str) else ''}. Keras' "
                "safe_mode refuses to load it: a Lambda layer is stored as Python code, which would run on "
                "this server. Rebuild the model without it, from Keras' built-in layers (Rescaling, Reshape, "
                "Activation and Normalization cover most uses of a Lambda), and save it again. A layer class "
                "registered with @keras.saving.register_keras_serializable would load in your own code, "
                "but the app loads only Keras' built-in layers."
            )
        if cls == "__lambda__":
            raise ModelFileError(
                "The model holds a Python lambda (as an activation, loss or argument). Keras' safe_mode "
                "refuses to load it: it is stored as Python code. Use one of Keras' built-in functions by "
                'name (activation="relu") and save the model again.'
            )
        if "module" not in node and "registered_name" not in node:
            continue  # a tensor, a tuple or a shape, not a class
        module = node.get("module")
        if _keras_builtin_function(node):
            continue
        if not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            own = node.get("config") if cls == "function" and isinstance(node.get("config"), str) else None
            shown = own or node.get("registered_name") or cls
            raise ModelFileError(
                f"The model uses {str(shown)[:80]!r}, which is not part of Keras (a custom layer, model or "
                "function). The app loads only Keras' built-in layers: safe_mode, and no code from your "
                "files. Rebuild the model from built-in layers and save it again."
            )


def _keras_builtin_function(node: dict) -> bool:
    """A function Keras saves as ``{"module": "builtins", "class_name": "function", "config": name}``
    (a loss or metric given as a function, keras.losses.mse): Keras looks such a name up only among its
    own activations, losses, metrics, ... (and refuses it if not found); ``>`` marks a custom one."""
    name = node.get("config")
    return (
        node.get("module") == "builtins"
        and node.get("class_name") == "function"
        and isinstance(name, str)
        and name.isidentifier()
    )


def _shape_of(value: Any, what: str) -> tuple[int | None, ...]:
    if not isinstance(value, list) or not value or len(value) > 8:
        raise ModelFileError(f"config.json of this file gives no usable {what} shape.")
    dims = value[1:]  # the batch axis goes
    if not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**31) for d in dims):
        raise ModelFileError(f"config.json of this file gives no usable {what} shape.")
    return tuple(dims)


def _layers(config: dict) -> list[dict]:
    layers = config.get("config", {}).get("layers") if isinstance(config.get("config"), dict) else None
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise ModelFileError("config.json of this file lists no layers: it is not a Keras model's config.")
    if len(layers) > MAX_LAYERS:
        raise ModelFileError(f"The model has {len(layers):,} layers; the app takes at most {MAX_LAYERS:,}.")
    return layers


def _single(refs: Any, what: str) -> str:
    """The one layer name of a Functional's ``input_layers`` / ``output_layers``."""
    if isinstance(refs, list) and refs and all(isinstance(r, list) for r in refs):
        if len(refs) != 1:
            raise ModelFileError(
                f"The model has {len(refs)} {what}s; the app trains models with one {what} (one array of "
                f"samples in, one prediction out). Build it with a single keras.Input and a single {what}."
            )
        refs = refs[0]
    if not (isinstance(refs, list) and refs and isinstance(refs[0], str)):
        raise ModelFileError(f"config.json of this file names no {what} layer.")
    return refs[0]


def _architecture(config: dict) -> dict[str, Any]:
    kind = config.get("class_name")
    if kind not in _MODELS:
        raise ModelFileError(
            f"The file holds a {str(kind)[:40]!r}, not a Keras Sequential or functional model."
        )
    layers = _layers(config)
    by_name = {x.get("config", {}).get("name"): x for x in layers if isinstance(x.get("config"), dict)}
    if kind == "Sequential":
        inputs = [x for x in layers if x.get("class_name") == "InputLayer"]
        body = [x for x in layers if x.get("class_name") != "InputLayer"]
        if inputs:
            shape_list, dtype = inputs[0]["config"].get("batch_shape"), inputs[0]["config"].get("dtype")
        else:
            build = config.get("build_config") or {}
            shape_list, dtype = (build.get("input_shape") if isinstance(build, dict) else None), "float32"
        chain = list(reversed(body))
    else:
        inner = config["config"]
        first = by_name.get(_single(inner.get("input_layers"), "input"))
        last = _single(inner.get("output_layers"), "output")
        if first is None or last not in by_name:
            raise ModelFileError("config.json of this file names input or output layers it does not hold.")
        shape_list, dtype = first["config"].get("batch_shape"), first["config"].get("dtype")
        body = [x for x in layers if x.get("class_name") != "InputLayer"]
        chain = _back_from(last, by_name)
    if shape_list is None:
        raise ModelFileError(
            "The model was saved before it was built: its input shape is unknown. Start it with "
            "keras.Input(shape=...) and save it again."
        )
    units, activation = _output(chain)
    return {
        "input_shape": _shape_of(shape_list, "input"),
        "input_dtype": dtype if isinstance(dtype, str) else "float32",
        "output_units": units,
        "output_activation": activation,
        "layers": len(body),
        "layer_classes": tuple(dict.fromkeys(str(x.get("class_name"))[:40] for x in body)),
    }


def _back_from(name: str, by_name: dict) -> list[dict]:
    """A functional model's layers from its output back, as long as each has one input."""
    chain: list[dict] = []
    while name in by_name and len(chain) < MAX_LAYERS:
        layer = by_name[name]
        chain.append(layer)
        try:
            [node] = layer["inbound_nodes"]
            [arg] = node["args"]
            name = arg["config"]["keras_history"][0]
        except (KeyError, TypeError, ValueError, IndexError):
            break
    return chain


def _output(chain: list[dict]) -> tuple[int | None, str | None]:
    """(units, last activation) of the layers from the output back: the first layer with units."""
    activation = None
    for layer in chain:
        cls, cfg = layer.get("class_name"), layer.get("config")
        if not isinstance(cfg, dict):
            break
        if isinstance(cfg.get("units"), int):
            act = cfg.get("activation")
            return cfg["units"], activation or (act if isinstance(act, str) else None)
        if cls not in _PASS_THROUGH:
            break
        if activation is None:
            if cls == "Activation" and isinstance(cfg.get("activation"), str):
                activation = cfg["activation"]
            elif cls in _ACTIVATION_LAYERS:
                activation = _ACTIVATION_LAYERS[cls]
    return None, activation


def _compiled(config: dict) -> bool:
    compile_config = config.get("compile_config")
    return (
        isinstance(compile_config, dict)
        and compile_config.get("loss") is not None
        and bool(compile_config.get("optimizer"))
    )
