"""Headless training: ``python -m core train CONFIG.json`` runs what the app would, without a browser.

``python -m core resume RUN_ID`` continues a stopped or interrupted run from its resume point.

The run goes into the same store as the app's (``--runs-dir`` or $ESLAB_RUNS_DIR, default ./runs),
so it shows up in the app; the Keras-style log is printed as it is written.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import time
from pathlib import Path

from core.config import ConfigError, RunConfig, validate
from core.resume_point import ResumeError
from core.runs import Run, RunStore
from core.training import InvalidConfig, QueueFull, Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one run from a config JSON file")
    train.add_argument("config", type=Path, help="a RunConfig as JSON (the app's 'config JSON' download)")
    train.add_argument("--runs-dir", type=Path, default=None, help="where runs are stored")
    train.add_argument("--name", default=None, help="override the run's name")
    resume = sub.add_parser("resume", help="continue a stopped or interrupted run")
    resume.add_argument("run_id", help="the run's id (the 32 hex digits in the app's ?run= link)")
    resume.add_argument("--runs-dir", type=Path, default=None, help="where runs are stored")
    sub.add_parser("example-config", help="print the default config as JSON, a starting point to edit")
    args = parser.parse_args(argv)

    if args.command == "example-config":
        print(RunConfig().to_json())
        return 0
    if args.command == "resume":
        trainer = Trainer(RunStore(args.runs_dir))
        try:
            run = trainer.resume(args.run_id)
        except (ResumeError, QueueFull) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"run {run.id} ({run.config.name}) in {trainer.store.root}", flush=True)
        return _follow(trainer, run, printed=len(run.snapshot().log_lines) - 1)
    try:
        config = RunConfig.from_json(args.config.read_text())
    except (OSError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.name:
        config.name = args.name
    for p in validate(config):
        print(f"{p.severity}: {p.field}: {p.message}", file=sys.stderr)
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


def _follow(trainer: Trainer, run: Run, printed: int = 0) -> int:
    """Prints the run's log as it grows; Ctrl-C stops the run (after the batch in flight)."""
    signal.signal(signal.SIGINT, lambda *_: trainer.stop(run.id))
    signal.signal(signal.SIGTERM, lambda *_: trainer.stop(run.id))
    printed = 0
    while True:
        snap = trainer.snapshot(run.id)
        for line in snap.log_lines[printed:]:
            print(line, flush=True)
        printed = len(snap.log_lines)
        if not snap.is_live:
            break
        time.sleep(0.1)
    print(f"run {run.id}: {snap.status_label}. {snap.message or ''}".rstrip(), flush=True)
    return 0 if snap.status in ("finished", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
