"""Identity and travel document numbers, scoped by the country that issued them.

The exact form (for private set intersection) keeps every letter and digit as written, upper-case,
without separators or a leading label ("No.", "N°", "Nr."); it never guesses, because a selector
that folds O into 0 would join two different documents. :func:`document_fuzzy_key` is the
forgiving form for fuzzy encodings: the usual keying and OCR confusions (O/Q/D-0, I/L-1, Z-2,
S-5, B-8, G-6) folded and leading zeros dropped (spreadsheets drop them).
"""

from __future__ import annotations

import re
import unicodedata

MIN_LENGTH, MAX_LENGTH = 5, 24
# A label in front of the number: "No. 123", "N° 123", "Nº123", "Nr: 123", "#123", "No 123".
_LABEL = re.compile(r"^(?:N[°º]|(?:NO|NR|NUM|NUMBER)(?=[\s.:#°º])|#)[\s.:#°º]*")
_SEPARATORS = re.compile(r"[\s\-./_,:;'\"()\[\]]+")
_COUNTRY = re.compile(r"^[A-Z]{3}$")
_PLACEHOLDER = re.compile(r"^(?:(.)\1+|UNKNOWN|NONE|NULL|NA|NIL|TBD|PENDING|NOTKNOWN|NODOCUMENT|XXX+)$")
_FUZZY = str.maketrans("OQDILZSBG", "000112586")


def _clean_number(number: str) -> str | None:
    text = _LABEL.sub("", number.strip().upper())  # before NFKC, which turns º into o
    text = _LABEL.sub("", unicodedata.normalize("NFKC", text).upper().strip())
    text = _SEPARATORS.sub("", text)
    if not text.isascii() or not text.isalnum():
        return None
    if not MIN_LENGTH <= len(text) <= MAX_LENGTH or _PLACEHOLDER.match(text):
        return None
    return text


def normalise_country(country: str | None) -> str | None:
    """An ISO 3166-1 alpha-3 code (or ICAO code such as XXA) in upper case, or None if malformed."""
    if not country:
        return None
    code = country.strip().upper()
    return code if _COUNTRY.match(code) else None


def normalise_document(number: str | None, country: str | None) -> str | None:
    """The exact selector value of a document number: ``"NLD:AB1234567"``.

    Upper case; spaces, dashes, dots and slashes removed; a leading "No."/"N°"/"Nr." label removed
    (a bare "NO" prefix only when a space or dot follows it, since real numbers may begin with NO).
    Returns None when the number or the issuing country is missing or malformed, the number is
    shorter than 5 or longer than 24 characters, or it is a placeholder (UNKNOWN, 000000, XXXX).
    A number without its issuing country is not a selector: numbers repeat across countries.
    """
    code = normalise_country(country)
    if code is None or not number:
        return None
    text = _clean_number(number)
    return f"{code}:{text}" if text else None


def document_fuzzy_key(number: str | None, country: str | None) -> str | None:
    """A forgiving key of a document number for fuzzy matching (never for PSI): the exact form with
    O/Q/D->0, I/L->1, Z->2, S->5, B->8, G->6 and leading zeros dropped. None as for the exact form."""
    exact = normalise_document(number, country)
    if exact is None:
        return None
    code, _, text = exact.partition(":")
    folded = text.translate(_FUZZY).lstrip("0")
    return f"{code}:{folded or '0'}"
