"""The chat's answers on the page (Streamlit): the answer with each [n] linked to its source,
the sources with the cited sentence first, and a timeline's chart. Every piece of document
text and metadata is escaped before it reaches Markdown, so nothing in a document can render
as markup, a link or an image."""

from __future__ import annotations

from urllib.parse import quote

import streamlit as st

from rag.answer_markdown import answer_markdown, source_anchor
from rag.citations import byline, escape_markdown, highlight_segments
from rag.types import Answer, Citation


def safe_link(url: str) -> str | None:
    """An http(s) URL made safe to place inside a Markdown link, or None."""
    if not url.startswith(("http://", "https://")):
        return None
    return quote(url, safe=":/?&=#%+,;@~!$*'")


def render_passage(citation: Citation) -> str:
    """The cited passage as escaped Markdown with the supporting sentence highlighted."""
    offset = citation.passage_start
    runs = highlight_segments(citation.passage, citation.start - offset, citation.end - offset)
    return "".join(
        f":orange-background[**{escape_markdown(text)}**]" if marked else escape_markdown(text) for text, marked in runs
    )


def render_answer(answer: Answer, asked: str, turn: int) -> None:
    """The answer (each [n] a link to its source), its sources with the cited sentence first,
    and the standalone query when a follow-up was rewritten. `turn` numbers the answer on the
    page, so that every source has its own anchor."""
    if answer.short_answer:
        st.markdown(f"**{escape_markdown(answer.short_answer_shown)}**")
    if answer.notice:
        st.info(escape_markdown(answer.notice))
    st.markdown(answer_markdown(answer.text, turn, (c.n for c in answer.citations)))
    if answer.timeline:
        render_timeline(answer)
    for claim in answer.unverified:
        st.warning(escape_markdown(f"Unverified: “{claim.text}” ({claim.problem})"), icon="⚠️")
    for citation in answer.citations:
        render_source(citation, turn)
    if answer.query and answer.query != " ".join(asked.split()):
        with st.expander("Searched for"):
            st.markdown(escape_markdown(answer.query))


def render_source(citation: Citation, turn: int) -> None:
    """One numbered source: where it is from, the cited sentence highlighted, and the passage
    around it one click further. Its anchor is where the answer's [n] link leads."""
    with st.container(border=True):
        # Our own id, not document text: the only HTML the page is allowed.
        st.markdown(f'<div id="{source_anchor(turn, citation.n)}"></div>', unsafe_allow_html=True)
        meta = byline(citation.published, citation.source, citation.url)
        st.markdown(
            f"**\\[{citation.n}\\] {escape_markdown(citation.title)}**"
            + (f"  \n{escape_markdown(meta)}" if meta else "")
        )
        st.markdown(f":orange-background[{escape_markdown(' '.join(citation.sentence.split()))}]")
        with st.expander("The passage around it"):
            st.markdown(render_passage(citation))
            link = safe_link(citation.url)
            if link:
                st.markdown(f"[Open the original]({link})")
            st.caption(f"Document {escape_markdown(citation.doc_id)}, characters {citation.start}–{citation.end}")
            for copy in citation.copies:
                where = byline(copy.published, copy.source, copy.url)
                st.caption(escape_markdown(f"Also published in: {copy.title} — {where} ({copy.doc_id})"))


def render_timeline(answer: Answer) -> None:
    """The timeline's figures over time: one coloured series per source, every figure a point
    (a source may give only one), its figure as written and citation [n] in the tooltip."""
    import altair as alt
    import pandas as pd

    points = pd.DataFrame(
        {
            "published": [pd.Timestamp(p.date) for p in answer.timeline],
            "figure": [p.value for p in answer.timeline],
            "as written": [p.figure for p in answer.timeline],
            "source": [p.source for p in answer.timeline],
            "citation": [f"[{p.n}]" for p in answer.timeline],
        }
    )
    unit = next((p.unit for p in answer.timeline if p.unit), "figure")
    chart = (
        alt.Chart(points)
        .mark_line(point=alt.OverlayMarkDef(size=80))
        .encode(
            x=alt.X("published:T", title="published"),
            y=alt.Y("figure:Q", title=unit, scale=alt.Scale(zero=False)),
            color=alt.Color("source:N", legend=alt.Legend(orient="bottom", columns=1, labelLimit=400)),
            tooltip=["published:T", "as written:N", "source:N", "citation:N"],
        )
    )
    st.altair_chart(chart)
