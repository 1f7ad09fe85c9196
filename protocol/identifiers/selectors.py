"""Exact selectors of a person record, for private set intersection.

A selector is a byte string that two nodes derive identically from the same fact, whatever script
or format their clerks used: ``b"palermo/selector/v1\\x00" + kind + b"\\x00" + payload``. The
prefix separates Palermo's selectors from any other hashed data and carries the version of these
rules: a change to any normalisation that alters a payload must bump it, or two nodes on different
versions would silently stop matching. Payloads are ASCII text with ":" between their parts; the
name and date parts contain no ":", so no two different facts share an encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .dates import BirthDate, parse_birthdate
from .documents import normalise_document
from .emails import normalise_email
from .names import name_forms
from .phones import normalise_phones
from .scripts import Lang, cyrillic_lang

SELECTOR_DOMAIN = b"palermo/selector/v1\x00"
KINDS = ("document", "phone", "email", "name_dob")
NAME_FORMS = ("skeleton", "canonical")  # the first that the name allows
MIN_NAME_TOKENS = 2  # one name and a birth date is too common a combination to be evidence
MIN_SKELETON_LETTERS = 4  # "l s" (Lei Su, or Aisha Benali) is no evidence: short skeletons collide

# Citizenships whose Cyrillic names follow the Russian, Ukrainian or Bulgarian rule.
_CYRILLIC_BY_CITIZENSHIP = {"UKR": "uk", "BGR": "bg", "RUS": "ru", "BLR": "ru", "KAZ": "ru", "KGZ": "ru"}


@dataclass(frozen=True, slots=True)
class Selector:
    """One exact selector: its ``kind``, its canonical ``value`` (the bytes PSI hashes), and the
    name ``form`` of a name_dob selector ("skeleton" or "canonical")."""

    kind: str
    value: bytes
    form: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"expected a selector kind in {KINDS}, got {self.kind!r}")
        if not self.value.startswith(SELECTOR_DOMAIN + self.kind.encode("ascii") + b"\x00"):
            raise ValueError("selector value does not carry its domain prefix and kind")


def encode_selector(kind: str, payload: str) -> bytes:
    """The canonical bytes of a selector: domain prefix, kind, NUL, payload (UTF-8)."""
    return SELECTOR_DOMAIN + kind.encode("ascii") + b"\x00" + payload.encode("utf-8")


def _values(field: Any) -> list[str]:
    """A multi-valued HTCDS field as a list: a list as it is, a ";"-joined string split."""
    if field is None:
        return []
    if isinstance(field, list | tuple):
        return [str(v).strip() for v in field if str(v).strip()]
    return [v.strip() for v in str(field).split(";") if v.strip()]


def _text(person: Mapping[str, Any], column: str) -> str:
    value = person.get(column)
    return value.strip() if isinstance(value, str) else ""


def cyrillic_hint(citizenship: Iterable[str]) -> Lang:
    """The Cyrillic romanisation rule that a person's citizenships point to, or None when they
    point to none or to more than one."""
    langs = {
        _CYRILLIC_BY_CITIZENSHIP[c.upper()] for c in citizenship if c.upper() in _CYRILLIC_BY_CITIZENSHIP
    }
    return langs.pop() if len(langs) == 1 else None


def name_dob_payloads(
    first: str | None, second: str | None, birth: BirthDate | None, *, lang: Lang = None
) -> list[tuple[str, str]]:
    """(form, payload) of the name-and-birth-date selector of a person: at most one.

    None unless the date is full (not a placeholder) and the name has at least two tokens. The form
    is the sorted consonant skeletons, which meet every canonical match and the vowel-less Arabic
    spellings too; when the skeletons hold fewer than four letters in all ("l s" for Lei Su), the
    sorted canonical tokens instead. One selector a person, not one per form and date reading: each
    costs four scalar multiplications a round, and the encodings already compare names and dates
    with every variant (day and month exchanged included), so further forms found no extra pair
    (protocol/SPEC.md section 12.2). Middle names are left out: clerks abroad seldom write
    patronymics.
    """
    if birth is None or not birth.is_full:
        return []
    forms = name_forms(first, None, second, lang=lang)
    if len(forms.canonical_tokens) < MIN_NAME_TOKENS:
        return []
    if sum(map(len, forms.skeletons)) >= MIN_SKELETON_LETTERS:
        form, name = "skeleton", forms.sorted_skeletons
    else:
        form, name = "canonical", forms.sorted_canonical
    return [(form, f"{form}:{' '.join(name)}:{birth.iso()}")]


def exact_selectors(person: Mapping[str, Any], *, default_region: str | None = None) -> list[Selector]:
    """Every exact selector of one HTCDS person row (prs_* columns), without repeats.

    Documents need prs_IdentityCountry; national phone numbers are read in ``default_region``
    (ISO alpha-3, usually the node's country; None accepts international numbers only). Raises
    :class:`~protocol.errors.InvalidRequestError` only for an unknown ``default_region``.
    """
    out: list[Selector] = []
    document = normalise_document(_text(person, "prs_IdentityNumber"), _text(person, "prs_IdentityCountry"))
    if document:
        out.append(Selector("document", encode_selector("document", document)))
    phones: list[str] = []
    for column in ("prs_MobilePhone", "prs_HomePhone"):
        for number in normalise_phones(_text(person, column), default_region=default_region):
            if number not in phones:
                phones.append(number)
    out.extend(Selector("phone", encode_selector("phone", number)) for number in phones)
    email = normalise_email(_text(person, "prs_Email"))
    if email:
        out.append(Selector("email", encode_selector("email", email)))
    first, second = _text(person, "prs_FirstName"), _text(person, "prs_SecondName")
    written = " ".join((first, _text(person, "prs_MiddleName"), second))
    lang = cyrillic_lang(written) or cyrillic_hint(_values(person.get("prs_Citizenship")))
    birth = parse_birthdate(_text(person, "prs_Birthdate"))
    for form, payload in name_dob_payloads(first, second, birth, lang=lang):
        out.append(Selector("name_dob", encode_selector("name_dob", payload), form=form))
    return out
