"""What checking an uploaded file gave, kept for the page's next reruns: its result, or the refusal.

A page asks for the upload's facts on every rerun, and checking a file (parsing a CSV, reading an
``.npz``'s headers, listing a zip) costs far more than a rerun should; a refusal is kept too, so a bad
file is not read again on every click. Keys name the content (upload id, folder, size, mtime, the
reading options); the least recently used go first.

>>> cache = CheckedCache(size=2)
>>> cache.get(("a",), lambda: 1), cache.get(("a",), lambda: 2)  # the second read is not made
(1, 1)
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from core.data.contract import DatasetError

T = TypeVar("T")


class CheckedCache(Generic[T]):
    def __init__(self, size: int):
        self.size = size
        self._hits: collections.OrderedDict[Hashable, T | DatasetError] = collections.OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> T | DatasetError | None:
        with self._lock:
            return self._hits.get(key)

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        """The kept result for ``key``, else ``read()``'s (kept); a refusal is raised, as a new error
        each time (a raised exception carries its traceback: one kept object must not)."""
        with self._lock:
            hit = self._hits.get(key)
            if hit is not None:
                self._hits.move_to_end(key)
        if hit is None:
            try:
                hit = read()
            except DatasetError as exc:
                hit = exc
            with self._lock:
                self._hits[key] = hit
                while len(self._hits) > self.size:
                    self._hits.popitem(last=False)
        if isinstance(hit, DatasetError):
            raise DatasetError(str(hit), fixes=hit.fixes)
        return hit
