"""steps_per_execution: groups of batches change no number, and progress and Stop still count batches.

Real fits of the digits MLP (with dropout, whose masks must follow the same sequence), compared bit
for bit: k=1 against k=4 and "auto", each through the whole engine (checkpoint and test metrics too).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import pytest

from core import models
from core.config import (
    CheckpointConfig,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    ModelConfig,
    RunConfig,
)
from core.data import datasets
from core.engine import batch_groups
from core.engine.epoch_order import EpochShuffledBatches, ShuffleEachEpoch
from core.engine.fit_one import load_checkpoint
from core.engine.guarded_callbacks import EpochGate
from core.engine.live_callback import LiveCallback
from core.store.runs import FINISHED, STOPPED, Run, new_run_id

pytestmark = pytest.mark.xdist_group("batch_groups")


def grouped_config(k: int | str, **fit) -> RunConfig:
    """Digits MLP with dropout; early stopping at patience 2 ends it within a few epochs."""
    return RunConfig(
        name=f"k={k}",
        data=DataConfig(name="digits"),
        model=ModelConfig(name="mlp", units=64, depth=2, dropout=0.2),
        fit=FitConfig(max_epochs=fit.pop("max_epochs", 8), learning_rate=0.005, steps_per_execution=k, **fit),
        early_stopping=EarlyStoppingConfig(monitor="val_loss", mode="min", patience=2),
        checkpoint=CheckpointConfig(monitor="val_accuracy", mode="max", save_best_only=True),
    )


def test_choose_keeps_a_group_under_50_ms_and_within_an_epoch():
    assert batch_groups.choose(0.0058, 45) == 8  # 8 x 5.8 ms = 46 ms
    assert batch_groups.choose(0.2, 45) == 1  # a slow batch: no grouping
    assert batch_groups.choose(0.0001, 45) == 45  # never more than an epoch's batches
    assert batch_groups.choose(1e-7, 10**6) == 1024  # the declaration's maximum
    assert batch_groups.choose(0.0, 10) == 10
    assert batch_groups.recorded(["x", "steps_per_execution auto: 12 (batch 4.0 ms)"]) == 12
    assert batch_groups.recorded(["Epoch 1/8 - ..."]) is None


def test_every_group_size_trains_the_same_numbers_bit_for_bit(trainer):
    snaps = {}
    for k in (1, 4, "auto"):
        run = trainer.start(grouped_config(k))
        snaps[k] = trainer.wait(run.id, timeout=300)
        assert snaps[k].status == FINISHED, snaps[k].message
    one = snaps[1]
    assert len(one.history) >= 3
    for k in (4, "auto"):
        other = snaps[k]
        assert [r.logs for r in other.history] == [r.logs for r in one.history], k  # exact floats
        assert other.test_metrics == one.test_metrics
        assert (other.best_epoch, other.best_value) == (one.best_epoch, one.best_value)
        a = load_checkpoint(one.checkpoint_path).get_weights()
        b = load_checkpoint(other.checkpoint_path).get_weights()
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any("run 4 per step (progress and Stop act once per 4)" in line for line in snaps[4].log_lines)
    # "auto" measured a batch, chose a group under 50 ms, and says so in the run's log.
    chosen = batch_groups.recorded(snaps["auto"].log_lines)
    steps = math.ceil(1149 / 32)
    assert chosen is not None and 1 < chosen <= steps  # a digits batch takes a few ms: groups of several
    line = next(x for x in snaps["auto"].log_lines if x.startswith("steps_per_execution auto:"))
    batch_ms = float(line.split("(batch ")[1].split(" ms")[0])
    assert chosen == 1 or chosen * batch_ms <= 50 * 1.02  # (the logged time is rounded to 0.1 ms)
    assert snaps["auto"].steps_per_execution == chosen
    assert snaps[4].steps_per_execution == 4 and snaps[1].steps_per_execution == 1


def _live_fit(store, k: int, *, stop_first: bool = False) -> tuple[list[int], Run, keras.Model]:
    """One epoch of a real fit with the LiveCallback, recording the batch count the page would read
    after every batch hook (an observer after the LiveCallback, reading the run's own snapshot)."""
    cfg = grouped_config(k, max_epochs=1)
    run_id = new_run_id()
    created = time.time()
    store.create(run_id, cfg, created)
    run = Run(run_id, cfg, store, created_at=created)
    keras.utils.set_random_seed(cfg.fit.seed)
    ds = datasets.load(cfg.data, validation_split=cfg.fit.validation_split, seed=cfg.fit.seed)
    model = models.build(ds, cfg.model, cfg.fit)
    seen: list[int] = []

    class Observer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(run.snapshot().batch)

    batches = EpochShuffledBatches(ds.x_train, ds.y_train, 4, cfg.fit.seed)  # 288 batches
    live = LiveCallback(run, EpochGate(), main_metric="accuracy", val_steps=math.ceil(288 / 4))
    if stop_first:
        run.stop_requested.set()
    model.fit(
        batches,
        validation_data=(ds.x_val, ds.y_val),
        epochs=1,
        shuffle=False,
        callbacks=[ShuffleEachEpoch(batches), live, Observer()],
        verbose=0,
    )
    return seen, run, model


def test_live_progress_counts_batches_not_groups_and_stop_ends_after_the_group(store):
    seen, run, model = _live_fit(store, 7)
    assert model.steps_per_execution == 7
    # 288 batches in groups of 7: Keras reports each group's last index (the last one, 293, past the
    # end); the page shows batches done, capped at the epoch's 288.
    assert seen == [*range(7, 288, 7), 288]

    seen, run, model = _live_fit(store, 7, stop_first=True)
    assert seen == [7]  # Stop was seen at the first group's end: that group, and no more, trained
    assert model.stop_training
    assert any("stopped by user" in line for line in run.snapshot().log_lines)


def test_stop_with_groups_ends_within_one_group(trainer):
    cfg = grouped_config(8, batch_size=4, max_epochs=50)  # 288 batches an epoch, groups of 8
    cfg.early_stopping.enabled = False
    run = trainer.start(cfg)
    deadline = time.monotonic() + 120
    while True:
        snap = trainer.snapshot(run.id)
        if snap.epoch >= 1 and snap.batch >= 40:
            break
        assert time.monotonic() < deadline and snap.is_live, snap.message
        time.sleep(0.005)
    trainer.stop(run.id)
    requested_at = trainer.snapshot(run.id).batch
    snap = trainer.wait(run.id, timeout=60)
    assert snap.status == STOPPED and snap.stop_reason == "user"
    assert snap.batch % 8 == 0  # whole groups only
    assert snap.batch <= requested_at + 2 * 8  # the group in flight, plus the one whose end saw the flag
    assert snap.batch < snap.steps_per_epoch
    assert [r.epoch for r in snap.history] == list(range(1, len(snap.history) + 1))
