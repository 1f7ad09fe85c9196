"""Document numbers, phone numbers and e-mail addresses as clerks type them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import InvalidRequestError
from protocol.identifiers import (
    document_fuzzy_key,
    iso2_region,
    normalise_document,
    normalise_email,
    normalise_phone,
    normalise_phones,
)

DOCUMENTS = [
    ("AB1234567", "NLD", "NLD:AB1234567"),
    ("ab 123 4567", "nld", "NLD:AB1234567"),
    ("AB-123.456/7", "NLD", "NLD:AB1234567"),
    ("No. AB1234567", "NLD", "NLD:AB1234567"),
    ("N° 1234567", "FRA", "FRA:1234567"),
    ("Nº1234567", "FRA", "FRA:1234567"),
    ("Nr. 1234567", "DEU", "DEU:1234567"),
    ("#FE123456", "UKR", "UKR:FE123456"),
    ("NO123456", "NOR", "NOR:NO123456"),  # a bare NO glued to the number may be part of it
    ("ＦＥ１２３４５６", "UKR", "UKR:FE123456"),  # full-width digits from an East Asian keyboard
    ("E12345678", "CHN", "CHN:E12345678"),
    ("  0012345  ", "ROU", "ROU:0012345"),  # exact form keeps leading zeros
]
NOT_DOCUMENTS = [
    ("AB1234567", None),  # no issuing country: numbers repeat across countries
    ("AB1234567", ""),
    ("AB1234567", "NL"),
    ("AB1234567", "N1D"),
    (None, "NLD"),
    ("", "NLD"),
    ("1234", "NLD"),  # too short to identify anyone
    ("000000", "NLD"),
    ("XXXXXXX", "NLD"),
    ("unknown", "NLD"),
    ("n/a", "NLD"),
    ("ПА123456", "UKR"),  # Cyrillic letters: a clerk must type the Latin of the document
    ("A" * 30, "NLD"),
]


@pytest.mark.parametrize(("number", "country", "expected"), DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_normalise_document(number: str, country: str, expected: str) -> None:
    assert normalise_document(number, country) == expected


@pytest.mark.parametrize(("number", "country"), NOT_DOCUMENTS, ids=[repr(d) for d in NOT_DOCUMENTS])
def test_not_a_document(number: str | None, country: str | None) -> None:
    assert normalise_document(number, country) is None


def test_exact_form_keeps_o_and_0_apart_but_the_fuzzy_key_merges_them() -> None:
    assert normalise_document("AB1O34567", "NLD") != normalise_document("AB1034567", "NLD")
    assert document_fuzzy_key("AB1O34567", "NLD") == document_fuzzy_key("AB1034567", "NLD")
    assert document_fuzzy_key("AB1I34567", "NLD") == document_fuzzy_key("AB1134567", "NLD")
    assert document_fuzzy_key("0012345", "ROU") == document_fuzzy_key("12345", "ROU") == "ROU:12345"
    assert document_fuzzy_key("AB1234567", "NLD") != document_fuzzy_key("AB1234567", "BEL")
    assert document_fuzzy_key(None, "NLD") is None


# (as typed, the region of the node, E.164)
PHONES = [
    ("+31 6 12345678", "NLD", "+31612345678"),
    ("06-12345678", "NLD", "+31612345678"),
    ("0031 6 1234 5678", "NLD", "+31612345678"),
    ("+31 (0)6 12345678", "NLD", "+31612345678"),
    ("(+31) 6 12 34 56 78", "DEU", "+31612345678"),
    ("067 123 45 67", "UKR", "+380671234567"),
    ("+380 (67) 123-45-67", "NLD", "+380671234567"),
    ("00380671234567", "ROU", "+380671234567"),
    ("8 (916) 123-45-67", "RUS", "+79161234567"),
    ("+7 916 123 45 67", "DEU", "+79161234567"),
    ("0721 234 567", "ROU", "+40721234567"),
    ("tel: +40 721 234 567", "NLD", "+40721234567"),
    ("0171 1234567", "DEU", "+491711234567"),
    ("07911 123456", "GBR", "+447911123456"),
    ("06 12 34 56 78", "FRA", "+33612345678"),
    ("347 123 4567", "ITA", "+393471234567"),
    ("612 34 56 78", "ESP", "+34612345678"),
    ("0888 123 456", "BGR", "+359888123456"),
    ("069 123 456", "MDA", "+37369123456"),
    ("0803 123 4567", "NGA", "+2348031234567"),
    ("010 1234 5678", "EGY", "+201012345678"),
    ("0612-345678", "MAR", "+212612345678"),
    ("138 1234 5678", "CHN", "+8613812345678"),
    ("081 234 5678", "THA", "+66812345678"),
    ("0912 345 678", "VNM", "+84912345678"),
    ("0917 123 4567", "PHL", "+639171234567"),
    ("(212) 555-0123", "USA", "+12125550123"),
    ("011 31 6 12345678", "USA", "+31612345678"),
    ("+90 532 123 45 67", "NLD", "+905321234567"),
    ("＋３１６１２３４５６７８", "NLD", "+31612345678"),  # full-width, as some keyboards type
]
NOT_PHONES = [
    (None, "NLD"),
    ("", "NLD"),
    ("unknown", "NLD"),
    ("12345", "NLD"),
    ("06-1234", "NLD"),
    ("0000000000", "NLD"),
    ("+999 123 456 789", "NLD"),
    ("+31 6 123456789012", "NLD"),
]


@pytest.mark.parametrize(("text", "region", "expected"), PHONES, ids=[p[0] for p in PHONES])
def test_normalise_phone(text: str, region: str, expected: str) -> None:
    assert normalise_phone(text, default_region=region) == expected


@pytest.mark.parametrize(("text", "region"), NOT_PHONES, ids=[repr(p[0]) for p in NOT_PHONES])
def test_not_a_phone(text: str | None, region: str) -> None:
    assert normalise_phone(text, default_region=region) is None


def test_national_numbers_need_a_region() -> None:
    assert normalise_phone("+31612345678", default_region=None) == "+31612345678"
    assert normalise_phone("0612345678", default_region=None) is None


def test_several_numbers_in_one_field() -> None:
    assert normalise_phones("06-12345678 / +380671234567; 06-12345678", default_region="NLD") == [
        "+31612345678",
        "+380671234567",
    ]
    assert normalise_phones("0612345678 or 0687654321", default_region="NLD") == [
        "+31612345678",
        "+31687654321",
    ]
    assert normalise_phones(None, default_region="NLD") == []


def test_unknown_region_is_the_operators_error() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        normalise_phone("0612345678", default_region="XYZ")
    assert caught.value.code == "unknown_region"
    assert iso2_region("ukr") == "UA"
    assert iso2_region("GB") == "GB"


EMAILS = [
    ("olena.k@ukr.net", "olena.k@ukr.net"),
    ("  Olena.K@UKR.NET ", "olena.k@ukr.net"),
    ("Olena Kovalenko <olena.k@ukr.net>", "olena.k@ukr.net"),
    ("mailto:olena.k@ukr.net", "olena.k@ukr.net"),
    ("o.l.e.n.a+work@gmail.com", "olena@gmail.com"),
    ("Olena@googlemail.com", "olena@gmail.com"),
    ("olena.k+work@yahoo.com", "olena.k+work@yahoo.com"),  # only Gmail ignores dots and tags
    ("ivan@пример.рф", "ivan@xn--e1afmkfd.xn--p1ai"),
    ("ivan@mail.ru.", "ivan@mail.ru"),
    ("ＩＶＡＮ＠ＭＡＩＬ．ＲＵ", "ivan@mail.ru"),
]
NOT_EMAILS = [
    None,
    "",
    "olena",
    "olena@",
    "@ukr.net",
    "olena@ukr",
    "olena@@ukr.net",
    "ole na@ukr.net",
    ".olena@ukr.net",
    "olena..k@ukr.net",
    "olena@-ukr.net",
    "olena@ukr..net",
    "olena@ukr.n3t",
    "+tag@gmail.com",
    "a" * 65 + "@ukr.net",
]


@pytest.mark.parametrize(("text", "expected"), EMAILS, ids=[e[0] for e in EMAILS])
def test_normalise_email(text: str, expected: str) -> None:
    assert normalise_email(text) == expected


@pytest.mark.parametrize("text", NOT_EMAILS, ids=[repr(e) for e in NOT_EMAILS])
def test_not_an_email(text: str | None) -> None:
    assert normalise_email(text) is None


@given(st.text(max_size=40))
def test_contact_normalisers_never_raise(text: str) -> None:
    normalise_email(text)
    normalise_phone(text, default_region="NLD")
    normalise_document(text, "NLD")
    document_fuzzy_key(text, text)
