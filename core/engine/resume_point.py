"""What a run needs to continue exactly where it was, so a resumed run stops where it would have.

One file per run, ``resume.npz``, written to a temp file and renamed every few epochs:

- every model variable, including the dropout seed generators' state (a ``.keras`` file does not
  keep it: a reloaded model draws other dropout masks), and every optimizer variable;
- EarlyStopping's state (wait, best, best epoch, and its best weights when it restores them) and
  ModelCheckpoint's (best, epochs saved), which Keras resets in ``on_train_begin``;
- the run's headline fields at that epoch (best epoch and value, checkpoint epoch).

With the per-epoch sample order of ``core/epoch_order.py`` that is the whole training state, so
the epochs after the resume point are trained again bit for bit. The file is read with
``allow_pickle=False``; its header is JSON.

This module imports NumPy only; the functions that touch a model get it passed in.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FILE_NAME = "resume.npz"
# Resume points may cost at most this share of training time: bookkeeping stays invisible (the
# engine's whole overhead over a bare ``model.fit`` is meant to stay under 2%; bench/engine_overhead.py).
MAX_OVERHEAD = 0.01
# Runs that ended this way are complete: there is nothing to resume.
FINAL_REASONS = ("early_stopping", "max_epochs", "nan_loss")
RULE_REASON = "rule:"  # "rule:<name>": one of the config's stopping rules ended the run


def is_final(reason: str | None) -> bool:
    """The run ended on its own: there is nothing left to train (and no resume point to keep)."""
    return reason in FINAL_REASONS or (reason or "").startswith(RULE_REASON)


class ResumeError(RuntimeError):
    """The run cannot be resumed; the message says why, for the page."""


@dataclass
class ResumePoint:
    epoch: int  # epochs finished (1-based: epoch 3 means three epochs are done)
    model_vars: list[np.ndarray]
    optimizer_vars: list[np.ndarray]
    early_stopping: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    es_best_weights: list[np.ndarray] | None = None
    reduce_lr: dict[str, Any] | None = None  # ReduceLROnPlateau's wait, cooldown and best


def path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / FILE_NAME


def saved_epoch(run_dir: str | os.PathLike) -> int | None:
    """The epoch a resume would continue after, or None if there is no (readable) resume point."""
    try:
        return _read_header(path(run_dir))["epoch"]
    except Exception:  # noqa: BLE001 - damaged or crafted: there is no usable resume point
        return None


def why_not(snap, run_dir: str | os.PathLike) -> str | None:
    """None when ``snap`` can be resumed, else the reason in the page's words."""
    if snap.is_live:
        return "This run is still going."
    if snap.damaged:
        return "This run's config.json is damaged, so it cannot be trained further."
    if is_final(snap.stop_reason):
        return "This run ended on its own; there is nothing left to train."
    if not path(run_dir).exists():
        return "This run saved no resume point (it ended before its first epoch finished)."
    epoch = saved_epoch(run_dir)
    if epoch is None:
        try:
            read(run_dir)
        except ResumeError as exc:
            return f"This run has no resume point it can use. {exc}"
        return "This run has no resume point it can use."
    if epoch > len(snap.history) or epoch > snap.max_epochs:
        return (
            f"The resume point of this run says epoch {epoch}, but {len(snap.history)} epochs are recorded: "
            "it does not belong to this run's history, so it is not used."
        )
    return None


def trained_again(point_epoch: int, last_epoch: int) -> str:
    """What a resume after ``point_epoch`` repeats, in words ("" when nothing): the user reads it
    before resuming, and the run's log keeps it."""
    if last_epoch <= point_epoch:
        return ""
    if last_epoch == point_epoch + 1:
        return f"epoch {last_epoch} is trained again"
    return f"epochs {point_epoch + 1}-{last_epoch} are trained again"


def remove(run_dir: str | os.PathLike) -> None:
    path(run_dir).unlink(missing_ok=True)


# -- capturing and applying (the training side) ----------------------------------------------------


def capture(
    model, early_stopping, checkpoint, epoch: int, summary: dict[str, Any], *, reduce_lr=None
) -> ResumePoint:
    es_state = es_weights = None
    if early_stopping is not None:
        es_state, es_weights = early_stopping.resume_state()
    return ResumePoint(
        epoch=epoch,
        model_vars=[np.asarray(v) for v in _values(model.variables)],
        optimizer_vars=[np.asarray(v) for v in _values(model.optimizer.variables)],
        early_stopping=es_state,
        checkpoint=checkpoint.resume_state() if checkpoint is not None else None,
        summary=summary,
        es_best_weights=es_weights,
        reduce_lr=reduce_lr.resume_state() if reduce_lr is not None else None,
    )


def apply(point: ResumePoint, model) -> None:
    """Puts the saved variables into a freshly built model of the same config."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    _assign(model.variables, point.model_vars, "model")
    _assign(optimizer.variables, point.optimizer_vars, "optimizer")


def _values(variables) -> list:
    return [v.numpy() for v in variables]


def _assign(variables, values: list[np.ndarray], what: str) -> None:
    if len(variables) != len(values):
        raise ResumeError(
            f"The resume point does not fit this {what} ({len(values)} saved variables, "
            f"{len(variables)} now): the code or the library versions changed since the run started."
        )
    for var, value in zip(variables, values):
        if tuple(var.shape) != value.shape:
            raise ResumeError(
                f"The resume point does not fit this {what} ({var.path}: saved {value.shape}, "
                f"now {tuple(var.shape)})."
            )
    for var, value in zip(variables, values):
        var.assign(value)


# -- the file ----------------------------------------------------------------------------------------


def write(run_dir: str | os.PathLike, point: ResumePoint) -> None:
    """Temp file, fsync, rename: a crash mid-write leaves the previous point, never a torn one."""
    final = path(run_dir)
    partial = final.with_name(f".{final.stem}.partial.npz")
    header = {
        "epoch": point.epoch,
        "early_stopping": point.early_stopping,
        "checkpoint": point.checkpoint,
        "summary": point.summary,
        "reduce_lr": point.reduce_lr,
        "counts": [
            len(point.model_vars),
            len(point.optimizer_vars),
            -1 if point.es_best_weights is None else len(point.es_best_weights),
        ],
        "written_at": time.time(),
    }
    arrays = {"header": np.array(json.dumps(header))}
    arrays |= {f"m{i}": a for i, a in enumerate(point.model_vars)}
    arrays |= {f"o{i}": a for i, a in enumerate(point.optimizer_vars)}
    arrays |= {f"b{i}": a for i, a in enumerate(point.es_best_weights or [])}
    try:
        with open(partial, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


MAX_SLACK_BYTES = 1 << 20  # np.savez stores its arrays uncompressed: they add up to the file's size
_METRIC_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def read(run_dir: str | os.PathLike) -> ResumePoint:
    """The resume point, checked: a damaged or crafted file raises ResumeError with the reason, never
    anything else (nothing in it is unpickled or run; its arrays must be numbers of a sane size)."""
    file = path(run_dir)
    try:
        _check_archive(file)
        with np.load(file, allow_pickle=False) as npz:
            header = _checked_header(json.loads(str(npz["header"])))
            n_model, n_opt, n_best = header["counts"]

            def arrays(prefix: str, n: int) -> list[np.ndarray]:
                out = [npz[f"{prefix}{i}"] for i in range(n)]
                for a in out:
                    if a.dtype.kind not in "biuf":
                        raise ValueError(f"an array of {a.dtype} where numbers belong")
                return out

            return ResumePoint(
                epoch=header["epoch"],
                model_vars=arrays("m", n_model),
                optimizer_vars=arrays("o", n_opt),
                early_stopping=header["early_stopping"],
                checkpoint=header["checkpoint"],
                summary=header["summary"],
                es_best_weights=None if n_best < 0 else arrays("b", n_best),
                reduce_lr=header["reduce_lr"],
            )
    except ResumeError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a crafted file provokes becomes the reason
        raise ResumeError(f"The resume point of this run cannot be read ({_reason(exc)}).") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _check_archive(file: Path) -> None:
    """A zip whose members would unpack to far more than the file holds is refused before any of it is
    read (a few KB can otherwise inflate to gigabytes in the server). Only a regular file of the run's
    folder: a named pipe would block its reader for ever, a device (a link to /dev/zero) never ends."""
    info = os.lstat(file)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("it is not a regular file: a link, a named pipe or a device")
    size = info.st_size
    with zipfile.ZipFile(file) as zf:
        unpacked = sum(info.file_size for info in zf.infolist())
    if unpacked > size + MAX_SLACK_BYTES:
        raise ValueError(f"its arrays would unpack to {unpacked:,} bytes from a {size:,}-byte file")


def _int(value: Any, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} is not a whole number of at least {low}")
    return value


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number")
    return float(value)


def _checked_header(header: Any) -> dict[str, Any]:
    """Every field with the type the trainer expects (what Keras' callbacks are given back)."""
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    counts = header.get("counts")
    if not isinstance(counts, list) or len(counts) != 3:
        raise ValueError("its header has no array counts")
    counts = [_int(counts[0], "a count"), _int(counts[1], "a count"), _int(counts[2], "a count", low=-1)]
    es = header.get("early_stopping")
    if es is not None:
        if not isinstance(es, dict):
            raise ValueError("its early-stopping state is not an object")
        es = {
            "wait": _int(es.get("wait"), "wait"),
            "stopped_epoch": _int(es.get("stopped_epoch"), "stopped_epoch"),
            "best": _number(es.get("best"), "best"),
            "best_epoch": _int(es.get("best_epoch"), "best_epoch"),
        }
    ck = header.get("checkpoint")
    if ck is not None:
        if not isinstance(ck, dict) or not isinstance(ck.get("saved_epochs"), list):
            raise ValueError("its checkpoint state is not an object with saved_epochs")
        ck = {
            "best": _number(ck.get("best"), "best"),
            "saved_epochs": [_int(e, "a saved epoch") for e in ck["saved_epochs"]],
        }
    rl = header.get("reduce_lr")  # absent from points written before the schedule existed
    if rl is not None:
        if not isinstance(rl, dict):
            raise ValueError("its ReduceLROnPlateau state is not an object")
        rl = {
            "wait": _int(rl.get("wait"), "wait"),
            "cooldown_counter": _int(rl.get("cooldown_counter"), "cooldown_counter"),
            "best": _number(rl.get("best"), "best"),
        }
    summary = header.get("summary")
    if not isinstance(summary, dict):
        raise ValueError("its summary is not an object")
    monitor = summary.get("monitor")
    if monitor is not None and not (isinstance(monitor, str) and _METRIC_RE.match(monitor)):
        raise ValueError("its monitor is not a metric name")

    def epoch_or_none(key: str) -> int | None:
        return None if summary.get(key) is None else _int(summary[key], key, 1)

    checked = {
        "monitor": monitor,
        "best_epoch": epoch_or_none("best_epoch"),
        "best_value": _number(summary.get("best_value"), "best_value"),
        "checkpoint_epoch": epoch_or_none("checkpoint_epoch"),
    }
    summary = {k: v for k, v in checked.items() if k in summary}  # nothing else goes through
    return {
        "epoch": _int(header.get("epoch"), "its epoch", low=1),
        "counts": counts,
        "early_stopping": es,
        "checkpoint": ck,
        "reduce_lr": rl,
        "summary": summary,
    }


def header(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The checked header alone (epoch, summary, callback states): what the server needs to queue a resume.
    The arrays are read where the run trains."""
    try:
        return _read_header(path(run_dir))
    except Exception as exc:  # noqa: BLE001
        raise ResumeError(f"The resume point of this run cannot be read ({_reason(exc)}).") from exc


def _read_header(file: Path) -> dict[str, Any]:
    _check_archive(file)
    with np.load(file, allow_pickle=False) as npz:
        return _checked_header(json.loads(str(npz["header"])))


# -- when to write one ---------------------------------------------------------------------------------


class Throttle:
    """Writes a point when the training time since the last one is at least 99x what a write costs.

    That keeps resume points under ``MAX_OVERHEAD`` of training time whatever the model: every few
    epochs for the small models here (a point costs 2-5 ms against 0.1-0.3 s epochs), every epoch
    once epochs take a second or more. A resume from an older point trains the epochs after it
    again, to the same numbers (the batch order follows from the seed and the epoch).
    """

    def __init__(self, max_overhead: float = MAX_OVERHEAD):
        self.factor = (1 - max_overhead) / max_overhead
        self.cost: float | None = None
        self._since = time.perf_counter()

    def due(self) -> bool:
        if self.cost is None:
            return True
        return time.perf_counter() - self._since >= self.factor * self.cost

    def wrote(self, seconds: float) -> None:
        self.cost = seconds
        self._since = time.perf_counter()
