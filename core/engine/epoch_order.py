"""The order of the training samples in each epoch: a pure function of (seed, epoch).

``model.fit(x, y, shuffle=True)`` shuffles with ``tf.random.shuffle`` inside tf.data, a sequence
that starts over in a new process: a run resumed at epoch k would see epoch 1's order again and
drift away from the run it continues (measured: val_loss 0.227 against 0.240 one epoch after a
plain reload). Here epoch e's order is ``default_rng([seed, e]).permutation(n)``, so a resumed run
sees exactly the batches the uninterrupted one would have. The exported script uses this same class.

Pass ``shuffle=False`` to ``fit``: with a PyDataset, ``shuffle=True`` makes Keras reorder the
batches with Python's global ``random``, which is process state again.

Imported only by the training code (it imports Keras). ``core/export.py`` copies both classes
into exported scripts as they are written here, so they keep to 88 columns.
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

    def __init__(self, batches: EpochShuffledBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
