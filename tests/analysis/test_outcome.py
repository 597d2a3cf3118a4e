"""core.outcome: which epoch each callback kept, why they differ, and when epochs were saved."""

from __future__ import annotations

from core.analysis.outcome import kept
from core.presets import quick_digits
from core.store.runs import EpochRecord, RunSnapshot


def _snap(values: list[float], es_best: int, ck_epoch: int | None, reason: str = "early_stopping", **change):
    cfg = quick_digits()
    cfg.fit.max_epochs = 20
    for path, value in change.items():
        section, field = path.split("__")
        setattr(getattr(cfg, section), field, value)
    history = tuple(
        EpochRecord(i + 1, {"val_loss": v, "val_accuracy": 1 - v}, 0.1, False, 0, es_best)
        for i, v in enumerate(values)
    )
    return RunSnapshot(
        id="0" * 32,
        config=cfg,
        status="finished" if reason != "user" else "stopped",
        created_at=0.0,
        history=history,
        checkpoint_epoch=ck_epoch,
        stop_reason=reason,
    )


def test_different_monitors():
    k = kept(_snap([0.5, 0.4, 0.45], 2, 3, checkpoint__monitor="val_accuracy", checkpoint__mode="max"))
    assert (k.es_epoch, k.ck_epoch) == (2, 3)
    assert "different metrics: EarlyStopping val_loss, ModelCheckpoint val_accuracy" in k.why
    assert k.es_value == 0.4 and k.ck_value == 1 - 0.45
    assert k.epochs_saved == 17


def test_min_delta_start_from_epoch_threshold_and_save_every_epoch():
    assert "min_delta" in kept(_snap([0.5, 0.4, 0.39], 2, 3, early_stopping__min_delta=0.05)).why
    assert "start_from_epoch" in kept(_snap([0.3, 0.4, 0.35], 3, 1, early_stopping__start_from_epoch=2)).why
    k = kept(_snap([0.5, 0.4], 2, None, checkpoint__initial_value_threshold=0.1))
    assert "initial_value_threshold (0.1), and it never did" in k.why
    assert "save_best_only is off" in kept(_snap([0.5, 0.6], 1, 2, checkpoint__save_best_only=False)).why


def test_agreeing_callbacks_need_no_explanation_and_only_early_stopping_saves_epochs():
    assert kept(_snap([0.5, 0.4], 2, 2)).why is None
    for reason in ("user", "max_epochs", "interrupted", "error"):
        assert kept(_snap([0.5, 0.4], 2, 2, reason=reason)).epochs_saved is None
    assert kept(_snap([0.5, 0.4], 2, 2, early_stopping__enabled=False)).es_epoch is None
