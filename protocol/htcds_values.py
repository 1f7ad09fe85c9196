"""HTCDS 2.0 values: the vocabulary, the columns Palermo accepts, and the check of one value.

Pure: a raw cell in, a value out or :class:`InvalidValue` raised. ``protocol.htcds`` checks whole
rows with these and is what the rest of Palermo imports. Value names follow the Human Trafficking
Case Data Standard 2.0 (IOM, December 2021) with the two gaps Palermo fills (ForcedCriminality,
RestrictsMovement); see ``../shared/HTCDS.md``.

Each column has a fast parser for well-formed values (most cells) that returns :data:`MISS` for
anything unusual; the full parser (:meth:`FieldSpec.parse_slowly`) then decides, and explains a bad
value. An explanation never shows a direct identifier: it describes what arrived instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

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

# ---- one value --------------------------------------------------------------------------------


class InvalidValue(Exception):
    """A bad value: what was expected and what came (described, never a direct identifier)."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected)
        self.expected, self.got = expected, got


MISS: Any = object()  # what a fast parser returns for a value it leaves to the full parser
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
    raise InvalidValue(spec.item_expected, describe(raw))


def _parse_date(raw: object, spec: FieldSpec) -> str:
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, date) or (isinstance(raw, int) and not isinstance(raw, bool)):
        text = raw.isoformat() if isinstance(raw, date) else str(raw)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise InvalidValue(spec.expected, describe(raw) + ", not a date")
    match = _DATE.match(text)
    if not match:
        raise InvalidValue(spec.expected, f"{len(text)} characters, not a date")
    year, month, day = (int(part or 1) for part in match.groups())
    if year < EARLIEST_YEAR:
        raise InvalidValue(spec.expected, f"a year before {EARLIEST_YEAR}")
    try:
        date(year, month, day)
    except ValueError:
        raise InvalidValue(spec.expected, "a date that does not exist") from None
    return text


def _parse_item(raw: object, spec: FieldSpec) -> FieldValue:
    """The full parser of one value (one item of a multi-valued column). Raises InvalidValue."""
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
        raise InvalidValue(spec.item_expected, _show(raw))
    if len(text) > spec.max_length:
        raise InvalidValue(spec.item_expected, f"{len(text)} characters")
    if (_CONTROL_FREE_TEXT if spec.kind == "free" else _CONTROL).search(text):
        raise InvalidValue(spec.item_expected, "text with a control character")
    return _CHECKS.get(spec.kind, _same)(text, spec.item_expected)


def _check_phone(text: str, expected: str) -> str:
    if not _PHONE.match(text):
        raise InvalidValue(expected, f"{len(text)} characters, not only digits and + - ( ) . /")
    digits = sum(map(str.isdigit, text))
    if not 4 <= digits <= 15:
        raise InvalidValue(expected, f"{digits} digits")
    return text


def _check_email(text: str, expected: str) -> str:
    if not _EMAIL.match(text):
        shape = "not name@domain" if "@" in text else "without @"
        raise InvalidValue(expected, f"{len(text)} characters, {shape}")
    return text


def _check_pattern(pattern: str, fold: Callable[[str], str]) -> Callable[[str, str], str]:
    compiled = re.compile(pattern)

    def check(text: str, expected: str) -> str:
        if not compiled.match(fold(text)):
            raise InvalidValue(expected, _show(text))
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


def _fast_parser(kind: str, lookup: Mapping[str, str] | None, multi: bool, args: dict[str, Any]) -> Parser:
    """A parser for the common, well-formed case; returns MISS for anything else."""
    if lookup is not None and multi:

        def fast_multi(raw: object) -> object:
            if type(raw) is not str:
                return MISS
            values = [lookup.get(item.strip().lower(), "") for item in raw.split(MULTI_SEPARATOR)]
            return tuple(dict.fromkeys(values)) if all(values) else MISS

        return fast_multi
    if lookup is not None or kind == "bool":
        table: Mapping[str, object] = lookup if lookup is not None else _BOOLEANS
        return lambda raw: table.get(raw.strip().lower(), MISS) if type(raw) is str else MISS
    if kind == "date":
        return _fast_date
    if kind == "int":
        low, high = args.get("low", 0), args.get("high", 0)
        return lambda raw: (
            int(raw)
            if type(raw) is str and raw.isascii() and raw.isdigit() and low <= int(raw) <= high
            else MISS
        )
    return _fast_text(args.get("max_length", 200), _CHECKS.get(kind, _same), args["item_expected"])


def _fast_date(raw: object) -> object:
    if type(raw) is str and len(raw) == 10 and raw[4] == raw[7] == "-" and raw.replace("-", "").isdigit():
        try:
            return raw if date.fromisoformat(raw).year >= EARLIEST_YEAR else MISS
        except ValueError:
            return MISS
    return MISS


def _fast_text(max_length: int, check: Callable[[str, str], str], expected: str) -> Parser:
    def fast_text(raw: object) -> object:
        if type(raw) is not str:
            return MISS
        text = raw.strip()
        if not text or len(text) > max_length or not text.isprintable():
            return MISS
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
        """The value of a raw cell or JSON value; None when it is empty. Raises InvalidValue."""
        value = self.fast(raw)
        return self.parse_slowly(raw) if value is MISS else value  # type: ignore[return-value]

    def parse_slowly(self, raw: object) -> FieldValue | None:
        """:meth:`parse` without the fast path: handles every input, explains a bad one."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if not self.multi:
            if isinstance(raw, list):
                raise InvalidValue("a single value", f"a list of {len(raw)} values")
            return _parse_item(raw, self)
        items = (
            raw.split(MULTI_SEPARATOR) if isinstance(raw, str) else raw if isinstance(raw, list) else [raw]
        )
        try:
            parsed = [
                _parse_item(item, self) for item in items if not (isinstance(item, str) and not item.strip())
            ]
        except InvalidValue as e:
            raise InvalidValue(self.expected, e.got) from None
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
PREFIX_ROLES: dict[str, Role] = {"vic_": "victim", "per_": "perpetrator"}
_COUNTRY_EXPECTED = "an ISO 3166-1 alpha-3 country code such as NLD"


def column(name: str, kind: str, group: str, **args: Any) -> FieldSpec:
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
        name=name, group=group, kind=kind, fast=fast, role=PREFIX_ROLES.get(name[:4].lower()), **args
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


_DI = {"identifying": True}
# fmt: off
COLUMNS: tuple[FieldSpec, ...] = (
    column("cas_CaseId", "id", "id", item_expected="an agency case id of 1 to 128 characters", max_length=128),
    column("prs_PersonId", "id", "id", item_expected="an agency person id of 1 to 128 characters", max_length=128),
    column("role", "enum", "id", values=ROLES),
    *(column(f"prs_{n}", "text", "person", **_DI) for n in ("FirstName", "MiddleName", "SecondName")),
    column("prs_Birthdate", "date", "person", **_DI),
    column("prs_Gender", "enum", "person", values=GENDER),
    column("prs_Citizenship", "enum", "person", values=CITIZENSHIPS, multi=True),
    column("prs_IdentityNumber", "text", "person", item_expected="text of at most 64 characters", max_length=64,
           **_DI),
    column("prs_IdentityCountry", "enum", "person", values=COUNTRIES),
    column("prs_Email", "email", "person", max_length=254, **_DI),
    *(column(f"prs_{n}", "phone", "person", max_length=32, **_DI) for n in ("HomePhone", "MobilePhone")),
    *(column(f"prs_Mailing{n}", "text", "person", **_DI) for n in ("Street", "PostalCode")),
    *(column(f"prs_Mailing{n}", "text", "person") for n in ("City", "State")),
    column("prs_MailingCountry", "enum", "person", values=COUNTRIES),
    column("prs_MaritalStatus", "enum", "person", values=MARITAL_STATUS),
    column("prs_NumberOfChildren", "int", "person", item_expected="a whole number from 0 to 30", high=30),
    *(column(f"prs_{n}Language", "language", "person") for n in ("Primary", "Secondary")),
    column("prs_HighestLevelOfEducation", "enum", "person", values=EDUCATION),
    column("prs_Deceased", "bool", "person"),
    column("vic_TraffickingStatus", "enum", "victim", values=TRAFFICKING_STATUS),
    column("vic_TraffickingStatusDecisionMakingOrg", "enum", "victim", values=DECISION_ORG,
           attr="status_decision_org"),
    column("vic_RelationshipToTrafficker", "enum", "victim", values=RELATIONSHIP),
    column("vic_AgeWhenTrafficked", "int", "victim", item_expected="a whole number from 0 to 120", high=120),
    column("vic_TypeOfExploitation", "enum", "victim", values=EXPLOITATION, multi=True),
    column("vic_TypeOfSexExploitation", "enum", "victim", values=SEX_EXPLOITATION, multi=True),
    column("vic_ForcedLabourIndustry", "enum", "victim", values=INDUSTRY),
    column("vic_MethodOfRecruitment", "enum", "victim", values=RECRUITMENT, multi=True),
    *(column(f"vic_{n}WebsitesAndApps", "enum", "victim", values=WEBSITES, multi=True)
      for n in ("Recruitment", "Exploitation")),
    column("vic_MethodsOfControl", "enum", "victim", values=CONTROL, multi=True),
    column("per_RoleInProcess", "enum", "perpetrator", values=ROLE_IN_PROCESS, multi=True),
    column("cas_Status", "enum", "case", values=CASE_STATUS),
    *(column(f"cas_{n}Date", "date", "case") for n in ("Registration", "IncomingReferral", "OutgoingReferral")),
    *(column(f"cas_ReasonFor{n}Referral", "enum", "case", values=REFERRAL_REASON) for n in ("Incoming", "Outgoing")),
    *(column(f"hte_{t}Country", "enum", "event", values=COUNTRIES, multi=t == "Transit") for t in EVENT_TYPES),
    *(column(f"hte_{t}City", "text", "event") for t in EVENT_TYPES),
    *(column(f"hte_{t}Date", "date", "event") for t in EVENT_TYPES),
    column("shr_Matchable", "bool", "sharing"),
    column("shr_HandlingCode", "enum", "sharing", values=HANDLING_CODES),
    column("shr_Grading", "grading", "sharing", max_length=2),
    column("synth_TrueId", "text", "synth", attr="synth_true_id", max_length=128,
           item_expected="text of at most 128 characters"),
    *(column(n, "free", "free_text", max_length=10000)
      for n in ("per_RoleDetails", "cas_ReasonForCaseClosure", "cco_CaseComment", "hte_Description")),
)
# fmt: on
