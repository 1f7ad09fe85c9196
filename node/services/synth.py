"""Synthetic HTCDS 2.0 case records, for demos, load tests and matching tests with ground truth.

One row per person in a case. :func:`generate_federation` makes several countries' records in which
about ``overlap`` of the people also appear in another country's records, written as that country's
clerks would write them (own script, ear-romanisation, typos, swapped names, vague birth dates).
The hidden column ``synth_TrueId`` says who is really who; it is added only on request.
Nothing here is real personal data: names come from Faker and from invented tables.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, partial
from pathlib import Path

from node.errors import OperatorError
from node.services import synth_names as sn
from node.services import synth_people as people
from node.services.synth_names import COUNTRIES
from node.services.synth_people import Case, Member, Person, Profile, Route

Row = dict[str, str | list[str]]

REQUIRED = ("cas_CaseId", "prs_PersonId", "role")
COLUMNS = (
    *REQUIRED, "prs_FirstName", "prs_MiddleName", "prs_SecondName", "prs_Birthdate", "prs_Gender", "prs_Citizenship",
    "prs_IdentityNumber", "prs_IdentityCountry", "prs_Email", "prs_HomePhone", "prs_MobilePhone",
    "prs_MailingCity", "prs_MailingCountry", "prs_MaritalStatus", "prs_NumberOfChildren", "prs_PrimaryLanguage",
    "prs_HighestLevelOfEducation", "vic_TraffickingStatus", "vic_RelationshipToTrafficker",
    "vic_AgeWhenTrafficked", "vic_TypeOfExploitation", "vic_TypeOfSexExploitation", "vic_ForcedLabourIndustry",
    "vic_MethodOfRecruitment", "vic_RecruitmentWebsitesAndApps", "vic_MethodsOfControl", "per_RoleInProcess",
    "cas_Status", "cas_RegistrationDate", "cas_IncomingReferralDate", "hte_RecruitmentCountry",
    "hte_RecruitmentDate", "hte_TransitCountry", "hte_TransitDate", "hte_ExploitationCountry",
    "hte_ExploitationDate", "shr_Matchable", "shr_HandlingCode", "shr_Grading",
)  # fmt: skip
TRUTH_COLUMN = "synth_TrueId"
MULTI_VALUED = frozenset({
    "prs_Citizenship", "vic_TypeOfExploitation", "vic_TypeOfSexExploitation", "vic_MethodOfRecruitment",
    "vic_RecruitmentWebsitesAndApps", "vic_MethodsOfControl", "per_RoleInProcess", "hte_TransitCountry",
})  # fmt: skip
FORMATS = ("csv", "jsonl", "xlsx")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}
DIFFICULTIES = tuple(people.PROFILES)
HTCDS_VALUES = people.HTCDS_VALUES
LATEST = date(2026, 6, 30)  # no case is registered after this day (no clock: output depends on the seed only)


@dataclass
class _Plan:
    """The cases shared between countries and the recruiters that work across borders."""

    shared: dict[str, list[Case]]
    ring: list[Person]


def check_country(code: str) -> str:
    """The ISO 3166-1 alpha-3 code in upper case; raises :class:`OperatorError` if it is not supported."""
    upper = code.strip().upper()
    if upper not in COUNTRIES:
        raise OperatorError(
            f"unknown country code {code!r}: expected an ISO 3166-1 alpha-3 code, one of {', '.join(COUNTRIES)}",
            code="unknown_country",
        )
    return upper


def format_from_path(path: str | Path) -> str:
    """``csv``, ``jsonl`` or ``xlsx`` from the file name's extension; raises :class:`OperatorError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise OperatorError(
            f"cannot tell the format of {Path(path).name!r}: expected a .csv, .jsonl or .xlsx file name",
            code="unknown_format",
        )
    return _EXTENSIONS[suffix]


def generate_federation(
    countries: Sequence[str],
    records_per_country: int,
    *,
    seed: int,
    overlap: float = 0.1,
    difficulty: str = "mixed",
    include_truth: bool = False,
) -> dict[str, list[Row]]:
    """Rows for each country, where about ``overlap`` of each country's people appear in another's.

    The result depends only on the arguments (the order of ``countries`` does not matter), so
    :func:`generate_country` with the same seed, size and set of countries yields the same rows.
    Raises :class:`OperatorError` for an unknown country, difficulty, size or overlap.
    """
    codes, profile = _check_arguments(countries, records_per_country, overlap, difficulty)
    plan = _plan(codes, records_per_country, seed, overlap, difficulty, profile)
    return {c: _country_rows(c, records_per_country, seed, plan, profile, include_truth) for c in codes}


def generate_country(
    country: str,
    records: int,
    *,
    seed: int,
    overlap_with: Iterable[str] = (),
    overlap: float = 0.1,
    difficulty: str = "mixed",
    include_truth: bool = False,
) -> list[Row]:
    """``records`` rows of one country's register; with ``overlap_with``, the rows it would have in
    :func:`generate_federation` of it and those countries. Raises :class:`OperatorError`."""
    code = check_country(country)
    codes, profile = _check_arguments([code, *overlap_with], records, overlap, difficulty)
    plan = _plan(codes, records, seed, overlap, difficulty, profile)
    return _country_rows(code, records, seed, plan, profile, include_truth)


def _check_arguments(
    countries: Iterable[str], records: int, overlap: float, difficulty: str
) -> tuple[list[str], Profile]:
    codes = sorted({check_country(c) for c in countries})
    if not codes:
        raise OperatorError("expected at least one country", code="invalid_request")
    if records < 0:
        raise OperatorError(f"expected a number of records >= 0, got {records}", code="invalid_request")
    if not 0.0 <= overlap <= 1.0:
        raise OperatorError(f"expected an overlap between 0 and 1, got {overlap}", code="invalid_request")
    if difficulty not in people.PROFILES:
        raise OperatorError(
            f"unknown difficulty {difficulty!r}: expected one of {', '.join(DIFFICULTIES)}",
            code="invalid_request",
        )
    return codes, people.PROFILES[difficulty]


def _rng(*parts: object) -> random.Random:
    # Seeding with a string is stable across runs and Python versions (random hashes it with SHA-512).
    return random.Random(":".join(["palermo-synth", *map(str, parts)]))  # noqa: S311 -- test data, not secrets


def _plan(
    codes: list[str], records: int, seed: int, overlap: float, difficulty: str, profile: Profile
) -> _Plan:
    rng = _rng(seed, ",".join(codes), records, overlap, difficulty)
    ids = people.IdSource("X")
    ring = [
        people.make_perpetrator(rng, ids, people.pick_source(rng), people.EARLIEST)
        for _ in range(3 + records // 400)
    ]
    shared: dict[str, list[Case]] = {c: [] for c in codes}
    if len(codes) < 2 or overlap == 0:
        return _Plan(shared, ring)
    quota, filled = max(1, round(overlap * records)), dict.fromkeys(codes, 0)
    for _ in range(records * len(codes)):
        short = [c for c in codes if filled[c] < quota]
        if not short:
            break
        first = min(short, key=lambda c: filled[c])
        others = [c for c in codes if c != first]
        sides = [first, *rng.sample(others, 2 if len(others) > 1 and rng.random() < 0.15 else 1)]
        story = _shared_story(rng, ids, sides, ring)
        for country in sides:
            members = _keep(rng, story.members, profile.keep)
            registered = min(
                LATEST, story.route.exploitation_date + timedelta(days=people.between(rng, 5, 399))
            )
            shared[country].append(Case(story.route, members, registered))
            filled[country] += len(members)
    return _Plan(shared, ring)


def _keep(rng: random.Random, members: list[Member], chance: float) -> list[Member]:
    kept = [m for m in members if rng.random() < chance]
    return kept or [people.one_of(rng, members)]


def _shared_story(rng: random.Random, ids: people.IdSource, sides: list[str], ring: list[Person]) -> Case:
    """A case across the given countries: recruited in a source country, exploited in another,
    perhaps stopped in transit in a third."""
    a, b, transit = sides[0], sides[1], sides[2:]
    a_source, b_source = COUNTRIES[a].source >= 3, COUNTRIES[b].source >= 3
    if a_source and (not b_source or rng.random() < 0.5):
        source, destination = a, b
    elif b_source:
        source, destination = b, a
    else:  # neither is a usual source: recruited elsewhere, stopped in transit in a, exploited in b
        source, destination, transit = people.pick_source(rng, sides), b, [a, *transit]
    route = people.make_route(rng, source, destination, transit=transit)
    return people.make_case(rng, ids, route, citizenship=source, ring=ring, ring_chance=0.3)


def _country_rows(
    country: str, records: int, seed: int, plan: _Plan, profile: Profile, include_truth: bool
) -> list[Row]:
    rng = _rng(seed, country, "local")
    ids = people.IdSource(country)
    cases, seen = list(plan.shared[country]), list[Member]()
    total = sum(len(c.members) for c in cases)
    while total < records:
        case = people.make_local_case(rng, ids, country, ring=plan.ring, seen=seen, latest=LATEST)
        cases.append(case)
        total += len(case.members)
        seen.extend(case.members)
    cases.sort(key=lambda c: c.registered)
    register = _Register(rng, country, profile, include_truth)
    rows: list[Row] = []
    for case in cases:
        case_fields = register.case_fields(case)
        for member in case.members[: records - len(rows)]:
            rows.append(register.row(member, case, case_fields))
    return rows


@dataclass
class _Register:
    """One agency's clerks writing cases down: local ids, case numbers, each person written once."""

    rng: random.Random
    country: str
    profile: Profile
    include_truth: bool
    person_ids: dict[str, str] = field(default_factory=dict)
    persons: dict[str, Row] = field(default_factory=dict)
    per_year: dict[int, int] = field(default_factory=dict)

    def case_fields(self, case: Case) -> tuple[str, Row]:
        """The case id and the case's fields (status, dates, route), as this agency wrote them."""
        year = case.registered.year
        self.per_year[year] = self.per_year.get(year, 0) + 1
        return f"{self.country}-{year}-{self.per_year[year]:06d}", _case_fields(self.rng, case)

    def row(self, member: Member, case: Case, case_fields: tuple[str, Row]) -> Row:
        """One person in one case; every builder gives its fields in column order, leaving out unknowns."""
        person, rng = member.person, self.rng
        local_id = self.person_ids.setdefault(
            person.true_id, f"{self.country}-P{len(self.person_ids) + 1:07d}"
        )
        if person.true_id not in self.persons:
            self.persons[person.true_id] = _person_fields(
                rng, person, self.country, member.role, self.profile
            )
        row: Row = {"cas_CaseId": case_fields[0], "prs_PersonId": local_id, "role": member.role}
        row.update(self.persons[person.true_id])
        row.update(_context_fields(rng, member, case.route))
        row.update(case_fields[1])
        row["shr_Matchable"] = "true" if rng.random() < 0.9 else "false"
        row["shr_HandlingCode"] = people.pick(rng, "shr_HandlingCode")
        row["shr_Grading"] = people.pick(rng, "grading_source") + people.pick(rng, "grading_information")
        if self.include_truth:
            row[TRUTH_COLUMN] = person.true_id
        return row


def _birthdate(rng: random.Random, birth: date, rates: tuple[float, ...]) -> str:
    """The birth date as written: missing, year only, year-month, 1 January placeholder, day and month
    swapped (when that is still a date), or exact; with the profile's rates in that order."""
    swapped = date(birth.year, birth.day, birth.month) if birth.day <= 12 else birth
    y, m = f"{birth.year:04d}", f"{birth.month:02d}"
    forms = ("", y, f"{y}-{m}", f"{y}-01-01", swapped.isoformat())
    r = rng.random()
    for rate, form in zip(rates, forms, strict=True):
        if r < rate:
            return form
        r -= rate
    return birth.isoformat()


# Chance that a clerk knows and writes a field down, for a victim and for a perpetrator.
_KNOWN = {
    "prs_Birthdate": (1.0, 0.75), "prs_Gender": (0.98, 0.9), "prs_Citizenship": (0.95, 0.8),
    "prs_IdentityNumber": (0.6, 0.45), "prs_Email": (0.35, 0.3), "prs_HomePhone": (0.1, 0.08),
    "prs_MobilePhone": (0.7, 0.7), "prs_MailingCity": (0.7, 0.5), "prs_MailingCountry": (0.75, 0.55),
    "prs_MaritalStatus": (0.55, 0.3), "prs_NumberOfChildren": (0.45, 0.2), "prs_PrimaryLanguage": (0.85, 0.6),
    "prs_HighestLevelOfEducation": (0.5, 0.2),
}  # fmt: skip


def _person_fields(rng: random.Random, person: Person, register: str, role: str, profile: Profile) -> Row:
    home, column, respell = person.citizenship[0], 0 if role == "victim" else 1, rng.random() < 0.7
    write = partial(sn.write_name, home=home, register=register, rng=rng, respell=respell)
    first, middle, second = (
        write(n, variant=profile.variant, local_script=profile.local_script) if n else ""
        for n in (person.given, person.middle, person.surname)
    )
    first, second = (sn.typo(n, rng) if rng.random() < profile.typo else n for n in (first, second))
    chinese_abroad = COUNTRIES[home].script == "Hani" and register != home and profile.variant > 0
    if rng.random() < profile.swap + 0.3 * chinese_abroad:
        first, second = second, first
    same_script = COUNTRIES[home].script == COUNTRIES[register].script
    native_city, spellings = _cities(person.residence)[person.city]
    values: dict[str, str | list[str]] = {
        "prs_Birthdate": _birthdate(rng, person.birth, profile.birth),
        "prs_Gender": person.gender,
        "prs_Citizenship": list(person.citizenship),
        "prs_IdentityNumber": person.id_number,
        "prs_Email": person.email,
        "prs_HomePhone": person.home_phone,
        "prs_MobilePhone": person.mobile,
        "prs_MailingCity": native_city if register == person.residence else spellings[0],
        "prs_MailingCountry": person.residence,
        "prs_MaritalStatus": person.marital,
        "prs_NumberOfChildren": str(person.children),
        "prs_PrimaryLanguage": COUNTRIES[home].lang,
        "prs_HighestLevelOfEducation": person.education,
    }
    fields: Row = {"prs_FirstName": first}
    if middle and rng.random() < (0.9 if same_script else 0.2):
        fields["prs_MiddleName"] = middle
    fields["prs_SecondName"] = second
    for column_name, value in values.items():
        if value and rng.random() < _KNOWN[column_name][column]:
            fields[column_name] = value
            if column_name == "prs_IdentityNumber":
                fields["prs_IdentityCountry"] = person.id_country
    return fields


@cache
def _cities(country: str) -> list[tuple[str, tuple[str, ...]]]:
    return sn.variant_table(COUNTRIES[country].cities)


_VICTIM_KNOWN = {
    "vic_TraffickingStatus": 0.97, "vic_RelationshipToTrafficker": 0.7, "vic_TypeOfExploitation": 0.97,
    "vic_MethodOfRecruitment": 0.7, "vic_RecruitmentWebsitesAndApps": 0.8, "vic_MethodsOfControl": 0.85,
}  # fmt: skip


_VICTIM_COLUMNS = tuple(c for c in COLUMNS if c.startswith("vic_"))


def _context_fields(rng: random.Random, member: Member, route: Route) -> Row:
    if member.role == "perpetrator":
        return {k: v for k, v in member.context.items() if rng.random() < 0.9}
    context, fields = member.context, Row()
    for column in _VICTIM_COLUMNS:
        if column == "vic_AgeWhenTrafficked" and rng.random() < 0.9:  # whole years on the day of recruitment
            birth, on = member.person.birth, route.recruitment_date
            fields[column] = str(on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day)))
        elif column in context and rng.random() < _VICTIM_KNOWN.get(column, 0.9):
            fields[column] = context[column]
    if "vic_TypeOfExploitation" not in fields:  # the details of an exploitation nobody wrote down
        fields.pop("vic_ForcedLabourIndustry", None)
        fields.pop("vic_TypeOfSexExploitation", None)
    return fields


def _chance(rng: random.Random, p: float, value: str | list[str]) -> str | list[str]:
    """``value``, or nothing with probability ``1 - p``."""
    return value if rng.random() < p else ""


def _case_fields(rng: random.Random, case: Case) -> Row:
    route, registered = case.route, case.registered
    referral = max(route.exploitation_date, registered - timedelta(days=people.below(rng, 60)))
    fields: Row = {
        "cas_Status": people.pick(rng, "cas_Status"),
        "cas_RegistrationDate": registered.isoformat(),
        "cas_IncomingReferralDate": _chance(rng, 0.35, referral.isoformat()),
        "hte_RecruitmentCountry": _chance(rng, 0.95, route.recruitment_country),
        "hte_RecruitmentDate": _chance(rng, 0.8, route.recruitment_date.isoformat()),
        "hte_TransitCountry": _chance(rng, 0.85, list(route.transit)),
        "hte_TransitDate": _chance(rng, 0.5, route.transit_date.isoformat() if route.transit_date else ""),
        "hte_ExploitationCountry": _chance(rng, 0.97, route.exploitation_country),
        "hte_ExploitationDate": _chance(rng, 0.85, route.exploitation_date.isoformat()),
    }
    return {k: v for k, v in fields.items() if v}


def columns_for(rows: Iterable[Row]) -> list[str]:
    """The header for ``rows``: every Palermo column, and the truth column if any row carries it."""
    has_truth = any(TRUTH_COLUMN in r for r in rows)
    return [*COLUMNS, TRUTH_COLUMN] if has_truth else list(COLUMNS)


def _flat(value: str | list[str] | None) -> str | None:
    if value is None:
        return None
    return ";".join(value) if isinstance(value, list) else value


def write_rows(rows: list[Row], path: str | Path, fmt: str | None = None) -> None:
    """Write rows as CSV (UTF-8, header, multi-valued joined with ";"), JSONL (lists for multi-valued,
    missing fields omitted) or XLSX (write-only workbook, one sheet, header). Raises :class:`OperatorError`."""
    fmt = fmt or format_from_path(path)
    if fmt not in FORMATS:
        raise OperatorError(
            f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}", code="unknown_format"
        )
    header = columns_for(rows)
    try:
        if fmt == "csv":
            with open(path, "w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows([_flat(r.get(c)) or "" for c in header] for r in rows)
        elif fmt == "jsonl":
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        else:
            _write_xlsx(rows, path, header)
    except OSError as e:
        raise OperatorError(f"cannot write {Path(path).name!r}: {e.strerror}", code="cannot_write") from e


def _write_xlsx(rows: list[Row], path: str | Path, header: list[str]) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("records")
    sheet.append(header)
    for r in rows:
        sheet.append([_flat(r.get(c)) for c in header])
    book.save(path)
