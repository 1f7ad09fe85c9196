"""Comparable forms of a person's name, from the three HTCDS name fields as a clerk wrote them.

Steps for each field: Unicode NFKC; placeholders ("N/A", "FNU", "невідомо") and titles out;
apostrophes out (O'Brien = OBrien, Мар'яна = Марʼяна); words split on anything that is not a
letter or a mark (spaces, hyphens, dots, digits); each word transliterated by :mod:`.scripts`;
Latin pinyin syllables joined into one given name ("Xiu Ying" = "Xiu-Ying" = 秀英); particles
(al-, bin, van der, de la, ...) kept in :attr:`NameForms.tokens` and left out of every other form;
Abd- and Abu- compounds and Mc/Mac joined; then each token canonicalised by :mod:`.variants`, and
its consonant skeleton and phonetic key taken from that canonical form (:mod:`.phonetic`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from . import han
from ._tables import word_set
from .phonetic import phonetic_key, skeleton
from .scripts import Lang, cyrillic_lang, romanise_word, script_of
from .variants import ABD_FORMERS, ABU_FORMERS, ARTICLES, canonical

PARTICLES = word_set("""al el ul il ar as ash ad at az an ad bin ibn bint ben bent ould van von vom der den de del della delle dei
    degli di da dos das do du des la le lo ter ten zu zur y""")
TITLES = word_set("""mr mrs ms miss mister dr prof sir madam mme mlle herr frau sr sra srta haji hajji hadji alhaji alhaja hajia
    fnu lnu unknown unk noname""")
PLACEHOLDERS = word_set(
    """n/a na n.a. nn n.n. - -- ? ?? x xx xxx xxxx unknown unk none null nil noname fnu lnu inconnu inconnue
    desconocido desconocida sconosciuto unbekannt невідомо неизвестно невядома"""
) | {"no name", "not known", "name unknown", "غير معروف", "без имени"}
_APOSTROPHES = dict.fromkeys(map(ord, "'’ʼ`´‘ʻʹ"), None)


@dataclass(frozen=True, slots=True)
class NameForms:
    """A person's name in comparable forms. Every tuple holds lower-case ASCII tokens.

    ``tokens``: transliterated tokens in written order, particles included; ``sorted_tokens``:
    the same, sorted (order-free, so swapped given and family names compare equal);
    ``canonical_tokens``: particles out, variant spellings mapped to one label (written order);
    ``skeletons`` and ``phonetic``: the consonant skeleton and sound-class key of each canonical
    token; ``given``, ``middle``, ``family``: the canonical tokens of each field as written (not
    corrected for swaps); ``particles``: the particles that were left out.
    """

    tokens: tuple[str, ...]
    sorted_tokens: tuple[str, ...]
    canonical_tokens: tuple[str, ...]
    skeletons: tuple[str, ...]
    phonetic: tuple[str, ...]
    given: tuple[str, ...]
    middle: tuple[str, ...]
    family: tuple[str, ...]
    particles: tuple[str, ...]

    @property
    def sorted_canonical(self) -> tuple[str, ...]:
        """The canonical tokens, sorted."""
        return tuple(sorted(self.canonical_tokens))

    @property
    def sorted_skeletons(self) -> tuple[str, ...]:
        """The skeletons, sorted."""
        return tuple(sorted(self.skeletons))

    @property
    def sorted_phonetic(self) -> tuple[str, ...]:
        """The phonetic keys, sorted."""
        return tuple(sorted(self.phonetic))

    def __bool__(self) -> bool:
        return bool(self.canonical_tokens)


@dataclass(frozen=True, slots=True)
class _Field:
    tokens: tuple[str, ...]
    canonical: tuple[str, ...]
    particles: tuple[str, ...]
    skeletons: tuple[str, ...] = ()
    phonetic: tuple[str, ...] = ()

    @classmethod
    def of(cls, tokens: tuple[str, ...], canon: tuple[str, ...], particles: tuple[str, ...]) -> _Field:
        return cls(
            tokens, canon, particles, tuple(skeleton(c) for c in canon), tuple(phonetic_key(c) for c in canon)
        )


_EMPTY_FIELD = _Field((), (), ())


_ASCII_WORD = re.compile(r"[A-Za-z]+")


def _words(text: str) -> list[str]:
    """Runs of letters and combining marks; everything else separates."""
    if text.isascii():
        return _ASCII_WORD.findall(text)
    words, current = [], []
    for ch in text:
        if unicodedata.category(ch)[0] in "LM":
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


# Where a token came from: plain ASCII or another alphabet, Latin with diacritics (Vietnamese Lê is
# a family name, not the particle le), or Arabic script (looked up among Arabic spellings).
PLAIN, ACCENTED, ARABIC = "plain", "accented", "arabic"


def _origin(word: str) -> str:
    script = script_of(word[0])
    if script == "Arab":
        return ARABIC
    return ACCENTED if script == "Latn" and not word.isascii() else PLAIN


def _romanised(text: str, lang: Lang, alone: bool) -> list[tuple[str, str]]:
    """(token, origin) for each token of a field, titles and placeholders out."""
    out: list[tuple[str, str]] = []
    for word in _words(text):
        if alone and len(word) == 2 and all(han.is_han(c) or han.is_hangul(c) for c in word):
            tokens = han.split_two(word)
        else:
            tokens = romanise_word(word, lang)
        origin = _origin(word)
        out.extend((t, origin) for t in tokens if t and t not in TITLES)
    return out


def _joined(former: str, following: list[str]) -> str:
    """An Abd-/Abu-/Mac- compound of ``former`` and the words after it (articles skipped over)."""
    return ("mac" if former == "mc" else former) + "".join(following)


def _canonicalise(pairs: list[tuple[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    canon: list[str] = []
    particles: list[str] = []
    i, n = 0, len(pairs)
    while i < n:
        token, origin = pairs[i]
        arabic = origin == ARABIC
        if token in ABD_FORMERS or token in ABU_FORMERS or token in ("mc", "mac"):
            j = i + 1
            while j < n - 1 and pairs[j][0] in ARTICLES:
                j += 1
            if j < n:
                joined = _joined(token, [p[0] for p in pairs[i + 1 : j + 1]])
                canon.append(canonical(joined, arabic=arabic))
                i = j + 1
                continue
        if origin != ACCENTED and token in PARTICLES and i + 1 < n:
            particles.append(token)
        else:
            spelled = "mac" + token[2:] if token.startswith("mc") and len(token) > 3 else token
            canon.append(canonical(spelled, arabic=arabic))
        i += 1
    return tuple(canon), tuple(particles)


@lru_cache(maxsize=1 << 18)
def _field(text: str, lang: Lang, others: bool) -> _Field:
    text = unicodedata.normalize("NFKC", text).strip()
    if not text or text.lower() in PLACEHOLDERS:
        return _EMPTY_FIELD
    pairs = _romanised(text.translate(_APOSTROPHES), lang, alone=not others)
    if others and 2 <= len(pairs) <= 3 and han.all_pinyin(tuple(t for t, _ in pairs)):
        pairs = [(t, PLAIN) for t in han.join_pinyin(tuple(t for t, _ in pairs))]
    tokens = tuple(t for t, _ in pairs)
    if others and all(origin != ACCENTED and t in PARTICLES for t, origin in pairs):
        return _Field(tokens, (), tokens)  # "van der" alone in the middle name field
    canon, particles = _canonicalise(pairs)
    return _Field.of(tokens, canon, particles)


def _person_lang(texts: tuple[str, str, str], lang: Lang) -> Lang:
    if lang is not None or all(t.isascii() for t in texts):
        return lang
    return cyrillic_lang(" ".join(texts))


def name_forms(first: str | None, middle: str | None, second: str | None, *, lang: Lang = None) -> NameForms:
    """The comparable forms of a name given as HTCDS prs_FirstName, prs_MiddleName, prs_SecondName.

    Any field may be None or empty, in any script, and the clerk may have swapped them.
    ``lang`` ("uk", "ru" or "bg") chooses the romanisation of Cyrillic; by default the letters
    decide (і ї є ґ: Ukrainian; ы э ё: Russian; ъ before a consonant: Bulgarian; else Russian
    rules). Never raises for any string; deterministic; results of each field are cached.
    """
    texts = (first or "", middle or "", second or "")
    person_lang = _person_lang(texts, lang)
    filled = [bool(t.strip()) for t in texts]
    fields = [
        _field(text, person_lang, sum(filled) > 1) if full else _EMPTY_FIELD
        for text, full in zip(texts, filled, strict=True)
    ]
    a, b, c = fields
    tokens = a.tokens + b.tokens + c.tokens
    return NameForms(
        tokens=tokens,
        sorted_tokens=tuple(sorted(tokens)),
        canonical_tokens=a.canonical + b.canonical + c.canonical,
        skeletons=a.skeletons + b.skeletons + c.skeletons,
        phonetic=a.phonetic + b.phonetic + c.phonetic,
        given=a.canonical,
        middle=b.canonical,
        family=c.canonical,
        particles=a.particles + b.particles + c.particles,
    )
