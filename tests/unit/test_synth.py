"""The synthetic case-record generator: HTCDS values, dates, overlap with ground truth, files, CLI."""

from __future__ import annotations

import csv
import json
import random
import re
import tempfile
import unicodedata
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from node.cli.synth import synth_command
from node.errors import OperatorError
from node.services import synth
from node.services.synth_names import romanise_cyrillic, romanise_greek, typo
from protocol import htcds

# Value lists copied from HTCDS 2.0 (shared/HTCDS.md), not from the generator, plus Palermo's two additions.
HTCDS = {
    "prs_Gender": "Feminine Masculine TransgenderFeminine TransgenderMasculine NonConforming NonSpecifiedUnknown",
    "prs_MaritalStatus": "Single Married Widowed Divorced Separated RegisteredPartnership",
    "prs_HighestLevelOfEducation": "EarlyChildhoodEducation PrimaryEducation LowerSecondaryEducation "
    "UpperSecondaryEducation PostSecondaryNonTertiaryEducation ShortCycleTertiaryEducation "
    "BachelorsOrEquivalentLevel MastersOrEquivalentLevel DoctoralOrEquivalentLevel",
    "vic_TraffickingStatus": "PossibleVictimOfTrafficking ActualVictimOfTrafficking NotAVictimOfTrafficking",
    "vic_RelationshipToTrafficker": "Familial Acquainted Unaquainted",
    "vic_TypeOfExploitation": "ForcedLabour SexualExploitation ChildLabour ForcedMarriage Servitude "
    "ForcedMilitaryByNonStateActors OrganRemoval ForcedBegging ForcedAdoption Surrogacy Other ForcedCriminality",
    "vic_TypeOfSexExploitation": "Prostitution Pornography RemoteInteractiveServices PrivateSexualServices",
    "vic_ForcedLabourIndustry": "A_AgricultureForestryAndFishing B_MiningAndQuarrying C_Manufacturing "
    "D_ElectricityGasSteamAndAirConditioningSupply E_WaterSupplySewerageWasteManagement F_Construction "
    "G_WholesaleAndRetailTradeRepairOfMotorVehicles H_TransportationAndStorage "
    "I_AccommodationAndFoodServiceActivities J_InformationAndCommunication K_FinancialAndInsuranceActivities "
    "L_RealEstateActivities M_ProfessionalScientificAndTechnicalActivities "
    "N_AdministrativeAndSupportServiceActivities O_PublicAdministrationAndDefence P_Education "
    "Q_HumanHealthAndSocialWorkActivities R_ArtsEntertainmentAndRecreation S_OtherServiceActivities "
    "T_ActivitiesOfHouseholdsAsEmployers U_ActivitiesOfExtraterritorialOrganizations",
    "vic_MethodOfRecruitment": "AtAPlaceOfBusiness AtAnEducationalInstitution AtWork ThroughOnlineSocialNetworks "
    "ThroughAnOnlineAdvertisement ThroughATelevisionAdvert ThroughANewspaperAdvert ThroughFamilyOrFamilyEvents "
    "ThroughFriendsOrSocialEvents Other",
    "vic_RecruitmentWebsitesAndApps": "Facebook Instagram WhatsApp Telegram FacebookMessenger Viber SnapChat Line "
    "4Sale WeChat QQ QZone TikTok Twitter Other",
    "vic_MethodsOfControl": "PhysicalThreats ThreatsLawEnforcement ThreatensChildrenFamily DebtBondage FalsePromises "
    "PhysicalAbuse SexualAbuse TakesEarnings RestrictsFinancialAccess RestrictsMedicalCare WithholdsNecessities "
    "PsychologicalAbuse PsychoactiveSubstance ExcessiveWorkingHours WithholdsDocuments Other RestrictsMovement",
    "per_RoleInProcess": "TravellingPartner Transporter RecruiterOrIntermediary BrokerTravelAgent "
    "TransferredIndividual HarbouredIndividual SoldIndividual BoughtIndividual ReceivedIndividual "
    "ControlledIndividual Smuggler Abuser Kidnapper Exploiter Other",
    "cas_Status": "Active FollowUp Closed ClosedReferred",
    "shr_HandlingCode": "H0 H1 H2 H3",
    "shr_Matchable": "true false",
}
COUNTRY_FIELDS = ("prs_Citizenship", "prs_IdentityCountry", "prs_MailingCountry", "hte_RecruitmentCountry",
                  "hte_TransitCountry", "hte_ExploitationCountry")  # fmt: skip
DATE_FIELDS = ("cas_RegistrationDate", "cas_IncomingReferralDate", "hte_RecruitmentDate", "hte_TransitDate",
               "hte_ExploitationDate")  # fmt: skip
VICTIM_ONLY = [c for c in synth.COLUMNS if c.startswith("vic_")]


@pytest.fixture(scope="module")
def federation() -> dict[str, list[synth.Row]]:
    return synth.generate_federation(["ROU", "NLD", "UKR"], 1500, seed=11, include_truth=True)


def _values(row: synth.Row, column: str) -> list[str]:
    value = row.get(column)
    return [] if value is None else value if isinstance(value, list) else [value]


def _script(text: str) -> str:
    """The Unicode script of the first letter: LATIN, CYRILLIC, GREEK, ARABIC, CJK, THAI."""
    letter = next(c for c in text if c.isalpha())
    return unicodedata.name(letter).split()[0]


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _by_truth(fed: dict[str, list[synth.Row]]) -> dict[str, dict[str, synth.Row]]:
    out: dict[str, dict[str, synth.Row]] = defaultdict(dict)
    for country, rows in fed.items():
        for row in rows:
            out[str(row[synth.TRUTH_COLUMN])].setdefault(country, row)
    return out


def test_same_seed_gives_same_rows_and_another_seed_does_not() -> None:
    first = synth.generate_country("ROU", 300, seed=7)
    assert first == synth.generate_country("ROU", 300, seed=7)
    assert first != synth.generate_country("ROU", 300, seed=8)


def test_a_country_file_is_its_part_of_the_federation_whatever_the_order() -> None:
    fed = synth.generate_federation(["UKR", "NLD"], 200, seed=3, include_truth=True)
    assert fed == synth.generate_federation(["NLD", "ukr"], 200, seed=3, include_truth=True)
    alone = synth.generate_country("NLD", 200, seed=3, overlap_with=["UKR"], include_truth=True)
    assert alone == fed["NLD"]


@pytest.mark.parametrize("records", [1, 7, 250])
def test_exactly_the_requested_number_of_rows(records: int) -> None:
    assert len(synth.generate_country("DEU", records, seed=1)) == records


def test_required_columns_roles_and_no_truth_by_default() -> None:
    rows = synth.generate_country("GRC", 400, seed=2)
    for row in rows:
        assert all(
            row.get(c) for c in ("cas_CaseId", "prs_PersonId", "role", "prs_FirstName", "prs_SecondName")
        )
        assert list(row) == [c for c in synth.COLUMNS if c in row]  # known fields only, in column order
        assert re.fullmatch(r"GRC-20\d\d-\d{6}", str(row["cas_CaseId"]))
        if row["role"] == "perpetrator":
            assert not any(c in row for c in VICTIM_ONLY)
        else:
            assert row["role"] == "victim" and "per_RoleInProcess" not in row


def test_every_enumerated_value_is_an_htcds_value_name(federation: dict[str, list[synth.Row]]) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for row in (r for rows in federation.values() for r in rows):
        for column, allowed in HTCDS.items():
            seen[column].update(_values(row, column))
            assert set(_values(row, column)) <= set(allowed.split()), (column, row.get(column))
        assert re.fullmatch(r"[ABCX][1-4]", str(row["shr_Grading"]))
        for column in COUNTRY_FIELDS:
            assert all(re.fullmatch(r"[A-Z]{3}", v) for v in _values(row, column))
        if "vic_ForcedLabourIndustry" in row:
            assert "ForcedLabour" in _values(row, "vic_TypeOfExploitation")
    assert {"SexualExploitation", "ForcedLabour", "ForcedCriminality"} <= seen["vic_TypeOfExploitation"]
    assert {"true", "false"} == seen["shr_Matchable"]
    assert {k: set(v) for k, v in synth.HTCDS_VALUES.items()} == {
        k: set(v.split()) for k, v in HTCDS.items() if k in synth.HTCDS_VALUES
    }


def test_every_row_passes_the_protocol_row_check(federation: dict[str, list[synth.Row]]) -> None:
    rules = htcds.RowRules(latest_date=synth.LATEST, default_matchable=True, default_handling_code="H0")
    for rows in federation.values():
        assert htcds.resolve_columns(synth.columns_for(rows))
        for number, row in enumerate(rows):
            record, problems = htcds.validate_row(row, row=number, rules=rules)
            assert record is not None, [str(p) for p in problems]


def test_distributions_are_plausible(federation: dict[str, list[synth.Row]]) -> None:
    rows = federation["NLD"]
    victims = [r for r in rows if r["role"] == "victim"]
    ages = [int(str(r["vic_AgeWhenTrafficked"])) for r in victims if "vic_AgeWhenTrafficked" in r]
    assert 0.12 < sum(a < 18 for a in ages) / len(ages) < 0.3
    assert sum(18 <= a <= 35 for a in ages) / len(ages) > 0.5
    assert 0.85 < sum(r["shr_Matchable"] == "true" for r in rows) / len(rows) < 0.95
    types = [t for r in victims for t in _values(r, "vic_TypeOfExploitation")]
    assert types.count("SexualExploitation") + types.count("ForcedLabour") > 0.6 * len(types)
    assert sum("prs_Citizenship" in r and r["prs_Citizenship"] != ["NLD"] for r in victims) > 0.5 * len(
        victims
    )


def test_phones_are_e164_of_the_home_country(federation: dict[str, list[synth.Row]]) -> None:
    calling = {"UKR": "+380", "ROU": "+40", "NLD": "+31", "NGA": "+234", "MDA": "+373", "BGR": "+359"}
    checked = 0
    for row in (r for rows in federation.values() for r in rows):
        for column in ("prs_MobilePhone", "prs_HomePhone"):
            if column in row:
                assert re.fullmatch(r"\+[1-9]\d{7,14}", str(row[column]))
        home = _values(row, "prs_Citizenship")[:1]
        if "prs_MobilePhone" in row and home and home[0] in calling:
            assert str(row["prs_MobilePhone"]).startswith(calling[home[0]])
            checked += 1
    assert checked > 1000


def test_dates_are_iso_and_in_route_order(federation: dict[str, list[synth.Row]]) -> None:
    for row in (r for rows in federation.values() for r in rows):
        dates = {c: date.fromisoformat(str(row[c])) for c in DATE_FIELDS if c in row}
        assert re.fullmatch(r"\d{4}(-\d\d(-\d\d)?)?", str(row.get("prs_Birthdate", "2000")))
        order = [dates.get(c) for c in ("hte_RecruitmentDate", "hte_TransitDate", "hte_ExploitationDate")]
        known = [d for d in order if d is not None]
        assert known == sorted(known)
        assert all(d <= dates["cas_RegistrationDate"] for d in known)


def test_birth_dates_agree_with_age_when_trafficked_when_dates_are_clean() -> None:
    rows = synth.generate_country("UKR", 600, seed=4, difficulty="typos")
    checked = 0
    for row in rows:
        birth, recruited = row.get("prs_Birthdate"), row.get("hte_RecruitmentDate")
        if row["role"] == "victim" and birth and recruited and "vic_AgeWhenTrafficked" in row:
            b, r = date.fromisoformat(str(birth)), date.fromisoformat(str(recruited))
            assert r.year - b.year - ((r.month, r.day) < (b.month, b.day)) == int(
                str(row["vic_AgeWhenTrafficked"])
            )
            checked += 1
    assert checked > 100


def test_people_appear_in_several_countries_with_ground_truth(federation: dict[str, list[synth.Row]]) -> None:
    by_truth = _by_truth(federation)
    shared = {t: rows for t, rows in by_truth.items() if len(rows) > 1}
    for country, rows in federation.items():
        persons = {str(r["prs_PersonId"]) for r in rows}
        abroad = {str(r["prs_PersonId"]) for r in rows if str(r[synth.TRUTH_COLUMN]) in shared}
        assert 0.04 < len(abroad) / len(persons) < 0.3, country
    roles = {row["role"] for rows in shared.values() for row in rows.values()}
    assert roles == {"victim", "perpetrator"}
    phones: dict[str, set[str]] = defaultdict(set)
    for country, rows in federation.items():
        for row in rows:
            if row["role"] == "perpetrator" and "prs_MobilePhone" in row:
                phones[str(row["prs_MobilePhone"])].add(country)
    assert any(len(countries) > 1 for countries in phones.values())


def test_one_local_id_per_person_and_some_people_in_two_local_cases(
    federation: dict[str, list[synth.Row]],
) -> None:
    for rows in federation.values():
        truth_of: dict[str, str] = {}
        cases_of: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            person = str(row["prs_PersonId"])
            assert truth_of.setdefault(person, str(row[synth.TRUTH_COLUMN])) == row[synth.TRUTH_COLUMN]
            cases_of[person].add(str(row["cas_CaseId"]))
        assert len(set(truth_of.values())) == len(truth_of)
        assert 0.01 < sum(len(c) > 1 for c in cases_of.values()) / len(cases_of) < 0.08


def test_scripts_profile_writes_names_in_the_clerks_script() -> None:
    fed = synth.generate_federation(
        ["UKR", "NLD", "EGY", "GRC"], 800, seed=5, difficulty="scripts", include_truth=True
    )
    across = 0
    for rows in _by_truth(fed).values():
        if "UKR" in rows and "NLD" in rows and _values(rows["UKR"], "prs_Citizenship")[:1] == ["UKR"]:
            assert _script(str(rows["UKR"]["prs_SecondName"])) == "CYRILLIC"
            assert _script(str(rows["NLD"]["prs_SecondName"])) == "LATIN"
            across += 1
    assert across > 5
    for country, script in (("EGY", "ARABIC"), ("GRC", "GREEK"), ("UKR", "CYRILLIC")):
        own = [r for r in fed[country] if _values(r, "prs_Citizenship")[:1] == [country]]
        assert own and all(_script(str(r["prs_FirstName"])) == script for r in own)


def test_typos_profile_keeps_latin_names_within_a_typo_on_each_side() -> None:
    fed = synth.generate_federation(["UKR", "ROU"], 800, seed=6, difficulty="typos", include_truth=True)
    differ = 0
    for rows in (r for r in _by_truth(fed).values() if len(r) == 2):
        a, b = rows["UKR"], rows["ROU"]
        for column in ("prs_FirstName", "prs_SecondName"):
            assert _script(str(a[column])) == _script(str(b[column])) == "LATIN"
            assert _distance(str(a[column]), str(b[column])) <= 4  # at most one typo per side, 2 edits each
            differ += a[column] != b[column]
    assert differ > 10


def test_dates_profile_has_vague_birth_dates() -> None:
    rows = synth.generate_country("NLD", 1000, seed=8, difficulty="dates")
    births = [str(r.get("prs_Birthdate", "")) for r in rows]
    assert sum(len(b) == 4 for b in births) > 30 and sum(len(b) == 7 for b in births) > 10
    assert sum(b.endswith("-01-01") for b in births) > 30 and births.count("") > 50


def test_partial_profile_leaves_people_out_of_one_side() -> None:
    fed = synth.generate_federation(["ROU", "NLD"], 1000, seed=9, difficulty="partial", include_truth=True)
    cases: dict[str, dict[str, set[str]]] = {c: defaultdict(set) for c in fed}
    for country, rows in fed.items():
        for row in rows:
            cases[country][str(row["cas_CaseId"])].add(str(row[synth.TRUTH_COLUMN]))
    uneven = 0
    for people_a in cases["ROU"].values():
        for people_b in cases["NLD"].values():
            uneven += bool(people_a & people_b) and people_a != people_b
    assert uneven > 5


def test_romanisation_and_typos() -> None:
    assert romanise_cyrillic("Коваленко", lang="uk", style="ua") == "Kovalenko"
    assert romanise_cyrillic("Коваленко", lang="uk", style="de") == "Kowalenko"
    assert romanise_cyrillic("Коваленко", lang="uk", style="ro") == "Covalenco"
    assert romanise_cyrillic("Ольга", lang="ru", style="ru") == "Olga"
    assert romanise_cyrillic("Ольга", lang="uk", style="ua") == "Olha"
    assert [romanise_cyrillic("Евгений", lang="ru", style=s) for s in ("ru", "en", "de")] == [
        "Evgenii",
        "Yevgeniy",
        "Jewgeni",
    ]
    assert romanise_greek("Παπαδόπουλος") == "Papadopoulos"
    rng = random.Random(1)
    for _ in range(50):
        wrong = typo("Kovalenko", rng)
        assert wrong != "Kovalenko" and wrong[0] == "K" and _distance(wrong, "Kovalenko") <= 2


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: synth.generate_country("XYZ", 10, seed=1), "unknown_country"),
        (lambda: synth.generate_country("NLD", 10, seed=1, difficulty="hard"), "invalid_request"),
        (lambda: synth.generate_federation(["NLD", "ROU"], 10, seed=1, overlap=1.5), "invalid_request"),
        (lambda: synth.generate_country("NLD", -1, seed=1), "invalid_request"),
        (lambda: synth.format_from_path("records.txt"), "unknown_format"),
    ],
)
def test_invalid_requests_are_refused(call: object, code: str) -> None:
    with pytest.raises(OperatorError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code == code


def _read(path: Path, fmt: str) -> list[dict[str, object]]:
    """Rows read back with the standard readers, multi-valued fields as lists, empty cells dropped."""
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as f:
            raw = list(csv.DictReader(f))
    else:
        sheet = load_workbook(path, read_only=True).active
        header, *body = list(sheet.iter_rows(values_only=True))
        raw = [dict(zip(header, values, strict=True)) for values in body]
    return [
        {k: v.split(";") if k in synth.MULTI_VALUED else v for k, v in row.items() if v not in (None, "")}
        for row in raw
    ]


@pytest.mark.parametrize("fmt", synth.FORMATS)
def test_files_read_back_as_the_same_rows(fmt: str, tmp_path: Path) -> None:
    rows = synth.generate_federation(["EGY", "CHN"], 120, seed=4, include_truth=True)["EGY"]
    path = tmp_path / f"records.{fmt}"
    synth.write_rows(rows, path)
    assert _read(path, fmt) == rows
    if fmt != "jsonl":
        assert _header(path, fmt) == [*synth.COLUMNS, synth.TRUTH_COLUMN]


def _header(path: Path, fmt: str) -> list[str]:
    if fmt == "csv":
        return path.read_text(encoding="utf-8").splitlines()[0].split(",")
    return [str(c) for c in next(load_workbook(path, read_only=True).active.iter_rows(values_only=True))]


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    country=st.sampled_from(["UKR", "THA", "SYR", "VNM"]),
    fmt=st.sampled_from(["csv", "jsonl"]),
)
def test_round_trip_for_any_seed(seed: int, country: str, fmt: str) -> None:
    rows = synth.generate_country(country, 25, seed=seed, difficulty="mixed")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"r.{fmt}"
        synth.write_rows(rows, path)
        assert _read(path, fmt) == rows


def test_cli_writes_a_file_and_reports_json(tmp_path: Path) -> None:
    out = tmp_path / "rou.jsonl"
    args = ["--country", "rou", "--records", "120", "--out", str(out), "--overlap-with", "NLD,UKR", "--json"]
    result = CliRunner().invoke(synth_command, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = _read(out, "jsonl")
    assert report == {
        "file": str(out),
        "country": "ROU",
        "rows": 120,
        "persons": len({r["prs_PersonId"] for r in rows}),
        "cases": len({r["cas_CaseId"] for r in rows}),
    }
    assert rows == synth.generate_country("ROU", 120, seed=0, overlap_with=["NLD", "UKR"])
    assert not any(synth.TRUTH_COLUMN in r for r in rows)


def test_cli_summary_truth_and_format_option(tmp_path: Path) -> None:
    out = tmp_path / "export.data"
    args = [
        "--country",
        "NLD",
        "--records",
        "30",
        "--out",
        str(out),
        "--format",
        "csv",
        "--with-truth",
        "--seed",
        "3",
    ]
    result = CliRunner().invoke(synth_command, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote 30 rows (") and "for NLD to" in result.output
    assert all(r[synth.TRUTH_COLUMN] for r in _read(out, "csv"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "XYZ", "--records", "5", "--out", "x.csv"], "unknown country code 'XYZ'"),
        (["--country", "NLD", "--records", "5", "--out", "x.csv", "--overlap-with", "UKR,ZZZ"], "'ZZZ'"),
        (["--country", "NLD", "--records", "5", "--out", "x.txt"], "cannot tell the format"),
        (["--country", "NLD", "--records", "0", "--out", "x.csv"], "--records"),
    ],
)
def test_cli_refuses_bad_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(synth_command, args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_person_is_in_a_case_once_even_when_every_draw_picks_the_same_earlier_person(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At a million rows two members of one case once drew the same earlier person (ingest then
    refuses the file). With every reuse and every ring draw forced onto one person, each case
    still holds every person once."""
    from node.services import synth_people

    rng = random.Random(7)
    ids = synth_people.IdSource("ROU")
    route = synth_people.make_route(rng, "UKR", "ROU")
    target = synth_people.make_case(rng, ids, route, citizenship="UKR", ring=[], ring_chance=0.0).members[0]

    def same_person(
        _rng: random.Random, _seen: object, member: synth_people.Member, _date: date
    ) -> synth_people.Member:
        return synth_people.Member(target.person, member.role, member.context)

    monkeypatch.setattr(synth_people, "_reuse", same_person)
    for _ in range(50):
        case = synth_people.make_case(
            rng, ids, route, citizenship="UKR", ring=[target.person], ring_chance=1.0
        )
        true_ids = [m.person.true_id for m in case.members]
        assert len(true_ids) == len(set(true_ids))
