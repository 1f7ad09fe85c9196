"""What matching needs of one person: encoder input, a blocking year and the exact selectors.

A person is a mapping of HTCDS ``prs_*`` columns as the local store holds them (values may be None,
empty or of the wrong type; ``prs_Citizenship`` a list of ISO alpha-3 codes or a ";"-joined string).
Every normalisation comes from :mod:`protocol.identifiers`, so that both nodes of a pair compute the
same values from the same facts, whatever script or format their clerks used. Nothing here raises on
messy input: a value that cannot be read is simply absent.

Names are encoded in the forms that docs/identifiers.md measured to tell people apart across scripts:
per name field the canonical tokens *and* their consonant skeletons, both into one filter (Arabic
script writes no short vowels, so مريم meets Maryam only by its skeleton).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocol.encoding.comparisons import PRESENCE
from protocol.errors import InvalidRequestError
from protocol.identifiers import (
    BirthDate,
    Selector,
    cyrillic_hint,
    cyrillic_lang,
    exact_selectors,
    iso2_region,
    name_forms,
    parse_birthdate,
    skeleton,
)

FINGERPRINT_PERSON = b"palermo.features"  # BLAKE2b personalisation, exactly 16 bytes
_COUNTRY = re.compile(r"^[A-Z]{3}$")
NUMBER_COLUMNS = ("prs_IdentityNumber", "prs_MobilePhone", "prs_HomePhone")
UNKNOWN_GENDER = frozenset({"nonspecifiedunknown", "unknown"})


@dataclass(frozen=True)
class Features:
    """One person, ready for matching.

    ``fields`` maps layout field names (``given``, ``family``, ``birth``, ``citizenship``,
    ``place``, ``gender``, and ``has_document``, ``has_phone``, ``has_email`` with the constant
    value "1" when the person has such a selector) to normalised values, absent fields left out;
    ``birth_year`` is the year blocking compares (None when unknown or a 1 January placeholder,
    whose year is only a guess); ``selectors`` are the exact selectors for private set intersection.
    """

    fields: dict[str, list[str]]
    birth_year: int | None
    selectors: tuple[Selector, ...]

    def fingerprint(self) -> bytes:
        """32 bytes that change exactly when the fields, the year or the selectors change, so an
        incremental round re-encodes and re-sends only persons whose fingerprint moved."""
        content = {
            "birth_year": self.birth_year,
            "fields": {name: list(values) for name, values in sorted(self.fields.items())},
            "selectors": [[s.kind, s.value.hex(), s.form] for s in self.selectors],
        }
        data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        return hashlib.blake2b(data, digest_size=32, person=FINGERPRINT_PERSON).digest()


def features(person: Mapping[str, Any], *, default_region: str | None) -> Features:
    """The features of one HTCDS person row.

    ``default_region`` is the node's own ISO alpha-3 country, in which national phone numbers are
    read; an unknown code reads international numbers only (it never raises: a bad setting must
    not stop matching, and the node checks its settings elsewhere).
    """
    region = _region(default_region)
    citizenship = _citizenship(person.get("prs_Citizenship"))
    birth = parse_birthdate(_text(person, "prs_Birthdate"))
    fields = _name_fields(person, citizenship)
    if birth is not None:
        fields["birth"] = [birth.iso()]
    if citizenship:
        fields["citizenship"] = citizenship
    place = _place(_text(person, "prs_MailingCity"))
    if place:
        fields["place"] = [place]
    gender = _text(person, "prs_Gender").lower()
    if gender and gender not in UNKNOWN_GENDER:
        fields["gender"] = [gender]
    selectors = tuple(exact_selectors(_clean(person), default_region=region))
    for kind in sorted({s.kind for s in selectors} & set(PRESENCE)):
        fields[PRESENCE[kind]] = ["1"]
    return Features(fields=fields, birth_year=_blocking_year(birth), selectors=selectors)


def one_per_person(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per ``prs_PersonId``, in order of first appearance: a person in several local cases is
    one candidate. Later rows fill the columns the first left empty; list columns are united. A row
    without a person id stands alone."""
    merged: dict[str | int, dict[str, Any]] = {}
    for n, row in enumerate(rows):
        person_id = row.get("prs_PersonId")
        into = merged.setdefault(str(person_id) if person_id not in (None, "") else n, {})
        for column, value in row.items():
            if isinstance(value, list | tuple) and isinstance(into.get(column), list):
                into[column] += [v for v in value if v not in into[column]]
            elif not _empty(value) and _empty(into.get(column)):
                into[column] = list(value) if isinstance(value, list | tuple) else value
    return list(merged.values())


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple) and not value)


def _region(code: str | None) -> str | None:
    if not code:
        return None
    try:
        iso2_region(code)
    except InvalidRequestError:
        return None
    return code


def _text(person: Mapping[str, Any], column: str) -> str:
    value = person.get(column)
    return value.strip() if isinstance(value, str) else ""


def _clean(person: Mapping[str, Any]) -> Mapping[str, Any]:
    """The person with numbers in the number columns as text (a spreadsheet cell typed as a number),
    which exact_selectors would otherwise skip."""
    numbers = {c: person[c] for c in NUMBER_COLUMNS if _is_number(person.get(c))}
    if not numbers:
        return person
    return {**person, **{c: str(int(v)) if float(v).is_integer() else str(v) for c, v in numbers.items()}}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN


def _citizenship(value: Any) -> list[str]:
    """Distinct well-formed ISO alpha-3 codes, upper case, in written order."""
    if isinstance(value, str):
        items: Sequence[Any] = value.split(";")
    elif isinstance(value, list | tuple):
        items = value
    else:
        return []
    out: list[str] = []
    for item in items:
        code = item.strip().upper() if isinstance(item, str) else ""
        if _COUNTRY.match(code) and code not in out:
            out.append(code)
    return out


def _blocking_year(birth: BirthDate | None) -> int | None:
    if birth is None or birth.placeholder or not 1800 <= birth.year <= 2199:
        return None
    return birth.year


def _name_fields(person: Mapping[str, Any], citizenship: list[str]) -> dict[str, list[str]]:
    """given and family: canonical tokens and, as a second value, their consonant skeletons (the
    middle name is left out: clerks abroad seldom write patronymics)."""
    first, middle, second = (_text(person, c) for c in ("prs_FirstName", "prs_MiddleName", "prs_SecondName"))
    lang = cyrillic_lang(" ".join((first, middle, second))) or cyrillic_hint(citizenship)
    forms = name_forms(
        first, None, second, lang=lang
    )  # as the selectors read it, whoever wrote a middle name
    fields: dict[str, list[str]] = {}
    for name, tokens in (("given", forms.given), ("family", forms.family)):
        if tokens:
            fields[name] = _name_values(tokens)
    return fields


def _name_values(tokens: tuple[str, ...]) -> list[str]:
    canonical = " ".join(tokens)
    skeletons = " ".join(skeleton(t) for t in tokens)
    return [canonical, skeletons] if skeletons != canonical else [canonical]


def _place(city: str) -> str:
    """A city as comparable text: transliterated, folded and canonicalised like a name."""
    if not city:
        return ""
    return " ".join(name_forms(None, None, city).canonical_tokens)
