"""The per-epoch batch order: the tf.data pipeline gives exactly the PyDataset's batches and training."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.config import DataConfig, FitConfig, ModelConfig
from core.data import datasets
from core.engine.epoch_order import (
    EpochShuffledBatches,
    EpochShuffledDataset,
    ShuffleEachEpoch,
    epoch_batches,
)
from core.models import build


@pytest.mark.parametrize("n, batch_size", [(103, 10), (100, 10), (7, 32), (64, 1)])
def test_the_pipeline_yields_the_pydatasets_batches_in_every_epoch(n, batch_size):
    x = np.arange(n * 3, dtype="float32").reshape(n, 3)
    y = np.arange(n, dtype="int64")
    a = EpochShuffledBatches(x, y, batch_size, seed=7)
    b = EpochShuffledDataset(x, y, batch_size, seed=7)
    assert b.dataset.cardinality().numpy() == len(a)
    for epoch in (0, 1, 9):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        got = list(b.dataset.as_numpy_iterator())
        assert len(got) == len(a)
        for i, (xb, yb) in enumerate(got):
            xa, ya = a[i]
            assert xb.dtype == xa.dtype and yb.dtype == ya.dtype
            assert np.array_equal(xb, xa) and np.array_equal(yb, ya)
    b.set_epoch(0)
    first = [yb for _, yb in b.dataset.as_numpy_iterator()]
    b.set_epoch(1)
    assert not all(
        np.array_equal(p, q) for p, q in zip(first, (yb for _, yb in b.dataset.as_numpy_iterator()))
    )


def _train(ds, data, shuffler, epochs: int):
    keras.utils.set_random_seed(3)
    fit = FitConfig(batch_size=32, learning_rate=0.01)
    model = build(ds, ModelConfig(name="mlp", units=32, depth=2, dropout=0.2), fit)
    history = model.fit(
        data,
        validation_data=(ds.x_val, ds.y_val),
        epochs=epochs,
        shuffle=False,
        callbacks=[shuffler],
        verbose=0,
    )
    return history.history, model.get_weights()


def test_training_on_the_pipeline_is_bit_identical_to_training_on_the_pydataset():
    """The engine moved from the PyDataset to the pipeline: same seed, same run, to the last bit."""
    assert keras.backend.backend() == "tensorflow"
    ds = datasets.load(DataConfig(name="digits"), validation_split=0.2, seed=3)
    old = EpochShuffledBatches(ds.x_train, ds.y_train, 32, seed=3)
    hist_a, weights_a = _train(ds, old, ShuffleEachEpoch(old), epochs=4)
    data, shuffler = epoch_batches(ds.x_train, ds.y_train, 32, seed=3)
    assert isinstance(shuffler.batches, EpochShuffledDataset)
    hist_b, weights_b = _train(ds, data, shuffler, epochs=4)
    assert hist_a == hist_b
    assert all(np.array_equal(p, q) for p, q in zip(weights_a, weights_b))
    # Resumed at epoch 2 (a new pipeline that starts there) it sees the same batches as epoch 2 above.
    resumed = EpochShuffledDataset(ds.x_train, ds.y_train, 32, seed=3, first_epoch=2)
    old.set_epoch(2)
    assert np.array_equal(next(resumed.dataset.as_numpy_iterator())[1], old[0][1])
