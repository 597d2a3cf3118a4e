"""Test helper: real .keras files written with Keras, for the uploaded-model tests."""

from __future__ import annotations

from pathlib import Path


def head(keras, task: str, n_classes: int | None) -> list:
    if task == "multiclass":
        return [keras.layers.Dense(n_classes, activation="softmax")]
    if task == "binary":
        return [keras.layers.Dense(1, activation="sigmoid")]
    return [keras.layers.Dense(1)]


def write_model(
    path: Path,
    input_shape: tuple[int, ...],
    task: str,
    n_classes: int | None,
    *,
    vocab: int | None = None,
    compile_with: tuple[str, str] | None = None,
    units: int = 8,
    seed: int = 1,
) -> Path:
    """A small model for samples of ``input_shape`` and this task, saved as a .keras file.

    ``vocab``: integer sequences (an Embedding first). ``compile_with``: (optimizer, loss) saved in it.
    """
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    if vocab is not None:
        body = [
            keras.Input(shape=input_shape, dtype="int32"),
            layers.Embedding(vocab, units),
            layers.GlobalAveragePooling1D(),
        ]
    else:
        body = [keras.Input(shape=input_shape)]
        if len(input_shape) > 1:
            body.append(layers.Flatten())
        body += [layers.Dense(units, activation="relu"), layers.Dropout(0.1)]
    model = keras.Sequential(body + head(keras, task, n_classes), name="my_model")
    if compile_with is not None:
        model.compile(optimizer=compile_with[0], loss=compile_with[1])
    model.save(path)
    return path
