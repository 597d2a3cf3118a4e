"""Headless training: ``python -m core train CONFIG.json`` runs what the app would, without a browser.

``python -m core resume RUN_ID`` continues a stopped or interrupted run from its resume point.
``python -m core validate CONFIG.json`` prints every problem of a config and exits 0 (valid) or 2;
``python -m core schema`` prints the JSON Schema of a config, for editors and CI.

The run goes into the same store as the app's (``--runs-dir`` or $ESLAB_RUNS_DIR, default ./runs),
so it shows up in the app; the Keras-style log is printed as it is written.

A config never names a file (``data.path`` is refused): ``--data-file PATH`` reads a local CSV given
by the person running the command, stores it as an upload in the runs folder (``<runs>/uploads``)
and sets the config's ``data.upload`` and ``data.file_name``, as an upload in the app does;
``--model-file PATH`` does the same with a ``.keras`` model (``model.upload``, ``model.file_name``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

from core import backends
from core.config import MAX_JSON_BYTES as MAX_CONFIG_FILE
from core.config import RunConfig, check, errors, parse_json, printable, run_name_problem, schema
from core.data import datasets, uploads
from core.engine.fit_one import fit_begun
from core.engine.queue import InvalidConfig, QueueFull, Trainer
from core.engine.resume_point import ResumeError
from core.export import tensorboard_log
from core.recorded import imports
from core.store.runs import FAILED, FINISHED, STOPPED, Run, RunStore, default_runs_dir
from core.validate import validate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one run from a config JSON file")
    train.add_argument("config", type=Path, help="a RunConfig as JSON (the app's 'config JSON' download)")
    train.add_argument("--runs-dir", type=Path, default=None, help="where runs are stored")
    train.add_argument("--name", default=None, help="override the run's name")
    train.add_argument("--data-file", type=Path, default=None, help=_DATA_FILE_HELP)
    train.add_argument("--model-file", type=Path, default=None, help=_MODEL_FILE_HELP)
    resume = sub.add_parser("resume", help="continue a stopped or interrupted run")
    resume.add_argument("run_id", help="the run's id (the 32 hex digits in the app's ?run= link)")
    resume.add_argument("--runs-dir", type=Path, default=None, help="where runs are stored")
    sub.add_parser("example-config", help="print the default config as JSON, a starting point to edit")
    check = sub.add_parser("validate", help="print a config's problems; exit 0 if it can train, 2 if not")
    check.add_argument("config", type=Path, help="a RunConfig as JSON")
    check.add_argument("--data-file", type=Path, default=None, help=_DATA_FILE_HELP)
    check.add_argument("--model-file", type=Path, default=None, help=_MODEL_FILE_HELP)
    check.add_argument("--runs-dir", type=Path, default=None, help="where runs (and uploads) are stored")
    sub.add_parser("schema", help="print the JSON Schema every config is checked against")
    imp = sub.add_parser(
        "import", help="a recorded run: History JSON, CSVLogger file, TensorBoard folder/zip"
    )
    imp.add_argument(
        "source", type=Path, help="the file, or a TensorBoard log folder (with train/, validation/)"
    )
    imp.add_argument("--name", default=None, help="the run's name (default: the file's name)")
    imp.add_argument("--tags", default=None, help="TensorBoard: the metrics to keep, e.g. loss,val_loss")
    imp.add_argument("--runs-dir", type=Path, default=None, help="where runs are stored")
    board = sub.add_parser("tensorboard", help="write a run's history as a TensorBoard log folder")
    board.add_argument("run_id", help="the run's id (the 32 hex digits in the app's ?run= link)")
    board.add_argument("folder", type=Path, help="where to write train/ and validation/")
    board.add_argument("--runs-dir", type=Path, default=None, help="where runs are stored")
    args = parser.parse_args(argv)

    if args.command == "example-config":
        print(RunConfig().to_json())
        return 0
    if args.command == "schema":
        print(json.dumps(schema(), indent=2))
        return 0
    if args.command == "validate":
        config = _read_config(args.config)
        if config is None:
            return 2
        uploads_dir = _runs_root(args.runs_dir) / "uploads"
        config = _with_data_file(config, args.data_file, uploads_dir)
        config = config and _with_model_file(config, args.model_file, uploads_dir)
        if config is None:
            return 2
        problems = validate(config, uploads_dir=uploads_dir)
        _print_problems(problems)
        if errors(problems):
            return 2
        print(f"{args.config}: valid" + (f" ({len(problems)} warning(s))" if problems else ""))
        return 0
    if args.command == "tensorboard":
        try:
            snap = RunStore(args.runs_dir).load(args.run_id)
            written = tensorboard_log.write_folder(snap, args.folder)
        except KeyError:
            print("error: No such run.", file=sys.stderr)
            return 2
        except OSError as exc:
            print(printable(f"error: cannot write {args.folder}: {exc.strerror or exc}"), file=sys.stderr)
            return 2
        print(printable(f"{len(snap.history):,} epochs written to {', '.join(map(str, written))}"))
        return 0
    if args.command == "import":
        return _import(args.source, args.name, args.tags, args.runs_dir)
    if args.command == "resume":
        store = RunStore(args.runs_dir)
        _use_backend_of(store, args.run_id)
        trainer = Trainer(store)
        try:
            run = trainer.resume(args.run_id)
        except (ResumeError, QueueFull) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"run {run.id} ({run.config.name}) in {trainer.store.root}", flush=True)
        return _follow(trainer, run, printed=len(run.snapshot().log_lines) - 1)
    config = _read_config(args.config)
    if config is None:
        return 2
    # Keras picks its backend at its first import: the run's, before anything imports it.
    backends.use_in_this_process(backends.resolve(config.fit.backend, config.model.name))
    if args.name is not None:
        config = _renamed(config, args.name)
        if config is None:
            return 2
    uploads_dir = _runs_root(args.runs_dir) / "uploads"
    config = _with_data_file(config, args.data_file, uploads_dir)
    config = config and _with_model_file(config, args.model_file, uploads_dir)
    if config is None:
        return 2
    _print_problems(validate(config, uploads_dir=uploads_dir))
    try:
        trainer = Trainer(RunStore(args.runs_dir))
        run = trainer.start(config)
    except InvalidConfig:
        return 2
    except (OSError, sqlite3.Error) as exc:
        where = args.runs_dir if args.runs_dir is not None else "the runs folder"
        print(f"error: cannot write to {where}: {exc}", file=sys.stderr)
        return 2
    print(f"run {run.id} ({config.name}) in {trainer.store.root}", flush=True)
    return _follow(trainer, run)


def _use_backend_of(store: RunStore, run_id: str) -> None:
    """The stored run's backend for this process's Keras (resolved when it started); a run that
    cannot be read is left to ``Trainer.resume`` to refuse with its reason."""
    try:
        config = store.load(run_id).config
    except Exception:  # noqa: BLE001 - no such run, a damaged one: resume says why
        return
    backends.use_in_this_process(backends.resolve(config.fit.backend, config.model.name))


def _read_config(path: Path) -> RunConfig | None:
    """The config file checked against the declaration; its problems printed when it is refused."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_CONFIG_FILE + 1)
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    config, problems = parse_json(text)
    if config is None:
        _print_problems(problems)
    return config


_DATA_FILE_HELP = (
    "a local CSV (csv / text_csv), .npz (npz / npz_images) or zip of image folders (images): stored as an "
    "upload in the runs folder "
    "(<runs>/uploads) and named by the config's data.upload and data.file_name"
)
MAX_DATA_FILE = 200 * 2**20  # the app's upload limit (.streamlit/config.toml maxUploadSize)


def _runs_root(runs_dir: Path | None) -> Path:
    return runs_dir if runs_dir is not None else default_runs_dir()


def _with_data_file(config: RunConfig, data_file: Path | None, uploads_dir: Path) -> RunConfig | None:
    """The config with --data-file stored as an upload and named by it (the only file this reads)."""
    if data_file is None:
        return config
    suffix = datasets.upload_suffix(config.data.name) or ".csv"
    stored = _store_file("--data-file", data_file, uploads_dir, suffix)
    return stored and replace(config, data=replace(config.data, upload=stored[0], file_name=stored[1]))


def _store_file(flag: str, path: Path, uploads_dir: Path, suffix: str) -> tuple[str, str | None] | None:
    """(upload id, display name) of the local file ``path`` stored as an upload; None after printing
    why it cannot be (unreadable, over the limit, the runs folder not writable)."""
    try:
        data = _read_data_file(path, MAX_DATA_FILE)
    except OSError as exc:
        print(printable(f"error: {flag}: cannot read {path}: {exc.strerror or exc}"), file=sys.stderr)
        return None
    if data is None:
        print(
            printable(f"error: {flag}: {path} is over the {MAX_DATA_FILE // 2**20} MB limit."),
            file=sys.stderr,
        )
        return None
    try:
        upload_id = uploads.store(data, uploads_dir, suffix)
    except (uploads.UploadError, OSError) as exc:
        print(printable(f"error: cannot store {flag} in {uploads_dir}: {exc}"), file=sys.stderr)
        return None
    return upload_id, uploads.display_name(path.name)


def _read_data_file(path: Path, max_bytes: int) -> bytes | None:
    """The file's bytes, or None when it holds more than ``max_bytes``. Read with a bound, not checked
    by its size: a pipe (``--data-file <(...)``) or a device reports size 0, and ``/dev/zero`` read
    whole grew the process to 23 GB in a minute."""
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    return data if len(data) <= max_bytes else None


_MODEL_FILE_HELP = (
    "a local .keras model for the 'uploaded' model: stored as an upload in the runs folder and named by "
    "the config's model.upload and model.file_name"
)


def _with_model_file(config: RunConfig, model_file: Path | None, uploads_dir: Path) -> RunConfig | None:
    """The config with --model-file stored as an upload (.keras) and named by it."""
    if model_file is None:
        return config
    stored = _store_file("--model-file", model_file, uploads_dir, ".keras")
    return stored and replace(config, model=replace(config.model, upload=stored[0], file_name=stored[1]))


def _import(source: Path, name: str | None, tags: str | None, runs_dir: Path | None) -> int:
    """A recorded run into the store; prints its id, or the reason it cannot be imported (exit 2)."""
    wanted = [t.strip() for t in tags.split(",") if t.strip()] if tags else None
    label = uploads.display_name(source.name) or "recording"
    try:
        if source.is_dir():
            recording = imports.read_tensorboard(source, label, wanted)
        else:
            data = _read_data_file(source, imports.MAX_BYTES)
            if data is None:
                print(
                    printable(f"error: {source} is over the {imports.MAX_BYTES // 2**20} MB limit."),
                    file=sys.stderr,
                )
                return 2
            recording = imports.read_file(data, label, wanted)
        run_name = name if name is not None else label
        if (problem := run_name_problem(run_name)) is not None:
            print(printable(f"error: --name: {problem}."), file=sys.stderr)
            return 2
        store = RunStore(runs_dir)
        run_id = imports.import_run(store, recording, run_name)
    except imports.RecordingError as exc:
        print(printable(f"error: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            printable(f"error: cannot read {source} or write the runs folder: {exc.strerror or exc}"),
            file=sys.stderr,
        )
        return 2
    for line in recording.notes:
        print(printable(f"note: {line}"))
    print(printable(f"run {run_id} ({run_name}) in {store.root}: imported {len(recording.epochs):,} epochs"))
    return 0


def _renamed(config: RunConfig, name: str) -> RunConfig | None:
    data = config.to_dict()
    data["name"] = name
    renamed, problems = check(data)
    if renamed is None:
        _print_problems(
            [replace(p, field="--name", message=p.message.replace("name:", "--name:", 1)) for p in problems]
        )
    return renamed


def _print_problems(problems) -> None:
    """Each problem on its line. Messages quote what the config and its CSV hold (keys, column names):
    ``printable`` keeps an ESC sequence in them from driving the terminal (clearing the errors above
    it, say) and a direction override from reordering the line."""
    for p in problems:
        line = p.message if p.message.startswith(p.field) else f"{p.field}: {p.message}"
        print(f"{p.severity}: {printable(line)}", file=sys.stderr)


def _follow(trainer: Trainer, run: Run, printed: int = 0) -> int:
    """Prints the run's log as it grows, until the run ends.

    Ctrl-C or SIGTERM while the run trains stops it after the batch in flight (as the app's Stop). Before
    training has begun (TensorFlow's import, loading the data, building the model: nothing there checks
    for a Stop, and it can take a minute) the run is recorded as stopped and the process ends at once.
    A second Ctrl-C ends the process at once whatever it is doing. Ending without a finished run exits
    non-zero (130 for Ctrl-C, 143 for SIGTERM).

    The handlers only note the signal: this loop acts on it, within 0.1 s. (A handler runs between two
    bytecodes of this thread, possibly inside ``run.snapshot()``'s lock: writing the run there could
    deadlock.)
    """
    _install_signal_handlers()
    signals = _signals
    printed = 0
    acted = False
    while True:
        snap = trainer.snapshot(run.id)
        for line in snap.log_lines[printed:]:
            print(printable(line), flush=True)  # the log quotes CSV column names and labels
        printed = len(snap.log_lines)
        if not snap.is_live:
            break
        if signals and not acted:
            acted = True
            name = signal.Signals(signals[0]).name
            if _training_begun(trainer, run, snap):
                print(f"{name}: stopping after the batch in flight (again to end at once).", flush=True)
                trainer.stop(run.id)
            else:
                _exit(run, 128 + signals[0], f"Stopped by {name} before training began.", stop=trainer)
        time.sleep(0.1)
    print(f"run {run.id}: {snap.status_label}. {snap.message or ''}".rstrip(), flush=True)
    trainer.wait_idle()  # the training thread finishes its clean-up before the process exits
    if signals:
        return 128 + signals[0] if snap.status != "finished" else 0
    return 0 if snap.status in ("finished", "stopped") else 1


_signals: list[int] = []  # SIGINT / SIGTERM received, in order


def _note_signal(signum: int, _frame) -> None:
    _signals.append(signum)
    if len(_signals) >= 2:  # the second one: at once, whatever the state. Nothing that takes a lock
        # here; the run's owner is gone, so the next look at the store marks it interrupted.
        os.write(2, b"Second interrupt: exiting now.\n")
        os._exit(128 + _signals[0])


def _install_signal_handlers() -> None:
    """From the very start of ``python -m core``: a signal before ``_follow`` runs is noted, not lost
    (and not the default SIGTERM death that would leave a just-created run "queued")."""
    signal.signal(signal.SIGINT, _note_signal)
    signal.signal(signal.SIGTERM, _note_signal)


def _training_begun(trainer: Trainer, run: Run, snap) -> bool:
    if trainer.train_in == "thread":
        return fit_begun(run.id)
    return snap.steps_per_epoch is not None  # a worker process trains it: its first epoch has begun


def _exit(run: Run, code: int, message: str, stop: Trainer | None = None) -> None:
    """Records the run as stopped (it is not left "running") and ends the process now."""
    try:
        if stop is not None:
            stop.stop(run.id)  # a queued run is stopped; a loading one gets the flag
        for _ in range(3):  # the training thread may write "running" in between: until it sticks
            if run.status in (STOPPED, FINISHED, FAILED):
                break
            run.log(message)
            run.set_status(STOPPED, stop_reason="user", message=message)
        print(f"run {run.id}: {message}", flush=True)
    finally:
        os._exit(code)


if __name__ == "__main__":
    _install_signal_handlers()
    sys.exit(main())
