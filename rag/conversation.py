"""Pure: turn a follow-up question and the conversation so far into one standalone query.

This is the deterministic rewrite used when no LLM is configured. It recognises three ways a
follow-up leans on the previous turn and repairs each, letting the new question's own words
lead:

- elliptical ("What about Zelensky?", "And the later briefing?"): no question of its own, so the
  previous question supplies the frame ("How many troops did NIS report? the later briefing"),
  and the figures the previous answer gave are not the answer wanted (`figures_already_given`).
  When the follow-up names a new speaker ("And according to the Pentagon?"), place ("What about
  in Kursk Oblast?") or time ("two weeks later"), it takes that part's place in the frame
  instead of being added after it: "How many troops did the Pentagon report?";
- an attribute ("And its maximum range?"): asked of what the previous answer named;
- anaphoric ("When did they arrive?", "And how many did he say?", "What did the Kremlin say?"):
  a question of its own with a pronoun, a lead-in or a speech verb with nothing said about, so
  the previous turn's names, numbers and key words are carried into it (not the figures the
  answer gave, when it asks "how many" again). A question that names its own subject ("What
  did North Korea call them?") carries only a few, what its pronoun can stand for: the previous
  speaker for "he"/"she", the previous question's other words for "they"/"it"; never the
  speaker, place or time it replaces nor the figures already given.

A question that stands on its own is returned unchanged.

A chain of follow-ups stays bounded (issue 15): each earlier follow-up's words are kept after the
frame only until a newer one names the same kind of thing (another speaker, place or time), at
most MAX_ADDED of them, and the oldest give way first when the query would pass MAX_QUERY_CHARS;
words already in the query are not carried again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.citations import MARKER
from rag.lexical import STOPWORDS, TOKEN
from rag.types import Turn

_LEAD_IN = re.compile(
    r"^\s*(?:and|but|so|also|ok(?:ay)?|then)?[\s,]*(?:what|how)\s+about\b[\s,]*|^\s*(?:and|but|also)\b[\s,]*",
    re.IGNORECASE,
)
# A question of its own: a wh-word anywhere ("To which region ...?"), or an auxiliary first.
_ASKS = re.compile(
    r"\b(?:who|whom|whose|what|which|when|where|why|how)\b"
    r"|^\s*(?:is|are|was|were|do|does|did|can|could|will|would|has|have|had)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_POSSESSIVE = re.compile(r"^(?:its|their|his|her)\b", re.IGNORECASE)
# "that"/"this" only as the last word ("When was that?"): elsewhere they are mostly conjunctions.
_PRONOUN = re.compile(
    r"\b(?:he|him|his|she|her|hers|they|them|their|theirs|it|its|these|those|the same)\b|\b(?:that|this)\W*$",
    re.IGNORECASE,
)
_PERSON_PRONOUN = re.compile(r"\b(?:he|him|his|she|her|hers)\b", re.IGNORECASE)
# Names (capitalised runs, allowing inner "of"/"the"), acronyms and numbers of the earlier turn.
_ENTITY = re.compile(r"\b(?:[A-Z][\w’'-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w’'-]*)*)|\b\d[\d,.]*\d\b|\b\d\b")
_QUESTION_WORDS = frozenset("how what who whom whose when where which why did does do is are was were and".split())
_ASKS_NUMBER = re.compile(r"\bhow\s+(?:many|much)\b|\bwhat\s+(?:number|share|percentage|amount)\b", re.IGNORECASE)

# The parts of a question a follow-up can replace: who said it, where, and when.
_SPEECH_VERBS = (
    r"(?:say|says|said|report|reported|estimate|estimated|claim|claimed|tell|told|announce|announced|"
    r"describe|described|call|called|label|labell?ed|warn|warned|state|stated|confirm|confirmed|count|"
    r"counted|give|gave|put|think|believe|expect|fear|feared|view|deny|denied|assess|assessed)"
)
_SPEAKER_SLOT = re.compile(
    r"\b[Aa]ccording to\s+(?P<according>[^,?;]+)"
    r"|\b(?i:did|does|do|has|have|had)\s+(?P<subject>(?:\S+\s+){0,5}?\S+)\s+(?:\w+ly\s+|first\s+|also\s+)?"
    rf"{_SPEECH_VERBS}\b"
)
_NAME = r"[A-Z][\w’'.-]*(?:\s+(?:of\s+)?[A-Z][\w’'.-]*)*"
_PLACE_NOUNS = r"(?:\s+(?:region|oblast|province|summit|border|city|capital|area|front))?"
_PLACE_SLOT = re.compile(rf"\b(?i:in|into|inside|at|near)\s+(?P<place>(?:the\s+)?{_NAME}{_PLACE_NOUNS})")
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\b\.?"
)
_TIME = re.compile(
    rf"(?:\b(?i:on|in|by|since|after|before|during|until)\s+)?(?:\b(?i:early|mid|late)[\s-]+)?\b{_MONTH}"
    r"(?:\s+\d{1,2}\b)?(?:,?\s+\d{4}\b)?"
    r"|(?:\b(?i:on|in|by|since)\s+)?\b\d{4}-\d{2}-\d{2}\b|\b(?i:in|since|by)\s+\d{4}\b"
    r"|\b(?i:last|this|next|that)\s+(?i:week|month|year)\b"
    r"|(?:\b[\w-]+\s+)?\b(?i:days?|weeks?|months?|years?)\s+(?i:later|earlier|ago|before|after)\b"
    r"|\b(?i:today|yesterday|tomorrow)\b"
)
# A follow-up may also ask just "later?" or "earlier?"; in a question those words are too loose
# ("the later briefing") to be the time it names.
_TIME_FOCUS = re.compile(rf"{_TIME.pattern}|\b(?i:later|earlier)\b")
# "What did the other government say?": what it was said about is the earlier turn's subject.
_SAYS_WHAT = re.compile(rf"^\s*(?:what|how\s+many|how\s+much)\b.*\b{_SPEECH_VERBS}\W*$", re.IGNORECASE)
_PLACE_FOCUS = re.compile(r"^(?:in|into|inside|at|near)\s+\S", re.IGNORECASE)
_ACCORDING_FOCUS = re.compile(r"^according\s+to\s+(?P<who>.+)$", re.IGNORECASE)
# "the Pentagon's early-November estimate": whose it is (the speaker), and what it is.
_OWNER_FOCUS = re.compile(rf"^(?P<owner>(?:the\s+)?{_NAME})['’]s\s+(?P<rest>.+)$")
_PROPER_FOCUS = re.compile(rf"^(?:the\s+)?{_NAME}$")
MAX_CARRIED = 8
MAX_ADDED = 3  # earlier elliptical follow-ups' words kept after the frame ("the later briefing in Kursk")
# What rewriting may make a query grow to: carried words give way, oldest first, to stay under it.
# A question of the user's own that is longer is not cut, up to its first question mark.
MAX_QUERY_CHARS = 300
MAX_CARRIED_OWN_SUBJECT = 3  # what a question that names its own subject takes from the last turn
ATTRIBUTE_OWNERS = 2


def _entities(text: str) -> list[str]:
    """Names, acronyms and numbers in the text, in order, without question words at its start."""
    found: list[str] = []
    for match in _ENTITY.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in _QUESTION_WORDS | STOPWORDS:
            words = words[1:]
        entity = " ".join(words)
        if entity and entity.lower() not in STOPWORDS and entity not in found:
            found.append(entity)
    return found


def _content_words(text: str) -> list[str]:
    """Lower-case words of the text that carry meaning ("troops" in "How many troops did NIS report?")."""
    return [t for t in TOKEN.findall(text) if t.islower() and t not in STOPWORDS and t not in _QUESTION_WORDS]


def is_follow_up(question: str) -> bool:
    """Whether the question leans on an earlier turn (a lead-in like "and"/"what about", a
    pronoun standing for something named before, or a speech verb with nothing said about:
    "What did the Kremlin say?")."""
    return bool(_LEAD_IN.match(question) or _PRONOUN.search(question) or _SAYS_WHAT.search(question))


@dataclass(frozen=True)
class _Rewrite:
    """A standalone query as its frame (a question) and what elliptical follow-ups added after
    it, oldest first, each with the kind of frame part it stands for ("speaker", "place",
    "time") or None: kept apart so that a later follow-up can replace or drop them."""

    frame: str
    added: tuple[tuple[str | None, str], ...] = ()

    @property
    def text(self) -> str:
        return " ".join([self.frame, *(words for _, words in self.added)])


def standalone_query(question: str, history: Sequence[Turn]) -> str:
    """The question rewritten to stand on its own, given the earlier turns (oldest first)."""
    return _rewrite(question, history).text


def _rewrite(question: str, history: Sequence[Turn]) -> _Rewrite:
    """standalone_query's work, keeping the frame and the follow-ups' additions apart."""
    question = " ".join(question.split())
    if not history or not is_follow_up(question):
        return _Rewrite(question)
    rewritten = _rewrite(history[-1].question, history[:-1])
    previous = rewritten.text
    answer = MARKER.sub(" ", history[-1].answer)
    focus = _focus(question)
    if _POSSESSIVE.match(focus):
        return _Rewrite(_with_context(f"What is {focus}?", _named_in_answer(answer, previous) or _entities(previous)))
    if _is_elliptical(focus):
        return _reframed(rewritten, focus)
    asked = _LEAD_IN.sub("", question, count=1).strip() or question
    if _entities(asked):
        return _Rewrite(_with_context(asked, _referents(asked, previous, answer), MAX_CARRIED_OWN_SUBJECT))
    given = set(_NUMBER.findall(answer)) if _ASKS_NUMBER.search(asked) else set()
    context = [e for e in _entities(answer) if e not in given] + _entities(previous) + _content_words(previous)
    return _Rewrite(_with_context(asked, context))


def figures_already_given(question: str, history: Sequence[Turn]) -> list[str]:
    """Numbers the last answer led with (up to its first citation), when the question is an
    elliptical follow-up ("What about Zelensky?"): it asks for the figure someone else gave,
    not the same one again. Figures an answer listed after its first are still fair answers
    ("What about the later briefing?" after "1,500 [1] ... later 3,000 [2]")."""
    question = " ".join(question.split())
    if not history or not is_follow_up(question) or not _is_elliptical(_focus(question)):
        return []
    first_claim = MARKER.split(history[-1].answer, maxsplit=1)[0]
    return _NUMBER.findall(_ISO_DATE.sub(" ", first_claim))  # a source's date is not a figure it gave


def _named_in_answer(answer: str, question: str) -> list[str]:
    """What the answer named that its question did not: the last two new names ("Army Tactical
    Missile Systems, or ATACMS" in a sentence that also names the United States and Ukraine)."""
    asked = set(TOKEN.findall(question.lower()))
    new = [e for e in _entities(answer) if not set(TOKEN.findall(e.lower())) <= asked]
    return new[-ATTRIBUTE_OWNERS:]


def _focus(question: str) -> str:
    """The question without its lead-in ("and", "what about") and question mark."""
    return _LEAD_IN.sub("", question, count=1).rstrip("?").strip()


def _is_elliptical(focus: str) -> bool:
    """No question of its own and not an attribute ("its range"): the earlier question is the frame."""
    return bool(focus) and not _ASKS.search(focus) and not _POSSESSIVE.match(focus)


def _speakers(question: str) -> list[tuple[int, int, int]]:
    """Where the question names who said it ("did NIS report", "According to Singh,"): the
    name's span, and where the speech verb after it ends (the name's end after "according to")."""
    found = []
    for match in _SPEAKER_SLOT.finditer(question):
        group = "according" if match.group("according") else "subject"
        name = match.group(group).rstrip()
        if re.search(r"[A-Z]", name) and not re.search(r"[,?;]", name):  # a name, not "he" or "the troops"
            start = match.start(group)
            found.append((start, start + len(name), match.end() if group == "subject" else start + len(name)))
    return found


def _slots(question: str, kind: str) -> list[tuple[int, int]]:
    """Where the question names its speaker ("NIS" in "did NIS report"), place ("in Russia's
    Kursk Oblast", with its preposition) or time ("On Nov. 4, 2024"): character spans."""
    if kind == "speaker":
        return [(start, end) for start, end, _ in _speakers(question)]
    if kind == "place":
        return [m.span() for m in _PLACE_SLOT.finditer(question) if not _TIME.match(m.group("place"))]
    return [m.span() for m in _TIME.finditer(question)]


def _occasion(question: str, verb_end: int) -> tuple[int, int] | None:
    """The place or time right after a speech verb: when and where that speaker said it ("did
    Zelensky say at the NATO summit", "did the Pentagon say on Nov. 4, 2024")."""
    for span in _slots(question, "place") + _slots(question, "time"):
        if span[0] > verb_end and not question[verb_end : span[0]].strip():
            return span
    return None


def _focus_parts(focus: str) -> list[tuple[str | None, str, str]]:
    """The follow-up's parts (split at commas), each as (the kind of frame words it replaces or
    None, the words that take their place, words to add after the frame)."""
    parts: list[tuple[str | None, str, str]] = []
    for part in (p.strip() for p in focus.split(",")):
        if not part:
            continue
        according = _ACCORDING_FOCUS.match(part)
        who = according.group("who") if according else part
        owner = _OWNER_FOCUS.match(who)
        if owner:  # "the Pentagon's early-November estimate"
            parts.append(("speaker", owner.group("owner"), owner.group("rest")))
        elif according:
            parts.append(("speaker", who, ""))
        elif _TIME_FOCUS.fullmatch(part):
            parts.append(("time", part, ""))
        elif _PLACE_FOCUS.match(part):
            parts.append(("place", part, ""))
        elif _PROPER_FOCUS.match(part) and not _TIME_FOCUS.search(part):
            parts.append(("name", part, ""))  # "Zelensky", "the Pentagon"
        else:
            parts.append((None, "", part))  # "the later South Korean intelligence briefing"
    return parts


def _reframed(previous: _Rewrite, focus: str) -> _Rewrite:
    """The previous question with the speaker, place or time the elliptical follow-up names in
    place of its own ("How many troops did the Pentagon report?"), what it names that has no
    counterpart there added after it; the previous question and the whole follow-up when
    nothing could be put in place. An earlier follow-up's addition of the same kind (a speaker
    named before this one) gives way to the new one (_bounded)."""
    frame = previous.frame
    added: list[tuple[str | None, str]] = []
    replaced = False
    parts = _focus_parts(focus)
    for kind, words, rest in parts:
        if kind == "name":
            # A bare name stands for a new speaker ("What about Singh?") unless the follow-up
            # names one ("Kursk, according to Singh"); a new place is asked with its preposition
            # ("What about in Kursk?").
            kind = None if any(k == "speaker" for k, _, _ in parts) else "speaker"
        if kind == "speaker" and _speakers(frame):
            # A new speaker said it elsewhere and at another time: the old one's occasion goes.
            occasion = _occasion(frame, _speakers(frame)[0][2])
            if occasion is not None:
                frame = frame[: occasion[0]] + frame[occasion[1] :]
        spans = _slots(frame, kind) if kind else []
        if not spans:
            added.append((kind, " ".join(w for w in (words, rest) if w)))
            continue
        (start, end), others = spans[0], spans[1:]
        for s, e in reversed(others):
            frame = frame[:s] + frame[e:]
        frame = frame[:start] + words + frame[end:]
        replaced = True
        if rest:
            added.append((None, rest))
    if replaced:
        frame = re.sub(r"\s+([,?;])", r"\1", re.sub(r"\s{2,}", " ", frame)).strip()
        frame = re.sub(r"^[,;]\s*", "", frame)
        frame = frame[:1].upper() + frame[1:]
    words = ", ".join(w for _, w in added) if replaced else focus
    kinds = {kind for kind, _ in added if kind}
    earlier = [(kind, w) for kind, w in previous.added if not (kind in kinds or w.lower() == words.lower())]
    if not words or _already_in(words, [frame, *(w for _, w in earlier)]):
        return _bounded(frame, earlier)
    return _bounded(frame, [*earlier, (added[0][0] if len(added) == 1 else None, words)])


def _already_in(words: str, texts: Sequence[str]) -> bool:
    """Whether every word of `words` is in the texts already (nothing new to carry)."""
    present = set(TOKEN.findall(" ".join(texts).lower()))
    return set(TOKEN.findall(words.lower())) <= present


def _bounded(frame: str, added: Sequence[tuple[str | None, str]]) -> _Rewrite:
    """The frame and at most MAX_ADDED additions, the oldest dropped first while the query is
    longer than MAX_QUERY_CHARS (the newest always stays). A frame that is itself a rewritten
    query given back as the question ("How many troops did NIS report? Zelensky Singh") loses
    the oldest words after its first question mark likewise; the question up to it is never cut."""
    kept = list(added[-MAX_ADDED:])
    while len(kept) > 1 and len(_Rewrite(frame, tuple(kept)).text) > MAX_QUERY_CHARS:
        kept.pop(0)
    excess = len(_Rewrite(frame, tuple(kept)).text) - MAX_QUERY_CHARS
    asked, mark, tail = frame.partition("?")
    if excess > 0 and mark and tail.strip():
        words = tail.split()
        while words and excess > 0:
            excess -= len(words.pop(0)) + 1
        frame = " ".join([asked + mark, *words])
    return _Rewrite(frame, tuple(kept))


def _terms_in_order(text: str) -> list[str]:
    """The text's names, numbers and meaningful words in the order they come, speech verbs left out."""
    found: list[tuple[int, str]] = []
    covered: list[tuple[int, int]] = []
    for match in _ENTITY.finditer(text):
        entity = _entities(match.group(0))
        if entity:
            found.append((match.start(), entity[0]))
            covered.append(match.span())
    for match in TOKEN.finditer(text):
        word = match.group(0)
        if any(s <= match.start() < e for s, e in covered) or not _content_words(word):
            continue
        if not re.fullmatch(_SPEECH_VERBS, word, re.IGNORECASE):
            found.append((match.start(), word))
    return [term for _, term in sorted(found)]


def _referents(asked: str, previous: str, answer: str) -> list[str]:
    """What a follow-up that names its own subject takes from the last turn: for "he"/"she" the
    previous speaker (or whom the answer named, after "Who ...?"); for "they"/"it", or with no
    pronoun at all, the previous question's other names and words in their order, its speaker
    last (unless the follow-up names its own). Never the place when the follow-up names its own,
    the time, or the figures the answer gave."""
    speakers = _slots(previous, "speaker")
    own_speaker = bool(_slots(asked, "speaker"))
    has_person = bool(_PERSON_PRONOUN.search(asked))
    has_thing = bool(_PRONOUN.search(_PERSON_PRONOUN.sub(" ", asked)))
    dropped = speakers + _slots(previous, "time") + (_slots(previous, "place") if _slots(asked, "place") else [])
    named = [previous[s:e].removeprefix("the ").removeprefix("The ") for s, e in speakers]
    carried: list[str] = []
    if has_person:
        if named:
            carried += named[:1]
        elif re.match(r"\s*who\b", previous, re.IGNORECASE):
            carried += _named_in_answer(answer, previous)
        else:
            carried += _entities(previous)[:1]
    if has_thing or not has_person:
        kept = "".join(" " if any(s <= i < e for s, e in dropped) else ch for i, ch in enumerate(previous))
        carried += [t for t in _terms_in_order(kept) if not (_NUMBER.fullmatch(t) and t in answer)]
        if not own_speaker and not has_person:
            carried += named  # "they" is more often what was talked about than who talked
    return carried


def _with_context(asked: str, context: Sequence[str], limit: int = MAX_CARRIED) -> str:
    """The question followed by the earlier turn's terms it does not already contain: at most
    `limit`, and fewer (the first always kept) when more would pass MAX_QUERY_CHARS."""
    present = set(TOKEN.findall(asked.lower()))
    carried: list[str] = []
    for term in context:
        if term not in carried and not set(TOKEN.findall(term.lower())) <= present:
            carried.append(term)
    carried = carried[:limit]
    while len(carried) > 1 and len(asked) + len(", ".join(carried)) + 3 > MAX_QUERY_CHARS:
        carried.pop()
    return f"{asked} ({', '.join(carried)})" if carried else asked
