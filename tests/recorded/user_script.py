"""A user's own training script, as they would write it, with eslab.LabCallback added last.

python user_script.py RUNS_DIR WORK_DIR [slow]   prints RESULT {...} (what Keras decided) as JSON.
"slow": 400 epochs with a 50 ms pause per batch (a fit long enough to be stopped from the app).
"""

import json
import sys
import time
from pathlib import Path

import keras
import numpy as np

import eslab

runs_dir, work = sys.argv[1], Path(sys.argv[2])
slow = len(sys.argv) > 3 and sys.argv[3] == "slow"

keras.utils.set_random_seed(1)
rng = np.random.default_rng(0)
x = rng.normal(size=(400, 8)).astype("float32")
y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype("float32")
model = keras.Sequential(
    [
        keras.Input((8,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
early_stopping = keras.callbacks.EarlyStopping(
    monitor="val_loss", patience=3, min_delta=1e-4, restore_best_weights=True
)
checkpoint = keras.callbacks.ModelCheckpoint(
    str(work / "best.keras"), monitor="val_loss", save_best_only=True
)
callbacks = [early_stopping, checkpoint]
if slow:
    callbacks.append(keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: time.sleep(0.05)))
lab = eslab.LabCallback(name="my script run", runs_dir=runs_dir)
started = time.time()
history = model.fit(
    x, y, validation_split=0.25, epochs=400 if slow else 200, batch_size=16, verbose=0,
    callbacks=[*callbacks, lab],
)  # fmt: skip
result = {
    "run_id": lab.run_id,
    "history": history.history,
    "stopped_epoch": early_stopping.stopped_epoch,
    "best_epoch": early_stopping.best_epoch,
    "epochs": len(history.epoch),
    "seconds": time.time() - started,
    "returned_at": time.time(),
    "streamlit_imported": "streamlit" in sys.modules,
}
print("RESULT " + json.dumps(result), flush=True)
