"""Quicker to the first point, in a real browser: the chart frames are ready before Start, and a Stop
shows "stopped by user" at once, then the test evaluation's progress, then the test metrics.

Nothing is timed: the order in which the page showed things is recorded by a MutationObserver in the
page itself (every DOM change is seen, however briefly it lasted).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import set_number, wait_connected
from .test_train_page import (
    FIRST_EPOCH_TIMEOUT,
    RUN_TIMEOUT,
    early_stopping_off,
    open_train,
    run_status,
    start_run,
    wait_loss_points,
    wait_summary,
)

pytestmark = pytest.mark.e2e

# Records, in the page, when each text first appeared and what else the page held at that moment.
_RECORDER_JS = """
(runPrefix) => {
  const seen = {};
  const docText = () => document.body.innerText;
  const check = () => {
    const text = docText();
    const header = [...document.querySelectorAll('[data-testid="stMarkdownContainer"]')]
      .map((e) => e.innerText).find((t) => t.includes(runPrefix)) || '';
    const now = performance.now();
    const facts = {
      stopped: header.includes(' · stopped by user · '),
      evaluating: text.includes('Evaluating the kept checkpoint on the test split'),
      test_metrics: text.includes('Test accuracy'),
    };
    for (const [name, on] of Object.entries(facts)) {
      if (on && !(name in seen)) seen[name] = {at: now, with: {...facts}};
    }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
  check();
  window.__firstSeen = seen;
}
"""

_MARK_FRAMES_JS = "() => { for (const f of document.querySelectorAll('iframe')) f.contentWindow.__mark = 1; }"
_LOSS_FRAME_MARKED_JS = """
() => [...document.querySelectorAll('iframe')].some((f) => {
  try {
    const plot = f.contentDocument.querySelector('.js-plotly-plot');
    const title = plot && plot.layout && plot.layout.title;
    const text = String((title && (title.text !== undefined ? title.text : title)) || '');
    return f.contentWindow.__mark === 1 && text.replace(/<[^>]*>/g, '').trim() === 'Loss';
  } catch (e) { return false; }
})
"""


def test_the_chart_frames_are_ready_before_start_and_the_run_draws_into_them(server, page: Page) -> None:
    """plotly.js loads in the chart frames while the user sets up the run, not after Start."""
    open_train(page, server.url + "/Train")
    expect(page.get_by_text("Start a run: its curves, console and downloads appear here.")).to_be_visible()
    # Both charts (loss, accuracy) in the one frame, which loads plotly.js once.
    page.wait_for_function("() => document.querySelectorAll('iframe').length >= 1", timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].every((f) => { try {"
        " return f.contentDocument.querySelectorAll('.js-plotly-plot').length === 2; }"
        " catch (e) { return false; } })",
        timeout=60_000,
    )
    assert page.locator("iframe").count() == 1
    page.evaluate(_MARK_FRAMES_JS)
    set_number(page, "Max epochs", 3)
    run_id = start_run(page)
    wait_loss_points(page, server, run_id, 1, FIRST_EPOCH_TIMEOUT)
    assert page.evaluate(_LOSS_FRAME_MARKED_JS), "the run's loss chart is not in a frame drawn before Start"
    wait_summary(page, server, run_id)


def test_a_stop_shows_stopped_then_the_evaluation_then_the_test_metrics(server, page: Page) -> None:
    open_train(page, server.url + "/Train")
    early_stopping_off(page)
    set_number(page, "Max epochs", 1000)
    run_id = start_run(page)
    wait_loss_points(page, server, run_id, 1, FIRST_EPOCH_TIMEOUT)
    page.evaluate(_RECORDER_JS, run_id[:8])

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=RUN_TIMEOUT)
    wait_summary(page, server, run_id)
    wait_connected(page)
    seen = page.evaluate("() => window.__firstSeen")

    assert "stopped" in seen and "evaluating" in seen and "test_metrics" in seen, seen
    # "stopped by user" came first, while the page had no test metrics yet ...
    assert seen["stopped"]["with"]["test_metrics"] is False, seen
    # ... with the evaluation's progress, which also came before the test metrics.
    assert seen["evaluating"]["with"]["test_metrics"] is False, seen
    assert seen["stopped"]["at"] <= seen["evaluating"]["at"] < seen["test_metrics"]["at"], seen
    assert run_status(server, run_id) == "stopped"
    expect(page.get_by_text("Evaluating the kept checkpoint on the test split")).to_have_count(0)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_have_count(0)
