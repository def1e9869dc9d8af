"""Pure: a document's `published` value, as written in its file, -> an ISO date (YYYY-MM-DD); and
the relative dates in its text ("last week") resolved against it.

Dates arrive as "24 Oct 2024", "October 24, 2024", "2024-10-24T08:00:00Z" or a YAML date; the
date filters and the answer's headings need one form. dateutil reads the many ways of writing a
date, but it also fills in whatever is missing from a default (today, unless told otherwise) and
reads "5 5 5 2024" as 2005-05-05; so a value counts as a date only when it states a day, a month
and a four-digit year, and not when its day and month could be swapped ("01/02/2024").
"""

from __future__ import annotations

import datetime as dt
import re

from dateutil import parser as date_parser

MAX_DATE_CHARS = 100  # a longer value is not a date; it is reported without being parsed
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Day and month both as numbers before a four-digit year: "01/02/2024" is 1 February in most of
# the world and 2 January in the United States.
_NUMERIC_DAY_MONTH = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-]\d{4}\b")
# Two defaults that differ in year, month and day: a part the value does not state comes out
# differently from each, which shows that it was missing.
_DEFAULTS = (dt.datetime(1, 1, 1), dt.datetime(2, 2, 2))


def date_text(value: object) -> str:
    """The value as written: a YAML/datetime date in ISO form, anything else as trimmed text."""
    if isinstance(value, dt.date):  # a datetime is a date too
        return value.isoformat()[:10]
    if value is None:
        return ""
    return " ".join(str(value).split())


def _parsed(text: str) -> dt.date | None:
    """The date the text states in full (day, month, four-digit year), or None."""
    if _ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None  # "2024-02-30"
    ambiguous = _NUMERIC_DAY_MONTH.match(text)
    if ambiguous and ambiguous.group(1) != ambiguous.group(2) and max(map(int, ambiguous.groups())) <= 12:
        return None
    try:
        first, second = (date_parser.parse(text, default=default, ignoretz=True) for default in _DEFAULTS)
    except (ValueError, OverflowError):  # dateutil's ParserError is a ValueError
        return None
    if first.date() != second.date():
        return None  # no day, month or year of its own: "Oct 2024", "24 Oct", "Monday"
    if first.year < 1000 or str(first.year) not in text:
        return None  # a year it does not write in full: "24 Oct 24", or "5 5 5 2024" read as 2005
    return first.date()


def read_date(value: object, where: str) -> tuple[str, str | None]:
    """(the value as YYYY-MM-DD, None), or ("", a warning naming `where`) when the value cannot be
    read as one date; an empty value is ("", None): undated, and nothing to warn about."""
    text = date_text(value)
    if isinstance(value, dt.date):
        return text, None
    if not text:
        return "", None
    parsed = _parsed(text) if len(text) <= MAX_DATE_CHARS else None
    if parsed is not None:
        return parsed.isoformat(), None
    shown = text if len(text) <= 60 else text[:57] + "..."
    return "", (
        f"{where}: published date '{shown}' is not a full, unambiguous date (day, month and four-digit year); "
        "the document was loaded undated: write the date as YYYY-MM-DD"
    )


# Words that make a date phrase relative to when the article was written ("on Monday", "last
# week", "two days ago"); dateparser also finds absolute months ("May"), which need no resolving.
_RELATIVE_WORDS = frozenset(
    "today yesterday tonight tomorrow ago last this next earlier week weekend month year "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)


def relative_dates(text: str, published: str) -> list[tuple[str, str]]:
    """(phrase, YYYY-MM-DD) for each relative date phrase in the text, resolved against the
    article's publication date ("last week" in an article of 2024-10-24 -> 2024-10-17), with
    dateparser; none for an undated article, whose "today" is unknown."""
    if not published:
        return []
    from dateparser.search import search_dates

    base = dt.datetime.fromisoformat(published[:10])
    found = search_dates(text, languages=["en"], settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"})
    return [
        (phrase, when.date().isoformat())
        for phrase, when in found or []
        if _RELATIVE_WORDS & set(phrase.lower().split())
    ]


def date_meant(phrase: str, published: str) -> str:
    """What a relative date phrase meant on the day its article was published, in words at the
    phrase's own precision: "last month" of 2024-11-04 -> "October 2024", "last week" -> "the
    week of 28 October 2024", "yesterday" -> "3 November 2024"; "" when the phrase is not a
    relative date, or the article is undated."""
    if not published or not _RELATIVE_WORDS & set(phrase.lower().split()):
        return ""
    from dateparser.date import DateDataParser

    base = dt.datetime.fromisoformat(published[:10])
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_TIME_AS_PERIOD": True}
    meant = DateDataParser(languages=["en"], settings=settings).get_date_data(phrase)
    if meant.date_obj is None:
        return ""
    day = meant.date_obj.date()
    if meant.period == "year":
        return str(day.year)
    if meant.period == "month":
        return f"{day:%B} {day.year}"
    if meant.period == "week":
        return f"the week of {day.day} {day:%B} {day.year}"
    return f"{day.day} {day:%B} {day.year}"
