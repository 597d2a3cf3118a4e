"""``python -m core train`` ends promptly on SIGTERM / Ctrl-C, even before its first batch."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from core.presets import quick_digits
from core.store.runs import LIVE_STATUSES, STOPPED, RunStore
from tests.headless import start_headless


def _config(**fit):
    cfg = quick_digits()
    cfg.early_stopping.enabled = False
    cfg.fit.max_epochs = 500
    cfg.fit.batch_size = 8
    for k, v in fit.items():
        setattr(cfg.fit, k, v)
    return cfg


def _finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_right_after_start_ends_the_process_at_once_and_records_the_run_stopped(tmp_path, sig):
    proc, runs_dir = start_headless(tmp_path, _config())
    try:
        first = proc.stdout.readline()  # "run <id> (name) in <dir>": recorded, TensorFlow not loaded yet
        run_id = first.split()[1]
        sent = time.monotonic()
        proc.send_signal(sig)
        out = _finish(proc, timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 3, f"{took:.1f} s to end; output:\n{first}{out}"
    assert proc.returncode == 128 + sig, first + out
    assert f"Stopped by {signal.Signals(sig).name} before training began." in out
    snap = RunStore(runs_dir).load(run_id)
    assert snap.status == STOPPED and snap.stop_reason == "user", snap
    assert snap.status not in LIVE_STATUSES


def test_ctrl_c_during_training_stops_after_the_batch_and_keeps_the_epochs(tmp_path):
    proc, runs_dir = start_headless(tmp_path, _config())
    try:
        run_id = proc.stdout.readline().split()[1]
        for line in proc.stdout:
            if line.startswith("Epoch 2/"):
                break
        proc.send_signal(signal.SIGINT)
        out = _finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "SIGINT: stopping after the batch in flight" in out
    snap = RunStore(runs_dir).load(run_id)
    assert snap.status == STOPPED and len(snap.history) >= 2
    assert snap.message.startswith("Stopped by user after")


def test_a_second_ctrl_c_exits_at_once(tmp_path):
    proc, runs_dir = start_headless(tmp_path, _config(batch_size=8))
    try:
        run_id = proc.stdout.readline().split()[1]
        for line in proc.stdout:
            if line.startswith("Epoch 1/"):
                break
        proc.send_signal(signal.SIGINT)
        # Wait until the first one was noted: two signals that arrive before Python runs its handler are
        # one call of it (CPython keeps one "tripped" flag per signal), as for any Python program.
        first = []
        for line in proc.stdout:
            first.append(line)
            if line.startswith("SIGINT: stopping after the batch"):
                break
        proc.send_signal(signal.SIGINT)
        out = "".join(first) + _finish(proc, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Second interrupt: exiting now." in out
    snap = RunStore(runs_dir).load(run_id)  # its owner is gone: not left running
    assert snap.status not in LIVE_STATUSES or RunStore(runs_dir).mark_interrupted() == [run_id]
