"""A run's history as a TensorBoard log folder, laid out as Keras' own TensorBoard callback writes it
(``train/`` and ``validation/``, one ``epoch_<metric>`` scalar per epoch, step = the 0-based epoch), so
``tensorboard --logdir`` shows an app run beside the user's other runs.

Written with the ``tensorboard`` package's record writer and protos (no TensorFlow). Values are float32
in the file, as Keras writes them: the metrics a fit logs are float32 already, so they read back exactly.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

from core.store.runs import RunSnapshot


def _events(snap: RunSnapshot, validation: bool) -> bytes:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buf = io.BytesIO()
    writer = RecordWriter(buf)
    started = snap.started_at or snap.created_at or time.time()
    writer.write(event_pb2.Event(wall_time=started, file_version="brain.Event:2").SerializeToString())
    for record in snap.history:
        values = []
        for key, value in record.logs.items():
            if key.startswith("val_") != validation or value is None:
                continue
            tag = "epoch_" + (key.removeprefix("val_") if validation else key)
            values.append(summary_pb2.Summary.Value(tag=tag, simple_value=value))
        if values:
            event = event_pb2.Event(
                wall_time=started, step=record.epoch - 1, summary=summary_pb2.Summary(value=values)
            )
            writer.write(event.SerializeToString())
    return buf.getvalue()


def write_folder(snap: RunSnapshot, folder: Path) -> list[Path]:
    """``<folder>/train`` and ``<folder>/validation`` event files; the paths written."""
    written = []
    for sub, validation in (("train", False), ("validation", True)):
        data = _events(snap, validation)
        target = folder / sub / f"events.out.tfevents.{int(snap.created_at)}.eslab.{snap.id[:8]}.v2"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


def zipped(snap: RunSnapshot) -> bytes:
    """The same folder as a zip (the page's download); its top folder is named after the run id."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for sub, validation in (("train", False), ("validation", True)):
            name = f"eslab-{snap.id[:8]}/{sub}/events.out.tfevents.{int(snap.created_at)}.eslab.v2"
            z.writestr(name, _events(snap, validation))
    return buf.getvalue()
