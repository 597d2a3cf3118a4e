"""Every registered stopping rule: parameters refuse what is out of range, and its live Keras
callback stops a real fit at the epoch its replay gives, ending with the replay's weights.

The test reads the registry, so a new rule is covered without an edit here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.stopping.rules import live
from core.stopping.rules.registry import RULES
from core.stopping.rules.rule import Curves

MAX_EPOCHS = 25
DIVERGING = 1e30  # Adam at this rate sends the losses to NaN in the first epoch (1e12 left them finite)


@pytest.mark.parametrize("name", sorted(RULES))
def test_parameters_accept_their_range_and_refuse_the_rest_by_name(name):
    rule = RULES[name]
    assert rule.checked(rule.defaults()) == rule.defaults()
    for p in rule.parameters:
        assert p.low <= p.default <= p.high, p
        for bad in (p.high * 2 + 1, p.low - 1, True, "3", None):
            with pytest.raises(ValueError, match=p.name):
                rule.checked({**rule.defaults(), p.name: bad})
    with pytest.raises(ValueError, match="no parameter 'nope'"):
        rule.checked({"nope": 1})


class _Weights:
    """Records every epoch's weights and logs beside the rule's callback."""

    def __new__(cls):
        import keras

        class Recorder(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.weights, self.logs = [], []

            def on_epoch_end(self, epoch, logs=None):
                self.weights.append(self.model.get_weights())
                self.logs.append(dict(logs))

        return Recorder()


def _data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[:240] / 16.0).astype("float32"), y[:240]


def _new_model(learning_rate: float):
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


_MODELS: dict[float, tuple] = {}  # learning rate -> (model, its first weights, its optimizer's first state)


def _fit(callback, learning_rate: float = 0.03):
    """A fresh fit of the same small model: the model is built and its train step traced once per
    process (most of a fit's cost here), then put back to its first weights and optimizer state, and
    the seeds set again, before each fit, so every fit is the one a newly built model would give."""
    import keras

    if learning_rate not in _MODELS:
        model = _new_model(learning_rate)
        model.optimizer.build(model.trainable_variables)
        state = [v.numpy() for v in model.optimizer.variables]  # iterations, the rate, the moments
        _MODELS[learning_rate] = model, model.get_weights(), state
    model, weights, state = _MODELS[learning_rate]
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, state, strict=True):
        variable.assign(value)
    keras.utils.set_random_seed(3)
    x, y = _data()
    recorder = _Weights()
    model.fit(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=MAX_EPOCHS, batch_size=32,
              callbacks=[recorder, callback], verbose=0)  # fmt: skip
    return model, recorder


def test_a_fit_of_the_reused_model_is_the_fit_of_a_newly_built_one():
    """What _fit saves (a build and a trace per fit) must not change a fit: the same logs, epoch by
    epoch, as a model built afresh with the same seed, after a fit that left the model elsewhere."""
    import keras

    _fit(keras.callbacks.Callback())  # the reused model has trained once already
    _, reused = _fit(keras.callbacks.Callback())
    fresh = _new_model(0.03)
    x, y = _data()
    history = fresh.fit(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=MAX_EPOCHS,
                        batch_size=32, verbose=0).history  # fmt: skip
    assert [r["val_loss"] for r in reused.logs] == history["val_loss"]
    assert [r["loss"] for r in reused.logs] == history["loss"]


@pytest.mark.parametrize("name", sorted(RULES))
def test_live_callback_stops_where_its_replay_stops(name):
    rule = RULES[name]
    # Each corner of the parameters' ranges (every one at its lowest or its highest bound) holds the
    # most eager setting of these rules (a patience of 1 with a min_delta no value beats, a target no
    # loss misses, a limit every loss passes): one of them fires.
    corners = itertools.product(*[(p.low, p.high) for p in rule.parameters])
    settings = {
        "corner " + ",".join(f"{v:g}" for v in values): dict(
            zip([p.name for p in rule.parameters], values, strict=True)
        )
        for values in corners
    }
    settings["default"] = rule.defaults()
    fired = []
    # A rule on several metrics watches the two this model logs.
    monitors = {"val_loss": "min", "loss": "min"} if rule.several_monitors else None
    for setting, params in settings.items():
        callback = live.callback(rule, params, monitors=monitors)
        model, rec = _fit(callback)
        if setting == "default" and not fired:  # a rule on values no healthy fit logs (not finite)
            callback = live.callback(rule, params, monitors=monitors)
            model, rec = _fit(callback, learning_rate=DIVERGING)
            setting = "diverging"
        # The epochs' times as the callback measured them (a time budget reads them; Keras logs none).
        seconds = getattr(callback, "seconds", ())
        val, train = [r["val_loss"] for r in rec.logs], [r["loss"] for r in rec.logs]
        others = {"val_loss": val, "loss": train} if monitors else {}
        curves = Curves(val=val, train=train, seconds=seconds, others=others, modes=monitors or {})
        expected = rule.replay(curves, params)
        assert len(rec.logs) == expected.epochs_run, setting
        if expected.stopped:
            fired.append(setting)
        kept = rec.weights[expected.final_weights_epoch]
        for got, want in zip(model.get_weights(), kept, strict=True):
            np.testing.assert_array_equal(got, want)
    assert fired and fired != ["default"] or "diverging" in fired, (
        "an eager setting (or a diverging fit) must fire"
    )
