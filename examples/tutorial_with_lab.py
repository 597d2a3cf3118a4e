"""The tutorial's script (Keras' IMDB Conv1D with EarlyStopping and ModelCheckpoint), in Keras 3, with one
line added: eslab.LabCallback, so the run shows in Early Stopping Lab as it trains.

    pip install .                       # in the Early Stopping Lab checkout: gives `import eslab`
    python examples/tutorial_with_lab.py  # then open the run in the app's Runs page (same runs folder)

The run goes to $ESLAB_RUNS_DIR (else ./runs). Keras downloads imdb.npz once (17 MB).
"""

import keras
import numpy as np
from keras.callbacks import EarlyStopping, ModelCheckpoint
from keras.datasets import imdb
from keras.layers import Activation, Conv1D, Dense, Dropout, Embedding, GlobalMaxPooling1D
from keras.models import Sequential
from keras.utils import pad_sequences

import eslab

# set parameters:
max_features = 5000
maxlen = 400
batch_size = 32
embedding_dims = 50
filters = 250
kernel_size = 3
hidden_dims = 250
epochs = 200000
checkpoint_path = "testmodel.keras"  # Keras 3 saves .keras (the tutorial's .h5 works too)
np.random.seed(42)

(x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=max_features)
x_train = pad_sequences(x_train, maxlen=maxlen)
x_test = pad_sequences(x_test, maxlen=maxlen)

model = Sequential()
model.add(keras.Input(shape=(maxlen,)))
model.add(Embedding(max_features, embedding_dims))
model.add(Dropout(0.2))
model.add(Conv1D(filters, kernel_size, padding="valid", activation="relu", strides=1))
model.add(GlobalMaxPooling1D())
model.add(Dense(hidden_dims))
model.add(Dropout(0.2))
model.add(Activation("relu"))
model.add(Dense(1))
model.add(Activation("sigmoid"))
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

keras_callbacks = [
    EarlyStopping(monitor="val_loss", patience=30, mode="min", min_delta=0.0001),
    ModelCheckpoint(checkpoint_path, monitor="val_loss", save_best_only=True, mode="min"),
    eslab.LabCallback(name="tutorial IMDB Conv1D"),  # the one line added
]
model.fit(
    x_train,
    y_train,
    batch_size=batch_size,
    epochs=epochs,
    verbose=1,
    validation_split=0.2,
    callbacks=keras_callbacks,
)

model = keras.models.load_model(checkpoint_path)
score = model.evaluate(x_test, y_test, verbose=0)
print(f"Test loss: {score[0]} / Test accuracy: {score[1]}")
