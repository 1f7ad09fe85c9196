"""Readers for the compact tables written as text in this package (space-separated entries)."""

from __future__ import annotations


def word_set(spec: str) -> frozenset[str]:
    """The whitespace-separated words of ``spec``."""
    return frozenset(spec.split())


def pair_table(spec: str, sep: str = " ") -> dict[str, str]:
    """``"a:x b:y"`` as ``{"a": "x", "b": "y"}`` (entries split on ``sep``, or any whitespace for " ")."""
    entries = spec.split() if sep == " " else spec.split(sep)
    return {key: value for key, _, value in (entry.partition(":") for entry in entries)}
