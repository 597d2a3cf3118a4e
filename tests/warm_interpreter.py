"""A warm interpreter for the exported scripts the tests run: ``python script.py args`` without paying
TensorFlow's import each time.

Why: the suite runs about 35 exported scripts, and a fresh interpreter spends ~4.7 s of CPU importing
Keras, TensorFlow, scikit-learn and pandas before the script does anything (measured on the 2-core CI
machine), more than the two-epoch run it then does. One interpreter per test process imports them once
and runs each script after it as ``__main__`` (``runpy``), with the script's argv, working folder and
environment, its stdout and stderr captured, and its exit code returned, as ``subprocess.run`` would.

What it does not change: the script's own code runs as written, seeded by its own
``keras.utils.set_random_seed`` (the app's engine is bit-exact in a test process that trained many
runs before, so state left by an earlier script does not move the numbers). What it cannot do, and so
refuses: another backend (Keras' backend is fixed at import; a script that sets ``KERAS_BACKEND`` runs
fresh, see ``needs_fresh``). Keras reads ``KERAS_HOME`` at import; the server sets it per script as
the import would. Tests that must show a script in a fresh interpreter keep ``fresh=True``.

Run as a program, this file is the server: requests and replies are JSON lines on stdin and on a copy
of the original stdout (fd 1 itself then points at stderr, so TensorFlow's C++ logging cannot corrupt
the replies).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

MAX_SCRIPTS = 25  # then a new interpreter: Keras keeps a few MB per run even after clear_session()
READY_TIMEOUT_S = 120


def needs_fresh(source: str, env: dict[str, str]) -> bool:
    """A script this interpreter cannot run as a fresh one would: another backend chosen in its
    environment or in its source (an exported JAX run sets ``KERAS_BACKEND`` before ``import keras``)."""
    return env.get("KERAS_BACKEND", "tensorflow") not in ("", "tensorflow") or "KERAS_BACKEND" in source


class WarmInterpreter:
    """One server process; ``run`` is ``subprocess.run(argv, cwd=, env=, capture_output=True)``."""

    def __init__(self, env: dict[str, str], log_path: Path | None = None):
        self._log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
        )
        self.scripts = 0
        reply = self._read(READY_TIMEOUT_S)
        if reply != {"ready": True}:
            self.close()
            raise RuntimeError(f"the warm interpreter did not start: {reply!r}")

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise subprocess.TimeoutExpired(self.proc.args, timeout)
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=10)
            self.close()
            raise RuntimeError(f"the warm interpreter exited with code {code}")
        return json.loads(line)

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess:
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd), "env": env}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self._read(timeout)
        self.scripts += 1
        return subprocess.CompletedProcess(
            [sys.executable, *request["argv"]], reply["returncode"], reply["stdout"], reply["stderr"]
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


_lock = threading.Lock()
_shared: WarmInterpreter | None = None


def run_python(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float, fresh: bool = False
) -> subprocess.CompletedProcess:
    """``python *argv`` in cwd with env: in this test process's warm interpreter unless ``fresh`` or
    the script needs a fresh one (``needs_fresh``)."""
    global _shared
    scripts = [Path(a) for a in map(str, argv) if a.endswith(".py") and Path(a).is_file()]  # a launcher's too
    if fresh or needs_fresh("\n".join(p.read_text() for p in scripts), env):
        return subprocess.run(
            [sys.executable, *map(str, argv)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    with _lock:
        if _shared is not None and (not _shared.alive or _shared.scripts >= MAX_SCRIPTS):
            _shared.close()
            _shared = None
        if _shared is None:
            _shared = WarmInterpreter(env)
            atexit.register(_shared.close)
        return _shared.run(argv, cwd, env, timeout)


# ------------------------------------------------------------------------------------------------
# The server


def serve() -> None:
    import contextlib
    import gc
    import io
    import runpy
    import traceback

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.pop(0)  # this file's folder (tests/): a script run with `python` would not see it

    # What the exported scripts import, imported once.
    import keras
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import tensorflow  # noqa: F401
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    keras_dir_at_import = keras_config._KERAS_DIR  # noqa: SLF001 - see the module docstring
    patched = [(keras.callbacks.History, "on_train_end"), (file_utils, "validate_file")]
    originals = [(owner, name, getattr(owner, name)) for owner, name in patched]
    base_path = list(sys.path)
    replies.write(json.dumps({"ready": True}) + "\n")

    for line in sys.stdin:
        request = json.loads(line)
        argv, env = request["argv"], request["env"]
        os.environ.clear()
        os.environ.update(env)
        keras_config._KERAS_DIR = env.get("KERAS_HOME", keras_dir_at_import)  # noqa: SLF001
        os.chdir(request["cwd"])
        sys.argv = list(argv)
        sys.path[:] = [os.path.dirname(os.path.abspath(argv[0])), *base_path]
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(argv[0], run_name="__main__")
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
                    code = 1
            except BaseException:  # noqa: BLE001 - as an interpreter: print it, exit code 1
                traceback.print_exc()
                code = 1
            if os.environ.get("KERAS_BACKEND", "tensorflow") not in ("", "tensorflow"):
                print("the script chose another backend: run it fresh", file=sys.stderr)
                code = 1
        for owner, name, value in originals:  # what a launcher patched for its own script
            setattr(owner, name, value)
        keras.backend.clear_session()
        gc.collect()
        replies.write(
            json.dumps({"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n"
        )


if __name__ == "__main__":
    serve()
