"""Exact selectors: canonical bytes, identical across scripts and formats for the same person."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.identifiers import SELECTOR_DOMAIN, Selector, cyrillic_hint, encode_selector, exact_selectors


def _values(person: dict[str, Any], region: str | None = None) -> set[bytes]:
    return {s.value for s in exact_selectors(person, default_region=region)}


def _name_dob(person: dict[str, Any]) -> set[bytes]:
    return {s.value for s in exact_selectors(person) if s.kind == "name_dob"}


def test_encoding_is_prefixed_and_unambiguous() -> None:
    value = encode_selector("phone", "+31612345678")
    assert value == b"palermo/selector/v1\x00phone\x00+31612345678"
    assert value.startswith(SELECTOR_DOMAIN)
    assert encode_selector("email", "a@b.cd") != encode_selector("phone", "a@b.cd")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("passport", b"palermo/selector/v1\x00passport\x00X"),
        ("phone", b"palermo/selector/v1\x00email\x00x@y.z"),
        ("phone", b"+31612345678"),
    ],
)
def test_selector_refuses_unknown_kind_or_foreign_bytes(kind: str, value: bytes) -> None:
    with pytest.raises(ValueError):
        Selector(kind, value)


OLENA_UA = {
    "prs_FirstName": "Олена",
    "prs_MiddleName": "Петрівна",
    "prs_SecondName": "Коваленко",
    "prs_Birthdate": "1998-03-07",
    "prs_Citizenship": ["UKR"],
    "prs_IdentityNumber": "FE 123456",
    "prs_IdentityCountry": "UKR",
    "prs_MobilePhone": "067 123 45 67",
    "prs_Email": "Olena.Kovalenko@gmail.com",
}
OLENA_NL = {
    "prs_FirstName": "Olena",
    "prs_SecondName": "Kovalenko",
    "prs_Birthdate": "1998-03-07",
    "prs_Citizenship": "UKR",
    "prs_IdentityNumber": "fe-123456",
    "prs_IdentityCountry": "ukr",
    "prs_MobilePhone": "+380 67 123 4567",
    "prs_Email": "olenakovalenko+nl@googlemail.com",
}


def test_same_person_in_two_countries_shares_every_kind_of_selector() -> None:
    ua = exact_selectors(OLENA_UA, default_region="UKR")
    nl = exact_selectors(OLENA_NL, default_region="NLD")
    shared = {s.value for s in ua} & {s.value for s in nl}
    assert {s.kind for s in ua if s.value in shared} == {"document", "phone", "email", "name_dob"}


SAME_PERSON = [
    ({"prs_FirstName": "Олена", "prs_SecondName": "Коваленко"}, {"prs_FirstName": "Olena", "prs_SecondName": "Kovalenko"}),
    ({"prs_FirstName": "Елена", "prs_SecondName": "Коваленко"}, {"prs_FirstName": "Olena", "prs_SecondName": "Kovalenko"}),
    ({"prs_FirstName": "Kovalenko", "prs_SecondName": "Olena"}, {"prs_FirstName": "Olena", "prs_SecondName": "Kowalenko"}),
    ({"prs_FirstName": "مريم", "prs_SecondName": "الأحمد"}, {"prs_FirstName": "Mariam", "prs_SecondName": "Al-Ahmad"}),
    ({"prs_FirstName": "رامي", "prs_SecondName": "مخلوف"}, {"prs_FirstName": "Rami", "prs_SecondName": "Makhlouf"}),
    ({"prs_FirstName": "秀英", "prs_SecondName": "王"}, {"prs_FirstName": "Wang", "prs_SecondName": "Xiu Ying"}),
    ({"prs_FirstName": "Γιώργος", "prs_SecondName": "Παπαδόπουλος"}, {"prs_FirstName": "Giorgos", "prs_SecondName": "Papadopoulos"}),
    ({"prs_FirstName": "สมชาย", "prs_SecondName": "แสงทอง"}, {"prs_FirstName": "Somchai", "prs_SecondName": "Saengthong"}),
    ({"prs_FirstName": "Mohamed", "prs_SecondName": "Hassan"}, {"prs_FirstName": "محمد", "prs_SecondName": "حسن"}),
    ({"prs_FirstName": "Голик", "prs_SecondName": "Анжела", "prs_Citizenship": ["UKR"]},
     {"prs_FirstName": "Anzhela", "prs_SecondName": "Holyk"}),  # the citizenship picks the Ukrainian rule
]  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b"), SAME_PERSON, ids=[f"{a['prs_FirstName']}~{b['prs_FirstName']}" for a, b in SAME_PERSON]
)
def test_same_person_across_scripts_shares_a_name_dob_selector(a: dict[str, Any], b: dict[str, Any]) -> None:
    dob = {"prs_Birthdate": "1998-03-07"}
    assert _name_dob(a | dob) & _name_dob(b | dob)


def test_different_birth_dates_share_no_name_dob_selector() -> None:
    a = {"prs_FirstName": "Olena", "prs_SecondName": "Kovalenko", "prs_Birthdate": "1998-03-07"}
    b = a | {"prs_Birthdate": "1998-03-08"}
    assert not _name_dob(a) & _name_dob(b)


@pytest.mark.parametrize("birthdate", ["1998", "1998-03", "1998-01-01", "", None, "07/03/1998"])
def test_no_name_dob_selector_without_a_full_real_date(birthdate: str | None) -> None:
    person = {"prs_FirstName": "Olena", "prs_SecondName": "Kovalenko", "prs_Birthdate": birthdate}
    assert not [s for s in exact_selectors(person) if s.kind == "name_dob"]


def test_no_name_dob_selector_for_a_single_name() -> None:
    person = {"prs_FirstName": "Olena", "prs_SecondName": "", "prs_Birthdate": "1998-03-07"}
    assert exact_selectors(person) == []


def test_one_name_dob_selector_a_person_from_the_date_as_written() -> None:
    """Day and month exchanged is the encodings' business: the selector reads the date as written."""
    written = {"prs_FirstName": "Olena", "prs_SecondName": "Kovalenko", "prs_Birthdate": "1998-07-03"}
    true = written | {"prs_Birthdate": "1998-03-07"}
    selectors = [s for s in exact_selectors(written) if s.kind == "name_dob"]
    assert [s.form for s in selectors] == ["skeleton"]
    assert selectors[0].value.endswith(b":1998-07-03")
    assert not _name_dob(written) & _name_dob(true)


def test_short_skeletons_give_no_skeleton_selector() -> None:
    forms = {
        s.form
        for s in exact_selectors(
            {"prs_FirstName": "Lei", "prs_SecondName": "Su", "prs_Birthdate": "1997-09-17"}
        )
    }
    assert forms == {"canonical"}


def test_selectors_are_unique_and_kinds_known() -> None:
    selectors = exact_selectors(OLENA_UA | {"prs_HomePhone": "0671234567"}, default_region="UKR")
    assert len({s.value for s in selectors}) == len(selectors)
    assert [s.kind for s in selectors].count("phone") == 1
    forms = [s.form for s in selectors if s.kind == "name_dob"]
    assert forms == ["skeleton"]


def test_multi_valued_citizenship_in_either_shape() -> None:
    assert cyrillic_hint(["UKR"]) == "uk"
    assert cyrillic_hint(["UKR", "MDA"]) == "uk"
    assert cyrillic_hint(["UKR", "RUS"]) is None
    assert cyrillic_hint([]) is None
    csv_row = OLENA_UA | {"prs_Citizenship": "UKR;MDA"}
    assert _values(csv_row, "UKR") == _values(OLENA_UA, "UKR")


def test_empty_person_has_no_selectors() -> None:
    assert exact_selectors({}) == []
    assert exact_selectors({"prs_FirstName": None, "prs_Email": 42}) == []


_FIELD = st.one_of(st.none(), st.text(max_size=30), st.lists(st.text(max_size=5), max_size=2))
_COLUMNS = ["prs_FirstName", "prs_MiddleName", "prs_SecondName", "prs_Birthdate", "prs_IdentityNumber",
            "prs_IdentityCountry", "prs_MobilePhone", "prs_HomePhone", "prs_Email", "prs_Citizenship"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({c: _FIELD for c in _COLUMNS}))
def test_exact_selectors_never_raise_and_are_deterministic(person: dict[str, Any]) -> None:
    first = exact_selectors(person, default_region="NLD")
    assert first == exact_selectors(person, default_region="NLD")
    assert all(s.value.startswith(SELECTOR_DOMAIN) for s in first)
