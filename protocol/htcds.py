"""HTCDS 2.0 case records: the vocabulary, the columns Palermo accepts, and the check of one row.

Pure: values in, a :class:`Record` or a list of :class:`Problem` out. Readers (CSV, JSON Lines,
XLSX) live in the node; they hand each row over as ``{canonical column name: raw value}``.
Value names follow the Human Trafficking Case Data Standard 2.0 (IOM, December 2021) with the
two gaps Palermo fills (ForcedCriminality, RestrictsMovement); see ``../shared/HTCDS.md``.

A :class:`Problem` never carries a personal value: for direct identifiers (names, birth date,
identity number, phones, e-mail, street, postcode) it describes what arrived ("12 characters,
not a date"); for other fields it may show a short code-like value ("'Femenine'").
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal

from protocol.errors import MalformedError

FieldValue = str | int | bool | tuple[str, ...]
Role = Literal["victim", "perpetrator"]

# ---- vocabulary -------------------------------------------------------------------------------

GENDER = ("Feminine", "Masculine", "TransgenderFeminine", "TransgenderMasculine", "NonConforming",
          "NonSpecifiedUnknown")  # fmt: skip
MARITAL_STATUS = ("Single", "Married", "Widowed", "Divorced", "Separated", "RegisteredPartnership")
EDUCATION = ("EarlyChildhoodEducation", "PrimaryEducation", "LowerSecondaryEducation", "UpperSecondaryEducation",
             "PostSecondaryNonTertiaryEducation", "ShortCycleTertiaryEducation", "BachelorsOrEquivalentLevel",
             "MastersOrEquivalentLevel", "DoctoralOrEquivalentLevel")  # fmt: skip
TRAFFICKING_STATUS = ("PossibleVictimOfTrafficking", "ActualVictimOfTrafficking", "NotAVictimOfTrafficking")
DECISION_ORG = ("Police", "NGO", "CourtOrProsecution", "NonPoliceGovernmentalOrganization", "Other")
RELATIONSHIP = ("Familial", "Acquainted", "Unaquainted")  # sic, as in the standard
EXPLOITATION = ("ForcedLabour", "SexualExploitation", "ChildLabour", "ForcedMarriage", "Servitude",
                "ForcedMilitaryByNonStateActors", "OrganRemoval", "ForcedBegging", "ForcedAdoption", "Surrogacy",
                "Other", "ForcedCriminality")  # fmt: skip
SEX_EXPLOITATION = ("Prostitution", "Pornography", "RemoteInteractiveServices", "PrivateSexualServices")
INDUSTRY = ("A_AgricultureForestryAndFishing", "B_MiningAndQuarrying", "C_Manufacturing",
            "D_ElectricityGasSteamAndAirConditioningSupply", "E_WaterSupplySewerageWasteManagement",
            "F_Construction", "G_WholesaleAndRetailTradeRepairOfMotorVehicles", "H_TransportationAndStorage",
            "I_AccommodationAndFoodServiceActivities", "J_InformationAndCommunication",
            "K_FinancialAndInsuranceActivities", "L_RealEstateActivities",
            "M_ProfessionalScientificAndTechnicalActivities", "N_AdministrativeAndSupportServiceActivities",
            "O_PublicAdministrationAndDefence", "P_Education", "Q_HumanHealthAndSocialWorkActivities",
            "R_ArtsEntertainmentAndRecreation", "S_OtherServiceActivities", "T_ActivitiesOfHouseholdsAsEmployers",
            "U_ActivitiesOfExtraterritorialOrganizations")  # fmt: skip
RECRUITMENT = ("AtAPlaceOfBusiness", "AtAnEducationalInstitution", "AtWork", "ThroughOnlineSocialNetworks",
               "ThroughAnOnlineAdvertisement", "ThroughATelevisionAdvert", "ThroughANewspaperAdvert",
               "ThroughFamilyOrFamilyEvents", "ThroughFriendsOrSocialEvents", "Other")  # fmt: skip
WEBSITES = ("Facebook", "Instagram", "WhatsApp", "Telegram", "FacebookMessenger", "Viber", "SnapChat", "Line",
            "4Sale", "WeChat", "QQ", "QZone", "TikTok", "Twitter", "Other")  # fmt: skip
CONTROL = ("PhysicalThreats", "ThreatsLawEnforcement", "ThreatensChildrenFamily", "DebtBondage", "FalsePromises",
           "PhysicalAbuse", "SexualAbuse", "TakesEarnings", "RestrictsFinancialAccess", "RestrictsMedicalCare",
           "WithholdsNecessities", "PsychologicalAbuse", "PsychoactiveSubstance", "ExcessiveWorkingHours",
           "WithholdsDocuments", "Other", "RestrictsMovement")  # fmt: skip
ROLE_IN_PROCESS = ("TravellingPartner", "Transporter", "RecruiterOrIntermediary", "BrokerTravelAgent",
                   "TransferredIndividual", "HarbouredIndividual", "SoldIndividual", "BoughtIndividual",
                   "ReceivedIndividual", "ControlledIndividual", "Smuggler", "Abuser", "Kidnapper", "Exploiter",
                   "Other")  # fmt: skip
CASE_STATUS = ("Active", "FollowUp", "Closed", "ClosedReferred")
REFERRAL_REASON = ("AdditionalServicesRequired", "MigrationOrChangeOfLocation", "Other")
EVENT_TYPES = ("Recruitment", "Transit", "Exploitation")
HANDLING_CODES = ("H0", "H1", "H2", "H3")
ROLES: tuple[Role, ...] = ("victim", "perpetrator")

# ISO 3166-1 alpha-3 (all 249 assigned codes) plus XKX (Kosovo, user-assigned, widely used).
COUNTRIES = frozenset(
    """AFG ALA ALB DZA ASM AND AGO AIA ATA ATG ARG ARM ABW AUS AUT AZE BHS BHR BGD BRB BLR BEL BLZ BEN BMU BTN BOL
    BES BIH BWA BVT BRA IOT BRN BGR BFA BDI CPV KHM CMR CAN CYM CAF TCD CHL CHN CXR CCK COL COM COG COD COK CRI CIV
    HRV CUB CUW CYP CZE DNK DJI DMA DOM ECU EGY SLV GNQ ERI EST SWZ ETH FLK FRO FJI FIN FRA GUF PYF ATF GAB GMB GEO
    DEU GHA GIB GRC GRL GRD GLP GUM GTM GGY GIN GNB GUY HTI HMD VAT HND HKG HUN ISL IND IDN IRN IRQ IRL IMN ISR ITA
    JAM JPN JEY JOR KAZ KEN KIR PRK KOR KWT KGZ LAO LVA LBN LSO LBR LBY LIE LTU LUX MAC MDG MWI MYS MDV MLI MLT MHL
    MTQ MRT MUS MYT MEX FSM MDA MCO MNG MNE MSR MAR MOZ MMR NAM NRU NPL NLD NCL NZL NIC NER NGA NIU NFK MKD MNP NOR
    OMN PAK PLW PSE PAN PNG PRY PER PHL PCN POL PRT PRI QAT REU ROU RUS RWA BLM SHN KNA LCA MAF SPM VCT WSM SMR STP
    SAU SEN SRB SYC SLE SGP SXM SVK SVN SLB SOM ZAF SGS SSD ESP LKA SDN SUR SJM SWE CHE SYR TWN TJK TZA THA TLS TGO
    TKL TON TTO TUN TUR TKM TCA TUV UGA UKR ARE GBR USA UMI URY UZB VUT VEN VNM VGB VIR WLF ESH YEM ZMB ZWE XKX""".split()  # noqa: SIM905
)
# Citizenship also takes the ICAO 9303 codes for people without one: XXA stateless, XXB refugee (1951
# Convention), XXC other refugee, XXX unspecified nationality.
CITIZENSHIPS = COUNTRIES | {"XXA", "XXB", "XXC", "XXX"}

EARLIEST_YEAR = 1900
MULTI_SEPARATOR = ";"
# Added by Palermo to rejects files, so that a corrected rejects file loads as it is.
IGNORED_COLUMNS = frozenset({"reject_reason"})

# ---- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one row: where, what was expected, and what came (never a personal value)."""

    row: int
    field: str
    expected: str
    got: str

    def to_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "expected": self.expected, "got": self.got}

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: expected {self.expected}; got {self.got}"


@dataclass(frozen=True, slots=True)
class Event:
    """One step of the trafficking route (HTCDS ``hte_``): Recruitment, Transit or Exploitation."""

    type: str
    country: str | None
    city: str | None
    date: str | None  # ISO 8601 at the precision given: YYYY, YYYY-MM or YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class Sharing:
    """Sharing controls of one person in one case."""

    matchable: bool
    handling_code: str
    grading: str | None


@dataclass(frozen=True, slots=True)
class Record:
    """One valid row: one person in one case. Group mappings are keyed by storage attribute name."""

    row: int
    case_id: str
    person_id: str
    role: Role
    person: Mapping[str, FieldValue]  # prs_* fields
    case: Mapping[str, FieldValue]  # cas_* fields
    context: Mapping[str, FieldValue]  # vic_* fields on a victim row, per_* on a perpetrator row
    events: tuple[Event, ...]
    sharing: Sharing
    free_text: Mapping[str, str]  # column name -> text; never indexed
    synth_true_id: str | None


@dataclass(frozen=True, slots=True)
class RowRules:
    """What a row is checked against: the latest acceptable date and the node's sharing defaults."""

    latest_date: date
    default_matchable: bool
    default_handling_code: str


class HeaderError(MalformedError):
    """The columns of a file are wrong (unknown, duplicate or missing required columns)."""

    code = "invalid_file"


class _Invalid(Exception):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected)
        self.expected, self.got = expected, got


# ---- values -----------------------------------------------------------------------------------
# Each column has a fast parser for well-formed values (most cells) that returns _MISS for anything
# unusual; the full parser then decides, and explains a bad value.

_MISS = object()
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_FREE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CODE_LIKE = re.compile(r"^[A-Za-z0-9_.+-]{1,32}$")
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_PHONE = re.compile(r"^[0-9+\-()./ ]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
Parser = Callable[[object], object]


def describe(raw: object) -> str:
    """Say what a value is without showing it (for direct identifiers)."""
    if isinstance(raw, bool):
        return "a true/false value"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, str):
        return f"{len(raw)} characters"
    if isinstance(raw, list):
        return f"a list of {len(raw)} values"
    return "a date" if isinstance(raw, date) else f"a value of type {type(raw).__name__}"


def _show(raw: object) -> str:
    """A short code-like value as written, anything else described. Never called for a direct
    identifier: those are text, phone, e-mail or date columns, whose errors only describe."""
    text = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    return repr(text) if _CODE_LIKE.match(text) else describe(raw)


def _as_text(raw: object, spec: FieldSpec) -> str:
    if isinstance(raw, str):
        return unicodedata.normalize("NFC", raw.strip())
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    raise _Invalid(spec.item_expected, describe(raw))


def _parse_date(raw: object, spec: FieldSpec) -> str:
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, date) or (isinstance(raw, int) and not isinstance(raw, bool)):
        text = raw.isoformat() if isinstance(raw, date) else str(raw)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise _Invalid(spec.expected, describe(raw) + ", not a date")
    match = _DATE.match(text)
    if not match:
        raise _Invalid(spec.expected, f"{len(text)} characters, not a date")
    year, month, day = (int(part or 1) for part in match.groups())
    if year < EARLIEST_YEAR:
        raise _Invalid(spec.expected, f"a year before {EARLIEST_YEAR}")
    try:
        date(year, month, day)
    except ValueError:
        raise _Invalid(spec.expected, "a date that does not exist") from None
    return text


def _parse_item(raw: object, spec: FieldSpec) -> FieldValue:
    """The full parser of one value (one item of a multi-valued column). Raises _Invalid."""
    if spec.kind == "date":
        return _parse_date(raw, spec)
    if spec.kind == "bool" and isinstance(raw, bool):
        return raw
    if spec.kind == "int" and isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = _as_text(raw, spec)
    if spec.kind == "bool" and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    if spec.kind == "int" and text.isascii() and text.isdigit() and spec.low <= int(text) <= spec.high:
        return int(text)
    if spec.lookup is not None and text.lower() in spec.lookup:
        return spec.lookup[text.lower()]
    if spec.kind in ("bool", "int") or spec.lookup is not None:
        raise _Invalid(spec.item_expected, _show(raw))
    if len(text) > spec.max_length:
        raise _Invalid(spec.item_expected, f"{len(text)} characters")
    if (_CONTROL_FREE_TEXT if spec.kind == "free" else _CONTROL).search(text):
        raise _Invalid(spec.item_expected, "text with a control character")
    return _CHECKS.get(spec.kind, _same)(text, spec.item_expected)


def _check_phone(text: str, expected: str) -> str:
    if not _PHONE.match(text):
        raise _Invalid(expected, f"{len(text)} characters, not only digits and + - ( ) . /")
    digits = sum(ch.isdigit() for ch in text)
    if not 4 <= digits <= 15:
        raise _Invalid(expected, f"{digits} digits")
    return text


def _check_email(text: str, expected: str) -> str:
    if not _EMAIL.match(text):
        raise _Invalid(
            expected, f"{len(text)} characters, {'not name@domain' if '@' in text else 'without @'}"
        )
    return text


def _check_pattern(pattern: str, fold: Callable[[str], str]) -> Callable[[str, str], str]:
    compiled = re.compile(pattern)

    def check(text: str, expected: str) -> str:
        if not compiled.match(fold(text)):
            raise _Invalid(expected, _show(text))
        return fold(text)

    return check


def _same(text: str, _expected: str) -> str:
    return text


_CHECKS: dict[str, Callable[[str, str], str]] = {
    "phone": _check_phone,
    "email": _check_email,
    "language": _check_pattern(r"^[a-z]{3}$", str.lower),
    "grading": _check_pattern(r"^[ABCX][1-4]$", str.upper),
}


def _fast_parser(
    kind: str, lookup: Mapping[str, str] | None, multi: bool, spec_args: dict[str, Any]
) -> Parser:
    """A parser for the common, well-formed case; returns _MISS for anything else."""
    if lookup is not None and multi:

        def fast_multi(raw: object) -> object:
            if type(raw) is not str:
                return _MISS
            values = [lookup.get(item.strip().lower(), "") for item in raw.split(MULTI_SEPARATOR)]
            return tuple(dict.fromkeys(values)) if all(values) else _MISS

        return fast_multi
    if lookup is not None or kind == "bool":
        table: Mapping[str, object] = lookup if lookup is not None else _BOOLEANS
        return lambda raw: table.get(raw.strip().lower(), _MISS) if type(raw) is str else _MISS
    if kind == "date":
        return _fast_date
    if kind == "int":
        low, high = spec_args.get("low", 0), spec_args.get("high", 0)
        return lambda raw: (
            int(raw)
            if type(raw) is str and raw.isascii() and raw.isdigit() and low <= int(raw) <= high
            else _MISS
        )
    return _fast_text(spec_args.get("max_length", 200), _CHECKS.get(kind, _same), spec_args["item_expected"])


def _fast_date(raw: object) -> object:
    if type(raw) is str and len(raw) == 10 and raw[4] == raw[7] == "-" and raw.replace("-", "").isdigit():
        try:
            return raw if date.fromisoformat(raw).year >= EARLIEST_YEAR else _MISS
        except ValueError:
            return _MISS
    return _MISS


def _fast_text(max_length: int, check: Callable[[str, str], str], expected: str) -> Parser:
    def fast_text(raw: object) -> object:
        if type(raw) is not str:
            return _MISS
        text = raw.strip()
        if not text or len(text) > max_length or not text.isprintable():
            return _MISS
        return check(text if text.isascii() else unicodedata.normalize("NFC", text), expected)

    return fast_text


# ---- columns ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One accepted column: where its value goes, how it is checked, whether it identifies a person."""

    name: str  # canonical column name, e.g. "prs_Birthdate"
    group: str  # id | person | case | victim | perpetrator | event | sharing | free_text | synth
    attr: str  # key in the record group (the storage column name)
    kind: str  # id | text | free | phone | email | date | enum | language | int | bool | grading
    item_expected: str
    fast: Parser = field(repr=False, compare=False)
    multi: bool = False
    identifying: bool = False  # a direct identifier (HTCDS.md class DI): its values are never shown
    lookup: Mapping[str, str] | None = None  # lower-case value name -> value name
    max_length: int = 200
    low: int = 0
    high: int = 0
    role: Role | None = None  # the only role whose rows may fill it (vic_ victims, per_ perpetrators)

    @property
    def expected(self) -> str:
        return (
            f"{self.item_expected}; several separated by '{MULTI_SEPARATOR}'"
            if self.multi
            else self.item_expected
        )

    def parse(self, raw: object) -> FieldValue | None:
        """The value of a raw cell or JSON value; None when it is empty. Raises _Invalid."""
        value = self.fast(raw)
        return self.parse_slowly(raw) if value is _MISS else value  # type: ignore[return-value]

    def parse_slowly(self, raw: object) -> FieldValue | None:
        """:meth:`parse` without the fast path: handles every input, explains a bad one."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if not self.multi:
            if isinstance(raw, list):
                raise _Invalid("a single value", f"a list of {len(raw)} values")
            return _parse_item(raw, self)
        items = (
            raw.split(MULTI_SEPARATOR) if isinstance(raw, str) else raw if isinstance(raw, list) else [raw]
        )
        try:
            parsed = [
                _parse_item(item, self) for item in items if not (isinstance(item, str) and not item.strip())
            ]
        except _Invalid as e:
            raise _Invalid(self.expected, e.got) from None
        return tuple(dict.fromkeys(str(value) for value in parsed)) or None


_KIND_EXPECTED = {
    "text": "text of at most 200 characters",
    "free": "text of at most 10000 characters",
    "phone": "a phone number of 4 to 15 digits (E.164 such as +40721000000)",
    "email": "an e-mail address such as name@example.org",
    "date": "a date YYYY-MM-DD, YYYY-MM or YYYY",
    "bool": "true or false (also yes/no, 1/0)",
    "language": "an ISO 639-2 language code of 3 letters such as ron",
    "grading": "source A, B, C or X then information 1-4, such as B2",
}
_PREFIX_ROLES: dict[str, Role] = {"vic_": "victim", "per_": "perpetrator"}


def _spec(name: str, kind: str, group: str, **args: Any) -> FieldSpec:
    """One column. ``values``: a tuple of value names, or a set of country codes (an enumeration)."""
    values = args.pop("values", None)
    args.setdefault("attr", _snake(name.split("_", 1)[-1]) if group != "free_text" else name)
    if values is not None:
        args["lookup"] = {value.lower(): value for value in values}
        names = ", ".join(values) if len(values) <= 12 else ""
        listed = (
            f"one of {names}" if names else f"one of the {len(values)} {name} value names in docs/ingest.md"
        )
        args.setdefault("item_expected", listed if isinstance(values, tuple) else _COUNTRY_EXPECTED)
    args.setdefault("item_expected", _KIND_EXPECTED.get(kind, ""))
    fast = _fast_parser(kind, args.get("lookup"), bool(args.get("multi")), args)
    return FieldSpec(
        name=name, group=group, kind=kind, fast=fast, role=_PREFIX_ROLES.get(name[:4].lower()), **args
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


_COUNTRY_EXPECTED = "an ISO 3166-1 alpha-3 country code such as NLD"
_DI = {"identifying": True}
# fmt: off
_SPECS: tuple[FieldSpec, ...] = (
    _spec("cas_CaseId", "id", "id", item_expected="an agency case id of 1 to 128 characters", max_length=128),
    _spec("prs_PersonId", "id", "id", item_expected="an agency person id of 1 to 128 characters", max_length=128),
    _spec("role", "enum", "id", values=ROLES),
    *(_spec(f"prs_{n}", "text", "person", **_DI) for n in ("FirstName", "MiddleName", "SecondName")),
    _spec("prs_Birthdate", "date", "person", **_DI),
    _spec("prs_Gender", "enum", "person", values=GENDER),
    _spec("prs_Citizenship", "enum", "person", values=CITIZENSHIPS, multi=True),
    _spec("prs_IdentityNumber", "text", "person", item_expected="text of at most 64 characters", max_length=64,
          **_DI),
    _spec("prs_IdentityCountry", "enum", "person", values=COUNTRIES),
    _spec("prs_Email", "email", "person", max_length=254, **_DI),
    *(_spec(f"prs_{n}", "phone", "person", max_length=32, **_DI) for n in ("HomePhone", "MobilePhone")),
    *(_spec(f"prs_Mailing{n}", "text", "person", **_DI) for n in ("Street", "PostalCode")),
    *(_spec(f"prs_Mailing{n}", "text", "person") for n in ("City", "State")),
    _spec("prs_MailingCountry", "enum", "person", values=COUNTRIES),
    _spec("prs_MaritalStatus", "enum", "person", values=MARITAL_STATUS),
    _spec("prs_NumberOfChildren", "int", "person", item_expected="a whole number from 0 to 30", high=30),
    *(_spec(f"prs_{n}Language", "language", "person") for n in ("Primary", "Secondary")),
    _spec("prs_HighestLevelOfEducation", "enum", "person", values=EDUCATION),
    _spec("prs_Deceased", "bool", "person"),
    _spec("vic_TraffickingStatus", "enum", "victim", values=TRAFFICKING_STATUS),
    _spec("vic_TraffickingStatusDecisionMakingOrg", "enum", "victim", values=DECISION_ORG,
          attr="status_decision_org"),
    _spec("vic_RelationshipToTrafficker", "enum", "victim", values=RELATIONSHIP),
    _spec("vic_AgeWhenTrafficked", "int", "victim", item_expected="a whole number from 0 to 120", high=120),
    _spec("vic_TypeOfExploitation", "enum", "victim", values=EXPLOITATION, multi=True),
    _spec("vic_TypeOfSexExploitation", "enum", "victim", values=SEX_EXPLOITATION, multi=True),
    _spec("vic_ForcedLabourIndustry", "enum", "victim", values=INDUSTRY),
    _spec("vic_MethodOfRecruitment", "enum", "victim", values=RECRUITMENT, multi=True),
    *(_spec(f"vic_{n}WebsitesAndApps", "enum", "victim", values=WEBSITES, multi=True)
      for n in ("Recruitment", "Exploitation")),
    _spec("vic_MethodsOfControl", "enum", "victim", values=CONTROL, multi=True),
    _spec("per_RoleInProcess", "enum", "perpetrator", values=ROLE_IN_PROCESS, multi=True),
    _spec("cas_Status", "enum", "case", values=CASE_STATUS),
    *(_spec(f"cas_{n}Date", "date", "case") for n in ("Registration", "IncomingReferral", "OutgoingReferral")),
    *(_spec(f"cas_ReasonFor{n}Referral", "enum", "case", values=REFERRAL_REASON) for n in ("Incoming", "Outgoing")),
    *(_spec(f"hte_{t}Country", "enum", "event", values=COUNTRIES, multi=t == "Transit") for t in EVENT_TYPES),
    *(_spec(f"hte_{t}City", "text", "event") for t in EVENT_TYPES),
    *(_spec(f"hte_{t}Date", "date", "event") for t in EVENT_TYPES),
    _spec("shr_Matchable", "bool", "sharing"),
    _spec("shr_HandlingCode", "enum", "sharing", values=HANDLING_CODES),
    _spec("shr_Grading", "grading", "sharing", max_length=2),
    _spec("synth_TrueId", "text", "synth", attr="synth_true_id", max_length=128,
          item_expected="text of at most 128 characters"),
    *(_spec(n, "free", "free_text", max_length=10000)
      for n in ("per_RoleDetails", "cas_ReasonForCaseClosure", "cco_CaseComment", "hte_Description")),
)
# fmt: on
FIELDS: Mapping[str, FieldSpec] = {spec.name: spec for spec in _SPECS}
_BY_LOWER = {name.lower(): name for name in FIELDS}
_NAMES = {(spec.group, spec.attr): spec.name for spec in _SPECS}
# Free-text columns named by pattern: cas_IncomingReferralDetails, cas_OutgoingReferralDetails, ...,
# and a description per flattened event (hte_RecruitmentDescription, ...).
_FREE_TEXT = re.compile(r"^(cas_[A-Za-z]+Details|hte_(?:Recruitment|Transit|Exploitation)Description)$", re.I)
REQUIRED = ("cas_CaseId", "prs_PersonId", "role")
PERSON_ATTRS, CASE_ATTRS, VICTIM_ATTRS, PERPETRATOR_ATTRS = (
    tuple(spec.attr for spec in _SPECS if spec.group == group)
    for group in ("person", "case", "victim", "perpetrator")
)


@lru_cache(maxsize=256)
def field_spec(name: str) -> FieldSpec | None:
    """The spec of a column name (any letter case), or None when Palermo does not accept it."""
    text = name.strip()
    canonical = _BY_LOWER.get(text.lower())
    if canonical is not None:
        return FIELDS[canonical]
    return _spec(text, "free", "free_text", max_length=10000) if _FREE_TEXT.match(text) else None


def resolve_columns(names: Sequence[str]) -> tuple[str | None, ...]:
    """Map each column name to its canonical name; None for a column that is ignored.

    Empty names and ``reject_reason`` are ignored. Raises HeaderError naming every unknown and
    duplicate column and every missing required column.
    """
    ignored = [not name.strip() or name.strip().lower() in IGNORED_COLUMNS for name in names]
    specs = [None if skip else field_spec(name) for name, skip in zip(names, ignored, strict=True)]
    unknown = [
        n.strip()[:40] for n, s, skip in zip(names, specs, ignored, strict=True) if s is None and not skip
    ]
    present = [spec.name for spec in specs if spec is not None]
    reasons = []
    if unknown:
        reasons.append("unknown column(s) " + ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else ""))
    if len(set(present)) < len(present):
        reasons.append(
            "column(s) given twice " + ", ".join(sorted({n for n in present if present.count(n) > 1}))
        )
    if any(name not in present for name in REQUIRED):
        reasons.append("missing required column(s) " + ", ".join(n for n in REQUIRED if n not in present))
    if reasons:
        raise HeaderError("; ".join(reasons) + " (column names match HTCDS 2.0, see docs/ingest.md)")
    return tuple(spec.name if spec else None for spec in specs)


# ---- one row ----------------------------------------------------------------------------------

_GROUPS = ("id", "person", "case", "victim", "perpetrator", "event", "sharing", "free_text", "synth")


def validate_row(
    values: Mapping[str, object], *, row: int, rules: RowRules
) -> tuple[Record | None, list[Problem]]:
    """Check one row given as ``{canonical column name: raw value}``.

    Returns ``(record, [])`` for a valid row, ``(None, problems)`` otherwise; never raises for bad
    values. Raw values are strings, numbers, booleans, dates, lists (JSON arrays) or None.
    """
    problems: list[Problem] = []
    groups: dict[str, dict[str, FieldValue]] = {group: {} for group in _GROUPS}
    latest = rules.latest_date.isoformat()
    for name, raw in values.items():
        spec = FIELDS.get(name) or field_spec(name)
        assert spec is not None, "columns are resolved before rows are checked"
        try:
            value = spec.fast(raw)
            if value is _MISS:
                value = spec.parse_slowly(raw)
            if spec.kind == "date" and value is not None and str(value) > latest[: len(str(value))]:
                raise _Invalid(spec.expected, "a date in the future")
        except _Invalid as e:
            problems.append(Problem(row, spec.name, e.expected, e.got))
            continue
        if value is not None:
            groups[spec.group][spec.attr] = value  # type: ignore[assignment]  # the parsers return FieldValue
    ids, failed = groups["id"], {problem.field for problem in problems}
    for name in REQUIRED:
        if FIELDS[name].attr not in ids and name not in failed:
            problems.append(Problem(row, name, FIELDS[name].expected, "nothing"))
    if ids.get("role") in ROLES:
        problems += _misplaced(groups, str(ids["role"]), row)
    if problems:
        return None, problems
    return _record(groups, row, rules), []


def _misplaced(groups: Mapping[str, Mapping[str, FieldValue]], role: str, row: int) -> list[Problem]:
    """Victim columns filled on a perpetrator row, or perpetrator columns on a victim row."""
    other = "perpetrator" if role == "victim" else "victim"
    names = [_NAMES[other, attr] for attr in groups[other]]
    names += [name for name in groups["free_text"] if _PREFIX_ROLES.get(name[:4].lower(), role) != role]
    expected = f"no value on a {role} row (the column is for {other}s)"
    return [Problem(row, name, expected, "a value") for name in names]


def _record(groups: Mapping[str, Mapping[str, FieldValue]], row: int, rules: RowRules) -> Record:
    ids, sharing, synth = groups["id"], groups["sharing"], groups["synth"]
    role: Role = "victim" if ids["role"] == "victim" else "perpetrator"
    return Record(
        row=row,
        case_id=str(ids["case_id"]),
        person_id=str(ids["person_id"]),
        role=role,
        person=groups["person"],
        case=groups["case"],
        context=groups[role],
        events=_events(groups["event"]),
        sharing=Sharing(
            matchable=bool(sharing.get("matchable", rules.default_matchable)),
            handling_code=str(sharing.get("handling_code", rules.default_handling_code)),
            grading=str(sharing["grading"]) if "grading" in sharing else None,
        ),
        free_text={name: str(text) for name, text in groups["free_text"].items()},
        synth_true_id=str(synth["synth_true_id"]) if synth else None,
    )


_EVENT_COLUMNS = tuple(
    (kind, *(f"{kind.lower()}_{part}" for part in ("country", "city", "date"))) for kind in EVENT_TYPES
)


def _events(columns: Mapping[str, FieldValue]) -> tuple[Event, ...]:
    """Unflatten the hte_ columns. Several transit countries give one Transit event each, in the
    order written; the transit city and date belong to the first."""
    events: list[Event] = []
    for kind, country_key, city_key, date_key in _EVENT_COLUMNS if columns else ():
        country, city, when = (
            columns.get(country_key),
            _text(columns.get(city_key)),
            _text(columns.get(date_key)),
        )
        countries = country if isinstance(country, tuple) else (_text(country),)
        if countries[0] or city or when:
            events.append(Event(type=kind, country=countries[0], city=city, date=when))
        events += [Event(type=kind, country=other, city=None, date=None) for other in countries[1:]]
    return tuple(events)


def _text(value: FieldValue | None) -> str | None:
    return value if isinstance(value, str) else None


def content_hash(person: Mapping[str, FieldValue]) -> str:
    """SHA-256 (hex) of the canonical JSON of a person's fields (every prs_ column: each is a direct
    or quasi-identifier). Changes exactly when what identifies the person changes.

    ``json.dumps`` with sorted keys is the canonical form (protocol.canonical) for these values
    (short strings, small integers, booleans, arrays); calling it directly skips a slow recheck.
    """
    data = {key: list(value) if isinstance(value, tuple) else value for key, value in person.items()}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_key(values: Mapping[str, object]) -> tuple[str, str] | None:
    """The (case id, person id) of a row given as raw values, or None if either is missing or invalid."""
    try:
        case_id, person_id = (FIELDS[name].parse(values.get(name, "")) for name in REQUIRED[:2])
    except _Invalid:
        return None
    return (case_id, person_id) if isinstance(case_id, str) and isinstance(person_id, str) else None
