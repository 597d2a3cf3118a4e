"""What the training process uses: its CPU time, its resident memory, its first GPU's memory.

Read once per epoch by ``guarded_callbacks.EpochClock`` (microseconds: two small reads of /proc),
recorded with the epoch and charted beside the curves. The GPU is asked only when the backend sees
one; this app's CI has none, so that path is written from TensorFlow's and JAX's documented calls
(``tf.config.experimental.get_memory_info``, ``Device.memory_stats``) and not exercised there.
"""

from __future__ import annotations

import os
import time

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cpu_seconds() -> float:
    """CPU time of this process so far, all its threads (TensorFlow's included)."""
    return time.process_time()


def rss_mb() -> float | None:
    """Resident memory now, in MiB (Linux /proc; None where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return None


def gpu_mb() -> float | None:
    """Memory in use on the first GPU the backend sees, in MiB; None without one (or if it will not say)."""
    try:
        import keras

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return None
            return tf.config.experimental.get_memory_info("GPU:0")["current"] / 2**20
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            stats = gpus[0].memory_stats() if gpus else None
            return stats["bytes_in_use"] / 2**20 if stats else None
    except Exception:  # noqa: BLE001 - a measurement must never end a run
        return None
    return None
