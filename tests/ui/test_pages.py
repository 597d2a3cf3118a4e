"""Every page through Streamlit's AppTest: real scripts, real training threads, no browser."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))]


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    """Each test gets its own runs folder and its own process-wide trainer."""
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def app(page: str = "pages/1_Train.py") -> AppTest:
    """The real multipage app (app.py is the entry point, so page links resolve), opened on ``page``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if page != "app.py":
        at.switch_page(page)
    return at


def shown(element) -> str:
    """What the browser shows for an element's Markdown: ui.text.md escapes user text (and the messages
    that quote it) with a backslash before every punctuation character and invisible word joiners."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", element.value).replace("\u2060", "")


def tick_until_done(at: AppTest, timeout: float = 120) -> AppTest:
    """AppTest does not fire run_every; each run() is one tick."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if any(m.label == "Epochs trained" for m in at.metric):
            return at
        time.sleep(0.3)
    raise AssertionError("the run did not finish in time")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_exception(page):
    at = app(page).run()
    assert not at.exception, at.exception
    assert at.title, "each page has a title"


def test_train_page_starts_a_digits_run_and_shows_the_summary():
    at = app().run()
    assert at.selectbox(key="data.name").value == "digits"
    at.slider(key="early_stopping.patience").set_value(2)
    at.select_slider(key="early_stopping.min_delta").set_value(1e-4)
    at.number_input(key="fit.max_epochs").set_value(40)
    at.text_input(key="name").set_value("apptest-digits")
    at.run()
    assert not at.exception
    at.button(key="start").click().run()
    run_id = at.query_params["run"]
    assert len(run_id) == 32

    at = tick_until_done(at)
    labels = {m.label: m.value for m in at.metric}
    trained = int(labels["Epochs trained"].replace(",", ""))
    assert 3 <= trained < 40
    assert labels["Epochs saved"] == str(40 - trained)
    assert "Best val_loss" in labels
    assert float(labels["Test accuracy"]) > 0.8
    assert any(
        "Early stopping at epoch" in shown(s) and "by more than 0.0001" in shown(s) for s in at.success
    )
    downloads = at.get("download_button")
    assert [d.key for d in downloads] == [
        "dl_checkpoint",
        "dl_history",
        "dl_tensorboard",
        "dl_config",
        "dl_script",
    ]
    # The console carries Keras' own lines.
    console = "\n".join(c.value for c in at.code)
    assert f"Epoch {trained}: early stopping" in console

    # The run was trained with exactly the settings on the page.
    from ui.state import get_trainer

    snap = get_trainer().snapshot(run_id)
    assert snap.config.name == "apptest-digits"
    assert snap.config.early_stopping.patience == 2
    assert snap.config.early_stopping.min_delta == 1e-4
    assert snap.config.fit.max_epochs == 40


def test_invalid_settings_show_their_message_and_disable_start():
    at = app().run()
    at.slider(key="fit.validation_split").set_value(0.0).run()
    errors = [shown(e) for e in at.error]
    assert any("validation split is 0, so no val_ metric is logged" in e for e in errors), errors
    assert at.button(key="start").disabled
    at.slider(key="fit.validation_split").set_value(0.2).run()
    assert not at.error
    assert not at.button(key="start").disabled


def test_weights_only_with_keras_format_blocks_start():
    at = app().run()
    at.toggle(key="checkpoint.save_weights_only").set_value(True).run()
    assert any("Weights only needs the .weights.h5 format" in shown(e) for e in at.error)
    assert at.button(key="start").disabled
    at.selectbox(key="checkpoint.format").set_value(".weights.h5").run()
    assert not at.error
    assert not at.button(key="start").disabled


def test_mode_auto_shows_what_it_resolves_to():
    at = app().run()
    at.selectbox(key="early_stopping.monitor").set_value("val_accuracy")
    at.radio(key="early_stopping.mode").set_value("auto").run()
    assert any("auto resolves to **max**" in c.value for c in at.caption)


def test_seed_preset_loads_the_tutorial_settings():
    at = app().run()
    at.selectbox(key="preset_choice").set_value("seed_imdb").run()
    at.button(key="load_preset").click().run()
    assert at.selectbox(key="data.name").value == "imdb"
    assert at.selectbox(key="model.name").value == "seed_conv1d"
    assert at.slider(key="early_stopping.patience").value == 30
    assert at.select_slider(key="early_stopping.min_delta").value == 1e-4
    assert at.radio(key="early_stopping.mode").value == "min"
    assert at.toggle(key="checkpoint.save_best_only").value is True
    # Offline here: the page says what to do before anything is started.
    warnings = " ".join(w.value for w in at.warning)
    assert "needs internet" in warnings or any("Cached at" in s.value for s in at.success)


def test_a_run_in_the_url_reattaches():
    from core.presets import quick_digits
    from ui.state import get_trainer

    cfg = quick_digits()
    cfg.fit.max_epochs = 3
    run = get_trainer().start(cfg)
    get_trainer().wait(run.id, timeout=120)
    at = app()
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception
    assert any(run.id[:8] in m.value for m in at.markdown)
    assert any(m.label == "Epochs trained" and m.value == "3" for m in at.metric)
    # A fresh session opened on a link starts from that run's settings.
    assert at.number_input(key="fit.max_epochs").value == 3


def test_unknown_run_in_the_url_is_explained():
    at = app()
    at.query_params["run"] = "0" * 32
    at.run()
    assert any("does not exist" in w.value for w in at.warning)


def test_home_page_quick_run_starts_training():
    at = app("app.py").run()
    at.button(key="home_quick").click().run()
    assert not at.exception
    from ui.state import get_trainer

    ids = get_trainer().store.ids()
    assert len(ids) == 1
    get_trainer().wait(ids[0], timeout=120)
    at = app("app.py").run()
    table = at.dataframe[0].value
    assert list(table["name"]) == ["digits-mlp"]
    assert list(table["status"]) == ["finished"]


def _two_finished_runs():
    from core.presets import quick_digits
    from ui.state import get_trainer

    trainer = get_trainer()
    ids = []
    for patience, name in ((1, "impatient"), (4, "patient")):
        cfg = quick_digits()
        cfg.name = name
        cfg.fit.max_epochs = 6
        cfg.early_stopping.patience = patience
        ids.append(trainer.start(cfg).id)
    for rid in ids:
        trainer.wait(rid, timeout=120)
    return trainer, ids


def test_runs_page_lists_filters_renames_and_deletes():
    trainer, (a, b) = _two_finished_runs()
    at = app("pages/2_Runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["impatient", "patient"]
    assert set(table["status"]) == {"finished"}
    assert {"epochs", "best epoch", "best value", "test", "stop reason", "seconds"} <= set(table.columns)

    at.text_input(key="runs_query").set_value("imp").run()
    assert list(at.dataframe[0].value["name"]) == ["impatient"]
    at.text_input(key="runs_query").set_value("").run()

    at.multiselect(key="runs_selected").set_value([a]).run()
    at.text_input(key=f"rename_{a}").set_value("renamed")
    at.button(key="runs_rename").click().run()
    assert not at.exception
    assert trainer.snapshot(a).config.name == "renamed"
    assert "renamed" in list(at.dataframe[0].value["name"])
    assert any(shown(s) == "Renamed to renamed." for s in at.success)

    # Delete needs the confirmation box; the files go too.
    run_dir = trainer.store.run_dir(b)
    assert run_dir.exists()
    at.multiselect(key="runs_selected").set_value([b]).run()
    assert at.button(key="runs_delete").disabled
    at.checkbox(key="runs_delete_confirm").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception
    assert trainer.store.ids() == [a]
    assert not run_dir.exists()


def test_compare_page_overlays_runs_and_highlights_differences():
    trainer, (a, b) = _two_finished_runs()
    at = app("pages/3_Compare.py")
    at.session_state["compare_ids"] = [a, b]
    at.run()
    assert not at.exception
    chart = at.get("plotly_chart")[0].proto.spec
    assert '"impatient (' in chart and '"patient (' in chart
    table = at.dataframe[0].value
    assert "early_stopping.patience" in table.index
    assert "fit.max_epochs" not in table.index  # equal settings hidden by default
    assert list(table.loc["early_stopping.patience"]) == ["1", "4"]
    at.toggle(key="compare_only_diff").set_value(False).run()
    assert "fit.max_epochs" in at.dataframe[0].value.index
    assert at.query_params["runs"] == f"{a},{b}"


def _whatif_run():
    """A digits run with early stopping off: a full recorded curve that overfits."""
    from core.presets import quick_digits
    from ui.state import get_trainer

    cfg = quick_digits()
    cfg.name = "full-curve"
    cfg.fit.max_epochs = 30
    cfg.fit.learning_rate = 0.01
    cfg.early_stopping.enabled = False
    cfg.checkpoint.keep_every_epoch = True
    trainer = get_trainer()
    snap = trainer.wait(trainer.start(cfg).id, timeout=180)
    assert snap.status == "finished"
    return trainer, snap


def _stop_annotation(at: AppTest) -> str | None:
    import json

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    texts = [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    return next((t for t in texts if t.startswith("stops at")), None)


def test_whatif_slider_moves_the_marked_stop_epoch():
    from core.stopping import replay

    trainer, snap = _whatif_run()
    at = app("pages/4_What_if.py")
    at.query_params["run"] = snap.id
    at.run()
    assert not at.exception, at.exception
    at.toggle(key="wi.early_stopping.restore_best_weights").set_value(True)
    at.slider(key="wi.early_stopping.patience").set_value(2).run()
    values = [r.logs["val_loss"] for r in snap.history]
    expected = replay.replay_early_stopping(values, mode="min", patience=2, restore_best_weights=True)
    assert expected.stopped
    metric = {m.label: m.value for m in at.metric}
    assert metric["Stops at epoch"] == str(expected.stopped_epoch + 1)
    assert metric["Model ends with"] == f"epoch {expected.final_weights_epoch + 1}"
    assert _stop_annotation(at) == f"stops at {expected.stopped_epoch + 1}"

    at.slider(key="wi.early_stopping.patience").set_value(6).run()
    later = replay.replay_early_stopping(values, mode="min", patience=6, restore_best_weights=True)
    assert later.stopped_epoch > expected.stopped_epoch
    assert _stop_annotation(at) == f"stops at {later.stopped_epoch + 1}"
    # The run kept every epoch: the model this setting ends with can be downloaded.
    labels = [b.label for b in at.get("download_button")]
    assert f"Download the final weights (epoch {later.final_weights_epoch + 1})" in labels
    # The patience explorer and every other stopping rule are drawn from the same recording.
    assert any(s.value.startswith("Suggested: patience") for s in at.success)
    from core.analysis.whatif import other_rules

    rules = next(d.value for d in at.dataframe if "rule" in d.value.columns)
    assert len(rules) == len(other_rules()) and rules["note"].eq("").all(), rules


def test_whatif_says_what_a_recording_cannot_answer():
    trainer, _ = _whatif_run()
    from core.presets import quick_digits

    cfg = quick_digits()
    cfg.name = "stopped-early"
    cfg.fit.learning_rate = 0.01
    cfg.early_stopping.patience = 1
    snap = trainer.wait(trainer.start(cfg).id, timeout=180)
    assert snap.stop_reason == "early_stopping"
    at = app("pages/4_What_if.py")
    at.query_params["run"] = snap.id
    at.run()
    at.slider(key="wi.early_stopping.patience").set_value(50).run()
    assert any("because the run stopped early there" in w.value for w in at.warning)
    assert any("needs epochs that were never trained" in w.value for w in at.warning)
    # The metric stays short enough to read in a fifth of the page: "after <epochs recorded>".
    stops = next(m for m in at.metric if m.label == "Stops at epoch")
    assert stops.value == f"after {len(snap.history):,}"
    at.button(key="wi_full_curve").click().run()
    assert not at.exception
    full = [
        rid for rid in trainer.store.ids() if trainer.snapshot(rid).config.name == "stopped-early-full-curve"
    ]
    assert len(full) == 1
    cfg_full = trainer.snapshot(full[0]).config
    assert not cfg_full.early_stopping.enabled and cfg_full.checkpoint.keep_every_epoch
    trainer.stop(full[0])


def test_page_runs_leave_the_keras_session_alone():
    """Streamlit clears Keras' session after every script run unless ui.state stops it (see there)."""
    import keras

    at = app().run()
    before = keras.layers.Dense(1).name
    at.run()
    at.run()
    after = keras.layers.Dense(1).name
    assert after != before  # clear_session() would have reset the name counter: "dense" again


def test_a_queued_run_shows_its_place():
    from core.presets import quick_digits
    from ui.state import get_trainer

    trainer = get_trainer()
    long = quick_digits()
    long.fit.max_epochs = 500
    long.early_stopping.enabled = False
    first = trainer.start(long)
    second = trainer.start(quick_digits())
    at = app()
    at.query_params["run"] = second.id
    at.run()
    assert any("Waiting in the queue: next to start" in i.value for i in at.info)
    at.button(key="stop_run").click().run()  # a queued run is stopped before it starts
    assert trainer.snapshot(second.id).status == "stopped"
    trainer.stop(first.id)
    assert trainer.wait(first.id, timeout=60).status == "stopped"


def test_private_mode_shows_each_session_only_its_runs(monkeypatch):
    from core.presets import quick_digits
    from ui.state import get_trainer

    monkeypatch.setenv("ESLAB_PRIVATE", "1")
    other = get_trainer().start(quick_digits())  # started elsewhere (another session, the CLI)
    get_trainer().wait(other.id, timeout=120)

    mine = app().run()
    mine.number_input(key="fit.max_epochs").set_value(3).run()
    mine.button(key="start").click().run()
    my_id = mine.query_params["run"]
    get_trainer().wait(my_id, timeout=120)
    mine.switch_page("pages/2_Runs.py").run()
    assert list(mine.dataframe[0].value["name"]) == ["digits-mlp"]
    assert mine.multiselect(key="runs_selected").options == [f"digits-mlp ({my_id[:6]})"]

    stranger = app("pages/2_Runs.py").run()  # a new browser session
    assert any("No runs yet" in i.value for i in stranger.info)
    stranger = app("pages/4_What_if.py").run()
    assert any("No run has a finished epoch yet" in i.value for i in stranger.info)
    # Holding a run's link is holding the key to it.
    linked = app()
    linked.query_params["run"] = other.id
    linked.run()
    linked.switch_page("pages/2_Runs.py").run()
    assert len(linked.dataframe[0].value) == 1

    monkeypatch.setenv("ESLAB_PRIVATE", "0")  # the default: the server's shared lab notebook
    shared = app("pages/2_Runs.py").run()
    assert len(shared.dataframe[0].value) == 2


def test_a_failure_during_training_is_reported_and_the_run_kept(tmp_path):
    from core.config import DataConfig
    from core.presets import quick_digits
    from tests.uploads import upload, upload_path
    from ui.state import get_trainer

    fields = upload("a,b,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
    good = upload_path(fields)
    cfg = quick_digits()
    cfg.data = DataConfig(name="csv", **fields, target_column="y")
    trainer = get_trainer()
    long = quick_digits()
    long.fit.max_epochs = 400
    long.early_stopping.enabled = False
    blocker = trainer.start(long)  # keeps the worker busy while the file changes under the queued run
    run = trainer.start(cfg)  # validated against the good file
    good.write_bytes(b"\x00\x01 not a csv any more")
    trainer.stop(blocker.id)
    snap = trainer.wait(run.id, timeout=120)
    assert snap.status == "failed"
    assert "not a CSV text file" in snap.message
    at = app()
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception
    assert any("not a CSV text file" in e.value for e in at.error)
    assert run.id in trainer.store.ids()  # the run and its log are kept


def test_a_stopped_run_resumes_from_the_train_page_and_ends_like_an_unbroken_one(tmp_path):
    from core.engine.queue import Trainer
    from core.store.runs import RunStore
    from tests.engine.test_resume import resumable_config
    from ui.state import get_trainer

    reference_trainer = Trainer(RunStore(tmp_path / "reference"))
    reference = reference_trainer.wait(reference_trainer.start(resumable_config()).id, timeout=300)

    trainer = get_trainer()
    run = trainer.start(resumable_config())
    while run.snapshot().epoch < 3:
        time.sleep(0.02)
    trainer.stop(run.id)
    trainer.wait(run.id)
    at = app()
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception
    [button] = [b for b in at.button if b.key == "resume_run"]
    assert button.label.startswith("Resume from epoch ")
    assert any("ends where it would have without the break" in c.value for c in at.caption)
    button.click().run()
    assert not at.exception
    assert not at.error
    at = tick_until_done(at, timeout=300)

    resumed = trainer.snapshot(run.id)
    assert resumed.stopped_epoch == reference.stopped_epoch
    assert resumed.best_value == reference.best_value
    assert any(f"Early stopping at epoch {reference.stopped_epoch}" in s.value for s in at.success)
    assert not [b for b in at.button if b.key == "resume_run"]  # complete now: nothing to resume


def test_start_pressed_before_loaded_settings_appeared_starts_nothing_and_restores_them():
    """A click on a page not yet redrawn after an import sends the old widget values (seen in CI)."""
    from core.presets import PRESETS
    from ui.state import get_trainer

    at = app().run()
    loaded = PRESETS["overfit_demo"].make()
    # The preset was loaded by a run that the click interrupted: still pending, and the browser sent
    # the old values of the widgets below the sidebar.
    at.session_state["pending_config"] = loaded
    at.text_input(key="name").set_value("stale-name")
    at.button(key="start").click().run()
    assert not at.exception
    assert any("still appearing" in e.value for e in at.error)
    assert get_trainer().store.ids() == []  # nothing started
    assert at.text_input(key="name").value == loaded.name  # the loaded settings are back
    # Once the page has shown them, Start works, with them.
    at.button(key="start").click().run()
    [run_id] = get_trainer().store.ids()
    assert get_trainer().snapshot(run_id).config.name == loaded.name
    get_trainer().stop(run_id)
    get_trainer().wait(run_id, timeout=120)


def test_csv_choices_show_what_was_found_and_apply_the_fix(tmp_path):
    """breast_cancer.csv as scikit-learn ships it: the page names each problem and offers its fix."""
    import sklearn.datasets.data as sklearn_data

    from tests.uploads import upload

    fields = upload(Path(sklearn_data.__file__).parent / "breast_cancer.csv")
    at = app()
    at.run()
    at.session_state["data.name"] = "csv"
    at.session_state["data.upload"] = fields["upload"]
    at.session_state["data.file_name"] = fields["file_name"]
    at.run()
    assert not at.exception
    assert any(
        "Line 1 has 4 fields, the rows have 31: it looks like a metadata line" in shown(e) for e in at.error
    )
    assert at.button(key="start").disabled
    at.button(key="csv_fix.Skip the first line").click().run()
    assert at.number_input(key="data.csv.skip_rows").value == 1
    assert any("The header row (line 2) holds only numbers" in shown(e) for e in at.error)
    at.button(key="csv_fix.No header row").click().run()
    assert not at.exception and not at.error
    assert at.toggle(key="data.csv.header").value is False
    assert any(
        shown(c) == "breast_cancer.csv: 569 rows, 31 columns. Delimiter: comma (detected). "
        "No header row: columns are named column 1..31. Skipped line 1."
        for c in at.caption
    )
    assert at.selectbox(key="data.target_column").value == "column 31"
    assert not at.button(key="start").disabled
    at.selectbox(key="data.csv.delimiter").set_value(";").run()  # a choice the file does not fit
    assert any("only the target column 'column 1'" in shown(e) for e in at.error), [
        shown(e) for e in at.error
    ]
    assert at.button(key="start").disabled


def test_a_queued_run_says_what_it_waits_for():
    from core.config import RunConfig
    from core.store.runs import RunSnapshot
    from ui.live_view import queue_text

    snap = RunSnapshot(id="a" * 32, config=RunConfig(), status="queued", created_at=0.0)
    # Taken from the queue, waiting for its training process: no "position None".
    assert queue_text(snap) == "Starting: the training process is getting ready."
    assert queue_text(replace(snap, queue_position=1)).startswith("Waiting in the queue: next to start.")
    assert queue_text(replace(snap, queue_position=3)).startswith("Waiting in the queue: position 3.")
