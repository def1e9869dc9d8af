"""Citeline: cited answers over a collection of news articles.

Importing this package is cheap: no model, database or network is touched until an
`Assistant` is asked to do something (see `rag.pipeline`).
"""

from rag.config import Settings

__all__ = ["Settings"]
