"""The stock LangChain recipe, the baseline every report compares against: real model, real Chroma."""

from __future__ import annotations

import pytest

from eval import langchain_recipe
from rag.embeddings import Embedder
from rag.loaders import load_file
from rag.types import SearchFilter
from tests.conftest import SHIPPED_CORPUS

QUESTION = "How many North Korean troops are in Kursk?"


@pytest.fixture(scope="module")
def recipe_store(tmp_path_factory: pytest.TempPathFactory) -> langchain_recipe.LangChainRetriever:
    documents = [load_file(path) for path in sorted(SHIPPED_CORPUS.glob("*.md"))]
    store = langchain_recipe.open_store(tmp_path_factory.mktemp("langchain"), Embedder())
    langchain_recipe.add(store, langchain_recipe.split(documents))
    return langchain_recipe.LangChainRetriever(store)


def test_as_of_a_day_the_recipe_returns_k_passages_published_by_then(
    recipe_store: langchain_recipe.LangChainRetriever,
) -> None:
    everything = recipe_store.retrieve(QUESTION, k=4)
    assert any(p.chunk.published > "2024-11-01" for p in everything)  # the bound has something to hide

    as_of = recipe_store.retrieve(QUESTION, k=4, where=SearchFilter(as_of="2024-11-01"))
    assert len(as_of) == 4  # it asked for more when the first four were not all visible
    assert all("" < p.chunk.published <= "2024-11-01" for p in as_of)
    scores = [p.score for p in as_of]
    assert scores == sorted(scores, reverse=True)


def test_as_of_before_every_article_leaves_nothing_and_other_filters_are_refused(
    recipe_store: langchain_recipe.LangChainRetriever,
) -> None:
    assert recipe_store.retrieve(QUESTION, k=4, where=SearchFilter(as_of="2020-01-01")) == []
    with pytest.raises(ValueError, match="without sources or since"):
        recipe_store.retrieve(QUESTION, where=SearchFilter(since="2024-11-01"))
