"""Transliteration of one written word to lower-case Latin letters, script by script.

anyascii (a kept library) covers every script, but where it is poor for names this module writes
the national or usual rule itself:

* Cyrillic: Ukrainian (KMU 2010 passport rule: Г h, И y, І i, Ї yi/i, Є ye/ie, Й y/i), Russian
  (ICAO 9303: Й i, Ю iu, Я ia, Ё e) and Bulgarian (2009 law: Ъ a, Щ sht, Х h) differ, so a
  language hint or the letters themselves choose the rule.
* Greek: ELOT 743 (ου ou, αυ av/af; anyascii gives "oy"), except that μπ, ντ, γκ, τζ are read as
  b, d, g, j and χ as h, as in the foreign names Greek clerks respell (Μοχαμμεντ = Mohammed).
* Arabic: vowel letters and hamza seats read as vowels, و/ي as w/y only where they are consonants,
  ة as a; the article ال and عبد stay separate tokens (anyascii gives "`bdllh" for عبدالله).
* Hebrew: ו/י as vowels inside a word, ב/כ/פ as v/kh/f after the first letter.
* Thai: leading vowels moved after their consonant, silenced letters (์) dropped, RTGS finals.
* Devanagari: the inherent a between consonants, श/ष as sh. Armenian ու as u.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from anyascii import anyascii

from . import han
from ._tables import pair_table

Lang = str | None  # "uk", "ru", "bg" or None (decided from the letters)


def script_of(ch: str) -> str:
    """A short script name for one character: Latn, Cyrl, Grek, Arab, Hebr, Thai, Deva, Armn, Hani,
    Hang, or Other."""
    cp = ord(ch)
    if cp < 0x250 or 0x1E00 <= cp <= 0x1EFF:
        return "Latn"
    if 0x400 <= cp <= 0x52F or 0x1C80 <= cp <= 0x1C8F:
        return "Cyrl"
    if 0x370 <= cp <= 0x3FF or 0x1F00 <= cp <= 0x1FFF:
        return "Grek"
    if 0x600 <= cp <= 0x6FF or 0x750 <= cp <= 0x77F or 0x8A0 <= cp <= 0x8FF:
        return "Arab"
    if 0x590 <= cp <= 0x5FF:
        return "Hebr"
    if 0xE00 <= cp <= 0xE7F:
        return "Thai"
    if 0x900 <= cp <= 0x97F:
        return "Deva"
    if 0x530 <= cp <= 0x58F:
        return "Armn"
    if han.is_han(ch):
        return "Hani"
    if han.is_hangul(ch):
        return "Hang"
    return "Other"


_NOT_LETTER = re.compile("[^a-z]+")


def _letters(text: str) -> str:
    return _NOT_LETTER.sub("", text.lower())


# --- Cyrillic ------------------------------------------------------------------------------
_CYR = pair_table(
    "а:a б:b в:v г:g ґ:g д:d е:e ё:e ж:zh з:z и:i і:i ї:i й:i к:k л:l м:m н:n о:o п:p р:r "
    "с:s т:t у:u ф:f х:kh ц:ts ч:ch ш:sh щ:shch ъ: ы:y ь: э:e ю:iu я:ia є:ie",
    " ",
)
_CYR_LANG = {
    "uk": pair_table("г:h и:y"),
    "bg": pair_table("й:y х:h щ:sht ъ:a ь:y ю:yu я:ya"),
    "ru": {},
}
_CYR_TABLES = {lang: {**_CYR, **changes} for lang, changes in _CYR_LANG.items()}
# Ukrainian letters written one way at the start of a word and another inside it (KMU 2010).
_UK_START = {"є": "ye", "ї": "yi", "й": "y", "ю": "yu", "я": "ya"}
_UK_MARKS, _RU_MARKS = re.compile("[іїєґІЇЄҐ]"), re.compile("[ыэёЫЭЁ]")
_BG_MARK = re.compile("[ъЪ](?![еёюяєїЕЁЮЯЄЇ]|$)")


def cyrillic_lang(text: str) -> Lang:
    """The language a Cyrillic text shows by its letters: "uk" (і ї є ґ), "ru" (ы э ё), "bg" (ъ
    before a consonant), or None."""
    if _UK_MARKS.search(text):
        return "uk"
    if _RU_MARKS.search(text):
        return "ru"
    return "bg" if _BG_MARK.search(text) else None


def _cyrillic(word: str, lang: Lang) -> str:
    word = word.lower()
    lang = lang or cyrillic_lang(word) or "ru"
    table = _CYR_TABLES.get(lang, _CYR)
    out = []
    for i, ch in enumerate(word):
        if lang == "uk" and i == 0 and ch in _UK_START:
            out.append(_UK_START[ch])
        elif lang == "uk" and ch == "г" and i > 0 and word[i - 1] == "з":
            out.append("gh")  # зг is zgh, so it is not read as ж
        else:
            latin = table.get(ch)
            out.append(latin if latin is not None else _letters(anyascii(ch)))
    text = "".join(out)
    if lang == "bg" and text.endswith("iya"):
        text = text[:-3] + "ia"
    return text


# --- Greek ---------------------------------------------------------------------------------
# Greek has no letters for b, d, hard g and j: μπ, ντ, γκ, τζ write them, at the start of every
# name and in every foreign name a Greek clerk spells (Ντομπρε = Dobre, Τζακ = Jack). ELOT 743
# writes mp, nt, gk, tz inside a word; the phonetic key maps those to the same classes anyway.
_GREEK_PAIRS = {"ου": "ou", "αι": "ai", "ει": "ei", "οι": "oi", "υι": "yi", "γγ": "ng", "γξ": "nx", "γχ": "nch",
                "τσ": "ts", "τζ": "j", "μπ": "b", "ντ": "d", "γκ": "g"}  # fmt: skip
_GREEK = pair_table(
    "α:a β:v γ:g δ:d ε:e ζ:z η:i θ:th ι:i κ:k λ:l μ:m ν:n ξ:x ο:o π:p ρ:r σ:s ς:s τ:t υ:y φ:f χ:h ψ:ps ω:o"
)
_VOICELESS = frozenset("θκξπσςτφχψ")


def _greek(word: str) -> str:
    chars: list[tuple[str, bool]] = []  # (base letter, has a diaeresis)
    for c in unicodedata.normalize("NFD", word.lower()):
        if unicodedata.combining(c):
            if c == "\u0308" and chars:
                chars[-1] = (chars[-1][0], True)
            continue
        chars.append((c, False))
    out, i = [], 0
    while i < len(chars):
        pair = chars[i][0] + (chars[i + 1][0] if i + 1 < len(chars) else "")
        split = i + 1 < len(chars) and chars[i + 1][1]
        if len(pair) == 2 and not split and pair in _GREEK_PAIRS:
            out.append(_GREEK_PAIRS[pair])
        elif len(pair) == 2 and not split and pair[0] in "αεη" and pair[1] == "υ":
            after = chars[i + 2][0] if i + 2 < len(chars) else ""
            out.append(_GREEK[pair[0]] + ("f" if not after or after in _VOICELESS else "v"))
        else:
            latin = _GREEK.get(chars[i][0])
            out.append(latin if latin is not None else _letters(anyascii(chars[i][0])))
            i += 1
            continue
        i += 2
    return "".join(out)


# --- Arabic --------------------------------------------------------------------------------
_ARABIC = pair_table(
    "ب:b ت:t ث:th ج:j ح:h خ:kh د:d ذ:dh ر:r ز:z س:s ش:sh ص:s ض:d ط:t ظ:z غ:gh ف:f ق:q ك:k "
    "ل:l م:m ن:n ه:h پ:p چ:ch ژ:zh گ:g ک:k ڤ:v ا:a أ:a إ:i آ:a ى:a ة:a ء: ؤ:u ئ:i ٱ:a "
    "\u064e:a \u064f:u \u0650:i \u0670:a"
)
_LONG_A = "اىةآ"


def _arabic_letters(word: str) -> str:
    """Romanise one Arabic-script word with no article: و and ي are consonants at the start, before
    a long a or after one, and vowels (u, i) elsewhere; ع is a at the start and silent inside."""
    letters = [c for c in word if c in _ARABIC or c in "وويیع"]
    out = []
    for i, c in enumerate(letters):
        nxt = letters[i + 1] if i + 1 < len(letters) else ""
        prev = letters[i - 1] if i else ""
        if c in "وي":
            consonant = i == 0 or (nxt != "" and nxt in _LONG_A + "\u064e\u064f\u0650") or prev in _LONG_A
            out.append(("w" if c == "و" else "y") if consonant else ("u" if c == "و" else "i"))
        elif c in "یي":
            out.append("y" if i == 0 or (nxt != "" and nxt in _LONG_A) or prev in _LONG_A else "i")
        elif c == "ع":
            out.append("a" if i == 0 else "")
        else:
            out.append(_ARABIC[c])
    return "".join(out)


def _arabic(word: str) -> tuple[str, ...]:
    """Tokens of one Arabic-script word: the article and عبد / أبو prefixes become their own tokens."""
    word = word.replace("\u0640", "")  # tatweel
    if word in ("الله", "اللة"):
        return ("allah",)
    if word.startswith("عبد") and len(word) > 4:
        return ("abd", *_arabic(word[3:]))
    for prefix in ("أبو", "ابو"):
        if word.startswith(prefix) and len(word) > 5:
            return ("abu", *_arabic(word[3:]))
    if word.startswith("بن") and len(word) > 4 and word[2] in "عاأإ":
        return ("bin", *_arabic(word[2:]))  # Maghrebi glued bin: بنعلي = Benali
    if word.startswith("ال") and len(word) > 3:
        return ("al", *_arabic(word[2:]))
    text = _arabic_letters(word)
    return (text,) if text else ()


# --- Hebrew --------------------------------------------------------------------------------
_HEBREW = pair_table("ג:g ד:d ה:h ז:z ח:kh ט:t ך:kh ל:l מ:m ם:m נ:n ן:n ס:s ף:f צ:ts ץ:ts ק:k ר:r ש:sh ת:t")
_HEBREW_START = {"א": ("a", ""), "ב": ("b", "v"), "כ": ("k", "kh"), "פ": ("p", "f"), "ע": ("a", "")}


def _hebrew(word: str) -> str:
    letters = [c for c in word if 0x5D0 <= ord(c) <= 0x5EA]
    out = []
    for i, c in enumerate(letters):
        nxt = letters[i + 1] if i + 1 < len(letters) else ""
        if c in _HEBREW_START:
            out.append(_HEBREW_START[c][0 if i == 0 else 1])
        elif c == "ו":
            # a consonant at the start, doubled, or before a vowel letter (לוי: Levi); else o (יוסף)
            out.append(
                "v" if i == 0 or (nxt != "" and nxt in "ויאה") or (i and letters[i - 1] == "ו") else "o"
            )
        elif c == "י":
            out.append("y" if i == 0 or (nxt != "" and nxt in "אוי") else "i")
        elif c == "ה" and i == len(letters) - 1 and i > 0:
            out.append("")  # a final he is a vowel letter (שרה: Sara, משה: Moshe)
        else:
            out.append(_HEBREW.get(c, ""))
    return "".join(out)


# --- Thai ----------------------------------------------------------------------------------
_THAI = pair_table(
    "ก:k ข:kh ฃ:kh ค:kh ฅ:kh ฆ:kh ง:ng จ:ch ฉ:ch ช:ch ซ:s ฌ:ch ญ:y ฎ:d ฏ:t ฐ:th ฑ:th ฒ:th ณ:n "
    "ด:d ต:t ถ:th ท:th ธ:th น:n บ:b ป:p ผ:ph ฝ:f พ:ph ฟ:f ภ:ph ม:m ย:y ร:r ล:l ว:w ศ:s ษ:s ส:s ห:h ฬ:l "
    "อ:o ฮ:h ะ:a ั:a า:a ำ:am ิ:i ี:i ึ:ue ื:ue ุ:u ู:u เ:e แ:ae โ:o ใ:ai ไ:ai ฤ:rue ฦ:lue"
)
_THAI_FINAL = pair_table(
    "ก:k ข:k ค:k ฆ:k จ:t ช:t ซ:t ฌ:t ฎ:t ฏ:t ฐ:t ฑ:t ฒ:t ด:t ต:t ถ:t ท:t ธ:t ศ:t ษ:t ส:t "
    "บ:p ป:p พ:p ฟ:p ภ:p ญ:n ณ:n น:n ล:n ฬ:n ม:m ง:ng ย:i ว:o"
)
_THAI_COMBOS = {"เา": "ao", "เีย": "ia", "เือ": "uea", "เิ": "oe", "เะ": "e", "แะ": "ae", "โะ": "o", "ัว": "ua"}
_THAI_LEADING = frozenset("เแโใไ")
_THAI_SONORANT = "งญนมยรลว"
_THAI_SIGNS = frozenset("ะัาำิีึืุู็่้๊๋ๅ")


def _thai_consonant(c: str) -> bool:
    return "\u0e01" <= c <= "\u0e2e"


def _thai_order(word: str) -> list[str]:
    """Characters in spoken order: leading vowels after their consonant (cluster), silenced letters out."""
    chars = [c for c in word if c not in "่้๊๋็ๆ"]
    while "์" in chars:  # thanthakhat silences the consonant (and its vowel) before it
        k = chars.index("์")
        j = k - 1
        while j > 0 and chars[j] in _THAI_SIGNS:
            j -= 1
        del chars[j : k + 1]
    out, i = [], 0
    while i < len(chars):
        c = chars[i]
        if c in _THAI_LEADING and i + 1 < len(chars) and _thai_consonant(chars[i + 1]):
            second = chars[i + 2] if i + 2 < len(chars) else ""
            cluster = second != "" and (
                (second in "รลว" and i + 3 < len(chars)) or (chars[i + 1] == "ห" and second in _THAI_SONORANT)
            )
            take = 2 if cluster else 1
            out.extend(chars[i + 1 : i + 1 + take])
            out.append(c)
            i += 1 + take
            continue
        out.append(c)
        i += 1
    return out


def _thai(word: str) -> str:
    chars = _thai_order(word)
    text = "".join(chars)
    for combo, latin in _THAI_COMBOS.items():
        text = text.replace(combo, "\x00" + latin + "\x00")
    chars = [c for c in text]
    out = []
    for i, c in enumerate(chars):
        prev = chars[i - 1] if i else ""
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if not _thai_consonant(c):
            out.append(c if c.isascii() else _THAI.get(c, ""))
            continue
        if c == "ห" and nxt != "" and nxt in _THAI_SONORANT:
            continue  # a leading ห only marks the tone
        if c == "อ" and i == 0:
            out.append("a" if _thai_consonant(nxt) else "")  # the silent vowel carrier
            continue
        if i == 0 and _thai_consonant(nxt) and nxt not in "รลวอ":
            # no written vowel after the first consonant: an implicit o before a final (สม: som),
            # an implicit a before an open syllable (ธนา: thana)
            after = chars[2] if len(chars) > 2 else ""
            out.append(_THAI[c] + ("a" if after != "" and after in _THAI_SIGNS else "o"))
            continue
        after_vowel = bool(prev) and (prev in _THAI_SIGNS or prev == "\x00" or prev in _THAI_LEADING)
        if (
            after_vowel
            and nxt
            and i + 2 < len(chars)
            and (chars[i + 2] in _THAI_LEADING or chars[i + 2] == "\x00")
        ):
            after_vowel = False  # the first consonant of a cluster whose vowel was written before it
        if c == "ร" and _thai_consonant(prev) and (not nxt or _thai_consonant(nxt)):
            # พร = porn / phon, กร = korn: the implicit o and a final r; before a leading ห, a cluster
            out.append("ro" if nxt == "ห" else "orn")
        elif c in _THAI_FINAL and (not nxt or (after_vowel and _thai_consonant(nxt))) and i > 0:
            out.append(_THAI_FINAL[c])
        else:
            out.append(_THAI[c])
    return _letters("".join(out))


# --- Devanagari, Armenian ------------------------------------------------------------------
def _deva_consonant(c: str) -> bool:
    return "\u0915" <= c <= "\u0939" or "\u0958" <= c <= "\u095f"


def _devanagari(word: str) -> str:
    """anyascii per letter, with श/ष as sh and the inherent a between two consonants (शर्मा: sharma)."""
    out = []
    for i, c in enumerate(word):
        nxt = word[i + 1] if i + 1 < len(word) else ""
        out.append("sh" if c in "शष" else "n" if c == "\u0902" else _letters(anyascii(c)))
        if _deva_consonant(c) and (_deva_consonant(nxt) or "\u0904" <= nxt <= "\u0914"):
            out.append("a")
    return "".join(out)


def _armenian(word: str) -> str:
    return _letters(
        anyascii(word.replace("ու", "u").replace("Ու", "u").replace("ՈՒ", "u").replace("և", "ev"))
    )


# --- dispatch ------------------------------------------------------------------------------
def _runs(word: str) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for ch in word:
        script = script_of(ch)
        if runs and runs[-1][0] == script:
            runs[-1] = (script, runs[-1][1] + ch)
        else:
            runs.append((script, ch))
    return runs


_SIMPLE: dict[str, Callable[[str, Lang], str]] = {
    "Cyrl": _cyrillic,
    "Grek": lambda word, _: _greek(word),
    "Hebr": lambda word, _: _hebrew(word),
    "Thai": lambda word, _: _thai(word),
    "Deva": lambda word, _: _devanagari(word),
    "Armn": lambda word, _: _armenian(word),
}


@lru_cache(maxsize=1 << 17)
def romanise_word(word: str, lang: Lang = None) -> tuple[str, ...]:
    """Lower-case Latin tokens (letters a-z only) for one written word with no spaces.

    Usually one token; an Arabic word with the article or عبد gives several, and so does a
    Han or Hangul name with its family name in front. ``lang`` picks the Cyrillic rule.
    """
    if word.isascii():
        latin = _letters(word)
        return (latin,) if latin else ()
    tokens: list[str] = []
    glued = ""
    for script, run in _runs(word):
        if script == "Arab":
            parts = _arabic(run)
            if parts:
                tokens.extend([glued + parts[0], *parts[1:]] if glued else parts)
                glued = ""
            continue
        if script in ("Hani", "Hang"):
            tokens.extend(t for t in (glued, *han.han_name_tokens(run)) if t)
            glued = ""
            continue
        convert = _SIMPLE.get(script)
        glued += convert(run, lang) if convert else _letters(anyascii(run))
    if glued:
        tokens.append(glued)
    return tuple(tokens)
