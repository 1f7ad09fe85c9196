"""Synthetic people, routes and cases, and how one agency's clerks record them (HTCDS 2.0 values).

Helpers of :mod:`node.services.synth`. Name pools are built once per locale from Faker (or from the
tables in :mod:`node.services.synth_names`) and then sampled with the caller's ``random.Random``,
so output depends on the seed only and 100,000 rows take seconds.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from typing import TypeVar

from faker import Faker

from node.services import synth_names as sn
from node.services.synth_names import COUNTRIES

Fields = dict[str, str | list[str]]
T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """How hard the records are to match: clerks' own scripts, spelling variants, typos, gaps."""

    local_script: bool = False  # clerks write names in their own script (else every name in passport Latin)
    variant: float = 0.0  # chance of a non-passport romanisation, dropped diacritics, Russian name form
    typo: float = 0.0  # chance of a keying error in a first or second name
    swap: float = 0.0  # chance that first and second name are swapped
    keep: float = 1.0  # chance that a person of a shared case is in a given country's record of it
    # birth date missing, year only, year-month, 1 January placeholder, day and month swapped
    birth: tuple[float, ...] = (0.03, 0.0, 0.0, 0.0, 0.0)


PROFILES = {
    "typos": Profile(typo=0.35),
    "scripts": Profile(local_script=True, variant=0.6),
    "partial": Profile(keep=0.5),
    "dates": Profile(birth=(0.15, 0.1, 0.05, 0.1, 0.08)),
    "mixed": Profile(True, 0.3, 0.08, 0.05, 0.8, (0.08, 0.04, 0.02, 0.04, 0.03)),
}

# HTCDS 2.0 value names with how often this generator draws them (Palermo adds ForcedCriminality and
# RestrictsMovement). Weights are plausible, not statistics.
WEIGHTS = {
    "prs_MaritalStatus": "Single:60 Married:20 Divorced:8 Separated:6 Widowed:2 RegisteredPartnership:4",
    "prs_HighestLevelOfEducation": "EarlyChildhoodEducation:1 PrimaryEducation:18 LowerSecondaryEducation:30 "
    "UpperSecondaryEducation:30 PostSecondaryNonTertiaryEducation:8 ShortCycleTertiaryEducation:4 "
    "BachelorsOrEquivalentLevel:7 MastersOrEquivalentLevel:2 DoctoralOrEquivalentLevel:0.2",
    "vic_TraffickingStatus": "PossibleVictimOfTrafficking:45 ActualVictimOfTrafficking:50 NotAVictimOfTrafficking:5",
    "vic_RelationshipToTrafficker": "Familial:15 Acquainted:50 Unaquainted:35",
    "vic_TypeOfExploitation": "SexualExploitation:42 ForcedLabour:36 ForcedCriminality:8 ForcedBegging:3 "
    "ForcedMarriage:3 Servitude:3 ChildLabour:1 Other:2 OrganRemoval:0.4 Surrogacy:0.4 ForcedAdoption:0.2 "
    "ForcedMilitaryByNonStateActors:0.2",
    "vic_TypeOfSexExploitation": "Prostitution:80 Pornography:8 RemoteInteractiveServices:7 PrivateSexualServices:10",
    "vic_ForcedLabourIndustry": "A_AgricultureForestryAndFishing:20 B_MiningAndQuarrying:2 C_Manufacturing:15 "
    "D_ElectricityGasSteamAndAirConditioningSupply:0.2 E_WaterSupplySewerageWasteManagement:1 F_Construction:18 "
    "G_WholesaleAndRetailTradeRepairOfMotorVehicles:5 H_TransportationAndStorage:5 "
    "I_AccommodationAndFoodServiceActivities:14 J_InformationAndCommunication:0.5 K_FinancialAndInsuranceActivities:0.2 "
    "L_RealEstateActivities:0.3 M_ProfessionalScientificAndTechnicalActivities:0.3 "
    "N_AdministrativeAndSupportServiceActivities:4 O_PublicAdministrationAndDefence:0.1 P_Education:0.2 "
    "Q_HumanHealthAndSocialWorkActivities:1 R_ArtsEntertainmentAndRecreation:1 S_OtherServiceActivities:4 "
    "T_ActivitiesOfHouseholdsAsEmployers:12 U_ActivitiesOfExtraterritorialOrganizations:0.1",
    "vic_MethodOfRecruitment": "AtAPlaceOfBusiness:4 AtAnEducationalInstitution:2 AtWork:6 "
    "ThroughOnlineSocialNetworks:25 ThroughAnOnlineAdvertisement:18 ThroughATelevisionAdvert:1 "
    "ThroughANewspaperAdvert:3 ThroughFamilyOrFamilyEvents:12 ThroughFriendsOrSocialEvents:25 Other:4",
    "vic_RecruitmentWebsitesAndApps": "Facebook:25 Instagram:15 WhatsApp:15 Telegram:12 FacebookMessenger:8 "
    "Viber:6 SnapChat:2 Line:1 4Sale:0.5 WeChat:1 QQ:0.5 QZone:0.2 TikTok:8 Twitter:2 Other:3",
    "vic_MethodsOfControl": "PhysicalThreats:20 ThreatsLawEnforcement:8 ThreatensChildrenFamily:10 DebtBondage:22 "
    "FalsePromises:30 PhysicalAbuse:12 SexualAbuse:8 TakesEarnings:25 RestrictsFinancialAccess:8 "
    "RestrictsMedicalCare:4 WithholdsNecessities:5 PsychologicalAbuse:18 PsychoactiveSubstance:5 "
    "ExcessiveWorkingHours:12 WithholdsDocuments:18 RestrictsMovement:15 Other:2",
    "per_RoleInProcess": "TravellingPartner:3 Transporter:10 RecruiterOrIntermediary:30 BrokerTravelAgent:5 "
    "TransferredIndividual:1 HarbouredIndividual:2 SoldIndividual:1 BoughtIndividual:1 ReceivedIndividual:2 "
    "ControlledIndividual:10 Smuggler:4 Abuser:6 Kidnapper:1 Exploiter:25 Other:2",
    "prs_Gender": "Feminine:0 Masculine:0 TransgenderFeminine:3 TransgenderMasculine:2 NonConforming:1 "
    "NonSpecifiedUnknown:6",
    "cas_Status": "Active:30 FollowUp:15 Closed:45 ClosedReferred:10",
    "shr_HandlingCode": "H0:55 H1:20 H2:20 H3:5",
    "grading_source": "A:15 B:50 C:25 X:10",
    "grading_information": "1:20 2:45 3:25 4:10",
    "destination": "DEU:10 GBR:8 ITA:8 NLD:6 ESP:7 FRA:7 USA:6 POL:3 GRC:4 RUS:4 BGR:1 ROU:1",
    "children": "0:45 1:25 2:18 3:8 4:4",
    "child_age": "8:1 9:1 10:2 11:3 12:4 13:6 14:8 15:10 16:12 17:12",
    "victims": "1:75 2:15 3:7 4:3",
    "perpetrators": "0:40 1:45 2:15",
    "transits": "0:50 1:40 2:10",
}
_TABLES = {
    k: [(v, float(w)) for v, _, w in (p.rpartition(":") for p in s.split())] for k, s in WEIGHTS.items()
}
_CHOICES = {k: ([v for v, _ in t], list(accumulate(w for _, w in t))) for k, t in _TABLES.items()}
HTCDS_VALUES = {
    k: tuple(v for v, _ in t) for k, t in _TABLES.items() if k[:4] in ("prs_", "vic_", "per_", "cas_", "shr_")
}
_APPS = {"CHN": ("WeChat", "QQ", "QZone"), "THA": ("Line", "Facebook"), "VNM": ("Facebook", "Other")}
_TRANSIT = (
    "HUN", "AUT", "SRB", "TUR", "POL", "ROU", "ITA", "GRC", "LBY", "ESP", "DEU", "BEL", "CZE", "SVK", "MDA", "BGR",
)  # fmt: skip
EARLIEST, _RECRUITED_BY = date(2018, 1, 1), date(2025, 6, 30)


def one_of(rng: random.Random, items: Sequence[T]) -> T:
    """A uniform choice (``rng.choice`` without its rejection sampling, which is slow)."""
    return items[int(rng.random() * len(items))]


def below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n)."""
    return int(rng.random() * n)


def between(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in [low, high]."""
    return low + int(rng.random() * (high - low + 1))


def pick(rng: random.Random, name: str) -> str:
    """One value of a weighted list."""
    values, cum = _CHOICES[name]
    return values[bisect(cum, rng.random() * cum[-1])]


def pick_some(rng: random.Random, name: str, most: int) -> list[str]:
    """One to ``most`` distinct values of a weighted list."""
    out: list[str] = []
    for _ in range(between(rng, 1, most)):
        value = pick(rng, name)
        if value not in out:
            out.append(value)
    return out


def pick_source(rng: random.Random, exclude: list[str] | tuple[str, ...] = ()) -> str:
    """A country of citizenship of a victim trafficked abroad (weighted by ``CountryFacts.source``)."""
    codes, cum = _sources(tuple(exclude))
    return codes[bisect(cum, rng.random() * cum[-1])]


@cache
def _sources(exclude: tuple[str, ...]) -> tuple[list[str], list[int]]:
    codes = [c for c in COUNTRIES if c not in exclude]
    return codes, list(accumulate(COUNTRIES[c].source for c in codes))


def _pick_destination(rng: random.Random, exclude: str) -> str:
    while (code := pick(rng, "destination")) == exclude:
        pass
    return code


@dataclass(slots=True)
class Person:
    """A synthetic person as they really are (names in their own script)."""

    true_id: str
    citizenship: tuple[str, ...]
    gender: str
    given: str
    middle: str
    surname: str
    birth: date
    mobile: str
    home_phone: str
    email: str
    id_number: str
    id_country: str
    residence: str
    city: int
    marital: str
    children: int
    education: str


@dataclass(slots=True)
class Member:
    """A person in one case: their role and what the case says about them (true values)."""

    person: Person
    role: str
    context: Fields


@dataclass(slots=True)
class Route:
    recruitment_country: str
    recruitment_date: date
    transit: list[str]
    transit_date: date | None
    exploitation_country: str
    exploitation_date: date


@dataclass(slots=True)
class Case:
    route: Route
    members: list[Member]
    registered: date


@dataclass
class IdSource:
    """Stable ground-truth ids: ``syn-<namespace>-<n>``."""

    namespace: str
    count: int = field(default=0)

    def next(self) -> str:
        self.count += 1
        return f"syn-{self.namespace}-{self.count:07d}"


@cache
def name_pool(country: str) -> dict[str, tuple[str, ...]]:
    """Given names (f, m), surnames (sf, sm) and middle names (pf, pm) of a country's citizens, with
    repeats so that common names stay common. Built once, from Faker with a fixed seed or our tables."""
    facts = COUNTRIES[country]
    if facts.script in sn.TABLE_NAMES:
        table = {k: tuple(n for n, _ in sn.variant_table(v)) for k, v in sn.TABLE_NAMES[facts.script].items()}
        fathers = table["m"] if facts.script == "Arab" else ()  # an Arabic middle name is the father's name
        return dict(f=table["f"], m=table["m"], sf=table["s"], sm=table["s"], pf=fathers, pm=fathers)
    fake = Faker(facts.locale)
    fake.seed_instance(0)
    pool = {key: tuple(getattr(fake, m)() for _ in range(400)) for key, m in _FAKER_METHODS.items()}
    if country in ("UKR", "RUS"):
        pool |= {"pf": tuple(fake.middle_name_female() for _ in range(300))}
        pool |= {"pm": tuple(fake.middle_name_male() for _ in range(300))}
    elif country == "BGR":  # Bulgarian middle names are the father's name + -ov / -ova
        pool |= {"pf": tuple(n + "ова" for n in pool["m"]), "pm": tuple(n + "ов" for n in pool["m"])}
    elif facts.script == "Latn":  # a second given name
        pool |= {"pf": pool["f"], "pm": pool["m"]}
    else:
        pool |= {"pf": (), "pm": ()}
    return pool


_FAKER_METHODS = dict(f="first_name_female", m="first_name_male", sf="last_name_female", sm="last_name_male")


def _gender(rng: random.Random, female_share: float) -> str:
    if rng.random() < 0.015:
        return pick(rng, "prs_Gender")
    return "Feminine" if rng.random() < female_share else "Masculine"


def _birth(rng: random.Random, on: date, age: int) -> date:
    """A birth date so that the person is exactly ``age`` years old on ``on``."""
    anniversary = on.replace(year=on.year - age, day=28) if (on.month, on.day) == (2, 29) else on
    return anniversary.replace(year=on.year - age) - timedelta(days=below(rng, 364))


def make_person(rng: random.Random, ids: IdSource, citizenship: str, gender: str, birth: date) -> Person:
    """A synthetic person of the given citizenship, with names, phones, e-mail and a document number."""
    pool, facts = name_pool(citizenship), COUNTRIES[citizenship]
    fem = gender in ("Feminine", "TransgenderMasculine") or (gender != "Masculine" and rng.random() < 0.5)
    given = one_of(rng, pool["f" if fem else "m"])
    surname = one_of(rng, pool["sf" if fem else "sm"])
    middle_pool = pool["pf" if fem else "pm"]
    has_middle = rng.random() < (1.0 if facts.script == "Cyrl" else 0.4 if facts.script == "Arab" else 0.15)
    citizens: tuple[str, ...] = (citizenship,)
    if rng.random() < (0.3 if citizenship == "MDA" else 0.02):  # many Moldovans also hold Romanian passports
        citizens += ("ROU" if citizenship == "MDA" else pick_source(rng, citizens),)
    adult = (date(2025, 1, 1) - birth).days > 18 * 365
    return Person(
        true_id=ids.next(), citizenship=citizens, gender=gender, given=given,
        middle=one_of(rng, middle_pool) if has_middle and middle_pool else "", surname=surname, birth=birth,
        mobile=sn.phone_number(rng, citizenship), home_phone=sn.phone_number(rng, citizenship, landline=True),
        email=sn.email_address(rng, citizenship, given, surname, birth), id_number=sn.document_number(rng, citizens[-1]),
        id_country=citizens[-1], residence=citizenship, city=below(rng, facts.cities.count(";") + 1),
        marital=pick(rng, "prs_MaritalStatus") if adult else "Single",
        children=int(pick(rng, "children")) if adult else 0,
        education=pick(rng, "prs_HighestLevelOfEducation") if adult else one_of(rng, _CHILD_EDUCATION),
    )  # fmt: skip


_CHILD_EDUCATION = ("PrimaryEducation", "LowerSecondaryEducation")


def make_perpetrator(rng: random.Random, ids: IdSource, citizenship: str, before: date) -> Person:
    """A trafficker aged 20 to 60 on ``before``, mostly a man."""
    return make_person(rng, ids, citizenship, _gender(rng, 0.3), _birth(rng, before, between(rng, 20, 60)))


def make_route(
    rng: random.Random, recruitment: str, exploitation: str, *, transit: list[str] | None = None
) -> Route:
    """Recruitment, transit (0-2 countries) and exploitation, with dates in that order."""
    recruited = EARLIEST + timedelta(days=below(rng, (_RECRUITED_BY - EARLIEST).days))
    if transit is None:
        candidates = [c for c in _TRANSIT if c not in (recruitment, exploitation)]
        count = 0 if recruitment == exploitation else int(pick(rng, "transits"))
        transit = rng.sample(candidates, count)
    transit_date = recruited + timedelta(days=between(rng, 1, 20)) if transit else None
    exploited = (transit_date or recruited) + timedelta(days=between(rng, 1, 60))
    return Route(recruitment, recruited, transit, transit_date, exploitation, exploited)


def _victim(
    rng: random.Random, ids: IdSource, citizenship: str, route: Route, types: list[str], industry: str
) -> Member:
    child = rng.random() < 0.2
    age = int(pick(rng, "child_age")) if child else (
        between(rng, 18, 35) if rng.random() < 0.8 else between(rng, 36, 55))  # fmt: skip
    female = 0.93 if "SexualExploitation" in types or "ForcedMarriage" in types else 0.45
    birth = _birth(rng, route.recruitment_date, age)
    person = make_person(rng, ids, citizenship, _gender(rng, female), birth)
    own_types = [*types, "ChildLabour"] if child and "ForcedLabour" in types and rng.random() < 0.5 else types
    methods = pick_some(rng, "vic_MethodOfRecruitment", 2)
    context: Fields = {
        "vic_TraffickingStatus": pick(rng, "vic_TraffickingStatus"),
        "vic_RelationshipToTrafficker": pick(rng, "vic_RelationshipToTrafficker"),
        "vic_TypeOfExploitation": own_types,
        "vic_MethodOfRecruitment": methods,
        "vic_MethodsOfControl": pick_some(rng, "vic_MethodsOfControl", 4),
    }
    if "SexualExploitation" in types:
        context["vic_TypeOfSexExploitation"] = pick_some(rng, "vic_TypeOfSexExploitation", 2)
    if "ForcedLabour" in types:
        context["vic_ForcedLabourIndustry"] = industry
    if any(m.startswith("ThroughOnline") or m == "ThroughAnOnlineAdvertisement" for m in methods):
        apps = _APPS.get(citizenship)
        context["vic_RecruitmentWebsitesAndApps"] = (
            [one_of(rng, apps)] if apps else pick_some(rng, "vic_RecruitmentWebsitesAndApps", 2)
        )
    return Member(person, "victim", context)


def make_case(
    rng: random.Random, ids: IdSource, route: Route, *, citizenship: str, ring: list[Person],
    ring_chance: float, seen: list[Member] | None = None,
) -> Case:  # fmt: skip
    """Victims (usually one) and 0-2 perpetrators; a recruiter may come from the cross-border ``ring``
    and, with ``seen``, about 3% of people are someone already in an earlier local case."""
    types = pick_some(rng, "vic_TypeOfExploitation", 1 if rng.random() < 0.9 else 2)
    industry = pick(rng, "vic_ForcedLabourIndustry")
    members: list[Member] = []
    for _ in range(int(pick(rng, "victims"))):
        victim = _victim(rng, ids, citizenship, route, types, industry)
        _add(members, _reuse(rng, seen, victim, route.recruitment_date), victim)
    for k in range(int(pick(rng, "perpetrators"))):
        recruiter = (k == 0 and route.recruitment_country != route.exploitation_country) or rng.random() < 0.3
        home = citizenship if recruiter or rng.random() < 0.5 else route.exploitation_country
        if recruiter and ring and rng.random() < ring_chance:
            person = one_of(rng, ring)
            if _in_case(members, person):  # the ring's recruiter is in this case already
                person = make_perpetrator(rng, ids, home, route.recruitment_date)
        else:
            person = make_perpetrator(rng, ids, home, route.recruitment_date)
        roles = ["RecruiterOrIntermediary" if recruiter else "Exploiter"]
        extra = pick(rng, "per_RoleInProcess") if rng.random() < 0.4 else roles[0]
        member = Member(person, "perpetrator", {"per_RoleInProcess": roles + [extra] * (extra != roles[0])})
        _add(members, _reuse(rng, seen, member, route.recruitment_date), member)
    return Case(route, members, route.exploitation_date)


def _in_case(members: list[Member], person: Person) -> bool:
    return any(m.person.true_id == person.true_id for m in members)


def _add(members: list[Member], chosen: Member, fresh: Member) -> None:
    """Add ``chosen`` (someone from an earlier case, or ``fresh``), unless that person is in the
    case already: a person is in a case once (two reuses may draw the same earlier person)."""
    members.append(fresh if _in_case(members, chosen.person) else chosen)


def _reuse(rng: random.Random, seen: list[Member] | None, member: Member, recruited: date) -> Member:
    """The same ``member`` role played by someone from an earlier case (if old enough then)."""
    if not seen or rng.random() >= 0.04:
        return member
    for _ in range(3):
        earlier = seen[len(seen) - 1 - below(rng, min(2000, len(seen)))]
        if earlier.role == member.role and (recruited - earlier.person.birth).days > 12 * 366:
            return Member(earlier.person, member.role, member.context)
    return member


def make_local_case(
    rng: random.Random, ids: IdSource, country: str, *, ring: list[Person], seen: list[Member], latest: date
) -> Case:
    """A case only ``country`` knows: its own citizens or foreigners, exploited there or abroad."""
    source_country = COUNTRIES[country].source >= 3
    domestic = rng.random() < (0.6 if source_country else 0.25)
    citizenship = country if domestic else pick_source(rng, (country,))
    abroad = rng.random() < (0.5 if source_country and domestic else 0.15)
    exploitation = _pick_destination(rng, country) if abroad else country
    recruitment = citizenship if rng.random() < 0.9 else country
    route = make_route(rng, recruitment, exploitation)
    case = make_case(rng, ids, route, citizenship=citizenship, ring=ring, ring_chance=0.02, seen=seen)
    case.registered = min(latest, route.exploitation_date + timedelta(days=between(rng, 5, 499)))
    return case
