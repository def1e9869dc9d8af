"""Pure lexical helpers: acronyms defined in the text match their spelled-out names."""

from __future__ import annotations

from rag.lexical import acronym_expansions, present_terms, stem


def test_an_acronym_defined_in_brackets_maps_to_the_terms_of_its_name() -> None:
    text = "South Korea’s National Intelligence Service (NIS) said so; the Department of Defense (DOD) agreed."
    found = acronym_expansions([text])
    assert found[stem("NIS")] == frozenset({"nation", "intellig", "servic"})
    assert found[stem("DOD")] == frozenset({"depart", "defens"})


def test_brackets_whose_initials_do_not_spell_the_name_are_not_definitions() -> None:
    assert acronym_expansions(["U.S. officials (NIS) met the Pentagon Press (PP2)."]) == {}
    assert acronym_expansions(["Officials from Seoul (NIS) spoke."]) == {}


def test_an_acronym_is_present_where_most_of_its_name_is() -> None:
    expansions = {stem("NIS"): frozenset({"nation", "intellig", "servic"})}
    assert stem("NIS") in present_terms("a briefing from its national intelligence agency", expansions)
    assert stem("NIS") not in present_terms("a briefing from its national police", expansions)
    assert stem("NIS") not in present_terms("a briefing from its national intelligence agency")
