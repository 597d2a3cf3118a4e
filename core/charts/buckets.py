"""A growing series decimated as it grows: min/max buckets whose size doubles to stay under a bound.

``decimate_indices`` cuts a whole series into equal buckets on every call: O(epochs) a tick. The live
chart of a run gets a few epochs a tick, so ``MinMaxBuckets`` keeps the buckets between ticks and
adds only the new points (a power-of-two bucket size; two neighbours merge when there are too many),
so a tick costs the same at epoch 100 and at epoch 100,000, and the line keeps its shape: each bucket
keeps its lowest and highest point, and its first NaN so that a gap stays a gap.

>>> import numpy as np
>>> b = MinMaxBuckets(limit=4)
>>> y = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0])
>>> b.extend(y)
>>> b.size, b.indices().tolist()  # 10 points in buckets of 4 (0-3, 4-7, 8-9): each one's min and max
(4, [1, 2, 5, 6, 8, 9])
>>> b.extend(np.append(y, [0.0] * 7))  # 17 points: 5 buckets of 4 would be too many, so 3 of 8
>>> b.size, b.indices().tolist()
(8, [1, 5, 8, 10, 16])
"""

from __future__ import annotations

import math

import numpy as np

NONE = -1


class MinMaxBuckets:
    """At most ``limit`` buckets of consecutive points; ``indices`` gives the points they keep."""

    def __init__(self, limit: int):
        self.limit = max(int(limit), 1)
        self.size = 1
        self.n = 0
        self._lo: list[int] = []  # per bucket: the index of its lowest point (NONE: all NaN)
        self._hi: list[int] = []
        self._nan: list[int] = []  # its first NaN (NONE: none)
        self._values = np.zeros(0)

    def extend(self, values: np.ndarray) -> None:
        """``values`` is the whole series so far; the points past ``self.n`` are the new ones."""
        values = np.asarray(values, dtype=float)
        if len(values) < self.n:
            raise ValueError("a series only grows")
        self._values = values
        if self.n == 0 and len(values) > self.limit:
            self._start(values)
        for i in range(self.n, len(values)):
            self._add(i, values[i])
        self.n = len(values)

    def indices(self) -> np.ndarray:
        """Sorted indices of the kept points: every bucket's lowest, highest and first NaN."""
        picks = np.array([*self._lo, *self._hi, *self._nan], dtype=np.int64)
        return np.unique(picks[picks != NONE])

    def _start(self, values: np.ndarray) -> None:
        """The first bucketing of a long series at once (vectorized), at the size it will need."""
        self.size = 1 << max(0, math.ceil(math.log2(len(values) / self.limit)))
        n = len(values) - len(values) % self.size  # whole buckets only; the rest is added point by point
        if n == 0:
            return
        block = values[:n].reshape(-1, self.size)
        nan = np.isnan(block)
        starts = np.arange(len(block)) * self.size
        all_nan = nan.all(axis=1)
        lo = np.where(all_nan, NONE, starts + np.where(nan, np.inf, block).argmin(axis=1))
        hi = np.where(all_nan, NONE, starts + np.where(nan, -np.inf, block).argmax(axis=1))
        first_nan = np.where(nan.any(axis=1), starts + nan.argmax(axis=1), NONE)
        self._lo, self._hi, self._nan = lo.tolist(), hi.tolist(), first_nan.tolist()
        self.n = n

    def _add(self, i: int, v: float) -> None:
        b = i // self.size
        if b == len(self._lo) == self.limit:  # a new bucket, and no room: merge pairwise first
            self._merge()
            b = i // self.size
        if b == len(self._lo):
            nan = math.isnan(v)
            self._lo.append(NONE if nan else i)
            self._hi.append(NONE if nan else i)
            self._nan.append(i if nan else NONE)
            return
        if math.isnan(v):
            if self._nan[b] == NONE:
                self._nan[b] = i
            return
        values = self._values
        if self._lo[b] == NONE or v < values[self._lo[b]]:
            self._lo[b] = i
        if self._hi[b] == NONE or v > values[self._hi[b]]:
            self._hi[b] = i

    def _merge(self) -> None:
        """Neighbouring buckets pairwise into one of twice the size."""
        values = self._values
        lo, hi, nan = [], [], []
        for j in range(0, len(self._lo), 2):
            pair = slice(j, j + 2)
            lows = [k for k in self._lo[pair] if k != NONE]
            highs = [k for k in self._hi[pair] if k != NONE]
            nans = [k for k in self._nan[pair] if k != NONE]
            lo.append(min(lows, key=lambda k: values[k]) if lows else NONE)
            hi.append(max(highs, key=lambda k: values[k]) if highs else NONE)
            nan.append(nans[0] if nans else NONE)
        self._lo, self._hi, self._nan = lo, hi, nan
        self.size *= 2
