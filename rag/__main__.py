"""Command line: `python -m rag ingest|import|feeds|ask|chat|doctor|list|remove|serve`. Thin: parsing, printing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from rag.citations import byline
from rag.config import Settings
from rag.errors import CitelineError
from rag.store_records import copies_by_story

if TYPE_CHECKING:
    from rag.ingest import IngestReport
    from rag.pipeline import Assistant
    from rag.types import Answer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag", description="Citeline: cited answers over your articles.")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser(
        "ingest", help="add, update and sync files or folders (default: the corpus folder), or web pages by URL"
    )
    ingest.add_argument(
        "paths", nargs="*", help="files or folders (folders are synced), or http(s):// addresses of articles"
    )
    ingest.add_argument("--rebuild", action="store_true", help="drop the store and embed everything again")

    feeds = commands.add_parser("feeds", help="follow RSS/Atom feeds: add, list, remove, refresh")
    feed_commands = feeds.add_subparsers(dest="feeds_command", required=True)
    feed_commands.add_parser("add", help="follow a feed (then `feeds refresh` fetches it)").add_argument("url")
    feed_commands.add_parser("list", help="the followed feeds, with their last refresh")
    feed_commands.add_parser("remove", help="stop following a feed (its stored articles stay)").add_argument("url")
    feed_commands.add_parser(
        "refresh", help="fetch what is new in every followed feed (or in those given); incremental and resumable"
    ).add_argument("urls", nargs="*", metavar="url")

    bulk = commands.add_parser(
        "import", help="add the articles of a .jsonl file (id, title, url, published, source, text); resumable"
    )
    bulk.add_argument("file", type=Path, help="one JSON article per line")

    ask = commands.add_parser("ask", help="answer a question with numbered sources")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    _add_filters(ask)

    chat = commands.add_parser(
        "chat", help="one conversation: a question per line of standard input, follow-ups understood"
    )
    chat.add_argument("--json", action="store_true", help="print one JSON object per answer (with standalone_query)")
    _add_filters(chat)

    doctor = commands.add_parser(
        "doctor", help="check the corpus files against the store; --repair re-ingests what is off"
    )
    doctor.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the corpus folder)")
    doctor.add_argument("--repair", action="store_true", help="re-ingest to fix what the check finds")

    commands.add_parser("list", help="list the stored documents")

    remove = commands.add_parser("remove", help="remove a document from the store (its file is left alone)")
    remove.add_argument("doc_id")

    commands.add_parser(
        "serve",
        help="start the chat (`streamlit run app.py`), loading the model and indexes from the first moment; "
        "Streamlit's options are passed on (e.g. --server.port 8600)",
    )
    return parser


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; write it as YYYY-MM-DD, e.g. 2023-01-31") from None


def _add_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--source",
        action="append",
        metavar="NAME",
        help="search only documents from this source (repeat for several; `list` shows the sources)",
    )
    command.add_argument("--since", type=_iso_date, metavar="YYYY-MM-DD", help="only documents published on or after")
    command.add_argument("--until", type=_iso_date, metavar="YYYY-MM-DD", help="only documents published on or before")
    command.add_argument(
        "--as-of",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="answer as a reader on that day would: nothing published later (nor undated) is searched",
    )


def _with_filters(args: argparse.Namespace, settings: Settings) -> Settings:
    """Settings whose default search filter is the one given on the command line."""
    changes: dict[str, object] = {}
    if args.source:
        changes["filter_sources"] = tuple(args.source)
    if args.since:
        changes["filter_since"] = args.since
    if args.until:
        changes["filter_until"] = args.until
    if args.as_of:
        changes["as_of"] = args.as_of
    return Settings.model_validate({**settings.model_dump(), **changes}) if changes else settings


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on standard error (when it is a terminal), as an ingest progress callback."""
    from tqdm import tqdm

    with tqdm(total=0, unit="chunk", desc=label, file=sys.stderr, disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Files and folders are synced as before; URLs are fetched (each refused, failed or stored
    one named). A URL refused by the address policy is refused before the store or model opens."""
    from rag.url_safety import looks_like_url

    urls = [arg for arg in args.paths if looks_like_url(arg)]
    paths = [Path(arg) for arg in args.paths if not looks_like_url(arg)]
    if urls and args.rebuild:
        print("error: --rebuild takes files and folders only; ingest the URLs after it", file=sys.stderr)
        return 2
    if urls:
        from rag.web_articles import refusals

        refused = refusals(settings, urls)
    else:
        refused = []
    for error in refused:
        print(f"error: {error}", file=sys.stderr)
    wanted = [url for url in urls if all(error.path != url.strip() for error in refused)]
    if refused and not wanted and not paths:
        return 2
    from rag.pipeline import Assistant

    assistant = Assistant.from_settings(settings)
    failed = len(refused)
    if paths or not urls:
        with _progress_bar("embedding") as progress:
            report = assistant.ingest(paths or None, rebuild=args.rebuild, progress=progress)
        _print_report(report)
        failed += len(report.failed)
    if wanted:
        with _progress_bar("embedding") as progress:
            report = assistant.ingest_urls(wanted, progress=progress)
        _print_report(report, f"{len(wanted)} URLs: ")
        failed += len(report.failed)
    return 1 if failed else 0


def _print_report(report: IngestReport, prefix: str = "") -> None:
    print(f"{prefix}{report.summary()}")
    for warning in report.warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    for error in report.failed:
        print(f"  failed: {error}", file=sys.stderr)


def _feeds(args: argparse.Namespace, settings: Settings) -> int:
    from rag.feeds import FeedList, follow

    feeds = FeedList(settings.feeds_file)
    if args.feeds_command == "add":
        feed = follow(settings, args.url)
        print(f"following {feed.url}; `python -m rag feeds refresh` fetches its articles")
        return 0
    if args.feeds_command == "remove":
        if not feeds.remove(args.url):
            print(
                f"error: {args.url}: this feed is not followed; `python -m rag feeds list` shows them", file=sys.stderr
            )
            return 1
        print(f"no longer following {args.url}; its articles stay stored (`python -m rag remove ID` removes one)")
        return 0
    if args.feeds_command == "list":
        followed = feeds.feeds()
        for feed in followed:
            refreshed = feed.last_refresh or "never refreshed"
            problem = f"\tlast error: {feed.last_error}" if feed.last_error else ""
            print(f"{feed.url}\t{feed.title or '-'}\t{refreshed}\t{len(feed.entries)} entries stored{problem}")
        print(f"{len(followed)} feeds", file=sys.stderr)
        return 0
    return _refresh(args.urls, settings)


def _refresh(urls: Sequence[str], settings: Settings) -> int:
    from rag.feeds import FeedList
    from rag.pipeline import Assistant

    if not urls and not FeedList(settings.feeds_file).feeds():  # said before the store and model open
        print("no feeds are followed yet; add one with `python -m rag feeds add URL`", file=sys.stderr)
        return 1
    refresher = Assistant.from_settings(settings).feed_refresher()
    from tqdm import tqdm

    with tqdm(total=0, unit="entry", desc="feeds", file=sys.stderr, disable=None) as bar:

        def progress(done: int, total: int, url: str) -> None:
            bar.total = total
            bar.update(done - bar.n)

        reports = refresher.refresh(urls, progress)
    for report in reports:
        print(report.summary(), file=sys.stdout if not report.error else sys.stderr)
        for line in report.from_feed:
            print(f"  from the feed: {line}", file=sys.stderr)
        for warning in report.ingest.warnings:
            print(f"  warning: {warning}", file=sys.stderr)
        for error in report.ingest.failed:
            print(f"  failed: {error}", file=sys.stderr)
    return 0 if all(report.ok for report in reports) else 1


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from rag.loaders import LoadError
    from rag.pipeline import Assistant

    assistant = Assistant.from_settings(settings)
    with _progress_bar("importing") as progress:
        try:
            report = assistant.import_articles(args.file, progress=progress)
        except LoadError as unreadable:
            print(f"error: {unreadable}", file=sys.stderr)
            return 2
    rate = f"; {report.embedded / report.seconds:.1f} documents/s" if report.embedded and report.seconds else ""
    print(f"{report.summary()}{rate}")
    for failure in report.failed:
        print(f"  failed: {failure}", file=sys.stderr)
    return 1 if report.failed else 0


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    assistant = _existing_assistant(settings)
    if assistant is None:
        return 1
    _sentence_terms(assistant, args.repair)
    problems = assistant.check(args.paths or None)
    for problem in problems:
        print(f"  {problem}")
    if not problems:
        print(f"ok: the store ({assistant.chunk_count()} chunks) holds every file as it is")
        return 0
    if not args.repair:
        print(f"{len(problems)} problems; `python -m rag doctor --repair` re-ingests to fix them", file=sys.stderr)
        return 1
    report = assistant.ingest(args.paths or None)
    print(f"repaired by re-ingesting: {report.summary()}")
    left = assistant.check(args.paths or None)
    for problem in left:
        print(f"  still: {problem}", file=sys.stderr)
    return 1 if left else 0


def _sentence_terms(assistant: Assistant, repair: bool) -> None:
    """Note (and with `repair`, store) the sentence terms a store made before they were kept
    lacks: a matter of speed, not of what the store holds, so it is no problem of the check."""
    missing = assistant.store.without_sentence_terms()
    if not missing:
        return
    if not repair:
        print(
            f"  {missing} chunks have no stored sentence terms (a store made by an older Citeline): answers are "
            "the same, but each search tokenises its candidates; `python -m rag doctor --repair` stores them"
        )
        return
    with _progress_bar("storing sentence terms") as progress:
        filled = assistant.store.fill_sentence_terms(lambda done: progress(done, missing))
    print(f"stored the sentence terms of {filled} chunks")


def _existing_assistant(settings: Settings) -> Assistant | None:
    """The Assistant over an existing store, or None after saying how to create one."""
    from rag.pipeline import Assistant

    assistant = Assistant.from_settings(settings)
    if not assistant.store.exists():
        print(
            f"error: there is no store at {settings.store_dir} yet; run `python -m rag ingest` first", file=sys.stderr
        )
        return None
    return assistant


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from rag.questions import checked_question

    checked_question(args.question, settings.question_max_chars)  # refused before the store and model open
    assistant = _existing_assistant(_with_filters(args, settings))
    if assistant is None:
        return 1
    assistant.check_filter()
    if assistant.chunk_count() == 0:
        print(f"warning: the store at {settings.store_dir} is empty; run `python -m rag ingest` first", file=sys.stderr)
    answer = assistant.ask(args.question)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
    else:
        _print_answer(answer)
    return 0


def _print_answer(answer: Answer) -> None:
    if answer.notice:
        print(f"Note: {answer.notice}\n")
    if answer.short_answer:
        print(f"Answer: {answer.short_answer_shown}\n")
    print(answer.text)
    for claim in answer.unverified:
        print(f"  unverified: “{claim.text}” ({claim.problem})")
    if answer.citations:
        print("\nSources:")
    for citation in answer.citations:
        meta = byline(citation.published, citation.source, citation.url)
        print(f"[{citation.n}] {citation.title} ({meta}) [{citation.doc_id}]")
        print(f"    “{citation.sentence}”")
        for copy in citation.copies:
            print(f"    also in: {copy.title} ({copy.source or copy.url or copy.published}) [{copy.doc_id}]")


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    """Answer each line of standard input as the next turn of one conversation."""
    from rag.types import Turn

    assistant = _existing_assistant(_with_filters(args, settings))
    if assistant is None:
        return 1
    assistant.check_filter()
    history: list[Turn] = []
    for line in sys.stdin:
        question = " ".join(line.split())
        if not question:
            continue
        answer = assistant.ask(question, history)
        if args.json:
            print(json.dumps({**answer.to_json(), "standalone_query": answer.query}, ensure_ascii=False), flush=True)
        else:
            if answer.query != question:
                print(f"(searched for: {answer.query})")
            _print_answer(answer)
            print(flush=True)
        history.append(Turn(question, answer.text))
    return 0


def _list(settings: Settings) -> int:
    assistant = _existing_assistant(settings)
    if assistant is None:
        return 1
    documents = assistant.documents()
    copies = copies_by_story(documents)
    for doc in documents:
        same_story = ", ".join(other.doc_id for other in copies[doc.doc_id]) or "-"
        print(
            f"{doc.doc_id}\t{doc.published or '-'}\t{doc.chunks} chunks\t{doc.title}\t{doc.source or '-'}"
            f"\tsame story: {same_story}"
        )
    stories = len({doc.story or doc.doc_id for doc in documents})
    print(f"{len(documents)} documents ({stories} stories), {sum(d.chunks for d in documents)} chunks", file=sys.stderr)
    return 0


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    assistant = _existing_assistant(settings)
    if assistant is None:
        return 1
    chunks = assistant.remove(args.doc_id)
    if not chunks:
        print(f"error: no document with id '{args.doc_id}'; `python -m rag list` shows the ids", file=sys.stderr)
        return 1
    print(
        f"removed {args.doc_id} ({chunks} chunks). Its file, if any, was left in place: delete it too, "
        "or the next ingest of its folder adds it back."
    )
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """The Streamlit server in this process, with the model, store and indexes already loading
    in the background (`streamlit run app.py` would begin only when the first page asks)."""
    from streamlit.web import cli as streamlit_cli

    from rag.startup import Startup

    Startup.shared(settings)
    app = Path(__file__).resolve().parent.parent / "app.py"
    streamlit_cli.main(["run", str(app), *args.streamlit_options], prog_name="streamlit", standalone_mode=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "serve":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.streamlit_options = unknown
    settings = Settings()
    try:
        if args.command == "ingest":
            return _ingest(args, settings)
        if args.command == "import":
            return _import(args, settings)
        if args.command == "feeds":
            return _feeds(args, settings)
        if args.command == "ask":
            return _ask(args, settings)
        if args.command == "chat":
            return _chat(args, settings)
        if args.command == "doctor":
            return _doctor(args, settings)
        if args.command == "list":
            return _list(settings)
        if args.command == "serve":
            return _serve(args, settings)
        return _remove(args, settings)
    except CitelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
