"""Many sessions on one server, and private mode, against a real ``streamlit run`` server.

- Load: eight browser sessions (eight contexts, one server) each start a small digits run at once. A
  ninth session holds the single training slot with a long run while the eight are queued, so every
  queue place is shown deterministically (the default queue takes exactly eight waiting runs); then it
  is stopped and the eight train one after another. Each page must show its own place, its own run,
  its own summary and downloads, and nothing of the other runs.
- Private mode (``ESLAB_PRIVATE=1``): a session never lists, compares, replays, downloads or even
  receives (over its websocket) a run another session started, unless it holds that run's link.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from .conftest import early_stopping_off, new_context, run_id_of, set_number, wait_connected

pytestmark = pytest.mark.e2e

SESSIONS = 8  # the default ESLAB_MAX_QUEUE: all eight can wait behind one running run
EPOCHS = 4  # per load run: a digits epoch takes ~0.1 s, so each run is build + fit + test in seconds
RUN_URL = re.compile(r"[?&]run=[0-9a-f]{32}(&|$)")
QUEUE_TEXT = re.compile(r"Waiting in the queue: (next to start|position (\d+))\.")
ENDED = "Epochs trained"  # the first metric of a run's summary

START_TIMEOUT = 60_000  # click -> ?run=<id>, with nine sessions on two cores
FIRST_EPOCH_S = 120  # includes the server's first TensorFlow import
SUMMARY_TIMEOUT = 240_000  # per page, waited in queue order: covers that run and the queue draining

# The HTML of the page and of its same-origin iframes (the live charts), read in one go so that a
# chart remounting between two reads cannot make the text inconsistent.
_ALL_HTML_JS = """() => {
  const docs = [document];
  for (const f of document.querySelectorAll('iframe')) {
    try { if (f.contentDocument) docs.push(f.contentDocument); } catch (e) { /* cross-origin */ }
  }
  return docs.map((d) => d.documentElement.outerHTML).join('\\n');
}"""
_MEDIA_URLS_JS = """() => {
  const docs = [document];
  for (const f of document.querySelectorAll('iframe')) {
    try { if (f.contentDocument) docs.push(f.contentDocument); } catch (e) { /* cross-origin */ }
  }
  return docs.flatMap((d) => Array.from(d.querySelectorAll('[href*="/media/"], [src*="/media/"]'))
    .map((el) => el.getAttribute('href') || el.getAttribute('src')));
}"""


# ------------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def sessions(browser, request, tmp_path_factory):
    """Opens browser sessions (one context each) on demand; on failure screenshots every one of them."""
    opened: list[tuple[object, Page]] = []

    def open_session() -> Page:
        context = new_context(browser)
        opened.append((context, context.new_page()))
        return opened[-1][1]

    try:
        yield open_session
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed and opened:
            out = tmp_path_factory.mktemp("e2e-failure")
            for i, (_, pg) in enumerate(opened):
                try:
                    pg.screenshot(path=str(out / f"session{i}.png"))
                    print(f"\nsession {i}: {pg.url} -> {out / f'session{i}.png'}")
                except PlaywrightError as exc:
                    print(f"\nsession {i}: no screenshot ({exc})")
        for context, _ in opened:
            with contextlib.suppress(PlaywrightError):
                context.close()


def all_html(page: Page) -> str:
    for attempt in range(5):
        try:
            return page.evaluate(_ALL_HTML_JS)
        except PlaywrightError:  # the page was navigating or a frame went away: read it again
            if attempt == 4:
                raise
            page.wait_for_timeout(200)
    raise AssertionError("unreachable")


def index_rows(server) -> dict[str, dict]:
    """The store's index, read-only: {run id: row}."""
    db = server.runs_dir / "runs.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute(
            "SELECT id, name, status, created_at, started_at, finished_at, checkpoint_path FROM runs"
        ).fetchall()
    return {r["id"]: dict(r) for r in rows}


def run_log(server, run_id: str, lines: int = 15) -> str:
    try:
        text = (server.runs_dir / run_id / "log.txt").read_text(errors="replace")
    except OSError:
        return "(no log.txt yet)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def open_train(page: Page, url: str) -> None:
    page.goto(f"{url}/Train")
    wait_connected(page)
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


def set_text(page: Page, label: str, value: str) -> None:
    box = page.get_by_role("textbox", name=label, exact=True)
    box.fill(value)
    box.press("Enter")
    expect(box).to_have_value(value)
    wait_connected(page)


def prepare_run(page: Page, url: str, name: str, epochs: int) -> None:
    open_train(page, url)
    set_text(page, "Run name", name)
    set_number(page, "Max epochs", epochs)


def click_start(page: Page) -> None:
    wait_connected(page)  # the page has finished its run: what it shows is what the server holds
    page.get_by_role("button", name="Start training").click()


def wait_run_url(page: Page) -> str:
    expect(page).to_have_url(RUN_URL, timeout=START_TIMEOUT)
    run_id = run_id_of(page.url)
    assert run_id and re.fullmatch(r"[0-9a-f]{32}", run_id), page.url
    return run_id


def run_header(page: Page, run_id: str):
    """The live view's first line: '<name> · <status> · <id[:8]>'."""
    return page.get_by_test_id("stMarkdownContainer").filter(has=page.locator("code", has_text=run_id[:8]))


def expect_header(page: Page, run_id: str, name: str, status: str, timeout: float = 30_000) -> None:
    expect(run_header(page, run_id)).to_have_text(
        re.compile(rf"^{re.escape(name)} · {status} · {run_id[:8]}$"), timeout=timeout
    )


def wait_summary(page: Page, server, run_id: str, timeout: float = SUMMARY_TIMEOUT) -> None:
    try:
        expect(page.get_by_text(ENDED, exact=True)).to_be_visible(timeout=timeout)
    except AssertionError:
        pytest.fail(
            f"no summary for {run_id} within {timeout / 1000:.0f} s on {page.url}.\n"
            f"index: {index_rows(server).get(run_id)}\nits log:\n{run_log(server, run_id)}",
            pytrace=False,
        )
    expect(page.get_by_test_id("stException")).to_have_count(0)


def wait_first_epoch(server, run_id: str) -> None:
    history = server.runs_dir / run_id / "history.jsonl"
    deadline = time.monotonic() + FIRST_EPOCH_S
    while not (history.exists() and history.read_text().count("\n") >= 1):
        if time.monotonic() > deadline:
            log = run_log(server, run_id)
            pytest.fail(f"{run_id}: no epoch within {FIRST_EPOCH_S} s\n{log}", pytrace=False)
        time.sleep(0.2)


def queue_place(page: Page) -> int:
    """The place this page's queued run shows (1 = next to start)."""
    info = page.get_by_test_id("stAlert").filter(has_text="Waiting in the queue")
    expect(info).to_have_text(QUEUE_TEXT, timeout=START_TIMEOUT)
    match = QUEUE_TEXT.search(info.inner_text())
    return 1 if match.group(1) == "next to start" else int(match.group(2))


def summary_drawn(page: Page, server, run_id: str) -> None:
    """Waits for the summary's whole row of downloads (its last button is the Keras script).

    Known and not fixed (2026-12-07, one CI run of this test): under this load a page was left with its
    summary drawn only down to "History CSV" (the full rerun that draws it interrupted part-way, and
    nothing asked for another). A user would see the other buttons at their next click; here the page
    is reloaded once (its ?run= re-attaches it), saying so in the output, and must then be complete.
    """
    script = page.get_by_role("button", name="Keras script")
    try:
        expect(script).to_be_visible(timeout=30_000)
    except AssertionError:
        print(f"\n{run_id[:8]}: summary drawn only in part; reloading the page once")
        page.reload()
        wait_connected(page)
        wait_summary(page, server, run_id)
        expect(script).to_be_visible(timeout=30_000)


def download(page: Page, button: str, dest: Path) -> tuple[Path, str, str]:
    """Clicks a download button; returns (saved file, suggested file name, URL it was served from)."""
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=button).click()
    dl = info.value
    assert dl.failure() is None, dl.failure()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / dl.suggested_filename
    dl.save_as(path)
    return path, dl.suggested_filename, dl.url


def nav(page: Page, label: str, heading: str) -> None:
    """Moves to another page through the sidebar: the same Streamlit session (a reload starts a new one)."""
    links = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")
    links.filter(has=page.get_by_text(label, exact=True)).click()  # the label, not the icon's ligature
    wait_connected(page)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


def options_of(page: Page, label: str) -> list[str]:
    """The choices a selectbox / multiselect offers (its list is opened, read, and closed)."""
    page.get_by_label(label, exact=True).click()
    listbox = page.get_by_role("listbox")
    expect(listbox.first).to_be_visible()
    # Read once the list is filled: its options, or Streamlit's "No results" when it has none. Read
    # as soon as the list box appears, a loaded CI machine once gave [] for a list that had one run,
    # and an early empty read would also let the "nothing of A's here" checks pass unseen.
    options = page.get_by_role("option")
    expect(options.or_(listbox.get_by_text("No results", exact=True)).first).to_be_visible()
    texts = [t.strip() for t in options.all_inner_texts()]
    page.keyboard.press("Escape")
    expect(listbox).to_have_count(0)
    return texts


# ------------------------------------------------------------------------------------------------
# Load: eight sessions at once


@pytest.mark.slow
def test_eight_sessions_queue_finish_and_never_cross_talk(fresh_server, sessions, tmp_path) -> None:
    server = fresh_server
    t0 = time.monotonic()
    token = secrets.token_hex(3)
    names = [f"load{i}-{token}" for i in range(1, SESSIONS + 1)]
    blocker_name = f"blocker-{token}"

    pages = [sessions() for _ in names]
    for page, name in zip(pages, names):
        prepare_run(page, server.url, name, EPOCHS)
    t_ready = time.monotonic()

    # A ninth session takes the training slot with a run that would last for hours, so that all eight
    # load runs are still waiting when their places are read.
    blocker = sessions()
    prepare_run(blocker, server.url, blocker_name, 100_000)
    early_stopping_off(blocker)
    click_start(blocker)
    blocker_id = wait_run_url(blocker)
    expect_header(blocker, blocker_id, blocker_name, "running", timeout=START_TIMEOUT)

    # The eight starts, as fast as one thread can click.
    t_click = time.monotonic()
    for page in pages:
        click_start(page)
    t_clicked = time.monotonic()
    ids = [wait_run_url(page) for page in pages]
    assert len(set(ids) | {blocker_id}) == SESSIONS + 1, ids

    places = []
    for page, name, rid in zip(pages, names, ids):
        expect_header(page, rid, name, "queued", timeout=START_TIMEOUT)
        places.append(queue_place(page))
    rows = index_rows(server)
    assert rows[blocker_id]["status"] == "running", rows[blocker_id]  # the places were read behind it
    assert sorted(places) == list(range(1, SESSIONS + 1)), places
    # Each page's place is its run's place in the server's FIFO (the order the starts arrived in).
    by_creation = sorted(ids, key=lambda r: rows[r]["created_at"])
    assert [ids[places.index(p)] for p in range(1, SESSIONS + 1)] == by_creation, (places, ids)

    # No cross-talk while queued: a page holds its own name and id, and no other run's.
    everyone = dict(zip(ids, names)) | {blocker_id: blocker_name}
    for page, rid in zip(pages, ids):
        html = all_html(page)
        assert everyone[rid] in html and rid[:8] in html
        leaked = [n for r, n in everyone.items() if r != rid and (n in html or r[:8] in html)]
        assert not leaked, f"{page.url} shows other runs while queued: {leaked}"

    # The queue is full: a tenth start is refused with a message, and nothing is recorded.
    click_start(blocker)
    expect(blocker.get_by_test_id("stAlert").filter(has_text="runs are already waiting")).to_be_visible(
        timeout=START_TIMEOUT
    )
    assert run_id_of(blocker.url) == blocker_id
    assert len(index_rows(server)) == SESSIONS + 1

    # Let the queue drain: stop the blocker once it really trained (a stop during the first
    # TensorFlow import is not what this test is about).
    wait_first_epoch(server, blocker_id)
    blocker.get_by_role("button", name="Stop", exact=True).click()
    expect_header(blocker, blocker_id, blocker_name, "stopped by user", timeout=SUMMARY_TIMEOUT)
    t_drain = time.monotonic()

    order = sorted(range(SESSIONS), key=lambda i: places[i])
    for i in order:  # in queue order: each wait covers only the runs ahead of it
        wait_summary(pages[i], server, ids[i])
    t_done = time.monotonic()

    for page, name, rid in zip(pages, names, ids):
        expect_header(page, rid, name, "finished")
        assert run_id_of(page.url) == rid
        expect(page.get_by_label("Run name", exact=True)).to_have_value(name)  # its own form, too
        html = all_html(page)
        leaked = [n for r, n in everyone.items() if r != rid and (n in html or r[:8] in html)]
        assert not leaked, f"{page.url} shows other runs once finished: {leaked}"
        # Its downloads are its own run's: the checkpoint's bytes are that run's file on disk.
        summary_drawn(page, server, rid)
        ckpt, ckpt_name, _ = download(page, "Best checkpoint", tmp_path / rid)
        assert ckpt_name.startswith(f"{name}-best-epoch") and ckpt_name.endswith(".keras"), ckpt_name
        assert ckpt.read_bytes() == (server.runs_dir / rid / "checkpoint.keras").read_bytes()
        cfg, _, _ = download(page, "Config JSON", tmp_path / rid)
        assert json.loads(cfg.read_text())["name"] == name

    # The server's record: all eight finished, one at a time, first come first served.
    rows = index_rows(server)
    assert {r: rows[r]["status"] for r in ids} == dict.fromkeys(ids, "finished")
    assert {r: rows[r]["name"] for r in ids} == dict(zip(ids, names))
    assert sorted(ids, key=lambda r: rows[r]["started_at"]) == by_creation
    spans = [(rows[r]["started_at"], rows[r]["finished_at"]) for r in [blocker_id, *by_creation]]
    assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), spans
    assert rows[blocker_id]["status"] == "stopped"

    print(
        f"\n{SESSIONS} sessions: forms ready in {t_ready - t0:.1f} s; 8 starts clicked in "
        f"{t_clicked - t_click:.2f} s; queue drained (8 x {EPOCHS} epochs) in {t_done - t_drain:.1f} s; "
        f"training per run (s): {[round(e - s, 1) for s, e in spans[1:]]}; "
        f"whole test {time.monotonic() - t0:.1f} s"
    )


# ------------------------------------------------------------------------------------------------
# Private mode


@pytest.fixture
def private_server(monkeypatch, request):
    """A fresh server with ESLAB_PRIVATE=1 (set in the environment it inherits)."""
    monkeypatch.setenv("ESLAB_PRIVATE", "1")
    return request.getfixturevalue("fresh_server")


class Recorder:
    """Everything a session's browser received over its websockets and every URL it requested."""

    def __init__(self, page: Page):
        self.frames: list[bytes] = []
        self.urls: list[str] = []
        page.on("websocket", self._on_ws)
        page.on("request", lambda req: self.urls.append(req.url))

    def _on_ws(self, ws) -> None:
        ws.on("framereceived", lambda p: self.frames.append(p.encode() if isinstance(p, str) else p))

    def containing(self, needles: list[str]) -> list[str]:
        blob = b"\n".join(self.frames)
        found = [n for n in needles if n.encode() in blob]
        found += [f"request {u}" for u in self.urls if any(n in u for n in needles)]
        return found


@pytest.mark.slow
def test_private_mode_hides_other_sessions_runs_unless_given_the_link(
    private_server, sessions, tmp_path
) -> None:
    server = private_server
    t0 = time.monotonic()
    token = secrets.token_hex(3)
    a_name, b_name = f"alice-{token}", f"bob-{token}"

    # A trains a run and downloads its checkpoint: the server now serves it under a /media/ URL.
    a = sessions()
    prepare_run(a, server.url, a_name, EPOCHS)
    click_start(a)
    a_id = wait_run_url(a)
    wait_summary(a, server, a_id)
    expect_header(a, a_id, a_name, "finished")
    a_ckpt, _, a_media = download(a, "Best checkpoint", tmp_path / "a")
    assert "/media/" in a_media, a_media
    a_media_path = a_media.split("://", 1)[-1].split("/", 1)[-1]  # media/<file id>...
    secrets_of_a = [a_id, a_id[:8], a_name, a_media_path]

    # B, another session, trains its own run (so its lists are not merely empty).
    b = sessions()
    seen_by_b = Recorder(b)
    prepare_run(b, server.url, b_name, EPOCHS)
    click_start(b)
    b_id = wait_run_url(b)
    wait_summary(b, server, b_id)
    expect_header(b, b_id, b_name, "finished")
    b_label = f"{b_name} ({b_id[:6]})"

    def nothing_of_a_here() -> None:
        """B's page now: no trace of A's run in its HTML (frames included), no /media/ URL of A's."""
        assert not [x for x in secrets_of_a if x in all_html(b)], b.url
        assert all(a_media_path not in u for u in b.evaluate(_MEDIA_URLS_JS)), b.url

    nothing_of_a_here()
    # B's pages, in B's session (sidebar navigation): its run only.
    nav(b, "Runs", "Runs")
    assert options_of(b, "Select runs to act on") == [b_label]
    nothing_of_a_here()
    nav(b, "Home", "Early Stopping Lab")  # the home page's recent runs
    expect(b.get_by_test_id("stDataFrame")).to_be_visible()
    nothing_of_a_here()
    nav(b, "Compare", "Compare runs")
    expect(b.get_by_text("Pick two or more runs to compare.")).to_be_visible()
    assert not [o for o in options_of(b, "Runs") if a_name in o or a_id[:6] in o]
    nothing_of_a_here()
    nav(b, "What if", "What-if replay")
    recorded = options_of(b, "Recorded run")
    assert len(recorded) == 1 and recorded[0].startswith(b_label[:-1]), recorded
    expect(b.get_by_role("button", name=re.compile("Download the"))).to_have_count(0)
    nothing_of_a_here()
    nav(b, "Train", "Train")
    expect(b.get_by_role("button", name="Best checkpoint")).to_have_count(0)
    nothing_of_a_here()

    # Nothing of A's reached B's browser over its websocket either (the Runs grid is a canvas: its rows
    # arrive as Arrow bytes), and B never requested A's checkpoint or its /media/ URL.
    assert seen_by_b.containing([b_id, b_name]) == [b_id, b_name]  # the recorder does see runs
    assert not seen_by_b.containing(secrets_of_a), seen_by_b.containing(secrets_of_a)

    # Guessing: a mistyped or shortened id opens nothing, and gives nothing away.
    wrong = a_id[:-1] + ("0" if a_id[-1] != "0" else "1")
    for guess in (wrong, a_id[:8]):
        b.goto(f"{server.url}/Train?run={guess}")
        wait_connected(b)
        expect(b.get_by_text("That run does not exist (any more).", exact=False)).to_be_visible()
        expect(b.get_by_role("button", name="Best checkpoint")).to_have_count(0)
        nav(b, "Runs", "Runs")  # a new session (goto): nothing of A's listed there either
        nothing_of_a_here()
    # (The guesses' own URLs hold a prefix of A's id: look for the rest only.)
    assert not seen_by_b.containing([a_id, a_name, a_media_path]), seen_by_b.containing([a_id, a_name])

    # A's session lists A's run and not B's.
    nav(a, "Runs", "Runs")
    assert options_of(a, "Select runs to act on") == [f"{a_name} ({a_id[:6]})"]

    # Holding the link grants access (README: "the runs it started or holds the link of").
    b.goto(f"{server.url}/Train?run={a_id}")
    wait_connected(b)
    expect_header(b, a_id, a_name, "finished")
    wait_summary(b, server, a_id)
    got, _, _ = download(b, "Best checkpoint", tmp_path / "b")
    assert got.read_bytes() == a_ckpt.read_bytes()
    nav(b, "Runs", "Runs")
    assert f"{a_name} ({a_id[:6]})" in options_of(b, "Select runs to act on")
    print(f"\nprivate mode test: {time.monotonic() - t0:.1f} s")
