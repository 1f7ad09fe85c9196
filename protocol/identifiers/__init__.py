"""Normalisation of the identifying fields of a person record into comparable forms.

Names in any script (:func:`name_forms`), birth dates (:func:`parse_birthdate`,
:func:`date_agreement`), document numbers with their issuing country, phone numbers (E.164) and
e-mail addresses; and the exact selectors built from them for private set intersection
(:func:`exact_selectors`). Pure functions: no I/O, no clock; the same input gives the same output
on every node running the same versions of this package, anyascii and phonenumbers.
"""

from __future__ import annotations

from .dates import LEVELS, BirthDate, birth_year_window, date_agreement, parse_birthdate
from .documents import document_fuzzy_key, normalise_country, normalise_document
from .emails import normalise_email
from .names import NameForms, name_forms
from .phones import iso2_region, normalise_phone, normalise_phones
from .phonetic import fold, phonetic_key, skeleton
from .scripts import cyrillic_lang, romanise_word
from .selectors import (
    KINDS,
    SELECTOR_DOMAIN,
    Selector,
    cyrillic_hint,
    encode_selector,
    exact_selectors,
    name_dob_payloads,
)
from .variants import canonical

__all__ = [
    "KINDS",
    "LEVELS",
    "SELECTOR_DOMAIN",
    "BirthDate",
    "NameForms",
    "Selector",
    "birth_year_window",
    "canonical",
    "cyrillic_hint",
    "cyrillic_lang",
    "date_agreement",
    "document_fuzzy_key",
    "encode_selector",
    "exact_selectors",
    "fold",
    "iso2_region",
    "name_dob_payloads",
    "name_forms",
    "normalise_country",
    "normalise_document",
    "normalise_email",
    "normalise_phone",
    "normalise_phones",
    "parse_birthdate",
    "phonetic_key",
    "romanise_word",
    "skeleton",
]
