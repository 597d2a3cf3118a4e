"""The order of the training samples in each epoch: a pure function of (seed, epoch).

``model.fit(x, y, shuffle=True)`` shuffles with ``tf.random.shuffle`` inside tf.data, a sequence
that starts over in a new process: a run resumed at epoch k would see epoch 1's order again and
drift away from the run it continues (measured: val_loss 0.227 against 0.240 one epoch after a
plain reload). Here epoch e's order is ``default_rng([seed, e]).permutation(n)``, so a resumed run
sees exactly the batches the uninterrupted one would have. The exported script uses this same class.

Pass ``shuffle=False`` to ``fit``: with a PyDataset, ``shuffle=True`` makes Keras reorder the
batches with Python's global ``random``, which is process state again.

On TensorFlow the same batches come from a tf.data pipeline (``EpochShuffledDataset``): Keras
feeds a PyDataset through Python, batch by batch, which cost 6-8% of a digits MLP epoch next to
``fit(x, y, shuffle=True)``; the pipeline gathers the rows in TensorFlow, as Keras' own array
adapter does, and takes its order from the same permutation. ``epoch_batches`` picks one.

Imported only by the training code (it imports Keras). ``core/export/script.py`` copies the
classes and the function into exported scripts as they are written here, so they keep to 88
columns.
"""

from __future__ import annotations

import math

import keras
import numpy as np


class EpochShuffledBatches(keras.utils.PyDataset):
    """Batches of (x, y) in an order set by the seed and the epoch, not the process."""

    def __init__(self, x, y, batch_size: int, seed: int, first_epoch: int = 0):
        super().__init__()
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.seed = seed
        self.set_epoch(first_epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[rows], self.y[rows]


class ShuffleEachEpoch(keras.callbacks.Callback):
    """Tells the batches which epoch starts (Keras numbers it: resumed fits agree)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)


class EpochShuffledDataset:
    """EpochShuffledBatches' batches as a tf.data pipeline: same rows, same order.

    The permutation is read when an epoch's iterator starts, which Keras creates after
    ``on_epoch_begin`` (where ShuffleEachEpoch sets the epoch).
    """

    def __init__(self, x, y, batch_size: int, seed: int, first_epoch: int = 0):
        import tensorflow as tf

        self.seed, self.n, self.batch_size = seed, len(x), batch_size
        self.set_epoch(first_epoch)
        full, rest = divmod(self.n, batch_size)
        xs, ys = tf.convert_to_tensor(x), tf.convert_to_tensor(y)

        def rows_of_each_batch(order):
            order = tf.ensure_shape(order, [self.n])
            head = tf.reshape(order[: full * batch_size], [full, batch_size])
            rows = tf.data.Dataset.from_tensor_slices(head)
            if rest:
                last = tf.data.Dataset.from_tensors(order[full * batch_size :])
                rows = rows.concatenate(last)
            return rows

        order = tf.data.Dataset.from_tensors(0).map(
            lambda _: tf.numpy_function(lambda: self.order, [], tf.int64, stateful=True)
        )
        self.dataset = (
            order.flat_map(rows_of_each_batch)
            .map(lambda rows: (tf.gather(xs, rows), tf.gather(ys, rows)))
            .apply(tf.data.experimental.assert_cardinality(full + (1 if rest else 0)))
            .prefetch(tf.data.AUTOTUNE)
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(self.n)


def epoch_batches(x, y, batch_size: int, seed: int, first_epoch: int = 0):
    """(what to pass to ``fit``, the callback that moves it to each epoch).

    A tf.data pipeline on TensorFlow, a PyDataset on the other backends. Pass
    ``shuffle=False`` to ``fit``.
    """
    if keras.backend.backend() == "tensorflow":
        batches = EpochShuffledDataset(x, y, batch_size, seed, first_epoch)
        return batches.dataset, ShuffleEachEpoch(batches)
    batches = EpochShuffledBatches(x, y, batch_size, seed, first_epoch)
    return batches, ShuffleEachEpoch(batches)
