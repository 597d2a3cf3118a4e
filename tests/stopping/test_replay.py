"""core.replay and core.prechelt: the what-if replays, checked against the real Keras callbacks.

The property tests drive ``keras.callbacks.EarlyStopping`` and ``ModelCheckpoint`` directly (no
``fit``: on_train_begin / on_epoch_begin / on_epoch_end / on_train_end, as ``fit`` calls them) on
random histories built to hit the corners: exact ties, float64 neighbours that are equal in float32,
values a min_delta apart, float32 subnormals (TensorFlow flushes them to zero), values at and beyond
float32's range (TensorFlow raises), NaN, +-inf, missing metrics, baseline, start_from_epoch,
patience 0 and negative, min_delta 0 / positive / negative, both modes, restore_best_weights (a
one-weight model whose weight is set to the epoch number at each epoch begin shows which epoch's
weights it ends with). Zero disagreements allowed.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.replay import (  # the public API, where outside callers import it
    SWEEP_COLUMNS,
    Float32RangeError,
    ReplayResult,
    patience_sweep,
    replay_checkpoint,
    replay_early_stopping,
    replay_history,
    suggest_knee,
)
from core.stopping.prechelt import replay_gl, replay_pq, replay_up

ROOT = Path(__file__).resolve().parents[2]
NAN, INF = math.nan, math.inf
FLT_MAX = float(np.finfo(np.float32).max)
ROUNDS_TO_FLT_MAX = 3.4028235677973362e38  # largest double that still converts to float32
OVERFLOWS_F32 = 3.4028235677973366e38  # smallest double TensorFlow refuses as float32
PROPERTY = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI is deterministic
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def same(a, b) -> bool:
    """Equality where NaN equals NaN (``best`` may legitimately be NaN)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# ------------------------------------------------------------------------------- Keras harness


@functools.lru_cache(maxsize=1)
def _keras_model():
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _set_epoch_weight(model, epoch: int) -> None:
    model.layers[0].kernel.assign(np.array([[float(epoch)]], dtype=np.float32))


def _logs(value):
    return {"loss": 1.0} if value is None else {"loss": 1.0, "val_loss": value}


def keras_early_stopping(values, **kwargs) -> dict:
    """Run the real EarlyStopping over ``values`` as ``fit`` would; what it did, or where it raised."""
    import keras

    model = _keras_model()
    cb = keras.callbacks.EarlyStopping(monitor="val_loss", **kwargs)
    cb.set_model(model)
    model.stop_training = False
    # Setting a variable costs more than the callback: only done when weights may be restored.
    track = bool(kwargs.get("restore_best_weights"))
    _set_epoch_weight(model, -1)
    waits: list[int] = []
    epochs_run = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cb.on_train_begin()
        for epoch, value in enumerate(values):
            if track:
                _set_epoch_weight(model, epoch)
            cb.on_epoch_begin(epoch)
            try:
                cb.on_epoch_end(epoch, _logs(value))
            except ValueError as e:
                return {"error_epoch": epoch, "error": str(e)}
            epochs_run = epoch + 1
            waits.append(cb.wait)
            if model.stop_training:
                break
        cb.on_train_end()
    final: int | None = int(model.layers[0].kernel.numpy()[0, 0])
    if final == -1:  # untracked run and Keras never set the weights: the last epoch's are kept
        final = epochs_run - 1
    if not epochs_run:
        final = None
    return {
        "epochs_run": epochs_run,
        "stopped_epoch": cb.stopped_epoch,
        "stopped": bool(model.stop_training),
        "best_epoch": cb.best_epoch,
        "best": cb.best,
        "wait": waits,
        "final_weights_epoch": final,
    }


def _recording_checkpoint_class():
    import keras

    class RecordingCheckpoint(keras.callbacks.ModelCheckpoint):
        """Keras' own decision (``_should_save_model``), recorded instead of written to disk."""

        def __init__(self, **kwargs):
            super().__init__(filepath="never-written.keras", save_best_only=True, **kwargs)
            self.saved: list[int] = []

        def _save_model(self, epoch, batch, logs):
            filepath = self._get_file_path(epoch, batch, logs)
            if self._should_save_model(epoch, batch, logs, filepath):
                self.saved.append(epoch)

    return RecordingCheckpoint


def keras_checkpoint(values, **kwargs) -> dict:
    cb = _recording_checkpoint_class()(monitor="val_loss", **kwargs)
    cb.set_model(_keras_model())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cb.on_train_begin()
        for epoch, value in enumerate(values):
            cb.on_epoch_begin(epoch)
            try:
                cb.on_epoch_end(epoch, _logs(value))
            except ValueError as e:
                return {"error_epoch": epoch, "error": str(e)}
        cb.on_train_end()
    return {"saved_epochs": cb.saved, "best": cb.best}


# ------------------------------------------------------------------------------ the histories

ANCHORS = [0.0, 1.0, 0.5, 0.1, 0.2, 0.3, 0.7, 2.0, -1.0]
EDGE_ANCHORS = [
    1e-40,  # a float32 subnormal: compares as 0 in TensorFlow
    -1e-40,
    1.2e-38,  # just above float32's smallest normal
    FLT_MAX,
    ROUNDS_TO_FLT_MAX,  # one float64 step up overflows float32
    1e30,
]
DELTAS = [0, 0.0, -0.0, 0.1, -0.1, 0.05, 0.2, 1e-7, -1e-7, 1e-9, 1.0, 1e-40, 0.3, -0.25]


@st.composite
def anchors(draw) -> list[float]:
    return draw(
        st.lists(
            st.one_of(
                st.sampled_from(ANCHORS),
                st.floats(-3, 3, width=32).map(float),
                st.floats(-3, 3),
                st.sampled_from(ANCHORS + EDGE_ANCHORS),
            ),
            min_size=1,
            max_size=4,
        )
    )


def _ulps64(x: float, k: int) -> float:
    for _ in range(abs(k)):
        x = math.nextafter(x, INF if k > 0 else -INF)
    return x


def _ulps32(x: float, k: int) -> float:
    y = np.float32(x) if math.isfinite(x) and abs(x) <= FLT_MAX else np.float32(0.0)
    with np.errstate(over="ignore"):
        for _ in range(abs(k)):
            y = np.nextafter(y, np.float32(INF if k > 0 else -INF))
    return float(y)


# How often each kind of value is drawn; overflows are rare, or most histories would end in an error.
VALUE_KINDS = (
    ["tie"] * 8 + ["ulp64"] * 4 + ["ulp32"] * 4 + ["shift"] * 4 + ["random"] * 4 + ["none"] * 3
    + ["nan"] * 2 + ["inf", "-inf", "overflow"]
)  # fmt: skip


@st.composite
def monitored_value(draw, pool: list[float]) -> float | None:
    kind = draw(st.sampled_from(VALUE_KINDS))
    base = draw(st.sampled_from(pool))
    if kind == "tie":
        return base
    if kind == "ulp64":
        return _ulps64(base, draw(st.integers(-3, 3)))
    if kind == "ulp32":
        return _ulps32(base, draw(st.integers(-2, 2)))
    if kind == "shift":  # exactly a min_delta away: ties after the shift and float32 rounding
        return base + draw(st.sampled_from(DELTAS)) * draw(st.sampled_from([1, -1]))
    if kind == "random":
        return draw(st.floats(-3, 3))
    if kind == "none":
        return None
    if kind == "nan":
        return NAN
    if kind == "inf":
        return INF
    if kind == "-inf":
        return -INF
    # rare: beyond float32's range (TensorFlow raises) or at its edge
    return draw(st.sampled_from([OVERFLOWS_F32, -OVERFLOWS_F32, 1e39, ROUNDS_TO_FLT_MAX, FLT_MAX]))


@st.composite
def histories(draw, max_size: int = 16) -> tuple[list[float | None], list[float]]:
    pool = draw(anchors())
    n = draw(st.integers(0, max_size))
    return [draw(monitored_value(pool)) for _ in range(n)], pool


@st.composite
def es_cases(draw) -> dict:
    values, pool = draw(histories())
    min_delta = draw(
        st.one_of(
            st.sampled_from(DELTAS),
            st.floats(-1, 1),
            st.sampled_from(pool).flatmap(lambda a: st.sampled_from(pool).map(lambda b: a - b)),
        )
    )
    baseline = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.sampled_from(pool),
            st.floats(-3, 3),
            st.sampled_from([NAN, INF, -INF, 0, 1]),
        )
    )
    return {
        "values": values,
        "mode": draw(st.sampled_from(["min", "max"])),
        "min_delta": min_delta,
        "patience": draw(st.integers(-1, 6)),
        "baseline": baseline,
        "start_from_epoch": draw(st.integers(0, 6)),
        "restore_best_weights": draw(st.booleans()),
    }


def _check_raises_at(replay, values: list, epoch: int) -> None:
    """Keras raised at ``epoch``: the replay raises on the history up to it, and not before it."""
    with pytest.raises(Float32RangeError):
        replay(values[: epoch + 1])
    replay(values[:epoch])


# -------------------------------------------------------------------- properties against Keras


@pytest.mark.slow  # ~20 s of CPU (TensorFlow eager ops: ~0.2 ms a comparison); 40+ s on a busy machine
@settings(PROPERTY, max_examples=2000)
@given(case=es_cases())
def test_early_stopping_matches_keras(case):
    values = case.pop("values")
    keras_out = keras_early_stopping(values, **case)

    def replay(vals):
        return replay_early_stopping(vals, **case)

    if "error_epoch" in keras_out:
        event("keras raised (float32 range)")
        assert "out of range" in keras_out["error"]
        _check_raises_at(replay, values, keras_out["error_epoch"])
        return
    r = replay(values)
    restored_earlier = case["restore_best_weights"] and r.final_weights_epoch != r.epochs_run - 1
    event(f"stopped={r.stopped}, restored an earlier epoch={restored_earlier}")
    event(f"best is NaN: {r.best is not None and math.isnan(r.best)}")
    assert r.epochs_run == keras_out["epochs_run"]
    assert r.stopped_epoch == keras_out["stopped_epoch"]
    assert r.stopped == keras_out["stopped"]
    assert r.best_epoch == keras_out["best_epoch"]
    assert same(r.best, keras_out["best"])
    assert r.wait == keras_out["wait"]
    assert r.final_weights_epoch == keras_out["final_weights_epoch"]
    assert r.epochs_saved == len(values) - r.epochs_run


@pytest.mark.slow  # ~12 s of CPU
@settings(PROPERTY, max_examples=1500)
@given(
    hist=histories(),
    mode=st.sampled_from(["min", "max"]),
    threshold=st.one_of(
        st.none(),
        st.floats(-3, 3),
        # 1e39: Keras raises at the first comparison
        st.sampled_from([0, 1, NAN, INF, -INF, 1e-40, -1e-40, ROUNDS_TO_FLT_MAX, 0.5, 0.1, 1e39]),
    ),
)
def test_checkpoint_matches_keras(hist, mode, threshold):
    values, pool = hist
    keras_out = keras_checkpoint(values, mode=mode, initial_value_threshold=threshold)

    def replay(vals):
        return replay_checkpoint(vals, mode=mode, initial_value_threshold=threshold)

    if "error_epoch" in keras_out:
        event("keras raised (float32 range)")
        assert "out of range" in keras_out["error"]
        _check_raises_at(replay, values, keras_out["error_epoch"])
        return
    r = replay(values)
    missing_saved = any(values[e] is None for e in r.saved_epochs)
    event(f"saves: {min(len(r.saved_epochs), 3)}+, a missing epoch saved: {missing_saved}")
    assert r.saved_epochs == keras_out["saved_epochs"]
    assert r.kept_epoch == (keras_out["saved_epochs"][-1] if keras_out["saved_epochs"] else None)
    assert same(r.best, None if keras_out["best"] is None else float(keras_out["best"]))


def test_keras_flushes_subnormals_in_a_training_thread_too():
    """fit() runs in a background thread in this app: the float32 flush-to-zero must hold there."""
    values = [1e-40, 5e-41, 0.0, -1e-40]  # all compare as 0 in TensorFlow; a float32 numpy says otherwise
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(keras_early_stopping(values, mode="max", patience=5)))
    t.start()
    t.join()
    r = replay_early_stopping(values, mode="max", patience=5)
    assert out["best_epoch"] == r.best_epoch == 0
    assert out["wait"] == r.wait == [0, 1, 2, 3]


# ------------------------------------------------------------------ fast sweep == plain replay


def _assert_sweep_matches_plain(values, mode, patiences, min_deltas, **kw):
    frame = patience_sweep(values, mode=mode, patiences=patiences, min_deltas=min_deltas, **kw)
    assert list(frame.columns) == list(SWEEP_COLUMNS)
    assert len(frame) == len(patiences) * len(min_deltas)
    kw.pop("recording_complete", None)
    for row in frame.itertuples():
        r = replay_early_stopping(values, mode=mode, min_delta=row.min_delta, patience=row.patience, **kw)
        expected = (r.stopped, r.stopped_epoch, r.epochs_run, r.best_epoch, r.final_weights_epoch)
        got = (row.stopped, row.stopped_epoch, row.epochs_run, row.best_epoch, row.final_weights_epoch)
        assert got == (*expected[:4], -1 if expected[4] is None else expected[4]), (row, r)
    return frame


def _no_overflow(values) -> list:
    return [v if v is None or not math.isfinite(v) or abs(v) < 1e30 else 1.0 for v in values]


@settings(PROPERTY, max_examples=800)
@given(case=es_cases(), extra=st.lists(st.sampled_from(DELTAS), max_size=2))
def test_fast_sweep_equals_plain_replay(case, extra):
    values = _no_overflow(case["values"])
    min_deltas = [case["min_delta"], *extra]
    _assert_sweep_matches_plain(
        values,
        case["mode"],
        list(range(-1, 7)),
        min_deltas,
        baseline=case["baseline"],
        start_from_epoch=case["start_from_epoch"],
        restore_best_weights=case["restore_best_weights"],
    )


@pytest.mark.parametrize("seed", range(40))
def test_fast_sweep_equals_plain_replay_on_long_noisy_curves(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    t = np.arange(n)
    curve = 0.3 + np.exp(-t / rng.uniform(5, 60)) + rng.uniform(0, 0.3) * (t / n) ** 2
    curve = curve * (1 + rng.uniform(0, 0.05) * rng.standard_normal(n))
    if seed % 3 == 0:
        curve = np.round(curve, 2)  # plateaus and exact ties
    values: list = [float(v) for v in curve.astype(np.float32)]
    for i in rng.choice(n, size=n // 20, replace=False):
        values[i] = None if rng.random() < 0.7 else NAN
    mode = "max" if seed % 2 else "min"
    if mode == "max":
        values = [None if v is None else -v for v in values]
    _assert_sweep_matches_plain(
        values,
        mode,
        list(range(0, 60, 3)),
        [0.0, 1e-4, 1e-3, 0.01, 0.05],
        baseline=[None, 0.5, -0.5][seed % 3],
        start_from_epoch=int(rng.integers(0, 20)),
        restore_best_weights=bool(seed % 4),
    )


def test_sweep_falls_back_to_plain_replay_near_float32_overflow():
    values = [ROUNDS_TO_FLT_MAX, 1.0, 2.0, 3.0]  # at the edge of float32: no error, fast path
    frame = _assert_sweep_matches_plain(values, "min", [0, 1, 2], [0.0], restore_best_weights=True)
    assert frame["epochs_run"].tolist() == [3, 3, 4]
    # 1e39 is compared only if training gets there: patience 0 stops before, patience 5 does not
    values = [1.0, 2.0, 1e39]
    frame = _assert_sweep_matches_plain(values, "min", [0, 1], [0.0], restore_best_weights=False)
    assert frame["stopped_epoch"].tolist() == [1, 1]
    with pytest.raises(Float32RangeError):
        patience_sweep(values, mode="min", patiences=[0, 5], min_deltas=[0.0])
    with pytest.raises(Float32RangeError):  # 2e38 + 3e38 leaves float32: Keras would raise
        patience_sweep([1e38, 2e38], mode="min", patiences=[5], min_deltas=[3e38])


# ----------------------------------------------------------------------------- hand-made vectors


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_keras_own_patience_vector(patience):
    # keras/src/callbacks/early_stopping_test.py::test_early_stopping_patience
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    r = replay_early_stopping(losses, mode="min", patience=patience)
    assert r.stopped_epoch == max(patience, 1) + 2
    assert r.epochs_run == r.stopped_epoch + 1


def test_keras_own_restore_vectors():
    # keras/src/callbacks/early_stopping_test.py::test_early_stopping_final_weights_when_restoring...
    r = replay_early_stopping([0.2, 0.15, 0.1, 0.11, 0.12], mode="min", patience=2, restore_best_weights=True)
    assert (r.final_weights_epoch, r.stopped_epoch) == (2, 4)
    losses = [0.9, 0.8, 0.7, 0.71, 0.72, 0.73]
    r = replay_early_stopping(losses, mode="min", patience=5, baseline=0.5, restore_best_weights=True)
    assert (r.epochs_run, r.final_weights_epoch) == (5, 2)  # never beats the baseline: wait never resets
    assert r.wait == [1, 2, 3, 4, 5]
    # another callback stops after epoch 3: Keras 3 still restores the best weights
    r = replay_early_stopping(losses[:4], mode="min", patience=5, baseline=0.5, restore_best_weights=True)
    assert (r.stopped, r.epochs_run, r.final_weights_epoch) == (False, 4, 2)


def test_baseline_is_not_the_starting_best():
    r = replay_early_stopping([0.9, 0.95], mode="min", patience=0, baseline=0.5)
    assert r.best == 0.9 and r.best_epoch == 0 and r.improved_epochs == [0]
    assert r.stopped_epoch == 1
    # beating the baseline resets wait; an improvement that does not, keeps counting
    r = replay_early_stopping([0.9, 0.8, 0.4, 0.45, 0.46], mode="min", patience=2, baseline=0.5)
    assert r.wait == [1, 2, 0, 1, 2] and r.stopped_epoch == 4


def test_float32_near_ties_are_ties():
    below = math.nextafter(1.0, 0.0)  # a float64 improvement, equal in float32
    r = replay_early_stopping([1.0, below], mode="min", patience=1)
    assert r.stopped and r.best == 1.0 and r.improved_epochs == [0]
    r = replay_early_stopping(
        [1.0, float(np.nextafter(np.float32(1.0), np.float32(0)))], mode="min", patience=1
    )
    assert not r.stopped and r.improved_epochs == [0, 1]
    # the shift is computed in float64, then both sides are rounded to float32
    r = replay_early_stopping([1.0, 0.9], mode="min", min_delta=0.1 - 1e-12, patience=0)
    assert 0.9 + (0.1 - 1e-12) < 1.0  # an improvement in float64 ...
    assert r.stopped and r.improved_epochs == [0]  # ... a tie in float32


def test_min_delta_sign_is_ignored():
    a = replay_early_stopping([1.0, 0.95, 0.9], mode="min", min_delta=-0.1, patience=0)
    b = replay_early_stopping([1.0, 0.95, 0.9], mode="min", min_delta=0.1, patience=0)
    assert a == b and a.stopped_epoch == 1


def test_nan_first_value_becomes_best_and_blocks_everything():
    r = replay_early_stopping([NAN, 0.1, 0.05], mode="min", patience=0, restore_best_weights=True)
    assert math.isnan(r.best) and r.best_epoch == 0 and r.stopped_epoch == 1 and r.final_weights_epoch == 0
    r = replay_early_stopping([0.5, NAN, 0.4], mode="min", patience=1)
    assert r.best == 0.5 and r.stopped_epoch == 1  # a later NaN is just not an improvement


def test_missing_values_and_warm_up_are_skipped_entirely():
    r = replay_early_stopping([None, None], mode="min", patience=0, restore_best_weights=True)
    assert (r.epochs_run, r.stopped, r.best, r.best_epoch, r.final_weights_epoch) == (2, False, None, 0, 1)
    assert r.wait == [0, 0]
    r = replay_early_stopping([1.0, None, 2.0, None, 3.0], mode="min", patience=2)
    assert r.wait == [0, 0, 1, 1, 2] and r.stopped_epoch == 4
    r = replay_early_stopping([1.0, 0.5, 2.0, 3.0], mode="min", patience=0, start_from_epoch=2)
    assert (r.best, r.best_epoch, r.stopped_epoch) == (2.0, 2, 3)
    r = replay_early_stopping([], mode="max")
    assert (r.epochs_run, r.final_weights_epoch, r.stopped) == (0, None, False)


def test_improving_epochs_never_stop_and_patience_0_equals_1():
    r = replay_early_stopping([5.0, 4.0, 3.0, 2.0], mode="min", patience=0, baseline=0.0)
    assert not r.stopped and r.wait == [1, 2, 3, 4]  # wait far beyond patience, still no stop
    for values in ([1.0, 2.0, 0.5, 0.6], [0.0, 0.0, 1.0]):
        a = replay_early_stopping(values, mode="min", patience=0)
        b = replay_early_stopping(values, mode="min", patience=1)
        assert a == b


def test_restore_happens_without_an_early_stop():
    r = replay_early_stopping([0.1, 0.5, 0.6], mode="min", patience=10, restore_best_weights=True)
    assert not r.stopped and r.final_weights_epoch == 0
    r = replay_early_stopping([0.1, 0.5, 0.6], mode="min", patience=10)
    assert r.final_weights_epoch == 2


def test_float32_subnormals_compare_as_zero():
    r = replay_early_stopping([1e-40, 5e-41, 0.0, -1e-40], mode="max", patience=10)
    assert r.improved_epochs == [0]
    r = replay_early_stopping([0.0, 1.2e-38], mode="max", patience=10)
    assert r.improved_epochs == [0, 1]  # a normal float32 is not flushed


def test_float32_range_errors_where_keras_raises():
    assert replay_early_stopping([1e39], mode="min").best == 1e39  # the first value is never compared
    with pytest.raises(Float32RangeError):
        replay_early_stopping([1e39, 1.0], mode="min")
    with pytest.raises(Float32RangeError):
        replay_early_stopping([1.0], mode="min", baseline=1e39)  # the baseline test of the first epoch
    with pytest.raises(Float32RangeError):
        replay_early_stopping([FLT_MAX, FLT_MAX], mode="min", min_delta=FLT_MAX)
    r = replay_early_stopping([ROUNDS_TO_FLT_MAX, FLT_MAX], mode="min", patience=0)
    assert r.stopped  # both are float32's max: a tie
    r = replay_early_stopping([INF, INF, -INF], mode="min", patience=5)
    assert r.improved_epochs == [0, 2]
    with pytest.raises(Float32RangeError):
        replay_checkpoint([1.0], mode="min", initial_value_threshold=1e39)


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="min' or 'max"):
        replay_early_stopping([1.0], mode="auto")


# ----------------------------------------------------------------------------------- checkpoint


def test_checkpoint_saves_missing_epochs_and_keeps_them():
    r = replay_checkpoint([1.0, None, 0.5, 0.7, None], mode="min")
    assert r.saved_epochs == [0, 1, 2, 4] and r.kept_epoch == 4 and r.best == 0.5


def test_checkpoint_nan():
    r = replay_checkpoint([NAN, 0.5, None, 0.1], mode="min")
    assert r.saved_epochs == [0, 2] and r.kept_epoch == 2 and math.isnan(r.best)
    r = replay_checkpoint([0.5, NAN, 0.4], mode="max")
    assert r.saved_epochs == [0] and r.best == 0.5


def test_checkpoint_has_no_min_delta_and_ties_do_not_save():
    r = replay_checkpoint([0.5, 0.5, math.nextafter(0.5, 0), 0.49], mode="min")
    assert r.saved_epochs == [0, 3]


def test_checkpoint_keras_own_threshold_vectors():
    # keras/src/callbacks/model_checkpoint_test.py, cases 11, 13, 15 (one epoch each)
    assert replay_checkpoint([None], mode="max", initial_value_threshold=-0.01).saved_epochs == [0]
    assert replay_checkpoint([0.3], mode="min", initial_value_threshold=0).kept_epoch is None
    assert replay_checkpoint([1.0], mode="max", initial_value_threshold=1).kept_epoch is None
    assert replay_checkpoint([], mode="max").kept_epoch is None


def test_checkpoint_and_early_stopping_can_disagree_on_the_best_epoch():
    values = [1.0, 0.95, 0.92, 0.91]  # never 0.1 better than epoch 0, but always a little better
    es = replay_early_stopping(values, mode="min", min_delta=0.1, patience=5, restore_best_weights=True)
    ck = replay_checkpoint(values, mode="min")
    assert es.final_weights_epoch == 0 and ck.kept_epoch == 3


# ---------------------------------------------------------------------------------- from a run


def _snapshot(logs_per_epoch, **es_kwargs):
    from core.config import EarlyStoppingConfig, RunConfig
    from core.store.runs import EpochRecord, RunSnapshot

    config = RunConfig(early_stopping=EarlyStoppingConfig(**es_kwargs))
    history = tuple(EpochRecord(i + 1, logs, 0.1) for i, logs in enumerate(logs_per_epoch))
    return RunSnapshot(id="0" * 32, config=config, status="finished", created_at=0.0, history=history)


def test_replay_history_from_a_snapshot_and_a_frame():
    logs = [{"loss": 1.0, "val_loss": 0.9}, {"loss": 0.8}, {"loss": 0.7, "val_loss": 0.95}, {"val_loss": 1.0}]
    snap = _snapshot(logs, patience=1, restore_best_weights=True)
    r = replay_history(snap)  # val_loss, auto -> min, the run's own settings
    assert isinstance(r, ReplayResult)
    assert r == replay_early_stopping(
        [0.9, None, 0.95, 1.0], mode="min", patience=1, restore_best_weights=True
    )
    assert replay_history(snap, patience=5).stopped is False
    assert replay_history(snap, monitor="loss").best == 0.7
    frame = snap.history_frame()
    assert replay_history(
        frame, monitor="val_loss", nan_is_missing=True, patience=1
    ) == replay_early_stopping([0.9, None, 0.95, 1.0], mode="min", patience=1)
    with pytest.raises(ValueError, match="cannot tell"):
        replay_history(frame, monitor="seconds")
    with pytest.raises(TypeError):
        replay_history(snap, patiance=3)


# ------------------------------------------------------------------------------- sweep and knee


def test_sweep_columns_given_up_and_exceeds_recording():
    values = [1.0, 0.8, 0.85, 0.7, 0.75, 0.76, 0.77]
    frame = patience_sweep(values, mode="min", patiences=[0, 1, 2, 5], min_deltas=[0.0, 0.2])
    row = frame[(frame.min_delta == 0.0) & (frame.patience == 0)].iloc[0]
    assert (row.epochs_run, row.final_weights_epoch, row.final_value) == (3, 1, 0.8)
    assert row.recording_best == 0.7 and row.recording_best_epoch == 3
    assert row.given_up == pytest.approx(0.1) and not row.exceeds_recording
    row = frame[(frame.min_delta == 0.0) & (frame.patience == 5)].iloc[0]
    assert not row.stopped and row.exceeds_recording and row.given_up == 0.0
    complete = patience_sweep(
        values, mode="min", patiences=[5], min_deltas=[0.0], recording_complete=True
    ).iloc[0]
    assert not complete.exceeds_recording
    # max mode: positive given_up is still worse
    acc = patience_sweep([0.5, 0.6, 0.55, 0.9], mode="max", patiences=[0], min_deltas=[0.0]).iloc[0]
    assert acc.final_value == 0.6 and acc.given_up == pytest.approx(0.3)
    # final value missing: infinitely given up; empty inputs
    miss = patience_sweep(
        [None, 1.0, 2.0], mode="min", patiences=[0], min_deltas=[0.0], restore_best_weights=False
    )
    assert miss.iloc[0].final_weights_epoch == 2 and miss.iloc[0].given_up == 1.0
    assert patience_sweep([1.0], mode="min", patiences=[0], min_deltas=[]).empty
    empty = patience_sweep([], mode="min", patiences=[0, 1], min_deltas=[0.0])
    assert empty["epochs_run"].tolist() == [0, 0] and empty["final_weights_epoch"].tolist() == [-1, -1]
    nan_final = patience_sweep(
        [1.0, None], mode="min", patiences=[3], min_deltas=[0.0], restore_best_weights=False
    )
    assert nan_final.iloc[0].given_up == INF


def test_suggest_knee_picks_the_cheapest_setting_within_tolerance():
    frame = pd.DataFrame(
        {
            "min_delta": [0.0] * 5,
            "patience": [0, 1, 2, 3, 4],
            "epochs_run": [10, 20, 30, 40, 50],
            "given_up": [0.5, 0.1, 0.004, 0.0, 0.0],
            "recording_best": [0.5] * 5,
            "exceeds_recording": [False, False, False, False, True],
        }
    )
    assert suggest_knee(frame).patience == 2  # within 1% of 0.5 = 0.005 of the minimum
    assert suggest_knee(frame, tolerance=0.0).patience == 3
    assert suggest_knee(frame, method="kneedle").patience == 1
    with pytest.raises(ValueError):
        suggest_knee(frame.iloc[:0])


# --------------------------------------------------------------------------------------- Prechelt


def test_gl_stops_when_generalization_loss_exceeds_alpha():
    val = [1.0, 0.8, 0.7, 0.72, 0.75, 0.78, 0.8]
    r = replay_gl(val, alpha=5)
    # GL(3) = 100 * (0.72 / 0.7 - 1) = 2.86; GL(4) = 7.14 > 5
    assert (r.stopped, r.stopped_epoch, r.epochs_run, r.final_weights_epoch, r.best) == (True, 4, 5, 2, 0.7)
    assert r.criterion[3] == pytest.approx(100 * (0.72 / 0.7 - 1))
    r = replay_gl(val, alpha=20)
    assert not r.stopped and r.epochs_run == 7 and r.final_weights_epoch == 2
    r = replay_gl([1.0, None, NAN, 1.5], alpha=10)
    assert r.stopped_epoch == 3 and math.isnan(r.criterion[1]) and math.isnan(r.criterion[2])


def test_pq_evaluates_only_at_strip_ends():
    train = [1.0, 0.5, 0.4, 0.39, 0.38, 0.379, 0.378, 0.3779]
    val = [1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.85, 0.9]
    r = replay_pq(train, val, alpha=1.0, k=2)
    # t=3: GL = 2.857, P = 1000 * ((0.4 + 0.39) / (2 * 0.39) - 1) = 12.82, PQ = 0.22
    # t=5: GL = 14.29, P = 1000 * ((0.38 + 0.379) / (2 * 0.379) - 1) = 1.319, PQ = 10.8 > 1
    assert (r.stopped_epoch, r.final_weights_epoch) == (5, 2)
    assert r.criterion[3] == pytest.approx((100 * (0.72 / 0.7 - 1)) / (1000 * (0.79 / 0.78 - 1)))
    assert all(math.isnan(c) for c in r.criterion[0::2])
    assert not replay_pq(train, val, alpha=1e9, k=2).stopped
    with pytest.raises(ValueError):
        replay_pq(train, val[:-1], alpha=1.0)


def test_up_counts_successive_strip_increases():
    val = [1.0, 0.9, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2]
    r = replay_up(val, s=2, k=2)  # strip ends 1, 3, 5, 7: 0.9, 0.85 (down), 0.95 (up), 1.1 (up)
    assert (r.stopped_epoch, r.final_weights_epoch, r.best) == (7, 2, 0.8)
    assert r.criterion[1::2] == [0.0, 0.0, 1.0, 2.0]
    assert replay_up(val, s=1, k=2).stopped_epoch == 5
    assert not replay_up(val, s=3, k=2).stopped
    assert replay_up([1.0, 2.0, 3.0], s=1, k=1).stopped_epoch == 1


def test_prechelt_refuses_negative_error_measures():
    with pytest.raises(ValueError, match="1 - accuracy"):
        replay_gl([0.5, -0.1], alpha=5)


def test_replay_modules_do_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, core.replay, core.stopping.prechelt, core.stopping.sweeps\n"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
