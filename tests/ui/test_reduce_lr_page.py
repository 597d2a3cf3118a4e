"""ReduceLROnPlateau on the pages (AppTest): every argument on the Train page with the warning when
EarlyStopping would stop first, a run that records its rates, and the What-if's replay of the
schedule on the recording, exact under the run's own setting and honest about another."""

from __future__ import annotations

import pytest

from core.config import ReduceLRConfig
from core.presets import PRESETS
from core.stopping.reduce_lr import replay_reduce_lr
from tests.ui.test_pages import app, shown, tick_until_done

pytestmark = pytest.mark.usefixtures("thread_server")


def _warnings(at) -> list[str]:
    return [shown(w) for w in at.warning]


def test_the_train_page_sets_every_argument_warns_and_the_run_records_its_rates():
    at = app().run()
    at.toggle(key="reduce_lr.enabled").set_value(True).run()
    assert at.session_state["last_config"].reduce_lr == ReduceLRConfig(enabled=True)
    # The quick preset's EarlyStopping (patience 5) would stop before a patience-10 schedule acts.
    assert any(
        w.startswith("EarlyStopping's patience (5) is not above ReduceLROnPlateau's (10)")
        for w in _warnings(at)
    )
    at.number_input(key="reduce_lr.patience").set_value(1).run()
    at.number_input(key="reduce_lr.factor").set_value(0.5).run()
    at.number_input(key="reduce_lr.cooldown").set_value(1).run()
    assert not [w for w in _warnings(at) if "ReduceLROnPlateau" in w]
    assert at.session_state["last_config"].reduce_lr == ReduceLRConfig(
        enabled=True, patience=1, factor=0.5, cooldown=1
    )
    at.number_input(key="fit.max_epochs").set_value(12).run()
    at.button(key="start").click().run()
    at = tick_until_done(at)
    from ui.state import get_trainer

    snap = get_trainer().snapshot(at.query_params["run"])
    rates = [r.logs["learning_rate"] for r in snap.history]
    replay = replay_reduce_lr(
        [r.logs["val_loss"] for r in snap.history], initial_rate=snap.config.fit.learning_rate, mode="min",
        factor=0.5, patience=1, cooldown=1, recorded_rates=rates,
    )  # fmt: skip
    assert replay.rates == rates and replay.exact_until == len(rates)


def test_the_what_if_replays_the_schedule_exactly_and_says_where_another_one_departs():
    from ui.state import get_trainer

    cfg = PRESETS["quick_digits"].make()
    cfg.fit.max_epochs = 15
    cfg.fit.learning_rate = 0.01
    cfg.early_stopping.enabled = False
    cfg.reduce_lr = ReduceLRConfig(enabled=True, factor=0.5, patience=1)
    trainer = get_trainer()
    snap = trainer.wait(trainer.start(cfg).id, timeout=180)
    rates = [r.logs["learning_rate"] for r in snap.history]
    assert len(set(rates)) > 1, rates  # the schedule acted

    at = app("pages/4_What_if.py")
    at.query_params["run"] = snap.id
    at.run()
    assert not at.exception, at.exception
    assert at.toggle(key="wi.reduce_lr.enabled").value
    captions = "\n".join(shown(c) for c in at.caption)
    assert "It gives the recording's own rates at every epoch: the replay is exact." in captions
    first = next(i for i in range(1, len(rates)) if rates[i] < rates[i - 1])  # 1-based epoch of the first cut
    at.number_input(key="wi.reduce_lr.factor").set_value(0.1).run()
    assert any(
        w.startswith(f"Exact up to epoch {first}: from epoch {first + 1} this setting") for w in _warnings(at)
    )
