"""node.matching.features: one HTCDS person to encoder input, blocking year and exact selectors."""

from __future__ import annotations

from typing import Any

import pytest

from node.matching.features import Features, features, one_per_person

OLENA_UA = {
    "prs_PersonId": "UKR-P1",
    "prs_FirstName": "Олена",
    "prs_SecondName": "Коваленко",
    "prs_Birthdate": "1998-03-07",
    "prs_Gender": "Feminine",
    "prs_Citizenship": ["UKR"],
    "prs_MobilePhone": "067 123 45 67",
    "prs_MailingCity": "Київ",
}
OLENA_NL = {
    "prs_PersonId": "NLD-P7",
    "prs_FirstName": "Olena",
    "prs_SecondName": "Kovalenko",
    "prs_Birthdate": "1998-03-07",
    "prs_Gender": "Feminine",
    "prs_Citizenship": "UKR",
    "prs_MobilePhone": "+380 67 123 4567",
    "prs_MailingCity": "Kyiv",
}


def test_cyrillic_and_latin_spellings_give_the_same_features() -> None:
    ua, nl = features(OLENA_UA, default_region="UKR"), features(OLENA_NL, default_region="NLD")
    assert ua.fields == nl.fields
    assert ua.fields["given"] == ["elena", "ln"]  # canonical token, then its consonant skeleton
    assert {s.value for s in ua.selectors} == {s.value for s in nl.selectors}
    assert {s.kind for s in ua.selectors} == {"phone", "name_dob"}


def test_arabic_script_meets_its_latin_spelling_by_the_skeleton() -> None:
    arabic = features({"prs_FirstName": "مريم", "prs_SecondName": "الأحمد"}, default_region=None)
    latin = features({"prs_FirstName": "Mariam", "prs_SecondName": "Al-Ahmad"}, default_region=None)
    assert arabic.fields["given"] == latin.fields["given"] == ["maryam", "mrm"]
    assert arabic.fields["family"] == latin.fields["family"]


def test_fields_of_a_full_record() -> None:
    f = features(OLENA_UA, default_region="UKR")
    assert f.fields["birth"] == ["1998-03-07"]
    assert f.fields["citizenship"] == ["UKR"]
    assert f.fields["place"] == ["kiv"]
    assert f.fields["gender"] == ["feminine"]
    assert f.fields["has_phone"] == ["1"]
    assert "has_document" not in f.fields and "has_email" not in f.fields
    assert f.birth_year == 1998


@pytest.mark.parametrize(
    ("birthdate", "field", "year"),
    [
        ("1998-03-07", ["1998-03-07"], 1998),
        ("1998-03", ["1998-03"], 1998),
        ("1998", ["1998"], 1998),
        ("1998-01-01", ["1998"], None),  # the 1 January placeholder: the year is only a guess
        ("0001-01-01", None, None),
        ("07/03/1998", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_birth_dates_at_their_precision(
    birthdate: str | None, field: list[str] | None, year: int | None
) -> None:
    f = features({"prs_FirstName": "Ana", "prs_Birthdate": birthdate}, default_region=None)
    assert f.fields.get("birth") == field
    assert f.birth_year == year


MESSY: list[dict[str, Any]] = [
    {},
    {"prs_FirstName": None, "prs_SecondName": "", "prs_Birthdate": "2024-02-30"},
    {"prs_FirstName": 42, "prs_SecondName": 3.5, "prs_Birthdate": 19980307, "prs_Citizenship": 7},
    {"prs_FirstName": ["Ana"], "prs_Citizenship": [None, "ukraine", "ua", "ROU", 5]},
    {"prs_FirstName": "N/A", "prs_SecondName": "???", "prs_Birthdate": "1850-05-05", "prs_Gender": "Unknown"},
    {"prs_FirstName": "\u200b\u0301", "prs_SecondName": "🙂 王", "prs_MailingCity": "\x00"},
    {"prs_MobilePhone": "call me", "prs_HomePhone": float("nan"), "prs_Email": "not an address"},
    {"prs_IdentityNumber": "0000000", "prs_IdentityCountry": "Ukraine", "prs_MailingCity": 12},
]


@pytest.mark.parametrize("person", MESSY)
def test_messy_input_never_raises(person: dict[str, Any]) -> None:
    f = features(person, default_region="NLD")
    assert isinstance(f, Features) and len(f.fingerprint()) == 32
    assert all(values and all(isinstance(v, str) for v in values) for values in f.fields.values())


def test_citizenship_keeps_well_formed_codes_once() -> None:
    f = features({"prs_Citizenship": "rou;MDA; ROU;xx"}, default_region=None)
    assert f.fields["citizenship"] == ["ROU", "MDA"]


def test_numbers_typed_as_numbers_still_make_selectors() -> None:
    f = features(
        {"prs_MobilePhone": 31612345678, "prs_IdentityNumber": 12345678.0, "prs_IdentityCountry": "NLD"},
        default_region="NLD",
    )
    assert {s.kind for s in f.selectors} == {"phone", "document"}


def test_an_unknown_region_reads_international_numbers_only() -> None:
    national = features({"prs_MobilePhone": "0612345678"}, default_region="XYZ")
    international = features({"prs_MobilePhone": "+31612345678"}, default_region="XYZ")
    assert national.selectors == ()
    assert [s.kind for s in international.selectors] == ["phone"]


def test_fingerprint_changes_with_the_features_only() -> None:
    base = features(OLENA_NL, default_region="NLD").fingerprint()
    assert base == features(dict(OLENA_NL), default_region="NLD").fingerprint()
    unrelated = {**OLENA_NL, "cas_Status": "Closed", "vic_TypeOfExploitation": ["ForcedLabour"]}
    assert features(unrelated, default_region="NLD").fingerprint() == base
    same_name_other_case = {**OLENA_NL, "prs_FirstName": " Olena ", "prs_SecondName": "KOVALENKO"}
    assert features(same_name_other_case, default_region="NLD").fingerprint() == base
    for column, value in [
        ("prs_FirstName", "Olga"),
        ("prs_Birthdate", "1998-03-08"),
        ("prs_MobilePhone", "+380671234568"),
        ("prs_Email", "olena@example.org"),
        ("prs_MailingCity", "Lviv"),
        ("prs_Gender", "Masculine"),
    ]:
        changed = features({**OLENA_NL, column: value}, default_region="NLD").fingerprint()
        assert changed != base, column


def test_one_person_in_several_cases_is_one_row() -> None:
    rows = [
        {"prs_PersonId": "P1", "cas_CaseId": "C1", "prs_FirstName": "Ana", "prs_Citizenship": ["ROU"]},
        {"prs_PersonId": "P2", "cas_CaseId": "C1", "prs_FirstName": "Ion"},
        {
            "prs_PersonId": "P1",
            "cas_CaseId": "C2",
            "prs_MobilePhone": "+40712345678",
            "prs_Citizenship": ["MDA"],
        },
        {"prs_PersonId": "P1", "cas_CaseId": "C3", "prs_FirstName": "Anna"},
    ]
    people = one_per_person(rows)
    assert [p["prs_PersonId"] for p in people] == ["P1", "P2"]
    first = people[0]
    assert first["prs_FirstName"] == "Ana"  # the first value wins; later rows only fill gaps
    assert first["prs_MobilePhone"] == "+40712345678"
    assert first["prs_Citizenship"] == ["ROU", "MDA"]
    assert rows[0]["prs_Citizenship"] == ["ROU"]  # the input is not changed


def test_nan_is_no_value() -> None:
    f = features({"prs_FirstName": float("nan"), "prs_MobilePhone": float("nan")}, default_region="NLD")
    assert f.fields == {} and f.selectors == ()
