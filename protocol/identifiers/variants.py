"""Canonical forms of name tokens: variant clusters, Arabic compounds, surname endings.

:func:`canonical` maps a romanised token to the label of its variant cluster (Mohamed, Mehmet,
محمد -> ``muhammad``; Olena, Елена, Helena -> ``elena``), and otherwise to its fold with the Slavic
surname endings unified (-off/-ow -> -ov, -ieff/-yev -> -ev, -skaya -> -ska). Compound Arabic
names are one token: Abd al-Rahman, Abdelrahman, Abderrahmane and عبدالرحمن all give
``abdrahman``; a glued article or bin goes when what follows is a known name (Alahmad, Benali).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from . import variant_table
from ._tables import word_set
from .phonetic import fold
from .scripts import romanise_word, script_of

# Separate tokens that start a compound with the next token (Abd al-Rahman, Abu Bakr).
ABD_FORMERS = word_set("abd abdul abdel abdal abdoul abdur abder abdil abdol abdel abdes abdus abdelal")
ABU_FORMERS = word_set("abu abou abo")
ARTICLES = word_set("al el ul il ar er as es ash ad ed at az an en ad adh ath")
_ABD_GLUED = re.compile(r"^abd(?=[a-z]{3})")
_ABU_GLUED = re.compile(r"^ab(?:ou|u|o)(?=[bcdfghjklmnpqrstvwxz][a-z]{2})")
_ARTICLE_HEAD = re.compile(r"^[aeiou]*l*")
_ASSIMILATED = re.compile(r"^([b-df-hj-np-tv-z])\1")
_GLUED_PREFIXES = (("ibn", 3), ("bin", 3), ("ben", 3), ("bn", 3), ("al", 4), ("el", 4), ("ul", 4))
_SUFFIXES = (
    (re.compile(r"(?<=[a-z]{2})of$"), "ov"),
    (re.compile(r"(?<=[a-z]{2})y?e[fv]$"), "ev"),
    (re.compile(r"(?<=[a-z]{2})y?eva$"), "eva"),
    (re.compile(r"(?<=[a-z]{2})skaya$"), "ska"),
)
_SUFFIX_ENDS = ("of", "ef", "ev", "eva", "skaya")


def compound_key(token: str) -> str:
    """The fold of a token, with an Abd- or Abu- compound reduced to its prefix and its stem:
    the article and a sun-letter doubling after Abd go (abdurrahman, abdelrahman, abdalrahman ->
    abdrahman; abdullah, abdallah -> abda)."""
    if _ABD_GLUED.match(token) and len(token) > 4:
        stem = _ARTICLE_HEAD.sub("", token[3:])
        stem = _ASSIMILATED.sub(r"\1", stem)
        if stem:
            return "abd" + fold(stem)
    glued_abu = _ABU_GLUED.match(token)
    if glued_abu:
        return "abu" + fold(token[glued_abu.end() :])
    return fold(token)


def _romanisations(spelling: str) -> Iterable[tuple[str, ...]]:
    if any(script_of(c) == "Cyrl" for c in spelling):
        return {romanise_word(spelling, lang) for lang in ("uk", "ru", "bg")}
    return (romanise_word(spelling),)


def _parse(text: str) -> Iterable[tuple[str, list[str]]]:
    for line in text.strip().splitlines():
        label, _, spellings = line.partition(":")
        yield label.strip(), [label.strip(), *spellings.split()]


def _keys(spelling: str) -> set[str]:
    keys = set()
    for tokens in _romanisations(spelling):
        core = [t for t in tokens if t not in ARTICLES or len(tokens) == 1]
        if core:
            keys.add(compound_key("".join(core)))
    return keys


@dataclass(frozen=True)
class _Index:
    latin: dict[str, str]  # keys of spellings in Latin, Cyrillic, Greek...
    arabic: dict[str, str]  # keys of spellings in Arabic script (vowel-less: kept apart, see canonical)
    clashes: tuple[tuple[str, str, str], ...]


@cache
def _index() -> _Index:
    latin: dict[str, str] = {}
    arabic: dict[str, str] = {}
    clashes: list[tuple[str, str, str]] = []
    tables = (
        variant_table.SLAVIC_GREEK_ROMANCE,
        variant_table.ARABIC_TURKISH_PERSIAN_AFRICAN,
        variant_table.EAST_ASIAN,
        variant_table.ARABIC_FAMILY,
    )
    for table in tables:
        for label, spellings in _parse(table):
            for spelling in spellings:
                index = arabic if script_of(spelling[0]) == "Arab" else latin
                for key in _keys(spelling):
                    if index.setdefault(key, label) != label:
                        clashes.append((key, index[key], label))
    return _Index(latin, arabic, tuple(clashes))


def cluster_index() -> dict[str, str]:
    """Every folded spelling in the variant tables (Latin and other alphabets) and its cluster label."""
    return dict(_index().latin)


def clashes() -> tuple[tuple[str, str, str], ...]:
    """Spellings that two clusters claim, as (key, first label, second label); the first wins."""
    return _index().clashes


def _stripped_glued(token: str) -> str | None:
    index = _index().latin
    for prefix, minimum in _GLUED_PREFIXES:
        rest = token[len(prefix) :]
        if token.startswith(prefix) and len(rest) >= minimum:
            key = compound_key(rest)
            if key in index:
                return index[key]
            if key in variant_table.ARABIC_STEMS:
                return key
    return None


@lru_cache(maxsize=1 << 17)
def canonical(token: str, *, arabic: bool = False) -> str:
    """The canonical form of one romanised token (lower-case a-z): its cluster label, or its fold
    with unified surname endings. Deterministic; "" stays "".

    ``arabic`` says the token was transliterated from Arabic script. Such tokens are looked up
    among the Arabic-script spellings first, and Latin tokens never are: ناصر romanises to
    ``nasr``, which is how the different name نصر is written in Latin letters.
    """
    if not token:
        return ""
    index = _index()
    key = compound_key(token)
    if arabic and key in index.arabic:
        return index.arabic[key]
    if key in index.latin:
        return index.latin[key]
    stripped = _stripped_glued(token)
    if stripped is not None:
        return stripped
    if key.endswith(_SUFFIX_ENDS):
        for pattern, replacement in _SUFFIXES:
            key = pattern.sub(replacement, key)
    return key
