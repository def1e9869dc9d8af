"""Feeds and articles by URL, end to end: a real HTTP server on 127.0.0.1 that counts requests
(allowed through CITELINE_FETCH_ALLOW_HOSTS), the CLI's main(), the real model and a real Chroma
store in tmp_path. The pure parts (feed parsing, the feed list file) are tested without either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.__main__ import main
from rag.config import Settings
from rag.feeds import Feed, FeedError, FeedList, parse_feed, plain_text
from rag.pipeline import Assistant
from rag.store_records import StoredDocument
from rag.web_articles import url_doc_id
from tests.conftest import ROOT, Site

STORIES = {
    "a1": ("Drought cuts the wheat harvest", "2024-10-02", "The farm ministry said the wheat harvest fell by a third"),
    "a2": (
        "Port strike ends after nine days",
        "2024-10-05",
        "Dock workers voted to accept a pay rise of eleven percent",
    ),
    "a3": ("City opens its first metro line", "2024-10-09", "The new line links the airport with the old town center"),
    "a4": ("Heat wave breaks records in June", "2024-10-12", "Forecasters recorded forty two degrees in the capital"),
}


PUBLISHED = "Wed, 02 Oct 2024 08:00:00 GMT"


def article_page(title: str, published: str, lead: str) -> str:
    """An article page whose date is in its metadata only (article:published_time)."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta property="article:published_time" content="{published}T08:00:00Z">
<meta property="og:site_name" content="Loopback Herald"></head>
<body><nav><a href="/">Home</a></nav><article><h1>{title}</h1>
<p>{lead}, according to figures released on Tuesday by the authorities.</p>
<p>Analysts expect the consequences to be felt for several months across the whole region.</p>
</article></body></html>"""


def rss(site: Site, names: list[str], updated: dict[str, str] | None = None) -> str:
    items = "".join(
        f"""<item><title>{STORIES[name][0]}</title><link>{site.url(f"/news/{name}.html")}</link>
<guid>{site.url(f"/news/{name}.html")}</guid><pubDate>{(updated or {}).get(name, PUBLISHED)}</pubDate>
<description>{STORIES[name][2]}, the feed's summary says in a few words here.</description></item>"""
        for name in names
    )
    return f"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Loopback Herald</title>
<link>{site.base}/</link><description>News</description>{items}</channel></rss>"""


def serve_feed(site: Site, names: list[str], version: str, updated: dict[str, str] | None = None) -> str:
    return site.serve(
        "/feed.xml",
        rss(site, names, updated),
        content_type="application/rss+xml",
        etag=f'"{version}"',
        last_modified="Wed, 09 Oct 2024 10:00:00 GMT",
    )


def serve_articles(site: Site, names: list[str]) -> None:
    for name in names:
        site.serve(f"/news/{name}.html", article_page(*STORIES[name]))


@pytest.fixture
def web_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """CLI settings over an empty corpus and a fresh store, the test site on 127.0.0.1 allowed."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    monkeypatch.setenv("CITELINE_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("CITELINE_FETCH_ALLOW_HOSTS", '["127.0.0.1"]')
    return Settings()


def stored(settings: Settings) -> dict[str, StoredDocument]:
    return {document.url: document for document in Assistant.from_settings(settings).documents()}


def page_hits(site: Site) -> int:
    return sum(count for path, count in site.hits.items() if path.startswith("/news/"))


def test_feeds_refresh_incrementally_with_conditional_gets(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_articles(site, ["a1", "a2", "a3"])
    feed = serve_feed(site, ["a1", "a2", "a3"], "v1")
    assert main(["feeds", "add", feed]) == 0
    assert main(["feeds", "refresh"]) == 0
    assert "3 pages fetched" in capsys.readouterr().out

    documents = stored(web_env)
    assert len(documents) == 3
    for name in ("a1", "a2", "a3"):
        document = documents[site.url(f"/news/{name}.html")]
        title, published, _ = STORIES[name]
        assert (document.title, document.published, document.source) == (title, published, "Loopback Herald")
        assert document.doc_id == url_doc_id(site.url(f"/news/{name}.html"))
    assert page_hits(site) == 3 and site.hits["/feed.xml"] == 1

    # Second refresh: one conditional GET of the feed, answered 304; no page is fetched.
    assert main(["feeds", "refresh", feed]) == 0
    assert "not changed since the last refresh (HTTP 304)" in capsys.readouterr().out
    assert site.hits["/feed.xml"] == 2 and site.conditional["/feed.xml"] == 1 and page_hits(site) == 3

    # A fourth entry: the feed is read again and only the new page is fetched.
    serve_articles(site, ["a4"])
    serve_feed(site, ["a4", "a1", "a2", "a3"], "v2")
    assert main(["feeds", "refresh"]) == 0
    assert "4 entries, 3 already stored, 1 pages fetched" in capsys.readouterr().out
    assert site.hits["/news/a4.html"] == 1 and page_hits(site) == 4
    assert len(stored(web_env)) == 4

    # An updated article (its entry's date changed): only it is fetched, and its document replaced.
    site.serve(
        "/news/a2.html",
        article_page(
            STORIES["a2"][0], "2024-10-06", "Dock workers voted again and rejected the pay rise of eleven percent"
        ),
    )
    serve_feed(site, ["a4", "a1", "a2", "a3"], "v3", {"a2": "Sun, 06 Oct 2024 09:00:00 GMT"})
    assert main(["feeds", "refresh"]) == 0
    assert "1 pages fetched" in capsys.readouterr().out
    assert site.hits["/news/a2.html"] == 2 and page_hits(site) == 5
    documents = stored(web_env)
    assert len(documents) == 4
    replaced = documents[site.url("/news/a2.html")]
    assert replaced.published == "2024-10-06"
    chunks = Assistant.from_settings(web_env).store.stored_records({"doc_id": replaced.doc_id})
    assert "rejected the pay rise" in " ".join(text for text, _ in chunks.values())
    assert "voted to accept" not in " ".join(text for text, _ in chunks.values())

    assert main(["feeds", "list"]) == 0
    listed = capsys.readouterr().out
    assert feed in listed and "Loopback Herald" in listed and "4 entries stored" in listed


def test_an_article_by_url_is_one_document_and_a_changed_page_replaces_it(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    url = site.serve("/news/a1.html", article_page(*STORIES["a1"]))
    assert main(["ingest", url, url + "?utm_source=newsletter#top"]) == 0
    assert capsys.readouterr().out.startswith("2 URLs: 1 documents embedded (1 new")
    assert main(["ingest", url]) == 0
    assert "1 unchanged" in capsys.readouterr().out
    site.serve("/news/a1.html", article_page(STORIES["a1"][0], "2024-10-03", "The ministry now says it fell by half"))
    assert main(["ingest", url]) == 0
    assert "(0 new, 1 changed" in capsys.readouterr().out
    (document,) = stored(web_env).values()
    assert document.published == "2024-10-03" and document.url == url


def test_a_page_that_fails_falls_back_to_the_entry_text_and_says_so(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_articles(site, ["a1"])  # a2's page is missing: 404
    feed = serve_feed(site, ["a1", "a2"], "v1")
    assert main(["feeds", "add", feed]) == 0
    assert main(["feeds", "refresh"]) == 0
    captured = capsys.readouterr()
    assert "1 stored from the feed's own text" in captured.out
    assert f"{site.url('/news/a2.html')}: the page could not be fetched (the server answered HTTP 404" in captured.err
    document = stored(web_env)[site.url("/news/a2.html")]
    chunks = Assistant.from_settings(web_env).store.collection.get(where={"doc_id": document.doc_id})
    assert chunks["metadatas"] and str(chunks["metadatas"][0]["origin"]).startswith("feed entry: the page could not")


def test_without_the_allowlist_a_loopback_url_is_refused_by_the_cli(tmp_path: Path, site: Site) -> None:
    url = site.serve("/a.html", article_page(*STORIES["a1"]))
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("CITELINE_")},
        "CITELINE_STORE_DIR": str(tmp_path / "store"),
        "CITELINE_CORPUS_DIR": str(tmp_path / "corpus"),
    }
    expected = {
        url: "refused: 127.0.0.1 is a loopback address",
        "file:///etc/passwd": "refused: 'file:' is not fetched, only http:// and https:// addresses",
        "http://169.254.169.254/": "refused: 169.254.169.254 is a cloud metadata address",
    }
    for target, message in expected.items():
        done = subprocess.run(
            [sys.executable, "-m", "rag", "ingest", target], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 2, done.stderr
        assert f"error: {target}: {message}" in done.stderr
        assert "CITELINE_FETCH_ALLOW_HOSTS" in done.stderr or target.startswith("file:")
    assert site.total() == 0
    assert not (tmp_path / "store").exists(), "refused before the store was opened"


def test_a_malformed_feed_or_one_without_links_is_named_and_nothing_is_touched(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_articles(site, ["a1"])
    good = serve_feed(site, ["a1"], "v1")
    assert main(["feeds", "add", good]) == 0 and main(["feeds", "refresh"]) == 0
    before = stored(web_env)
    broken = site.serve("/broken.xml", "<html><body><p>Not a feed at all", content_type="text/html")
    linkless = site.serve(
        "/nolinks.xml",
        "<rss version='2.0'><channel><title>T</title><item><title>One</title><description>Words</description></item>"
        "</channel></rss>",
        content_type="application/rss+xml",
    )
    capsys.readouterr()
    for url, message in (
        (broken, "is not a readable RSS or Atom feed"),
        (linkless, "none of its 1 entries has a link"),
    ):
        assert main(["feeds", "add", url]) == 0
        assert main(["feeds", "refresh", url]) == 1
        assert f"failed: {url}: {message}" in capsys.readouterr().err
    assert stored(web_env) == before
    assert {feed.url: bool(feed.last_error) for feed in FeedList(web_env.feeds_file).feeds()} == {
        good: False,
        broken: True,
        linkless: True,
    }


# ----- pure parts ------------------------------------------------------------------------------------


def test_parse_feed_reads_atom_entries_with_relative_links() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom News</title>
<entry><title>First</title><link href="/a/1"/><updated>2024-10-01T10:00:00Z</updated>
<content type="html">&lt;p&gt;One &amp;amp; two&lt;/p&gt;&lt;p&gt;Three&lt;/p&gt;</content></entry></feed>"""
    parsed = parse_feed("https://news.example/feed", atom, "application/atom+xml", "https://news.example/feed")
    assert parsed.title == "Atom News"
    (entry,) = parsed.entries
    assert entry.link == "https://news.example/a/1" and entry.updated == "2024-10-01T10:00:00Z"
    assert entry.text == "One & two\n\nThree"


def test_parse_feed_never_reads_a_file_named_by_the_body(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text("<rss version='2.0'><channel><item><link>http://x/</link></item></channel></rss>")
    with pytest.raises(FeedError, match="is not a readable RSS or Atom feed"):
        parse_feed("https://evil.example/feed", str(secret).encode())


def test_plain_text_keeps_paragraphs_and_drops_markup() -> None:
    assert plain_text("<p>A <b>bold</b> move.</p><p>Next&nbsp;one</p>") == "A bold move.\n\nNext one"


def test_the_feed_list_is_written_whole_and_read_back(tmp_path: Path) -> None:
    feeds = FeedList(tmp_path / "data" / "feeds.json")
    feeds.add("https://news.example/feed")
    with pytest.raises(Exception, match="followed already"):
        feeds.add("HTTPS://news.example/feed#x")
    feeds.update("https://news.example/feed", lambda feed: setattr(feed, "etag", '"v1"'))
    assert feeds.feeds() == [Feed("https://news.example/feed", etag='"v1"')]
    assert json.loads((tmp_path / "data" / "feeds.json").read_text())["feeds"][0]["etag"] == '"v1"'
    assert [p.name for p in (tmp_path / "data").iterdir() if p.suffix == ".tmp"] == []
    assert feeds.remove("https://news.example/feed") and not feeds.remove("https://news.example/feed")
    assert feeds.feeds() == []


def test_a_refresh_goes_in_batches_and_an_interrupted_one_continues_where_it_stopped(
    web_env: Settings, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["a1", "a2", "a3", "a4"]
    serve_articles(site, names)
    feed = serve_feed(site, names, "v1")
    settings = web_env.model_copy(update={"feed_batch_size": 2})
    FeedList(settings.feeds_file).add(feed)
    assistant = Assistant.from_settings(settings)
    batches: list[int] = []
    real = Assistant.ingest_documents

    def interrupted(self: Assistant, documents: list[object], progress: object = None) -> object:
        batches.append(len(documents))
        if len(batches) == 2:
            raise KeyboardInterrupt  # the process stopped during the second batch
        return real(self, documents, progress)  # type: ignore[arg-type]

    monkeypatch.setattr(Assistant, "ingest_documents", interrupted)
    with pytest.raises(KeyboardInterrupt):
        assistant.feed_refresher().refresh()
    assert batches == [2, 2]
    (state,) = FeedList(settings.feeds_file).feeds()
    assert len(state.entries) == 2 and state.etag == "", "validators wait for a complete refresh"

    monkeypatch.setattr(Assistant, "ingest_documents", real)
    (report,) = assistant.feed_refresher().refresh()
    assert report.ok and report.already_stored == 2 and len(report.fetched) == 2
    assert site.conditional["/feed.xml"] == 0 and site.hits["/feed.xml"] == 2
    assert {name: site.hits[f"/news/{name}.html"] for name in names} == {"a1": 1, "a2": 1, "a3": 2, "a4": 2}
    assert len(assistant.documents()) == 4
    (state,) = FeedList(settings.feeds_file).feeds()
    assert state.etag == '"v1"' and len(state.entries) == 4 and state.last_error == ""


def test_a_story_republished_at_another_address_joins_its_story(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    first = site.serve("/news/a3.html", article_page(*STORIES["a3"]))
    copy = site.serve("/wire/a3.html", article_page(*STORIES["a3"]).replace("Loopback Herald", "Loopback Wire"))
    assert main(["ingest", first, copy]) == 0
    documents = stored(web_env)
    assert len(documents) == 2
    assert documents[first].story == documents[copy].story == documents[first].doc_id
    assert main(["list"]) == 0
    assert f"same story: {documents[first].doc_id}" in capsys.readouterr().out


def test_an_entry_without_a_link_is_skipped_with_a_warning_and_the_others_stored(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_articles(site, ["a1"])
    body = rss(site, ["a1"]).replace(
        "</channel>", "<item><title>Linkless note</title><description>x</description></item></channel>"
    )
    feed = site.serve("/feed.xml", body, content_type="application/rss+xml", etag='"v1"')
    assert main(["feeds", "add", feed]) == 0
    assert main(["feeds", "refresh"]) == 0
    captured = capsys.readouterr()
    assert "2 entries, 0 already stored, 1 pages fetched" in captured.out
    assert f"warning: {feed}: its entry 'Linkless note' has no link and was skipped" in captured.err
    assert len(stored(web_env)) == 1
    assert main(["feeds", "refresh"]) == 0  # nothing to retry: the next refresh is a conditional GET
    assert "HTTP 304" in capsys.readouterr().out


def test_an_article_already_stored_by_url_is_not_fetched_again_by_a_feed(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_articles(site, ["a1", "a2"])
    assert main(["ingest", site.url("/news/a1.html")]) == 0
    feed = serve_feed(site, ["a1", "a2"], "v1")
    assert main(["feeds", "add", feed]) == 0 and main(["feeds", "refresh"]) == 0
    assert "2 entries, 1 already stored, 1 pages fetched" in capsys.readouterr().out
    assert site.hits["/news/a1.html"] == 1 and site.hits["/news/a2.html"] == 1
    serve_feed(site, ["a2"], "v2")  # a1 leaves the feed: its state is forgotten, its document stays
    assert main(["feeds", "refresh"]) == 0
    (state,) = FeedList(web_env.feeds_file).feeds()
    assert list(state.entries) == [site.url("/news/a2.html")] and len(stored(web_env)) == 2
    serve_feed(site, ["a1", "a2"], "v3")  # and when it comes back, it is found stored by its URL
    assert main(["feeds", "refresh"]) == 0
    assert site.hits["/news/a1.html"] == 1 and page_hits(site) == 2


def test_feed_commands_refuse_and_explain_without_touching_the_list(
    web_env: Settings, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feeds", "refresh"]) == 1
    assert "no feeds are followed yet; add one with `python -m rag feeds add URL`" in capsys.readouterr().err
    assert not web_env.store_dir.exists(), "said before the store was opened"
    assert main(["feeds", "add", "http://169.254.169.254/feed.xml"]) == 2
    assert "refused: 169.254.169.254 is a cloud metadata address" in capsys.readouterr().err
    assert main(["feeds", "add", "file:///etc/passwd"]) == 2
    assert "'file:' is not fetched" in capsys.readouterr().err
    feed = site.url("/feed.xml")
    assert main(["feeds", "add", feed]) == 0
    assert main(["feeds", "add", feed + "#again"]) == 2
    assert "this feed is followed already" in capsys.readouterr().err
    assert main(["feeds", "refresh", site.url("/other.xml")]) == 2
    assert "this feed is not followed; add it first" in capsys.readouterr().err
    assert main(["feeds", "remove", site.url("/other.xml")]) == 1
    assert [state.url for state in FeedList(web_env.feeds_file).feeds()] == [feed]
    assert main(["feeds", "remove", feed]) == 0
    assert "its articles stay stored" in capsys.readouterr().out
    assert FeedList(web_env.feeds_file).feeds() == [] and site.total() == 0
