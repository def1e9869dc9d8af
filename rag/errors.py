"""The one base class of every error Citeline reports to a user, so the app and the CLI catch
one thing; each message names what is wrong and what to do."""

from __future__ import annotations


class CitelineError(Exception):
    """An error whose message is meant for the user: it names the file, field or setting."""


class InputError(CitelineError, ValueError):
    """Something the user gave cannot be used: an empty or over-long question, a filter that
    can match nothing, a setting written wrongly."""
