"""The Streamlit chat through streamlit.testing's AppTest, against a real store in tmp_path."""

from __future__ import annotations

import re
import time
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.config import Settings
from tests.conftest import Site

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(settings.corpus_dir))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()  # first start on an empty store ingests the corpus
    assert not at.exception
    return at


def plain(markdown: str) -> str:
    """Markdown source with backslash escapes removed: the text a reader sees."""
    return re.sub(r"\\(.)", r"\1", markdown)


def indexed(at: AppTest, seconds: float = 120) -> AppTest:
    """Rerun the page until this session's uploads are indexed (the worker embeds them in the
    background; the page polls it once a second in the browser, and here on each run)."""
    deadline = time.monotonic() + seconds
    while any("Indexing" in p.text for p in at.sidebar.get("progress")) or not at.sidebar.success:
        assert time.monotonic() < deadline, "the upload was not indexed in time"
        time.sleep(0.2)
        at.run()
    return at


def assistant_messages(at: AppTest) -> list:
    return [m for m in at.chat_message if m.name == "assistant"]


def source_headings(message) -> list[str]:  # noqa: ANN001 - an AppTest ChatMessage
    """Each source's heading under an answer ("[n] title" and its date and outlet), as read."""
    return [plain(md.value) for md in message.markdown if plain(md.value).startswith("**[")]


def passages(message) -> list:  # noqa: ANN001
    return [e for e in message.expander if e.label == "The passage around it"]


def test_sidebar_shows_the_corpus(app: AppTest) -> None:
    metrics = {m.label: m.value for m in app.sidebar.metric}
    assert metrics["Documents"] == "4"
    assert int(metrics["Chunks"]) > 4


def test_answer_with_cited_passage_and_history_kept(app: AppTest) -> None:
    app.chat_input[0].set_value("How many troops did NIS report?").run()
    assert not app.exception
    [answer] = assistant_messages(app)
    shown = " ".join(md.value for md in answer.markdown)
    assert "1,500" in shown
    assert "[\\[1\\]](#answer-1-source-1)" in shown  # the marker links to its source
    assert source_headings(answer)[0].startswith("**[1] The Secret Weapon of Russia: Will North Korean Soldiers Fight?")
    assert any(
        md.value.startswith(":orange-background[South Korea’s National Intelligence Service") for md in answer.markdown
    )
    passage = " ".join(md.value for md in passages(answer)[0].markdown)
    assert ":orange-background[**South Korea’s National Intelligence Service \\(NIS\\) announced" in passage

    app.chat_input[0].set_value("What is the maximum range of ATACMS?").run()
    assert not app.exception
    users = [m for m in app.chat_message if m.name == "user"]
    assert [u.markdown[0].value for u in users] == [
        "How many troops did NIS report?",
        "What is the maximum range of ATACMS?",
    ]
    first, second = assistant_messages(app)
    assert "1,500" in " ".join(md.value for md in first.markdown)
    assert "190 miles" in " ".join(md.value for md in second.markdown)


def test_refusal_is_shown_plainly(app: AppTest) -> None:
    app.chat_input[0].set_value("Who won the 2018 FIFA World Cup?").run()
    [answer] = assistant_messages(app)
    assert "could not find an answer" in answer.markdown[0].value
    assert len(answer.expander) == 0


def test_upload_adds_a_document_and_rejects_a_bad_one(app: AppTest, settings: Settings) -> None:
    good = b"---\ntitle: Drone report\n---\nThe drone report says 77 drones crossed the border on Tuesday.\n"
    app.sidebar.file_uploader[0].set_value(
        [("../../drones.md", good, "text/markdown"), ("empty.txt", b"", "text/plain")]
    )
    app.sidebar.button(key="add_uploads").click().run()
    assert not app.exception
    errors = [e.value for e in app.sidebar.error]
    assert any(plain(e).startswith("empty.txt") and "is empty" in e for e in errors)
    indexed(app)
    assert any("1 documents embedded" in plain(s.value) for s in app.sidebar.success)
    saved = [p.name for p in settings.corpus_dir.iterdir() if p.name.startswith("drones-")]
    assert len(saved) == 1 and not (settings.corpus_dir.parent.parent / "drones.md").exists()
    app.chat_input[0].set_value("How many drones crossed the border?").run()
    assert "77 drones" in " ".join(md.value for md in assistant_messages(app)[0].markdown)


def test_a_republished_story_is_shown_as_one_story_in_the_list_and_in_the_citations(
    app: AppTest, settings: Settings
) -> None:
    original = settings.corpus_dir / "2024-11-04-pentagon-says-10k-north-korean-troops-in-kursk-oblast.md"
    body = original.read_text().split("---\n", 2)[2]
    copy = f"---\ntitle: Pentagon puts North Korean troops in Kursk at 10,000\nsource: Wire\npublished: 2024-11-05\n---\nWASHINGTON (Wire) — {body}"
    app.sidebar.file_uploader[0].set_value([("wire-copy.md", copy.encode(), "text/markdown")])
    app.sidebar.button(key="add_uploads").click().run()
    assert not app.exception
    indexed(app)
    listed = " ".join(plain(md.value) for md in app.sidebar.expander[0].markdown)
    assert "same story also in: Wire 2024-11-05" in listed
    assert "same story also in: DOD News (U.S. Department of Defense) 2024-11-04" in listed

    app.chat_input[0].set_value("How many North Korean troops are in Kursk Oblast, according to the Pentagon?").run()
    assert not app.exception
    [answer] = assistant_messages(app)
    captions = " ".join(plain(c.value) for c in answer.caption)
    assert "Also published in: " in captions  # one source, with where else the story appeared


def test_document_text_and_metadata_are_escaped_not_rendered(app: AppTest, settings: Settings) -> None:
    hostile = (
        b"---\ntitle: 'Dam ![t](https://tracker.example/p.png) [click](https://evil.example)'\n"
        b"url: 'https://e.example/a) [x](https://evil.example'\n---\n"
        b"The <b>council</b> approved *12 bridges* in [town](http://evil.example) today.\n"
    )
    app.sidebar.file_uploader[0].set_value([("markup.md", hostile, "text/markdown"), ("[x](y).txt", b"", "text/plain")])
    app.sidebar.button(key="add_uploads").click().run()
    assert app.sidebar.error[0].value.startswith("\\[x\\]\\(y\\).txt\\: is empty")
    indexed(app)
    app.chat_input[0].set_value("How many bridges did the council approve?").run()
    [answer] = assistant_messages(app)
    shown = " ".join(md.value for md in answer.markdown)
    assert "\\<b\\>council\\</b\\>" in shown and "\\*12 bridges\\*" in shown and "\\[town\\]" in shown
    heading = next(md.value for md in answer.markdown if md.value.startswith("**\\[1\\]"))
    assert "!\\[t\\]\\(https" in heading and "\\[click\\]\\(https" in heading, "no image, no link"
    link = next(md.value for md in passages(answer)[0].markdown if md.value.startswith("[Open the original]"))
    assert link == "[Open the original](https://e.example/a%29%20%5Bx%5D%28https://evil.example)"


def test_a_blank_question_is_ignored(app: AppTest) -> None:
    app.chat_input[0].set_value("   ").run()
    assert not app.exception
    assert len(app.chat_message) == 0


def test_a_store_built_differently_is_a_clear_message(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITELINE_CHUNK_MAX_CHARS", "300")
    fresh = AppTest.from_file(APP, default_timeout=120)
    fresh.run()
    assert not fresh.exception
    assert "--rebuild" in plain(fresh.error[0].value)


def test_a_follow_up_shows_the_standalone_query_it_searched_for(app: AppTest) -> None:
    app.chat_input[0].set_value("How many troops did NIS report?").run()
    app.chat_input[0].set_value("What about the later South Korean intelligence briefing?").run()
    assert not app.exception
    first, second = assistant_messages(app)
    assert not [e for e in first.expander if e.label == "Searched for"]
    [searched] = [e for e in second.expander if e.label == "Searched for"]
    assert plain(searched.markdown[0].value) == (
        "How many troops did NIS report? the later South Korean intelligence briefing"
    )
    assert "3,000" in " ".join(md.value for md in second.markdown)


def test_sidebar_filters_limit_what_the_answer_cites(app: AppTest) -> None:
    dod = "DOD News (U.S. Department of Defense)"
    assert dod in app.sidebar.multiselect(key="filter_sources").options
    app.sidebar.multiselect(key="filter_sources").select(dod).run()
    app.chat_input[0].set_value("How many North Korean troops are in Kursk?").run()
    assert not app.exception
    [answer] = assistant_messages(app)
    headings = source_headings(answer)
    assert headings and all(dod in heading for heading in headings)

    from datetime import date

    app.sidebar.multiselect(key="filter_sources").unselect(dod)
    app.sidebar.date_input(key="filter_since").set_value(date(2024, 12, 1)).run()
    app.sidebar.date_input(key="filter_until").set_value(date(2024, 11, 1)).run()
    assert "The date range is empty" in " ".join(w.value for w in app.sidebar.warning)


def test_a_question_left_without_an_answer_is_marked_and_kept_out_of_the_conversation(app: AppTest) -> None:
    # What a rerun in the middle of a stream leaves behind: the question, and no half answer.
    app.session_state["messages"] = [{"role": "user", "content": "How many troops did NIS report?"}]
    app.run()
    assert any("No answer: it was interrupted" in c.value for c in app.caption)
    app.chat_input[0].set_value("What is the maximum range of ATACMS?").run()
    assert not app.exception
    roles = [m["role"] for m in app.session_state["messages"]]
    assert roles == ["user", "user", "assistant"]
    [answer] = assistant_messages(app)
    assert "190" in " ".join(md.value for md in answer.markdown)
    assert not answer.expander or all("Searched for" not in e.label for e in answer.expander)  # not a follow-up


def test_answers_stream_from_a_local_model_and_are_checked(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("CITELINE_LLM", "llamacpp")
    monkeypatch.setenv("CITELINE_LLM_MAX_TOKENS", "60")
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert any("Answers written by: llamacpp:SmolLM2" in plain(c.value) for c in at.caption)
    at.chat_input[0].set_value("How many troops did NIS report?").run()
    assert not at.exception
    [answer] = assistant_messages(at)
    shown = plain(" ".join(md.value for md in answer.markdown))
    assert "1,500" in shown and "3,000" in shown  # the model's answer or the extractive one, both figures
    stored = at.session_state["messages"][-1]["answer"]
    assert stored.backend.endswith("llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf") or "fallback" in stored.backend
    assert [c.n for c in stored.citations] and all(f"[{c.n}]" in stored.text for c in stored.citations)


def test_a_question_of_100000_characters_is_a_clear_message_not_a_search(app: AppTest) -> None:
    app.chat_input[0].set_value("troops " * 14_286).run()
    assert not app.exception
    assert "questions are limited to 4,000" in plain(app.error[0].value)
    assert app.session_state["messages"] == [] and not assistant_messages(app)


def test_the_as_of_date_hides_later_articles_and_the_answer_says_so(app: AppTest) -> None:
    app.sidebar.date_input(key="as_of").set_value(date(2024, 11, 10)).run()
    app.chat_input[0].set_value("How many North Korean troops are in Kursk?").run()
    assert not app.exception
    [answer] = assistant_messages(app)
    assert any(plain(i.value).startswith("As of 2024-11-10") for i in answer.info)
    shown = plain(" ".join(md.value for md in answer.markdown))
    assert "10,000" in shown
    headings = source_headings(answer)
    assert headings and all("2024-11-18" not in heading for heading in headings)  # not known yet


def test_a_question_about_change_gets_the_figures_in_date_order_and_a_chart(app: AppTest) -> None:
    app.chat_input[0].set_value("How has the estimate of North Korean troops in Russia changed?").run()
    assert not app.exception
    [answer] = assistant_messages(app)
    assert len(answer.get("vega_lite_chart")) == 1  # the figures over time
    stored = app.session_state["messages"][-1]["answer"]
    dates = [point.date for point in stored.timeline]
    assert len(dates) >= 3 and dates == sorted(dates) and len({point.source for point in stored.timeline}) >= 2
    shown = plain(" ".join(md.value for md in answer.markdown))
    assert shown.count("(latest)") == 1 and "2024-11-18 (latest)" in shown


def test_a_conversation_is_saved_reopened_in_another_session_renamed_and_deleted(app: AppTest) -> None:
    app.chat_input[0].set_value("How many troops did NIS report?").run()
    app.chat_input[0].set_value("What is the maximum range of ATACMS?").run()
    assert not app.exception
    conversation = app.session_state["conversation_id"]
    assert app.query_params["conversation"] == conversation  # in the page's URL: a reload reopens it
    assert [b.label for b in app.sidebar.button if b.key == f"open-{conversation}"] == [
        "How many troops did NIS report?"
    ]

    other = AppTest.from_file(APP, default_timeout=120)  # another browser session, opened at the same URL
    other.query_params["conversation"] = conversation
    other.run()
    first, second = assistant_messages(other)
    assert "1,500" in " ".join(md.value for md in first.markdown) and source_headings(first)
    assert "190 miles" in " ".join(md.value for md in second.markdown)
    other.sidebar.button(key="new_conversation").click().run()  # in that session only
    assert other.session_state["messages"] == [] and other.session_state["conversation_id"] is None
    assert len(assistant_messages(app.run())) == 2

    app.sidebar.text_input(key=f"title-{conversation}").input("NIS and ATACMS").run()
    assert [b.label for b in app.sidebar.button if b.key == f"open-{conversation}"] == ["NIS and ATACMS"]
    downloads = app.sidebar.get("download_button")
    assert len(downloads) == 2
    next(b for b in app.sidebar.button if b.label == "Delete").click().run()
    assert not [b for b in app.sidebar.button if b.key == f"open-{conversation}"]
    assert app.session_state["messages"] == [] and not assistant_messages(app)


def test_a_turn_after_another_session_deleted_the_conversation_starts_a_new_one(
    app: AppTest, settings: Settings
) -> None:
    from rag.saved_conversations import ConversationLog

    app.chat_input[0].set_value("How many troops did NIS report?").run()
    first = app.session_state["conversation_id"]
    ConversationLog(settings.store_dir / "conversations.sqlite3").delete(first)  # as another session would
    app.chat_input[0].set_value("What is the maximum range of ATACMS?").run()
    assert not app.exception
    second = app.session_state["conversation_id"]
    assert second != first
    [turn] = ConversationLog(settings.store_dir / "conversations.sqlite3").turns(second)
    assert turn.question == "What is the maximum range of ATACMS?" and "190 miles" in turn.answer["answer"]


def test_an_unusable_conversations_file_is_said_and_the_chat_still_answers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = settings.store_dir.parent / "notes.sqlite3"
    broken.write_text("not a database")
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("CITELINE_CONVERSATIONS_PATH", str(broken))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert "notes.sqlite3: the saved conversations cannot be used" in plain(at.sidebar.error[0].value)
    at.chat_input[0].set_value("How many troops did NIS report?").run()
    assert not at.exception and "1,500" in " ".join(md.value for md in assistant_messages(at)[0].markdown)
    assert broken.read_text() == "not a database"


@pytest.fixture
def web_app(settings: Settings, site: Site, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The chat over the shipped corpus, allowed to fetch from the test site on 127.0.0.1."""
    monkeypatch.setenv("CITELINE_FETCH_ALLOW_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(settings.corpus_dir))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def _web_page(title: str, published: str, lead: str) -> str:
    return (
        f"<html><head><title>{title}</title><meta property='article:published_time' content='{published}'></head>"
        f"<body><article><h1>{title}</h1><p>{lead}, officials said on Monday in the capital.</p>"
        "<p>The figures are to be published again in a detailed report next month.</p></article></body></html>"
    )


def test_an_article_is_added_by_url_from_the_sidebar_and_a_refused_one_is_said(web_app: AppTest, site: Site) -> None:
    url = site.serve("/story.html", _web_page("Grain deal signed", "2024-11-20", "Ships carried 40 tonnes of grain"))
    web_app.sidebar.text_input(key="add_url_text").set_value(url)
    web_app.sidebar.button(key="add_url").click().run()
    assert not web_app.exception
    assert any(f"{url}: 1 documents embedded" in plain(s.value) for s in web_app.sidebar.success)
    assert {m.label: m.value for m in web_app.sidebar.metric}["Documents"] == "5"
    web_app.sidebar.text_input(key="add_url_text").set_value("http://169.254.169.254/latest/meta-data/")
    web_app.sidebar.button(key="add_url").click().run()
    errors = [plain(e.value) for e in web_app.sidebar.error]
    assert any("169.254.169.254 is a cloud metadata address" in e for e in errors), errors
    assert {m.label: m.value for m in web_app.sidebar.metric}["Documents"] == "5"


def test_a_feed_is_followed_listed_and_refreshed_from_the_sidebar(web_app: AppTest, site: Site) -> None:
    page = site.serve("/grain.html", _web_page("Grain deal signed", "2024-11-20", "Ships carried 40 tonnes of grain"))
    feed = site.serve(
        "/feed.xml",
        f"<rss version='2.0'><channel><title>Test Wire</title><item><title>Grain deal signed</title><link>{page}</link>"
        "</item></channel></rss>",
        content_type="application/rss+xml",
        etag='"v1"',
    )
    web_app.sidebar.text_input(key="feed_url_text").set_value(feed)
    web_app.sidebar.button(key="add_feed").click().run()
    assert not web_app.exception
    listed = " ".join(plain(md.value) for md in web_app.sidebar.markdown)
    assert feed in listed and "last refresh: never" in listed
    web_app.sidebar.button(key="refresh_feeds").click().run()
    assert not web_app.exception
    assert any(f"{feed}: 1 documents embedded" in plain(s.value) for s in web_app.sidebar.success)
    listed = " ".join(plain(md.value) for md in web_app.sidebar.markdown)
    assert "Test Wire" in listed and "last refresh: never" not in listed
    assert {m.label: m.value for m in web_app.sidebar.metric}["Documents"] == "5"
    web_app.chat_input[0].set_value("How many tonnes of grain did the ships carry?").run()
    answer = assistant_messages(web_app)[0]
    assert "40 tonnes" in " ".join(md.value for md in answer.markdown)
    assert source_headings(answer)[0].startswith("**[1] Grain deal signed**")
    assert f"[Open the original]({page})" in [md.value for md in passages(answer)[0].markdown]
