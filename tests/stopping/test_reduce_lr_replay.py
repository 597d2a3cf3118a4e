"""The ReduceLROnPlateau replay against Keras' own callback: on random histories (gaps, NaN, ties,
plateaus) and settings, the rate of each epoch and the epochs it is lowered at are Keras' exactly,
driving the real callback with a real optimizer; and in a real fit, the logged rates."""

from __future__ import annotations

import math
import types
import warnings

import keras
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.stopping.reduce_lr import replay_reduce_lr

_value = st.one_of(
    st.sampled_from([0.5, 0.4, 0.4, 0.3, 0.30001, 0.2]),
    st.floats(0.0, 2.0, allow_nan=False).map(lambda v: round(v, 3)),
    st.just(math.nan),
    st.none(),
)


def _keras_schedule(values, *, initial_rate, **kwargs):
    optimizer = keras.optimizers.SGD(learning_rate=initial_rate)
    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **kwargs)
    callback.set_model(types.SimpleNamespace(optimizer=optimizer))
    callback.on_train_begin()
    rates, reduced = [], []
    for epoch, v in enumerate(values):
        logs = {"loss": 1.0} if v is None else {"loss": 1.0, "val_loss": v}  # a fit always logs the loss
        before = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "conditioned on metric val_loss which is not available"
            callback.on_epoch_end(epoch, logs)
        rates.append(logs["learning_rate"])
        if float(keras.ops.convert_to_numpy(optimizer.learning_rate)) != before:
            reduced.append(epoch)
    return rates, reduced


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(_value, min_size=1, max_size=30),
    mode=st.sampled_from(["min", "max"]),
    factor=st.sampled_from([0.1, 0.5, 0.3, 0.999]),
    patience=st.integers(0, 4),
    min_delta=st.sampled_from([0.0, 1e-4, 0.05, -0.05]),
    cooldown=st.integers(0, 3),
    min_lr=st.sampled_from([0.0, 1e-3, 0.004, 0.01]),
    initial_rate=st.sampled_from([0.01, 0.1, 1e-3, 0.0123]),
)
def test_the_replay_is_keras_own_schedule(
    values, mode, factor, patience, min_delta, cooldown, min_lr, initial_rate
):
    kwargs = {"mode": mode, "factor": factor, "patience": patience, "min_delta": min_delta,
              "cooldown": cooldown, "min_lr": min_lr}  # fmt: skip
    rates, reduced = _keras_schedule(values, initial_rate=initial_rate, **kwargs)
    replay = replay_reduce_lr(values, initial_rate=initial_rate, recorded_rates=rates, **kwargs)
    assert replay.rates == rates
    assert replay.reduced_epochs == reduced
    assert replay.exact_until == len(values)


def test_in_a_real_fit_the_logged_rates_are_the_replayed_ones():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = (x[:, :1] + 0.5 * rng.normal(size=(128, 1))).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.05), "mse")
    schedule = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=0.001)
    history = model.fit(x[:96], y[:96], validation_data=(x[96:], y[96:]), epochs=20, batch_size=16,
                        callbacks=[schedule], verbose=0)  # fmt: skip
    logged = history.history["learning_rate"]
    replay = replay_reduce_lr(
        history.history["val_loss"], initial_rate=0.05, mode="min", factor=0.5, patience=1, min_lr=0.001,
        recorded_rates=logged,
    )  # fmt: skip
    assert replay.reduced_epochs, logged  # the schedule acted in this fit
    assert replay.rates == logged
    # Another setting agrees with the recording only up to its first different rate.
    other = replay_reduce_lr(
        history.history["val_loss"],
        initial_rate=0.05,
        mode="min",
        factor=0.1,
        patience=1,
        recorded_rates=logged,
    )
    assert other.exact_until == replay.reduced_epochs[0] + 1
