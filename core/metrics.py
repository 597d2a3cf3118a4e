"""What a model logs and which way is better: one table shared by validation, models and the UI.

Keras 3 resolves ``mode='auto'`` from the compiled metric object's direction (and ``loss`` is min);
it no longer guesses from the name. We compile a fixed metric list per task, so the directions of
everything a run can log are known here without importing TensorFlow.
"""

from __future__ import annotations

from core.config import TASKS

__all__ = ["TASKS"]

# The metrics compiled for each task, in the order Keras logs them (after ``loss``).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy",),
    "multiclass": ("accuracy",),
    "regression": ("mae",),
}

# Direction of every metric name Keras' own metric classes declare ("up" is max).
_DIRECTIONS: dict[str, str] = {
    "loss": "min",
    "accuracy": "max",
    "binary_accuracy": "max",
    "categorical_accuracy": "max",
    "sparse_categorical_accuracy": "max",
    "auc": "max",
    "precision": "max",
    "recall": "max",
    "f1_score": "max",
    "mae": "min",
    "mse": "min",
    "rmse": "min",
    "mean_absolute_error": "min",
    "mean_squared_error": "min",
    "root_mean_squared_error": "min",
    "binary_crossentropy": "min",
    "categorical_crossentropy": "min",
    "sparse_categorical_crossentropy": "min",
}


def logged_metrics(task: str, has_validation: bool) -> list[str]:
    """Every key ``fit`` will put in the epoch logs for this task."""
    names = ["loss", *TASK_METRICS[task]]
    if has_validation:
        names += [f"val_{n}" for n in names]
    return names


def main_metric(task: str) -> str:
    """The metric the UI charts beside the loss (accuracy, or MAE for regression)."""
    return TASK_METRICS[task][0]


def resolve_mode(monitor: str, mode: str) -> str | None:
    """What Keras 3 turns ``mode`` into for ``monitor``; None when 'auto' cannot be resolved."""
    if mode in ("min", "max"):
        return mode
    return _DIRECTIONS.get(monitor.removeprefix("val_"))
