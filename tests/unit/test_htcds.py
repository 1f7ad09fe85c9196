"""protocol.htcds: the vocabulary, column resolution and the check of one row."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import htcds, htcds_values
from protocol.canonical import canonical_json
from protocol.htcds import Event, HeaderError, Problem, RowRules, resolve_columns, validate_row

RULES = RowRules(latest_date=date(2026, 11, 29), default_matchable=False, default_handling_code="H2")
VICTIM = {"cas_CaseId": "C-1", "prs_PersonId": "P-1", "role": "victim"}
PERPETRATOR = {"cas_CaseId": "C-1", "prs_PersonId": "P-2", "role": "perpetrator"}

DATE = "a date YYYY-MM-DD, YYYY-MM or YYYY"
COUNTRY = "an ISO 3166-1 alpha-3 country code such as NLD"
MULTI = "; several separated by ';'"
GENDERS = "one of Feminine, Masculine, TransgenderFeminine, TransgenderMasculine, NonConforming, NonSpecifiedUnknown"
EXPLOITATION = (
    "one of ForcedLabour, SexualExploitation, ChildLabour, ForcedMarriage, Servitude, "
    "ForcedMilitaryByNonStateActors, OrganRemoval, ForcedBegging, ForcedAdoption, Surrogacy, Other, "
    "ForcedCriminality"
)
PHONE = "a phone number of 4 to 15 digits (E.164 such as +40721000000)"
BOOL = "true or false (also yes/no, 1/0)"


def check(row: dict[str, object]) -> tuple[htcds.Record | None, list[Problem]]:
    return validate_row(row, row=7, rules=RULES)


def record(**values: object) -> htcds.Record:
    result, problems = check({**VICTIM, **values})
    assert problems == []
    assert result is not None
    return result


BAD_VALUES = [
    # (column, value, expected, got)
    ("prs_Birthdate", "1990-02-30", DATE, "a date that does not exist"),
    ("prs_Birthdate", "30/02/1990", DATE, "10 characters, not a date"),
    ("prs_Birthdate", "2027-01", DATE, "a date in the future"),
    ("prs_Birthdate", "1899", DATE, "a year before 1900"),
    ("prs_Birthdate", {"year": 1990}, DATE, "a value of type dict, not a date"),
    ("cas_RegistrationDate", "2026-13", DATE, "a date that does not exist"),
    ("hte_ExploitationDate", "2026-11-30", DATE, "a date in the future"),
    ("prs_Gender", "Femenine", GENDERS, "'Femenine'"),
    ("prs_Gender", "Maria Popescu", GENDERS, "13 characters"),
    ("prs_Gender", True, GENDERS, "a true/false value"),
    ("prs_Citizenship", "ROU;XYZ", COUNTRY + MULTI, "'XYZ'"),
    ("prs_Citizenship", "RO", COUNTRY + MULTI, "'RO'"),
    ("hte_RecruitmentCountry", "NLD;ROU", COUNTRY, "7 characters"),
    ("hte_ExploitationCountry", "DE", COUNTRY, "'DE'"),
    ("vic_AgeWhenTrafficked", "121", "a whole number from 0 to 120", "'121'"),
    ("vic_AgeWhenTrafficked", "-1", "a whole number from 0 to 120", "'-1'"),
    ("prs_NumberOfChildren", 3.5, "a whole number from 0 to 30", "a number"),
    ("shr_Matchable", "maybe", BOOL, "'maybe'"),
    ("prs_Deceased", "dead", BOOL, "'dead'"),
    ("shr_HandlingCode", "H4", "one of H0, H1, H2, H3", "'H4'"),
    ("shr_Grading", "D2", "source A, B, C or X then information 1-4, such as B2", "'D2'"),
    ("shr_Grading", "B5", "source A, B, C or X then information 1-4, such as B2", "'B5'"),
    ("prs_PrimaryLanguage", "ro", "an ISO 639-2 language code of 3 letters such as ron", "'ro'"),
    ("prs_MobilePhone", "+40 72I 123 456", PHONE, "15 characters, not only digits and + - ( ) . /"),
    ("prs_HomePhone", "12", PHONE, "2 digits"),
    (
        "prs_Email",
        "ana.popescu.example.org",
        "an e-mail address such as name@example.org",
        "23 characters, without @",
    ),
    (
        "prs_Email",
        "ana@popescu",
        "an e-mail address such as name@example.org",
        "11 characters, not name@domain",
    ),
    ("prs_FirstName", "A" * 201, "text of at most 200 characters", "201 characters"),
    ("prs_FirstName", "Ana\x07", "text of at most 200 characters", "text with a control character"),
    ("prs_SecondName", ["Popescu", "Ionescu"], "a single value", "a list of 2 values"),
    ("prs_IdentityNumber", "X" * 65, "text of at most 64 characters", "65 characters"),
    ("vic_TypeOfExploitation", "ForcedLabour;Fishing", EXPLOITATION + MULTI, "'Fishing'"),
    (
        "vic_MethodsOfControl",
        ["DebtBondage", "Locks"],
        "one of the 17 vic_MethodsOfControl value names in docs/ingest.md" + MULTI,
        "'Locks'",
    ),
    (
        "vic_ForcedLabourIndustry",
        "Agriculture",
        "one of the 21 vic_ForcedLabourIndustry value names in docs/ingest.md",
        "'Agriculture'",
    ),
    ("role", "witness", "one of victim, perpetrator", "'witness'"),
    ("cas_CaseId", "C" * 129, "an agency case id of 1 to 128 characters", "129 characters"),
    ("cco_CaseComment", "a\x00b", "text of at most 10000 characters", "text with a control character"),
]


@pytest.mark.parametrize(("column", "value", "expected", "got"), BAD_VALUES, ids=[f"{c}-{i}" for i, (c, *_) in
                                                                                  enumerate(BAD_VALUES)])  # fmt: skip
def test_bad_value_gives_exactly_one_problem(column: str, value: object, expected: str, got: str) -> None:
    result, problems = check({**VICTIM, column: value})
    assert result is None
    assert problems == [Problem(7, column, expected, got)]


@pytest.mark.parametrize("missing", ["cas_CaseId", "prs_PersonId", "role"])
def test_required_columns(missing: str) -> None:
    row = {k: v for k, v in VICTIM.items() if k != missing}
    _, problems = check(row)
    assert [(p.field, p.got) for p in problems] == [(missing, "nothing")]
    _, blank = check({**VICTIM, missing: "   "})
    assert [(p.field, p.got) for p in blank] == [(missing, "nothing")]


def test_every_problem_of_a_row_is_reported() -> None:
    _, problems = check({**VICTIM, "prs_Gender": "x", "prs_Birthdate": "1990-13", "shr_HandlingCode": "H9"})
    assert [p.field for p in problems] == ["prs_Gender", "prs_Birthdate", "shr_HandlingCode"]


def test_role_specific_columns() -> None:
    _, problems = check(
        {**PERPETRATOR, "vic_TypeOfExploitation": "ForcedLabour", "vic_AgeWhenTrafficked": "19"}
    )
    expected = "no value on a perpetrator row (the column is for victims)"
    assert problems == [
        Problem(7, "vic_TypeOfExploitation", expected, "a value"),
        Problem(7, "vic_AgeWhenTrafficked", expected, "a value"),
    ]
    _, problems = check({**VICTIM, "per_RoleInProcess": "Exploiter", "per_RoleDetails": "drove the van"})
    expected = "no value on a victim row (the column is for perpetrators)"
    assert problems == [
        Problem(7, "per_RoleInProcess", expected, "a value"),
        Problem(7, "per_RoleDetails", expected, "a value"),
    ]
    perpetrator, problems = check({**PERPETRATOR, "per_RoleInProcess": "recruiterorintermediary;Exploiter"})
    assert problems == [] and perpetrator is not None
    assert perpetrator.context == {"role_in_process": ("RecruiterOrIntermediary", "Exploiter")}


def test_enumerations_ignore_letter_case_and_store_canonical_names() -> None:
    r = record(
        role="VICTIM",
        prs_Gender="feminine",
        prs_Citizenship="rou",
        vic_TypeOfExploitation="forcedcriminality",
        vic_MethodsOfControl="restrictsmovement",
        vic_ForcedLabourIndustry="a_agricultureforestryandfishing",
        shr_HandlingCode="h1",
        shr_Grading="b2",
        prs_PrimaryLanguage="RON",
        shr_Matchable="Yes",
    )
    assert r.role == "victim"
    assert r.person == {"gender": "Feminine", "citizenship": ("ROU",), "primary_language": "ron"}
    assert r.context == {
        "type_of_exploitation": ("ForcedCriminality",),
        "methods_of_control": ("RestrictsMovement",),
        "forced_labour_industry": "A_AgricultureForestryAndFishing",
    }
    assert r.sharing == htcds.Sharing(matchable=True, handling_code="H1", grading="B2")


def test_multi_values_from_text_and_json_arrays() -> None:
    assert record(prs_Citizenship="ROU; mda;ROU;").person["citizenship"] == ("ROU", "MDA")
    assert record(prs_Citizenship=["rou", "MDA"]).person["citizenship"] == ("ROU", "MDA")
    assert record(prs_Citizenship=" ; ").person == {}
    assert record(prs_Citizenship="XXA").person["citizenship"] == ("XXA",)  # stateless (ICAO 9303)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("1990", "1990"),
        ("1990-05", "1990-05"),
        ("1990-05-17", "1990-05-17"),
        (" 1990-05-17 ", "1990-05-17"),
        (datetime(1990, 5, 17, 0, 0), "1990-05-17"),  # an XLSX date cell
        (date(1990, 5, 17), "1990-05-17"),
        (1990, "1990"),  # an XLSX number cell
        ("2026-11-29", "2026-11-29"),  # tomorrow in UTC is today somewhere
    ],
)
def test_dates_keep_their_precision(value: object, stored: str) -> None:
    assert record(prs_Birthdate=value).person == {"birthdate": stored}


def test_names_are_kept_as_written_in_nfc() -> None:
    decomposed = "Jose\u0301"
    r = record(prs_FirstName=f"  {decomposed} ", prs_MiddleName="Олена", prs_SecondName="مريم")
    assert r.person == {
        "first_name": unicodedata.normalize("NFC", decomposed),
        "middle_name": "Олена",
        "second_name": "مريم",
    }


def test_numbers_and_free_text_and_ground_truth() -> None:
    r = record(vic_AgeWhenTrafficked=17.0, prs_NumberOfChildren="2", cco_CaseComment="line 1\nline 2",
               cas_IncomingReferralDetails="via NGO", synth_TrueId="T-9")  # fmt: skip
    assert r.context == {"age_when_trafficked": 17}
    assert r.person == {"number_of_children": 2}
    assert r.free_text == {"cco_CaseComment": "line 1\nline 2", "cas_IncomingReferralDetails": "via NGO"}
    assert r.synth_true_id == "T-9"


def test_events_are_unflattened() -> None:
    r = record(
        hte_RecruitmentCountry="mda",
        hte_RecruitmentCity="Chișinău",
        hte_RecruitmentDate="2021-03",
        hte_TransitCountry="ROU;HUN",
        hte_TransitDate="2021-04",
        hte_ExploitationCountry="AUT",
    )
    assert r.events == (
        Event("Recruitment", "MDA", "Chișinău", "2021-03"),
        Event("Transit", "ROU", None, "2021-04"),
        Event("Transit", "HUN", None, None),
        Event("Exploitation", "AUT", None, None),
    )
    assert record().events == ()


def test_sharing_defaults_come_from_the_rules() -> None:
    assert record().sharing == htcds.Sharing(matchable=False, handling_code="H2", grading=None)
    rules = RowRules(latest_date=date(2026, 1, 1), default_matchable=True, default_handling_code="H0")
    result, _ = validate_row(VICTIM, row=2, rules=rules)
    assert result is not None and result.sharing == htcds.Sharing(
        matchable=True, handling_code="H0", grading=None
    )
    assert record(shr_Matchable="0").sharing.matchable is False


def test_direct_identifiers_are_never_echoed() -> None:
    planted = {
        "prs_FirstName": "Zyxwvut\x07",
        "prs_SecondName": "Qwertyson" * 30,
        "prs_Birthdate": "1987-02-31",
        "prs_MobilePhone": "+40 799 12x 456",
        "prs_Email": "zyxwvut.qwertyson",
        "prs_IdentityNumber": "ZQ" * 40,
        "prs_MailingStreet": "Strada\x01Zyx",
        "prs_MailingPostalCode": "9" * 201,
    }
    _, problems = check({**VICTIM, **planted})
    assert {p.field for p in problems} == set(planted)
    text = " ".join(str(p) for p in problems)
    for needle in ("Zyxwvut", "Qwertyson", "1987", "799", "zyxwvut", "ZQZQ", "Strada", "999"):
        assert needle not in text


def test_direct_identifiers_are_columns_whose_errors_only_describe() -> None:
    identifying = {name for name, spec in htcds.FIELDS.items() if spec.identifying}
    assert identifying == {
        "prs_FirstName", "prs_MiddleName", "prs_SecondName", "prs_Birthdate", "prs_IdentityNumber", "prs_Email",
        "prs_HomePhone", "prs_MobilePhone", "prs_MailingStreet", "prs_MailingPostalCode",
    }  # fmt: skip
    for name in identifying:
        assert (
            htcds.FIELDS[name].kind in ("text", "date", "phone", "email")
            and htcds.FIELDS[name].lookup is None
        )


def test_resolve_columns_maps_names_in_any_letter_case() -> None:
    header = [
        "CAS_caseid",
        " prs_personid ",
        "Role",
        "prs_firstname",
        "",
        "reject_reason",
        "cas_IncomingReferralDetails",
    ]
    assert resolve_columns(header) == (
        "cas_CaseId",
        "prs_PersonId",
        "role",
        "prs_FirstName",
        None,
        None,
        "cas_IncomingReferralDetails",
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["cas_CaseId", "prs_PersonId"], "missing required column(s) role"),
        (
            ["cas_CaseId", "prs_PersonId", "role", "prs_Nickname", "vic_Shoe"],
            "unknown column(s) prs_Nickname, vic_Shoe",
        ),
        (
            ["cas_CaseId", "prs_PersonId", "role", "prs_FirstName", "PRS_FIRSTNAME"],
            "column(s) given twice prs_FirstName",
        ),
        (
            ["Name", "Surname"],
            "unknown column(s) Name, Surname; missing required column(s) cas_CaseId, prs_PersonId, role",
        ),
    ],
)
def test_bad_headers(header: list[str], message: str) -> None:
    with pytest.raises(HeaderError) as e:
        resolve_columns(header)
    assert e.value.code == "invalid_file"
    assert e.value.message.startswith(message)


def test_content_hash_is_sha256_of_canonical_json_and_tracks_changes() -> None:
    person = record(
        prs_FirstName="Ana", prs_Citizenship="ROU;MDA", prs_NumberOfChildren="2", prs_Deceased="no"
    ).person
    expected = hashlib.sha256(
        canonical_json({k: list(v) if isinstance(v, tuple) else v for k, v in person.items()})
    )
    assert htcds.content_hash(person) == expected.hexdigest()
    assert htcds.content_hash(dict(reversed(list(person.items())))) == expected.hexdigest()
    assert htcds.content_hash({**person, "first_name": "Anna"}) != expected.hexdigest()


_PERSON_VALUES = st.one_of(
    st.text(max_size=8),
    st.integers(0, 30),
    st.booleans(),
    st.tuples(st.text(max_size=4), st.text(max_size=4)),
)


@settings(max_examples=200, deadline=None)
@given(person=st.dictionaries(st.sampled_from(htcds.PERSON_ATTRS), _PERSON_VALUES, max_size=8))
def test_content_hash_of_members_is_content_hash(person: dict[str, htcds.FieldValue]) -> None:
    """The digest built from remembered members (the CSV fast path) is the digest of the fields."""
    members = [htcds.hash_member(attr, person[attr]) for attr in htcds.HASH_ORDER if attr in person]
    assert htcds.content_hash_of_members(members) == htcds.content_hash(person)


def test_a_row_checker_remembers_cells_without_changing_what_rows_give() -> None:
    """Checked twice by one RowChecker (the second time from its memory), rows give the same
    records and the same problems as validate_row; a date in the future is refused each time."""
    rows = [
        {
            **VICTIM,
            "prs_Gender": "feminine",
            "prs_Birthdate": "1990-02-28",
            "vic_TypeOfExploitation": "forcedlabour",
        },
        {**VICTIM, "prs_Gender": "Femenine", "prs_Birthdate": "2026-11-30"},
        {**PERPETRATOR, "prs_Gender": " feminine ", "per_RoleInProcess": "Exploiter;exploiter"},
    ]
    checker = htcds.RowChecker(RULES)
    for _ in range(2):
        for row in rows:
            assert checker.check(row, row=7) == check(row)
    assert check(rows[1])[1] == [
        Problem(7, "prs_Gender", GENDERS, "'Femenine'"),
        Problem(7, "prs_Birthdate", DATE, "a date in the future"),
    ]


def test_row_key() -> None:
    assert htcds.row_key({"cas_CaseId": " C-1 ", "prs_PersonId": "P-1"}) == ("C-1", "P-1")
    assert htcds.row_key({"cas_CaseId": "C-1"}) is None
    assert htcds.row_key({"cas_CaseId": "C\x00", "prs_PersonId": "P-1"}) is None


def test_storage_attributes_are_snake_case_of_htcds_names() -> None:
    assert htcds.FIELDS["prs_HighestLevelOfEducation"].attr == "highest_level_of_education"
    assert htcds.FIELDS["vic_TraffickingStatusDecisionMakingOrg"].attr == "status_decision_org"
    assert len(htcds.COUNTRIES) == 250  # the 249 ISO 3166-1 codes and XKX


def _cell_values() -> st.SearchStrategy[str]:
    names = [v for spec in htcds.FIELDS.values() if spec.lookup for v in spec.lookup.values()]
    names += [
        "true",
        "No",
        "1",
        "17",
        "121",
        "1990-02-28",
        "1990-02-30",
        "2023-W01-1",
        "B2",
        "ron",
        "+40 721 000 000",
    ]
    named = st.sampled_from(names).flatmap(
        lambda v: st.sampled_from([v, v.lower(), v.upper(), f" {v} ", f"{v};{v}", f"{v};", f"{v};x"])
    )
    return st.one_of(named, st.text(max_size=12), st.text(alphabet="0123456789-;+ ", max_size=12))


@settings(max_examples=300, deadline=None)
@given(column=st.sampled_from(sorted(htcds.FIELDS)), raw=_cell_values())
def test_fast_parsers_agree_with_the_full_parser(column: str, raw: str) -> None:
    spec = htcds.FIELDS[column]

    def outcome(parser: Callable[[object], object]) -> object:
        try:
            return parser(raw)
        except htcds.InvalidValue as e:
            return ("invalid", e.expected, e.got)

    fast = outcome(spec.fast)
    if fast is not htcds_values.MISS:
        assert fast == outcome(spec.parse_slowly)


def test_docs_list_every_column_and_value_name() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "ingest.md").read_text(encoding="utf-8")
    for name, spec in htcds.FIELDS.items():
        assert f"`{name}`" in docs, name
        if spec.lookup is not None and len(spec.lookup) < 200:  # not the country codes
            for value in spec.lookup.values():
                assert value in docs, (name, value)


def test_known_htcds_fields_that_palermo_does_not_store_are_accepted_and_dropped() -> None:
    names = [
        "cas_CaseId",
        "prs_PersonId",
        "role",
        "prs_MailingLatitude",
        "hte_ExploitationStreet",
        "con_Consent",
    ]
    assert htcds.resolve_columns(names) == ("cas_CaseId", "prs_PersonId", "role", None, None, None)
