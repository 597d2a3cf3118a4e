"""Import what you recorded: a Keras ``History.history`` saved as JSON, a ``CSVLogger`` file, or a
TensorBoard log folder (or a zip of it), as a run the app shows, replays and compares.

Each reader turns its input into the same ``Recording`` (one dict of logs per epoch, 1-based in the
app, 0-based in the files) or refuses it with a message naming what is wrong (the key, the line, the
tag). A value that is no finite number (NaN, inf) is kept as missing, and the run's console says how
many; nothing else is changed. TensorBoard files are read with the ``tensorboard`` package's own
reader. Read with limits: files up to ``MAX_BYTES``, up to ``MAX_EPOCHS`` epochs and ``MAX_METRICS``
metrics.

>>> rec = read_history_json(b'{"loss": [0.9, 0.7, 0.8], "val_loss": [1.0, 0.8, NaN]}', "h.json")
>>> len(rec.epochs), rec.epochs[2], rec.notes
(3, {'loss': 0.8, 'val_loss': None}, ['1 value was not a finite number (NaN or inf): kept as missing.'])
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import tempfile
import time
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from core import metrics
from core.config import (
    RECORDED_NAME,
    CheckpointConfig,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    ModelConfig,
    RunConfig,
    check_config,
)
from core.store.runs import FINISHED, RUNNING, EpochRecord, Run, RunSnapshot, RunStore, new_run_id

MAX_BYTES = 200 * 2**20  # as the app's upload limit
MAX_EPOCHS = 1_000_000
MAX_METRICS = 200
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")  # a Keras log key, as the config declares monitors
KINDS = {
    "history_json": "Keras History (JSON)",
    "csv_logger": "CSVLogger file",
    "tensorboard": "TensorBoard logs",
}


class RecordingError(ValueError):
    """The input cannot be imported; the message says why, naming the key, line or tag."""


@dataclass
class Recording:
    epochs: list[dict[str, float | None]]  # one dict of logs per epoch, in order
    source: str  # the file's own name, for display
    kind: str  # a key of KINDS
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for logs in self.epochs:
            seen.update(dict.fromkeys(logs))
        return list(seen)


def _number(value: float, missing: list[int]) -> float | None:
    if isinstance(value, float) and math.isfinite(value):
        return value
    missing[0] += 1
    return None


def _finish(columns: dict[str, list[float | None]], source: str, kind: str, missing: int) -> Recording:
    if not columns:
        raise RecordingError(f"{source}: no metrics found.")
    if len(columns) > MAX_METRICS:
        raise RecordingError(f"{source}: {len(columns):,} metrics; at most {MAX_METRICS} can be imported.")
    for key in columns:
        if not _KEY.fullmatch(key):
            raise RecordingError(
                f"{source}: {key[:80]!r} is not a metric name Keras logs (letters, digits, _)."
            )
    lengths = {key: len(values) for key, values in columns.items()}
    n = max(lengths.values())
    if n == 0:
        raise RecordingError(f"{source}: no epochs recorded.")
    if n > MAX_EPOCHS:
        raise RecordingError(f"{source}: {n:,} epochs; at most {MAX_EPOCHS:,} can be imported.")
    short = {k: v for k, v in lengths.items() if v != n}
    if short:
        key, length = next(iter(short.items()))
        raise RecordingError(
            f"{source}: {key!r} has {length:,} values, other metrics {n:,}: one per epoch each."
        )
    epochs = [{key: values[i] for key, values in columns.items()} for i in range(n)]
    notes = []
    if missing:
        notes.append(
            f"{missing:,} value{' was' if missing == 1 else 's were'} not a finite number (NaN or inf): "
            "kept as missing."
        )
    return Recording(epochs, source, kind, notes)


def read_history_json(data: bytes, source: str) -> Recording:
    """``json.dump(history.history, f)``: metric name -> one number per epoch (NaN allowed)."""
    if len(data) > MAX_BYTES:
        raise RecordingError(f"{source}: {len(data):,} bytes; at most {MAX_BYTES:,}.")
    try:
        text = data.decode("utf-8-sig")
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{source}: not UTF-8 text (byte {exc.start:,}).") from None
    except json.JSONDecodeError as exc:
        raise RecordingError(
            f"{source}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise RecordingError(f"{source}: nested too deeply to be a History.") from None
    if not isinstance(obj, dict):
        raise RecordingError(
            f"{source}: a History is a JSON object of metric -> list, not {type(obj).__name__}."
        )
    missing = [0]
    columns: dict[str, list[float | None]] = {}
    for key, values in obj.items():
        if not isinstance(values, list):
            raise RecordingError(
                f"{source}: {key[:80]!r} must be a list of numbers, not {type(values).__name__}."
            )
        column = []
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) and v is not None:
                raise RecordingError(
                    f"{source}: {key[:80]!r}, epoch {i + 1}: {str(v)[:40]!r} is not a number."
                )
            column.append(None if v is None else _number(float(v), missing))
        columns[key] = column
    return _finish(columns, source, "history_json", missing[0])


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise RecordingError(f"the key {dup[:80]!r} appears twice.")
    return dict(pairs)


def read_csv_logger(data: bytes, source: str) -> Recording:
    """A ``keras.callbacks.CSVLogger`` file: a header ``epoch,<metric>,...`` and one row per epoch
    (0-based, consecutive; a file appended to by a second fit starts over at 0 and is refused)."""
    if len(data) > MAX_BYTES:
        raise RecordingError(f"{source}: {len(data):,} bytes; at most {MAX_BYTES:,}.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{source}: not UTF-8 text (byte {exc.start:,}).") from None
    first = text.split("\n", 1)[0]
    sep = next((s for s in (",", ";", "\t", "|") if first.startswith("epoch" + s)), None)
    if sep is None:
        raise RecordingError(
            f"{source}: line 1 must start with 'epoch' and a separator, as CSVLogger writes it."
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(reader)
    names = header[1:]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise RecordingError(f"{source}: the column {dup[:80]!r} appears twice in the header.")
    missing = [0]
    columns: dict[str, list[float | None]] = {name: [] for name in names}
    for row in reader:
        if not row:
            continue
        line = reader.line_num
        if len(row) != len(header):
            raise RecordingError(f"{source}, line {line}: {len(row)} fields, the header has {len(header)}.")
        expected = len(columns[names[0]]) if names else 0
        if row[0].strip() != str(expected):
            raise RecordingError(
                f"{source}, line {line}: epoch {row[0][:20]!r} where {expected} was expected (CSVLogger "
                "counts from 0, one row per epoch; a file appended to by two fits holds both: keep one)."
            )
        for name, cell in zip(names, row[1:]):
            cell = cell.strip()
            if cell in ("", "NA"):  # CSVLogger writes NA for a metric an epoch did not log
                columns[name].append(None)
                continue
            try:
                columns[name].append(_number(float(cell), missing))
            except ValueError:
                raise RecordingError(
                    f"{source}, line {line}: {name!r} holds {cell[:40]!r}, not a number."
                ) from None
    return _finish(columns, source, "csv_logger", missing[0])


def read_tensorboard(folder: Path, source: str, tags: list[str] | None = None) -> Recording:
    """A log folder of Keras' TensorBoard callback: ``train/`` and ``validation/`` event files whose
    ``epoch_<metric>`` scalars become ``<metric>`` and ``val_<metric>``. ``tags``: the ones to keep."""
    _without_tensorflow()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    prefixes = {"train": "", "validation": "val_"}
    columns: dict[str, dict[int, float]] = {}
    for sub, prefix in prefixes.items():
        if not (folder / sub).is_dir():
            continue
        acc = EventAccumulator(str(folder / sub), size_guidance={"tensors": 0, "scalars": 0})
        acc.Reload()
        found = acc.Tags()
        for tag in found.get("tensors", []) + found.get("scalars", []):
            if not tag.startswith("epoch_"):
                continue
            key = prefix + tag.removeprefix("epoch_")
            events = acc.Tensors(tag) if tag in found.get("tensors", []) else acc.Scalars(tag)
            values: dict[int, float] = {}
            for ev in events:
                value = ev.value if hasattr(ev, "value") else tensor_util.make_ndarray(ev.tensor_proto).item()
                if ev.step in values:
                    raise RecordingError(
                        f"{source}: {sub}/{tag} has step {ev.step} twice: the folder holds two fits; "
                        "keep one."
                    )
                values[ev.step] = float(value)
            columns[key] = values
    if not columns:
        raise RecordingError(
            f"{source}: no epoch scalars found (Keras' TensorBoard callback writes train/ and validation/ "
            "folders with epoch_loss, epoch_accuracy, ...)."
        )
    if tags is not None:
        unknown = [t for t in tags if t not in columns]
        if unknown:
            raise RecordingError(f"{source}: no tag {unknown[0]!r}; found {', '.join(columns)}.")
        columns = {t: columns[t] for t in tags}
    missing = [0]
    out: dict[str, list[float | None]] = {}
    for key, values in columns.items():
        steps = sorted(values)
        if steps != list(range(len(steps))):
            gap = next(i for i, s in enumerate(steps) if s != i)
            raise RecordingError(
                f"{source}: {key!r} has no value for epoch {gap} (steps must be 0, 1, 2, ...)."
            )
        out[key] = [_number(values[s], missing) for s in steps]
    return _finish(out, source, "tensorboard", missing[0])


def _without_tensorflow() -> None:
    """TensorBoard's reader imports TensorFlow when it can (about 500 MB, seconds): not in a process
    that has not loaded it (the app's server). ``tensorboard.compat.notf`` is TensorBoard's own switch
    to its TensorFlow stub (its no_tensorflow build target provides that module)."""
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def read_tensorboard_zip(data: bytes, source: str, tags: list[str] | None = None) -> Recording:
    """A zip of a TensorBoard log folder, from a browser. Only its event files are written, under names
    we make (``<train|validation>/events.out.tfevents.N``), in a private temporary folder: no path
    in the zip is ever used, so it cannot write outside that folder."""
    if len(data) > MAX_BYTES:
        raise RecordingError(f"{source}: {len(data):,} bytes; at most {MAX_BYTES:,}.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise RecordingError(f"{source}: not a zip file.") from None
    with archive, tempfile.TemporaryDirectory(prefix="eslab-tb-") as tmp:
        total, count = 0, 0
        for info in archive.infolist():
            parts = re.split(r"[/\\]", info.filename)
            if info.is_dir() or "tfevents" not in parts[-1]:
                continue
            sub = next((p for p in reversed(parts[:-1]) if p in ("train", "validation")), None)
            if sub is None:
                continue
            total += info.file_size
            if total > MAX_BYTES:
                raise RecordingError(f"{source}: unpacks to over {MAX_BYTES:,} bytes.")
            count += 1
            target = Path(tmp, sub, f"events.out.tfevents.{count}")
            target.parent.mkdir(exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as dst:
                left = MAX_BYTES
                while chunk := src.read(1 << 20):
                    left -= len(chunk)
                    if left < 0:
                        raise RecordingError(f"{source}: unpacks to over {MAX_BYTES:,} bytes.")
                    dst.write(chunk)
        if count == 0:
            raise RecordingError(f"{source}: no event files under train/ or validation/ in the zip.")
        return read_tensorboard(Path(tmp), source, tags)


def read_file(data: bytes, source: str, tags: list[str] | None = None) -> Recording:
    """By its content: a zip (TensorBoard), JSON (a History), else a CSVLogger file."""
    if data[:4] == b"PK\x03\x04":
        return read_tensorboard_zip(data, source, tags)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        return read_history_json(data, source)
    return read_csv_logger(data, source)


# --------------------------------------------------------------------------------------------
# A recording becomes a run: finished, marked as imported, with no checkpoint.


def _monitor(keys: list[str]) -> str:
    for key in ("val_loss", "loss"):
        if key in keys:
            return key
    return keys[0]


def import_run(store: RunStore, recording: Recording, name: str) -> str:
    """Stores the recording as a run (origin "imported"); returns its id. The What-if starts from
    Keras' default-like settings on ``val_loss`` (or ``loss``); no checkpoint exists to download."""
    keys = recording.keys
    monitor = _monitor(keys)
    mode = metrics.resolve_mode(monitor, "auto") or "min"
    config = RunConfig(
        name=name,
        data=DataConfig(name=RECORDED_NAME),
        model=ModelConfig(name=RECORDED_NAME),
        fit=FitConfig(max_epochs=len(recording.epochs)),
        early_stopping=EarlyStoppingConfig(monitor=monitor, mode=mode),
        checkpoint=CheckpointConfig(enabled=False, monitor=monitor, mode=mode),
        origin="imported",
    )
    problems = check_config(config)
    if problems:
        raise RecordingError("; ".join(p.message for p in problems))
    records = [EpochRecord(i + 1, logs, 0.0, False, None, None) for i, logs in enumerate(recording.epochs)]
    values = [logs.get(monitor) for logs in recording.epochs]
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    # The first epoch with the best value, as Keras' strict improvement keeps it.
    best = (
        min(present, key=lambda p: (p[0], p[1]))
        if mode == "min"
        else min(present, key=lambda p: (-p[0], p[1]))
    )
    run_id, now = new_run_id(), time.time()
    store.create(run_id, config, now)
    snap = RunSnapshot(id=run_id, config=config, status=RUNNING, created_at=now, history=tuple(records))
    run = Run.from_snapshot(snap, store)
    store.rewrite_history(run_id, records)
    what = KINDS[recording.kind]
    lines = [
        f"Imported from {recording.source} ({what}): {len(records):,} epochs, metrics {', '.join(keys)}."
    ]
    lines += recording.notes
    lines.append(
        "No checkpoint: an import has the curves only. The What-if replays any stopping setting on them."
    )
    for line in lines:
        run.log(line)
    run.set_status(
        FINISHED,
        started_at=now,
        finished_at=now,
        epoch=len(records),
        monitor=monitor,
        best_epoch=best[1] + 1 if present else None,
        best_value=best[0] if present else None,
        stop_reason="imported",
        message=lines[0],
    )
    return run_id
