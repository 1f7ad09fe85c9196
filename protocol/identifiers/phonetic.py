"""Spelling fold, consonant skeleton and phonetic key of one romanised name token.

All three take a token of lower-case ASCII letters (the output of :mod:`.scripts`) and are pure
string rewrites, applied in a fixed order. They are deliberately symmetric: the same rules run on
both nodes and on both sides of a comparison, so they only ever *merge* spellings.

* :func:`fold` removes the differences between the usual ways of writing one name in Latin letters:
  German, Polish, French, English and passport romanisations of Cyrillic (Щ shch/szcz/schtsch,
  Ч ch/cz/tsch/tch, Ш sh/sz/sch, Ж zh, Х kh/h, Й/Ю/Я/Є y/j/i), doubled letters, silent final h.
* :func:`skeleton` keeps only the consonants, because Arabic and Hebrew script write no short vowels:
  مريم romanises to ``mrim`` and the clerk abroad wrote Maryam or Mariam; all give ``mrm``.
* :func:`phonetic_key` maps consonants to sound classes, in the spirit of the Daitch-Mokotoff
  Soundex (which codes all sibilants and affricates alike and B/P/F/V/W alike): it survives
  Ukrainian Г = h against Russian Г = g, de Ц = z against en ts, Greek ΜΠ = mp for a Latin b.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .han import PINYIN

VOWELS = frozenset("aeiou")

# Serbo-Croatian -ić (Petrović), Polish -cki/-cka (Wysocki = Vysotskyi): before "ck" becomes "k".
_ENDINGS = ((re.compile(r"ci?$"), "ch"), (re.compile(r"ck([ia])$"), r"tsk\1"))
# One left-to-right pass, longest match first, so "szcz" is never read as "sz" + "cz".
_GROUPS = {
    "schtsch": "shch", "shtsch": "shch", "chtch": "shch", "szcz": "shch", "shch": "shch",
    "tsch": "ch", "dsch": "dzh", "dzh": "dzh", "sch": "sh", "tch": "ch",
    "cz": "ch", "sz": "sh", "zh": "zh", "ch": "ch", "sh": "sh", "kh": "h", "gh": "g", "th": "t",
    "ck": "k", "tz": "ts", "sht": "shch", "ou": "u", "oo": "u", "ae": "a", "ue": "u", "oe": "o",
    "q": "k", "x": "ks", "w": "v", "j": "y",
}  # fmt: skip
_GROUP_RE = re.compile("|".join(sorted(_GROUPS, key=len, reverse=True)))
_VOWEL_GROUPS = {"ou": "u", "oo": "u", "ue": "u", "oe": "o"}
_VOWEL_GROUP_RE = re.compile("|".join(_VOWEL_GROUPS))
_HARD_C = re.compile(r"c(?![eiyh])")  # c before a, o, u or a consonant is k (Romanian Covalenco)
_GLIDES = re.compile(r"[iy]+")
_YE_AFTER_VOWEL = re.compile(r"(?<=[aeiou])ye|^ye")  # Sergeyev = Sergeev, Yelena = Elena
_DOUBLE = re.compile(r"(.)\1+")
_FINAL_H = re.compile(r"(?<=[aeiou])h+$")


def _group(match: re.Match[str]) -> str:
    return _GROUPS[match.group(0)]


def _vowel_group(match: re.Match[str]) -> str:
    return _VOWEL_GROUPS[match.group(0)]


def _glide(match: re.Match[str]) -> str:
    """A run of i/y: a glide "y" before a vowel, a vowel "i" elsewhere (Юлія: Yuliya = Iuliia = Julija)."""
    text, end = match.string, match.end()
    return "y" if end < len(text) and text[end] in VOWELS else "i"


@lru_cache(maxsize=1 << 17)
def fold(token: str) -> str:
    """The romanisation-neutral spelling of a lower-case ASCII token ("" stays "").

    Rules, in order: -ić/-ci -> -ich, -cki/-cka -> -tski/-tska; letter groups (szcz, schtsch,
    chtch, sht -> shch; tsch, tch, cz -> ch; sch, sz -> sh; kh -> h; gh -> g; th -> t; ck, q -> k;
    x -> ks; w -> v; j -> y; ou, oo -> u; ae -> a; ue -> u; oe -> o); c before a/o/u or a
    consonant -> k; final ee -> i; runs of i/y -> y before a vowel, else i; ye at the start or
    after a vowel -> e; ou, oo, ue, oe again (the steps before can make new ones); doubled
    letters -> one; final h after a vowel dropped.

    A single pinyin syllable only has w written v (Ванг = Wang): pinyin is one standard, and the
    other rules would merge Zhou with Zhu and Jiang with Yang.
    """
    if token in PINYIN:
        return token.replace("w", "v")
    text = token
    if text.endswith(("c", "ci", "cki", "cka")):
        for pattern, replacement in _ENDINGS:
            text = pattern.sub(replacement, text)
    text = _GROUP_RE.sub(_group, text)
    if "c" in text:
        text = _HARD_C.sub("k", text)
    if text.endswith("ee"):
        text = text[:-2] + "i"
    if "i" in text or "y" in text:
        text = _GLIDES.sub(_glide, text)
        text = _YE_AFTER_VOWEL.sub("e", text)
    text = _VOWEL_GROUP_RE.sub(_vowel_group, text)  # pairs the steps above made
    text = _DOUBLE.sub(r"\1", text)
    return _FINAL_H.sub("", text) if text.endswith("h") else text


_NOT_CONSONANT = re.compile(r"[aeiouy]+")


@lru_cache(maxsize=1 << 17)
def skeleton(token: str) -> str:
    """The consonants of a folded token: vowels and y dropped, doubles collapsed (a silent final h
    after a vowel is already gone in the fold: Fatimah = Fatima = فاطمة, all ``ftm``).

    A token of vowels only keeps its first letter, so no token vanishes ("aya" -> "a").
    """
    text = _DOUBLE.sub(r"\1", _NOT_CONSONANT.sub("", token))
    return text or token[:1]


# Sound classes of the phonetic key. Nasals before a stop of the same place vanish first
# (Greek ντ = d and μπ = b: Ντομπρε = Dobre), then each letter group maps to one class letter.
_NASAL_STOP = re.compile(r"m(?=[pb])|n(?=[td])")
_CLASSES = {
    "shch": "s", "dzh": "s", "sh": "s", "ch": "s", "zh": "s", "ts": "s", "dz": "s",
    "s": "s", "z": "s", "c": "s",
    "g": "h", "h": "h", "k": "k", "t": "t", "d": "t",
    "p": "p", "ph": "p", "b": "p", "f": "p", "v": "p",
    "m": "m", "n": "n", "l": "l", "r": "r",
    "a": "", "e": "", "i": "", "o": "", "u": "", "y": "",
}  # fmt: skip
_CLASS_RE = re.compile("|".join(sorted(_CLASSES, key=len, reverse=True)))


@lru_cache(maxsize=1 << 17)
def phonetic_key(token: str) -> str:
    """A sound-class key of a folded token: "a" for a leading vowel or glide, then one letter per
    consonant class (s: all sibilants and affricates; h: g and h; k; t: t, d; p: p, b, f, v;
    m, n, l, r; ph is p), vowels dropped, repeats collapsed. Never empty.
    """
    if not token:
        return ""
    head = "a" if token[0] in "aeiouy" else ""
    text = _NASAL_STOP.sub("", token.lstrip("aeiouy"))
    classes = _CLASS_RE.sub(lambda m: _CLASSES[m.group(0)], text)
    key = head + _DOUBLE.sub(r"\1", classes)
    return key or "a"
