"""The what-if takes the run's own config types whole and replays every argument in them."""

from __future__ import annotations

import dataclasses
import random

import pytest

from core.analysis import whatif
from core.config import CheckpointConfig, EarlyStoppingConfig, RunConfig
from core.stopping import replay
from core.store.runs import EpochRecord, RunSnapshot

VAL = [1.0, 0.8, 0.7, 0.72, 0.69, 0.75, 0.8, 0.71, 0.9, 0.95, 1.0, 1.1]
TRAIN = [1.1, 0.9, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.28, 0.26, 0.25]


def recorded(val=VAL, train=TRAIN, **config) -> RunSnapshot:
    cfg = RunConfig(**config)
    cfg.fit.max_epochs = len(val)
    history = tuple(
        EpochRecord(epoch=i + 1, logs={"loss": t, "val_loss": v}, seconds=0.1)
        for i, (v, t) in enumerate(zip(val, train, strict=True))
    )
    return RunSnapshot(id="a" * 32, config=cfg, status="finished", created_at=0.0, history=history,
                       stop_reason="max_epochs")  # fmt: skip


def test_early_stopping_off_trains_every_recorded_epoch():
    snap = recorded()
    es = dataclasses.replace(EarlyStoppingConfig(), enabled=False, patience=1)
    w = whatif.what_if(snap, es, CheckpointConfig())
    assert not w.stopped and w.epochs_run == len(VAL) and w.final_weights_epoch == len(VAL)
    assert w.kept_epoch == 5  # save_best_only keeps the lowest val_loss (0.69 at epoch 5)


def test_checkpoint_off_keeps_nothing_and_every_epoch_without_save_best_only():
    snap = recorded()
    es = dataclasses.replace(EarlyStoppingConfig(), patience=2)
    off = whatif.what_if(snap, es, dataclasses.replace(CheckpointConfig(), enabled=False))
    assert off.kept_epoch is None and off.saved_epochs == ()
    every = whatif.what_if(snap, es, dataclasses.replace(CheckpointConfig(), save_best_only=False))
    assert every.stopped and every.saved_epochs == tuple(range(1, every.epochs_run + 1))
    assert every.kept_epoch == every.epochs_run


@pytest.mark.parametrize("seed", range(40))
def test_every_early_stopping_argument_reaches_the_replay(seed):
    rng = random.Random(seed)
    snap = recorded()
    es = EarlyStoppingConfig(
        monitor=rng.choice(["val_loss", "loss"]),
        mode=rng.choice(["auto", "min"]),
        patience=rng.randint(0, 6),
        min_delta=rng.choice([0.0, 0.01, 0.05]),
        baseline=rng.choice([None, 0.75, 0.5]),
        restore_best_weights=rng.random() < 0.5,
        start_from_epoch=rng.randint(0, 4),
    )
    ck = CheckpointConfig(initial_value_threshold=rng.choice([None, 0.71]))
    w = whatif.what_if(snap, es, ck)
    values = VAL if es.monitor == "val_loss" else TRAIN
    expected = replay.replay_early_stopping(
        values, mode="min", patience=es.patience, min_delta=es.min_delta, baseline=es.baseline,
        restore_best_weights=es.restore_best_weights, start_from_epoch=es.start_from_epoch,
    )  # fmt: skip
    assert w.stopped == (expected.stopped_epoch > 0)
    assert w.final_weights_epoch == expected.final_weights_epoch + 1
    assert w.early_stopping == es and w.checkpoint == ck
    kept = replay.replay_checkpoint(
        VAL[: w.epochs_run], mode="min", initial_value_threshold=ck.initial_value_threshold
    )
    assert w.kept_epoch == (None if kept.kept_epoch is None else kept.kept_epoch + 1)


@pytest.mark.parametrize(
    ("status", "reason", "says"),
    [
        ("running", None, "because the run is still training, so"),
        ("finished", "early_stopping", "because the run stopped early there, so"),
        ("stopped", "user", "because the run was stopped by its user there, so"),
        ("interrupted", "interrupted", "because the run was interrupted there, so"),
        ("finished", "something new", "because the run ended there, so"),
    ],
)
def test_a_rule_that_needs_unrecorded_epochs_says_why_the_recording_ends(status, reason, says):
    snap = dataclasses.replace(recorded(), status=status, stop_reason=reason)
    snap.config.fit.max_epochs = 100  # the recording is not the full curve
    never = dataclasses.replace(snap.config.early_stopping, enabled=True, patience=50)
    result = whatif.what_if(snap, never, snap.config.checkpoint)
    assert result.note is not None and says in result.note, result.note
