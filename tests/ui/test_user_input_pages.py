"""The typed, guarded boundary, seen through the pages (AppTest): one click one run, user text as text,
an honest summary, crafted run files."""

from __future__ import annotations

import pytest
import streamlit as st

from tests.ui.test_pages import app


@pytest.fixture(autouse=True)
def fresh_server_state(tmp_path, monkeypatch):
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    yield
    from ui.state import get_trainer

    trainer = get_trainer()
    for rid in trainer.store.ids():
        if trainer.snapshot(rid).is_live:
            trainer.stop(rid)
            trainer.wait(rid, timeout=120)
    st.cache_resource.clear()


# ------------------------------------------------------------------------------------------------
# One click, one run


def test_a_double_click_on_start_starts_one_run():
    """The second click of a double-click comes from the page as it was before the first one's rerun:
    the same widget states again (the browser has not redrawn the button yet)."""
    from ui import state
    from ui.state import get_trainer

    state._starts.clear()  # process-wide: other tests' sessions left theirs

    at = app().run()
    at.number_input(key="fit.max_epochs").set_value(3).run()
    at.button(key="start").click()
    click = at._tree.get_widget_states()  # what the browser sends for a click on this page
    at.run()
    first = at.query_params["run"]
    at._run(widget_state=click)  # the second click, from the page not yet redrawn
    assert not at.exception
    at._run(widget_state=click)  # and a third
    assert get_trainer().store.ids() == [first]
    assert at.query_params["run"] == first
    # A click on the redrawn button right away is still part of the burst; a later one is a new run.
    [start] = [b for b in at.button if b.label == "Start training"]
    assert start.key != "start"
    start.click().run()
    assert get_trainer().store.ids() == [first]
    # On a loaded server a click of the burst is handled seconds after the start, but right after the
    # start's own page run ended (it waited for it): still the burst.
    _latest().at -= 2
    assert _latest().redrawn_at is not None
    [start] = [b for b in at.button if b.label == "Start training"]
    start.click().run()
    assert get_trainer().store.ids() == [first]
    _later(2)  # two seconds later
    [start] = [b for b in at.button if b.label == "Start training"]
    start.click().run()
    assert len(get_trainer().store.ids()) == 2


def _later(seconds: float) -> None:
    """As if the session's last start were ``seconds`` older (it is kept outside session state)."""
    from ui import state

    for latest in state._starts.values():
        latest.at -= seconds
        if latest.redrawn_at is not None:
            latest.redrawn_at -= seconds


def _latest():
    from ui import state

    [latest] = state._starts.values()
    return latest


def test_a_late_click_with_the_url_from_before_the_start_puts_the_run_back():
    """A click sent before the browser had ``?run=`` carries the old URL; when its button is gone,
    Streamlit drops the click and only reruns the page (seen in CI, seconds after the click)."""
    from ui import state
    from ui.state import get_trainer

    state._starts.clear()
    at = app().run()
    at.number_input(key="fit.max_epochs").set_value(2).run()
    at.button(key="start").click().run()
    first = at.query_params["run"]
    get_trainer().wait(first, timeout=120)
    assert (_latest().run_id, _latest().before, _latest().shown) == (first, None, False)
    _later(30)  # thirty seconds later
    del at.query_params["run"]  # the late rerun: the URL the browser had before the start
    at.run()
    assert at.query_params["run"] == first
    assert not at.exception
    # Going to another run is the user's choice: the start is forgotten, never forced back.
    at.query_params["run"] = "0" * 32
    at.run()
    assert _latest().shown
    del at.query_params["run"]
    at.run()
    assert "run" not in at.query_params
    assert get_trainer().store.ids() == [first]


def test_a_start_the_browser_never_showed_is_not_put_back_after_a_minute():
    from ui import state
    from ui.state import URL_CATCH_UP_S

    state._starts.clear()
    at = app().run()
    at.number_input(key="fit.max_epochs").set_value(2).run()
    at.button(key="start").click().run()
    _later(URL_CATCH_UP_S + 1)
    del at.query_params["run"]
    at.run()
    assert "run" not in at.query_params


def test_a_start_is_noted_even_when_streamlit_ends_the_click_right_after_it():
    """Any session-state call in a callback may raise Streamlit's StopException once the browser has
    sent another rerun (seen: three rapid clicks, the run started, the page never told). The start
    is noted before any such call, so the next rerun of the burst opens it."""
    import streamlit.runtime.scriptrunner_utils.exceptions as exc

    from ui import state

    state._starts.clear()
    at = app().run()
    at.number_input(key="fit.max_epochs").set_value(2).run()
    remember = state.remember

    def interrupted(run_id: str) -> None:
        raise exc.StopException()  # what session_state access raises when a rerun is pending

    state.remember = interrupted
    try:
        at.button(key="start").click().run()
    finally:
        state.remember = remember
    [started] = state.get_trainer().store.ids()
    assert "run" not in at.query_params  # the click ended before the page was told
    at.run()  # the burst's next rerun, with the URL from before
    assert at.query_params["run"] == started


# ------------------------------------------------------------------------------------------------
# User text is text

EVIL_NAMES = [
    "![x](http://127.0.0.1:9/p.png)",
    "<img src=x onerror=alert(1)>",
    "**bold**",
    ":red[x]",
    "$x^2$",
]


def _markdown_texts(at) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown (bodies and labels)."""
    texts = []
    kinds = ("markdown", "caption", "success", "error", "warning", "info", "title", "header", "subheader")
    for kind in kinds:
        texts += [e.value for e in getattr(at, kind)]
    texts += [m.label for m in at.metric] + [b.label for b in at.button]
    texts += [b.label for b in at.get("download_button")]
    return texts


def _assert_only_escaped(at, name: str) -> list[str]:
    """The name is nowhere raw where Markdown renders; returns the texts that show it (escaped)."""
    from tests.ui.test_pages import shown
    from ui.text import md

    texts = _markdown_texts(at)
    raw = [t for t in texts if name in t]
    assert not raw, f"{name!r} reaches Markdown unescaped: {raw}"

    class _E:
        def __init__(self, value):
            self.value = value

    return [t for t in texts if md(name) in t and name in shown(_E(t))]


def _finished_run(trainer, name: str):
    from core.presets import quick_digits

    cfg = quick_digits()
    cfg.name = name
    cfg.fit.max_epochs = 2
    return trainer.wait(trainer.start(cfg).id, timeout=120)


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_run_names_appear_literally_on_every_page(name):
    import html
    import json

    from ui.state import get_trainer

    trainer = get_trainer()
    a = _finished_run(trainer, name)
    b = _finished_run(trainer, "plain")

    at = app()
    at.query_params["run"] = a.id
    at.run()
    assert not at.exception
    assert _assert_only_escaped(at, name), "the live view's header shows the name"

    at = app("pages/2_Runs.py").run()
    assert name in list(at.dataframe[0].value["name"])  # a table cell: plain text
    at.multiselect(key="runs_selected").set_value([b.id]).run()
    at.text_input(key=f"rename_{b.id}").set_value(name)
    at.button(key="runs_rename").click().run()
    assert not at.exception
    assert trainer.snapshot(b.id).config.name == name
    assert _assert_only_escaped(at, name), "the rename message quotes the name"

    at = app("pages/3_Compare.py")
    at.session_state["compare_ids"] = [a.id, b.id]
    at.run()
    assert not at.exception
    assert _assert_only_escaped(at, name), "the caption names the runs"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {t.get("name") for t in spec["data"]}
    assert f"{html.escape(name)} ({a.id[:6]})" in names
    raw = at.get("plotly_chart")[0].proto.spec
    assert all(name not in (t.get("hovertemplate") or "") for t in spec["data"])
    if "<" in name:
        assert name not in raw  # only entities reach Plotly

    at = app("pages/4_What_if.py")
    at.query_params["run"] = a.id
    at.run()
    assert not at.exception
    _assert_only_escaped(at, name)
    assert any(name in o for o in at.selectbox(key="whatif_run").options)  # options are plain text


def test_a_failure_message_quoting_user_text_is_shown_literally(tmp_path):
    """A CSV problem names the column; the column is called like an image."""
    from core.config import DataConfig
    from core.presets import quick_digits
    from ui.state import get_trainer

    column = "![c](http://127.0.0.1:9/c.png)"
    good = tmp_path / "data.csv"
    good.write_text(f"a,{column},y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
    from tests.uploads import upload, upload_path

    fields = upload(good)
    cfg = quick_digits()
    cfg.data = DataConfig(name="csv", target_column="y", **fields)
    trainer = get_trainer()
    long = quick_digits()
    long.fit.max_epochs = 400
    long.early_stopping.enabled = False
    blocker = trainer.start(long)
    run = trainer.start(cfg)
    # The stored upload turns bad after validation: empty cells.
    upload_path(fields).write_text(f"a,{column},y\n" + "".join(f"{i},,{i % 2}\n" for i in range(60)))
    trainer.stop(blocker.id)
    snap = trainer.wait(run.id, timeout=120)
    assert snap.status == "failed" and column in snap.message, snap.message
    at = app()
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception
    assert _assert_only_escaped(at, column)


# ------------------------------------------------------------------------------------------------
# Summary honesty


def _metrics(at) -> dict[str, object]:
    return {m.label: m for m in at.metric}


def test_the_summary_says_which_epoch_each_callback_kept_and_why():
    """EarlyStopping with a min_delta ModelCheckpoint does not have: on the same val_loss they part."""
    from core.presets import quick_digits
    from tests.ui.test_pages import shown
    from ui.state import get_trainer

    cfg = quick_digits()
    cfg.fit.max_epochs = 60
    cfg.early_stopping.patience = 3
    cfg.early_stopping.min_delta = 0.05
    cfg.early_stopping.restore_best_weights = True
    trainer = get_trainer()
    snap = trainer.wait(trainer.start(cfg).id, timeout=180)
    assert snap.stop_reason == "early_stopping", snap.message
    es_best = snap.history[-1].es_best_epoch
    assert snap.checkpoint_epoch != es_best, "precondition: the two callbacks kept different epochs"

    at = app()
    at.query_params["run"] = snap.id
    at.run()
    assert not at.exception
    [note] = [shown(i) for i in at.info if "The two callbacks kept different epochs" in shown(i)]
    es_value = snap.history[es_best - 1].logs["val_loss"]
    assert f"EarlyStopping's best: epoch {es_best} (val_loss {es_value:.4f})" in note
    assert "the model's final weights (restore_best_weights)" in note
    assert f"ModelCheckpoint kept epoch {snap.checkpoint_epoch} (val_loss " in note
    assert "min_delta (0.05)" in note and "ModelCheckpoint has no min_delta" in note
    assert _metrics(at)["Epochs saved"].value == str(60 - len(snap.history))


def test_epochs_saved_is_only_claimed_when_early_stopping_ended_the_run():
    from core.presets import quick_digits
    from ui.state import get_trainer

    cfg = quick_digits()
    cfg.fit.max_epochs = 3
    cfg.early_stopping.patience = 50
    trainer = get_trainer()
    snap = trainer.wait(trainer.start(cfg).id, timeout=120)
    assert snap.stop_reason == "max_epochs"
    at = app()
    at.query_params["run"] = snap.id
    at.run()
    saved = _metrics(at)["Epochs saved"]
    assert saved.value == "–"
    assert "Only early stopping saves epochs" in saved.help and "reached max epochs" in saved.help
    # Same monitor, same rules: they agree, nothing to explain.
    assert not [i for i in at.info if "kept different epochs" in i.value]


# ------------------------------------------------------------------------------------------------
# A run's name at its longest


def test_record_a_full_curve_works_for_a_name_of_any_valid_length_and_says_why_it_cannot(monkeypatch):
    """The what-if's full curve is named "<name>-full-curve": for a name near the limit that used to
    fail the declaration and end the page with an app-wide error (so did a full queue)."""
    from core.config import MAX_NAME_CHARS
    from core.engine.queue import QueueFull, Trainer
    from core.presets import quick_digits
    from ui.state import get_trainer

    cfg = quick_digits()
    cfg.name = "n" * MAX_NAME_CHARS
    cfg.fit.learning_rate = 0.01
    cfg.early_stopping.patience = 1
    trainer = get_trainer()
    snap = trainer.wait(trainer.start(cfg).id, timeout=180)
    assert snap.stop_reason == "early_stopping"

    def full_curve_page():
        at = app("pages/4_What_if.py")
        at.query_params["run"] = snap.id
        at.run()
        at.slider(key="wi.early_stopping.patience").set_value(50).run()
        return at.button(key="wi_full_curve").click().run()

    def queue_full(self, config):
        raise QueueFull("8 runs are already waiting, the most this server queues.")

    with monkeypatch.context() as m:
        m.setattr(Trainer, "start", queue_full)
        at = full_curve_page()
    assert not at.exception, at.exception
    assert any("Could not start the full curve" in e.value for e in at.error), [e.value for e in at.error]

    at = full_curve_page()
    assert not at.exception, at.exception
    curves = [rid for rid in trainer.store.ids() if rid != snap.id]
    assert len(curves) == 1
    name = trainer.snapshot(curves[0]).config.name
    assert name == "n" * (MAX_NAME_CHARS - len("-full-curve")) + "-full-curve"
    trainer.stop(curves[0])


# ------------------------------------------------------------------------------------------------
# Uploads by their own file name


def test_the_runs_table_shows_an_uploads_file_name_not_a_hash():
    """Issue 9: "the console and the Runs table show iris.csv, not a hash". The table's dataset column
    read the file name from a config column that the store's listing had dropped: it said only "csv"."""
    import sqlite3
    import time

    from core.config import RunConfig
    from core.store.runs import new_run_id
    from ui.state import get_trainer

    store = get_trainer().store
    cfg = RunConfig(name="iris run")
    cfg.data.name, cfg.data.upload, cfg.data.file_name = "csv", "ab" * 16, "iris.csv"
    store.create(new_run_id(), cfg, time.time())
    store.create(new_run_id(), RunConfig(name="digits run"), time.time())
    # A browser may send a file name with a direction override (the declaration allows it in
    # data.file_name): shown as an escape, not as "csv (invoiceexe.csv)".
    cfg.name, cfg.data.file_name = "spoof run", "invoice\u202ecsv.exe"
    store.create(new_run_id(), cfg, time.time())
    with sqlite3.connect(store.root / "runs.sqlite") as db:  # not queued in this trainer: ended
        db.execute("UPDATE runs SET status = 'finished'")
    db.close()
    for page in ("pages/2_Runs.py", "app.py"):
        at = app(page).run()
        assert not at.exception, at.exception
        table = at.dataframe[0].value
        datasets = dict(zip(table["name"], table["dataset"]))
        assert datasets == {
            "iris run": "csv (iris.csv)",
            "digits run": "digits",
            "spoof run": "csv (invoice\\u202ecsv.exe)",
        }, (page, datasets)


# ------------------------------------------------------------------------------------------------
# Second audit of issue 9: links and actions on runs that are not (or no longer) there


def _stored_run(name: str, status: str = "finished", epochs: int = 0) -> str:
    """A run in the index (and its folder) without training: ``epochs`` epochs of a falling val_loss."""
    import sqlite3
    import time

    from core.presets import quick_digits
    from core.store.runs import EpochRecord, new_run_id
    from ui.state import get_trainer

    store = get_trainer().store
    cfg = quick_digits()
    cfg.name = name
    rid = new_run_id()
    store.create(rid, cfg, time.time())
    for e in range(1, epochs + 1):
        logs = {"loss": 1 / e, "accuracy": 0.5, "val_loss": 1 / e, "val_accuracy": 0.5}
        store.append_history(rid, EpochRecord(e, logs, 0.1, True, 0, e))
    with sqlite3.connect(store.root / "runs.sqlite") as db:
        db.execute("UPDATE runs SET status = ?, epochs_run = ? WHERE id = ?", (status, epochs, rid))
    db.close()
    return rid


def test_renaming_a_run_another_session_deleted_says_so():
    """The Save name click of a tab whose run was deleted meanwhile ended the page with an app-wide
    error (KeyError out of the store)."""
    from ui.state import get_trainer

    rid = _stored_run("doomed")
    at = app("pages/2_Runs.py").run()
    at.multiselect(key="runs_selected").set_value([rid]).run()
    get_trainer().delete(rid)  # in another tab
    at.text_input(key=f"rename_{rid}").set_value("new name")
    at.button(key="runs_rename").click().run()
    assert not at.exception, at.exception
    assert any("no longer exists" in e.value for e in at.error), [e.value for e in at.error]
    assert not get_trainer().store.exists(rid)


def test_a_compare_link_says_which_of_its_runs_cannot_be_shown():
    """?runs= with ids that do not exist, or are no ids at all, silently showed two other runs (and the
    URL was rewritten to them); a link of over 20 runs was cut without a word."""
    from tests.ui.test_pages import shown
    from ui.state import MAX_LINKED_RUNS

    a, b, c = _stored_run("a", epochs=2), _stored_run("b", epochs=2), _stored_run("c", epochs=2)
    gone, garbage = "0" * 32, "../../etc/passwd"

    def compare(link: str):
        at = app("pages/3_Compare.py")
        at.query_params["runs"] = link
        at.run()
        assert not at.exception, at.exception
        return at, [shown(w) for w in at.warning]

    at, warnings = compare(f"{gone},{'1' * 32}")
    assert at.multiselect(key="compare_pick").value == []  # not two other runs passed off as the link's
    assert any("2 runs of this link do not exist (any more): 000000…, 111111…" in w for w in warnings)

    at, warnings = compare(f"{a},{garbage},{gone},{b},{a}")
    assert at.multiselect(key="compare_pick").value == [a, b]
    assert any("1 run of this link does not exist (any more): 000000…" in w for w in warnings), warnings
    assert any("1 part of this link is not a run id: '../../etc/passwd'" in w for w in warnings), warnings

    many = ",".join([f"{i:032x}" for i in range(1000)] + [c])
    at, warnings = compare(many)
    assert any(f"only its first {MAX_LINKED_RUNS} run ids are read" in w for w in warnings), warnings

    at, warnings = compare(f"{a},{b},{c}")  # a good link: no warning
    assert at.multiselect(key="compare_pick").value == [a, b, c] and not warnings


def test_a_what_if_link_to_a_run_it_cannot_replay_says_so():
    """?run= of a queued run, of no run, or of garbage silently replayed another run (the newest), and the
    URL was rewritten to it."""
    from tests.ui.test_pages import shown

    recorded = _stored_run("recorded", epochs=3)
    queued = _stored_run("waiting", status="queued")
    for link, says in [
        (queued, "has no finished epoch to replay yet"),
        ("0" * 32, "does not exist (any more)"),
        ("../etc/passwd", "does not exist (any more)"),
    ]:
        at = app("pages/4_What_if.py")
        at.query_params["run"] = link
        at.run()
        assert not at.exception, at.exception
        warnings = [shown(w) for w in at.warning]
        assert any(says in w and "showing recorded" in w for w in warnings), (link, warnings)
        assert at.selectbox(key="whatif_run").value == recorded
    at = app("pages/4_What_if.py")
    at.query_params["run"] = recorded
    at.run()
    assert not [w for w in at.warning if "this link" in w.value.lower()]
    _set_status(queued, "stopped")  # no trainer of this process holds it: the teardown would wait for it


def _set_status(rid: str, status: str) -> None:
    import sqlite3

    from ui.state import get_trainer

    with sqlite3.connect(get_trainer().store.root / "runs.sqlite") as db:
        db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, rid))
    db.close()


def test_a_crafted_index_row_and_an_endless_log_line_are_shown_as_text_and_bounded():
    """A monitor or stop reason from a crafted index row or summary.json reached the "Best …" metric's
    label and the "Epochs saved" help as Markdown (an image fetch); 30 log lines of 900 KB went to the
    console whole (27 MB in one page element)."""
    import sqlite3

    from tests.ui.test_pages import shown
    from ui.live_view import CONSOLE_LINE_CHARS
    from ui.state import get_trainer

    evil = "![x](http://127.0.0.1:9/p.png)"
    rid = _stored_run("crafted", epochs=3)
    store = get_trainer().store
    with sqlite3.connect(store.root / "runs.sqlite") as db:
        db.execute(
            "UPDATE runs SET monitor = ?, best_epoch = 2, best_value = 0.5, stop_reason = ? WHERE id = ?",
            (evil, evil, rid),
        )
    db.close()
    (store.run_dir(rid) / "log.txt").write_text(("z" * 900_000 + "\n") * 30 + "last line\n")
    at = app()
    at.query_params["run"] = rid
    at.run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric] + [m.help or "" for m in at.metric]
    assert not [t for t in labels if evil in t], labels

    class _E:
        def __init__(self, value):
            self.value = value

    assert f"Best {evil}" in [shown(_E(m.label)) for m in at.metric]
    [console] = [c.value for c in at.code]
    assert len(console) < 31 * (CONSOLE_LINE_CHARS + 100)
    assert f"… [{900_000 - CONSOLE_LINE_CHARS:,} more characters]" in console
    assert console.endswith("last line")


def test_a_runs_folder_that_cannot_be_used_is_a_message_on_every_page(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ESLAB_RUNS_DIR", str(blocker / "runs"))
    monkeypatch.setenv("ESLAB_TRAIN_IN", "thread")
    st.cache_resource.clear()
    try:
        for name in (
            "app.py",
            "pages/1_Train.py",
            "pages/2_Runs.py",
            "pages/3_Compare.py",
            "pages/4_What_if.py",
        ):
            at = app(name)
            at.run()
            assert not at.exception, (name, at.exception)
            assert any("The runs folder cannot be used" in e.value for e in at.error), name
    finally:
        monkeypatch.setenv("ESLAB_RUNS_DIR", str(tmp_path / "runs"))  # for the fixture's clean-up
        st.cache_resource.clear()
