"""The chat as a person uses it: `streamlit run app.py` on a loopback port, driven in the system's
Chromium by Playwright. Each step saves a screenshot under the test's tmp_path ("screenshots"),
and also under $SCREENSHOTS_DIR when that is set (how the README's pictures are made)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from eval.app_server import ANSWERS, RunningApp, ask, chromium, streamlit_app, wait_until_idle
from rag.saved_conversations import ConversationLog
from tests.conftest import SHIPPED_CORPUS

NIS_QUESTION = "How many troops did NIS report?"
TIMEOUT_MS = 120_000
expect.set_options(timeout=TIMEOUT_MS)  # the first page waits for the model to load


class Steps:
    """Screenshots of a test's steps, numbered in order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path))
        if os.environ.get("SCREENSHOTS_DIR"):
            shutil.copy(path, Path(os.environ["SCREENSHOTS_DIR"]) / f"{name}.png")
        return path


def site_env(root: Path) -> dict[str, str]:
    """A private corpus copy and store for one running app."""
    corpus = root / "corpus"
    if not corpus.exists():
        shutil.copytree(SHIPPED_CORPUS, corpus)
    return {"CITELINE_STORE_DIR": str(root / "store"), "CITELINE_CORPUS_DIR": str(corpus)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """One app server for the tests that need no restart (it indexes the corpus on first start)."""
    root = tmp_path_factory.mktemp("site")
    with streamlit_app(site_env(root), root / "streamlit.log") as app:
        yield app


def open_page(browser: Browser, url: str, downloads: bool = False) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=downloads)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_editable()
    wait_until_idle(page)
    return page


def answer(page: Page, n: int):  # noqa: ANN201 - a Playwright Locator
    return page.locator(ANSWERS).nth(n)


def scroll_main_to_bottom(page: Page) -> None:
    """Scroll the chat's own scrolling area (not the window) to its end."""
    page.evaluate(
        """() => { for (const e of document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stMain"]')) {
               if (e.scrollHeight > e.clientHeight + 10 && getComputedStyle(e).overflowY !== 'visible') {
                   e.scrollTop = e.scrollHeight; } } }"""
    )


def test_ask_follow_up_open_a_citation_reload_and_export(browser: Browser, site: RunningApp, tmp_path: Path) -> None:
    steps = Steps(tmp_path / "screenshots")
    page = open_page(browser, site.url, downloads=True)
    ask(page, NIS_QUESTION)
    first = answer(page, 0)
    expect(first).to_contain_text("1,500")
    expect(first.locator("li")).to_have_count(2)  # the differing figures render as a list
    steps.shot(page, "answer-with-sources")

    ask(page, "And according to the Pentagon?")
    expect(answer(page, 1)).to_contain_text("10,000")
    steps.shot(page, "follow-up")

    # [2] of the NIS answer leads to its source: the 3,000 sentence, highlighted.
    scroll_main_to_bottom(page)
    card = page.locator('[data-testid="stVerticalBlock"]:has(> * #answer-1-source-2)').last
    highlighted = card.locator("span", has_text="had sent 3,000 soldiers to Russia").first
    expect(highlighted).not_to_be_in_viewport()
    first.get_by_role("link", name="[2]").click()
    expect(card.get_by_text("[2] The Secret Weapon of Russia")).to_be_in_viewport()
    expect(highlighted).to_be_in_viewport()
    assert highlighted.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
    steps.shot(page, "citation-2-opened")

    # A reload keeps the conversation (its id is in the URL), and the sidebar lists it.
    page.reload()
    expect(page.locator(ANSWERS)).to_have_count(2)
    expect(answer(page, 0)).to_contain_text("1,500")
    expect(answer(page, 1)).to_contain_text("10,000")
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name=NIS_QUESTION)).to_be_visible()
    steps.shot(page, "conversation-list")

    # Export as Markdown: both answers and every cited sentence are in the file.
    page.get_by_test_id("stSidebar").get_by_text("This conversation").click()
    with page.expect_download() as download:
        page.get_by_test_id("stSidebar").get_by_role("button", name="Markdown").click()
    saved = tmp_path / "conversation.md"
    download.value.save_as(saved)
    markdown = " ".join(saved.read_text().split())
    log = ConversationLog(Path(site.env["CITELINE_STORE_DIR"]) / "conversations.sqlite3")
    conversation = parse_qs(urlsplit(page.url).query)["conversation"][0]
    turns = log.turns(conversation)
    assert [t.question for t in turns] == [NIS_QUESTION, "And according to the Pentagon?"]
    for turn in turns:
        assert " ".join(turn.answer["answer"].split()) in markdown
        for citation in turn.answer["citations"]:
            assert " ".join(citation["sentence"].split()) in markdown
    steps.shot(page, "exported")


def test_a_question_about_change_draws_its_figures_over_time(
    browser: Browser, site: RunningApp, tmp_path: Path
) -> None:
    steps = Steps(tmp_path / "screenshots")
    page = open_page(browser, site.url)
    ask(page, "How has the estimate of North Korean troops in Russia changed?")
    expect(answer(page, 0)).to_contain_text("(latest)")
    chart = answer(page, 0).get_by_test_id("stVegaLiteChart")
    expect(chart).to_be_visible()
    chart.scroll_into_view_if_needed()
    steps.shot(page, "timeline")


def test_an_uploaded_article_is_answered_and_a_source_filter_limits_the_citations(
    browser: Browser, site: RunningApp, tmp_path: Path
) -> None:
    steps = Steps(tmp_path / "screenshots")
    article = tmp_path / "drones.md"
    article.write_text(
        "---\ntitle: Drone report\nsource: Border Watch\npublished: 2024-11-20\n---\n"
        "The drone report says 77 drones crossed the border on Tuesday.\n"
    )
    page = open_page(browser, site.url)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(article))
    expect(sidebar.get_by_test_id("stFileChipName")).to_have_text("drones.md")
    expect(sidebar.get_by_test_id("stFileChipIconSpinner")).to_have_count(0)  # sent to the server
    sidebar.get_by_role("button", name="Add to corpus").click()
    expect(sidebar.get_by_text("1 documents embedded")).to_be_visible()
    steps.shot(page, "uploaded")
    ask(page, "How many drones crossed the border?")
    expect(answer(page, 0)).to_contain_text("77 drones")
    steps.shot(page, "asked-about-upload")

    sources_box = sidebar.get_by_test_id("stMultiSelect")
    # Scrolled to first: a scroll that lands after the click closes the list it opened.
    sources_box.scroll_into_view_if_needed()
    sources_box.click()
    page.get_by_role("option", name="DOD News (U.S. Department of Defense)", exact=True).click()
    page.keyboard.press("Escape")
    wait_until_idle(page)
    ask(page, "How many North Korean troops are in Kursk?")
    sources = answer(page, 1).locator('[data-testid="stMarkdownContainer"] strong', has_text="[")
    expect(sources.first).to_be_visible()
    headings = answer(page, 1).locator('[data-testid="stMarkdownContainer"]:has(strong)').all_inner_texts()
    cited = [h for h in headings if h.startswith("[")]
    assert cited and all("DOD News (U.S. Department of Defense)" in h for h in cited), cited
    steps.shot(page, "filtered-by-source")


def test_two_answers_come_back_after_the_app_restarts(browser: Browser, tmp_path: Path) -> None:
    steps = Steps(tmp_path / "screenshots")
    env = site_env(tmp_path)
    with streamlit_app(env, tmp_path / "first.log") as app:
        page = open_page(browser, app.url)
        ask(page, NIS_QUESTION)
        ask(page, "What is the maximum range of ATACMS?")
        expect(answer(page, 1)).to_contain_text("190 miles")
        before = [answer(page, i).inner_text() for i in range(2)]
        steps.shot(page, "before-restart")
        page.close()

    with streamlit_app(env, tmp_path / "second.log") as app:
        page = open_page(browser, app.url)  # a new visit: no conversation in the URL
        expect(page.locator(ANSWERS)).to_have_count(0)
        page.get_by_test_id("stSidebar").get_by_role("button", name=NIS_QUESTION).click()
        expect(page.locator(ANSWERS)).to_have_count(2)
        wait_until_idle(page)
        after = [answer(page, i).inner_text() for i in range(2)]
        assert after == before  # the same answers, sources and highlighted sentences
        steps.shot(page, "after-restart")
