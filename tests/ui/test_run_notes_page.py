"""Tags and a note on the Runs page (AppTest): saved exactly, shown in the table, searchable, refused
by field when they cannot be stored, and a crafted notes.json reported without a traceback."""

from __future__ import annotations

import pytest

from core.presets import PRESETS
from core.store import notes
from tests.ui.test_pages import app, shown

pytestmark = pytest.mark.usefixtures("thread_server")


def _two_runs():
    from ui.state import get_trainer

    trainer = get_trainer()
    ids = []
    for name in ("alpha", "beta"):
        cfg = PRESETS["quick_digits"].make()
        cfg.name, cfg.fit.max_epochs = name, 2
        ids.append(trainer.wait(trainer.start(cfg).id, timeout=180).id)
    return trainer, ids


def _table(at):
    [frame] = [d.value for d in at.dataframe]
    return frame


def test_tags_and_a_note_are_saved_shown_and_searched():
    trainer, (alpha, beta) = _two_runs()
    at = app("pages/2_Runs.py").run()
    at.multiselect(key="runs_selected").select(alpha).run()
    at.text_input(key=f"tags_{alpha}").set_value("baseline, lr 3e-3")
    at.text_area(key=f"note_{alpha}").set_value("First try.\n**Not** Markdown: <b>as typed</b>")
    at.button(key="runs_save_notes").click().run()
    assert not at.exception
    assert any(shown(s) == "Saved the tags and the note." for s in at.success)
    saved = notes.read(trainer.store.run_dir(alpha))
    assert saved == notes.RunNotes(("baseline", "lr 3e-3"), "First try.\n**Not** Markdown: <b>as typed</b>")
    table = _table(at).set_index("name")
    assert table.loc["alpha", "tags"] == "baseline, lr 3e-3" and table.loc["beta", "tags"] == ""

    at.text_input(key="runs_query").set_value("BASELINE").run()  # a tag, any case
    assert list(_table(at)["name"]) == ["alpha"]
    at.text_input(key="runs_query").set_value("as typed").run()  # the note
    assert list(_table(at)["name"]) == ["alpha"]
    at.text_input(key="runs_query").set_value("beta").run()  # the name, as before
    assert list(_table(at)["name"]) == ["beta"]


def test_tags_that_cannot_be_stored_are_refused_by_field_and_nothing_changes():
    trainer, (alpha, _) = _two_runs()
    at = app("pages/2_Runs.py").run()
    at.multiselect(key="runs_selected").select(alpha).run()
    at.text_input(key=f"tags_{alpha}").set_value("a,,b")
    at.button(key="runs_save_notes").click().run()
    errors = [shown(e) for e in at.error]
    assert any(e.startswith("Not saved: tags[1]: a tag cannot be empty") for e in errors), errors
    assert not (trainer.store.run_dir(alpha) / notes.FILE).exists()


def test_a_crafted_notes_file_is_reported_and_the_page_still_works():
    trainer, (alpha, _) = _two_runs()
    (trainer.store.run_dir(alpha) / notes.FILE).write_text('{"tags": ["x"], "note": "", "evil": true}')
    at = app("pages/2_Runs.py").run()
    assert not at.exception
    at.multiselect(key="runs_selected").select(alpha).run()
    assert not at.exception
    assert any(
        "notes cannot be read (notes.json must hold exactly tags and note)" in shown(w) for w in at.warning
    )
